/*
 * cli.h: lodgectl's command line: the commands, the options, the exit
 * statuses.  Pure (parsing only); runs in lodgectl, as whoever calls it.
 */
#ifndef LODGE_CLI_H
#define LODGE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ctlproto.h"

enum cli_cmd {
	CLI_STATUS = 0,
	CLI_RELOAD,
	CLI_RESTART,
	CLI_STOP,
	CLI_START,
	CLI_CHECK_CONFIG,
	CLI_RELOAD_CONFIG,
	CLI_LOGS,
	CLI_METRICS,
	CLI_VERSION,
	CLI_HELP,
};

/* lodgectl's exit statuses (docs/lodgectl.md, lodgectl(8)). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,      /* the command ran and failed, or refused */
	CLI_EXIT_USAGE = 2,       /* wrong arguments */
	CLI_EXIT_UNREACHABLE = 3, /* no lodged at the socket, no answer */
	CLI_EXIT_DENIED = 4,      /* not root nor in control_group */
	CLI_EXIT_NOTFOUND = 5,    /* no such user, or no such log */
	CLI_EXIT_VERSION = 6,     /* lodged speaks another protocol */
};

#define CLI_TIMEOUT_DEFAULT 30 /* seconds to wait for lodged's reply */

struct cli {
	enum cli_cmd cmd;
	const char *word;   /* the command on the wire: "status", ... */
	const char *socket; /* --socket, LODGE_CONTROL_SOCKET or default */
	bool is_json;
	bool is_version_flag; /* --version: lodgectl's own, no request */
	unsigned timeout_s;
	const char *target; /* USER or USER/APP; NULL */
	unsigned lines;     /* logs: 0 means lodged's default */
	const char *args[CTLPROTO_MAX_ARGS]; /* the request's arguments */
	int nargs;
	char lines_buf[16];
};

/*
 * Parses argv (options may come before or after the command; "--" ends
 * them).  env_socket is $LODGE_CONTROL_SOCKET (or NULL).  Returns 0 with c
 * filled (its strings point into argv, env_socket or c), or -1 with err
 * holding one sentence saying what to write instead (exit 2).  Pure.
 */
int cli_parse(int argc, char *const *argv, const char *env_socket,
    struct cli *c, char *err, size_t errsize);

/* The exit status for a reply of kind (CTLPROTO_OK: 0).  Pure. */
enum cli_exit cli_exit_for(enum ctlproto_err kind);

/* Writes the usage text to f. */
void cli_usage(FILE *f);

#endif
