/*
 * cli.c: lodgectl's command line, parsed into a request.  Pure; runs in
 * lodgectl as whoever calls it, before anything is sent: a wrong command
 * line gets one sentence saying what to write instead, and never reaches
 * lodged.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const struct cli_def {
	const char *word;
	enum cli_cmd cmd;
	int min_args;
	int max_args;
	bool has_app; /* the argument may be USER/APP */
	const char *usage;
} cli_defs[] = {
    {"status", CLI_STATUS, 0, 1, false, "status [USER]"},
    {"reload", CLI_RELOAD, 1, 1, true, "reload USER[/APP]"},
    {"restart", CLI_RESTART, 1, 1, false, "restart USER"},
    {"stop", CLI_STOP, 1, 1, false, "stop USER"},
    {"start", CLI_START, 1, 1, false, "start USER"},
    {"check-config", CLI_CHECK_CONFIG, 0, 0, false, "check-config"},
    {"reload-config", CLI_RELOAD_CONFIG, 0, 0, false, "reload-config"},
    {"logs", CLI_LOGS, 1, 1, true, "logs USER[/APP] [-n LINES]"},
    {"metrics", CLI_METRICS, 0, 0, false, "metrics"},
    {"version", CLI_VERSION, 0, 0, false, "version"},
    {"help", CLI_HELP, 0, 0, false, "help"},
};
#define CLI_NDEFS (sizeof(cli_defs) / sizeof(cli_defs[0]))

void cli_usage(FILE *f)
{
	fprintf(f,
	    "usage: lodgectl [--json] [--socket PATH] [--timeout S] COMMAND\n"
	    "\n"
	    "commands:\n"
	    "  status [USER]           users, workers and apps at a glance;\n"
	    "                          one user in detail\n"
	    "  reload USER[/APP]       replace USER's workers gracefully (new\n"
	    "                          code, no request lost)\n"
	    "  restart USER            drain USER's workers and start new "
	    "ones\n"
	    "  stop USER               drain USER's workers; none starts "
	    "until\n"
	    "                          'start USER'\n"
	    "  start USER              start USER's workers (again)\n"
	    "  check-config            check lodged's configuration file\n"
	    "  reload-config           load it (the old one stays if it has\n"
	    "                          errors)\n"
	    "  logs USER[/APP]         the end of USER's worker log, or of an\n"
	    "                          app's log (-n LINES, default %d)\n"
	    "  metrics                 Prometheus text exposition\n"
	    "  version                 lodgectl's and lodged's versions\n"
	    "\n"
	    "options:\n"
	    "  --json                  print lodged's JSON reply as it is\n"
	    "  --socket PATH           the control socket (default $%s,\n"
	    "                          else %s)\n"
	    "  --timeout S             wait S seconds for the reply (default "
	    "%d)\n"
	    "  -n, --lines N           logs: how many lines (1 to %d)\n"
	    "  -h, --help              this text\n"
	    "  --version               lodgectl's version\n"
	    "\n"
	    "exit status: 0 done, 1 failed, 2 usage, 3 lodged unreachable,\n"
	    "4 permission denied, 5 no such user or log, 6 protocol version\n"
	    "mismatch (lodgectl(8) says more)\n",
	    CTLPROTO_LOG_LINES_DEFAULT, CTLPROTO_SOCKET_ENV,
	    CTLPROTO_DEFAULT_SOCKET, CLI_TIMEOUT_DEFAULT,
	    CTLPROTO_LOG_LINES_MAX);
}

enum cli_exit cli_exit_for(enum ctlproto_err kind)
{
	switch (kind) {
	case CTLPROTO_OK:
		return CLI_EXIT_OK;
	case CTLPROTO_ERR_USAGE:
		return CLI_EXIT_USAGE;
	case CTLPROTO_ERR_DENIED:
		return CLI_EXIT_DENIED;
	case CTLPROTO_ERR_NOUSER:
	case CTLPROTO_ERR_NOFILE:
		return CLI_EXIT_NOTFOUND;
	case CTLPROTO_ERR_VERSION:
		return CLI_EXIT_VERSION;
	case CTLPROTO_ERR_FAILED:
	case CTLPROTO_ERR_NOTYET:
	case CTLPROTO_ERR_BUSY:
	case CTLPROTO_ERR_MAX:
		break;
	}
	return CLI_EXIT_FAILED;
}

/* The value of an option: "--opt=V", or "--opt V" (i advances). */
static const char *cli_value(
    int argc, char *const *argv, int *i, const char *opt, bool *is_match)
{
	size_t n = strlen(opt);
	const char *a = argv[*i];

	*is_match = false;
	if (strncmp(a, opt, n) != 0)
		return NULL;
	if (a[n] == '=') {
		*is_match = true;
		return a + n + 1;
	}
	if (a[n] != '\0')
		return NULL;
	*is_match = true;
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int cli_parse(int argc, char *const *argv, const char *env_socket,
    struct cli *c, char *err, size_t errsize)
{
	const char *words[8];
	int nwords = 0;
	bool is_opts_done = false;
	const char *lines = NULL, *timeout = NULL;
	const struct cli_def *def = NULL;
	uint64_t v;

	memset(c, 0, sizeof(*c));
	c->socket = env_socket != NULL && *env_socket != '\0'
	                ? env_socket
	                : CTLPROTO_DEFAULT_SOCKET;
	c->timeout_s = CLI_TIMEOUT_DEFAULT;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;
		bool is_match;

		if (is_opts_done || a[0] != '-' || a[1] == '\0') {
			if (nwords == (int)(sizeof(words) / sizeof(words[0]))) {
				snprintf(err, errsize,
				    "too many arguments; lodgectl --help lists "
				    "the commands");
				return -1;
			}
			words[nwords++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			is_opts_done = true;
		} else if (strcmp(a, "--json") == 0) {
			c->is_json = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			c->cmd = CLI_HELP;
			c->word = "help";
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			c->is_version_flag = true;
		} else if ((val = cli_value(argc, argv, &i, "--socket",
		                &is_match)) != NULL ||
		           is_match) {
			if (val == NULL || *val == '\0') {
				snprintf(err, errsize,
				    "--socket needs a path, e.g. --socket "
				    "%s",
				    CTLPROTO_DEFAULT_SOCKET);
				return -1;
			}
			c->socket = val;
		} else if ((val = cli_value(argc, argv, &i, "--timeout",
		                &is_match)) != NULL ||
		           is_match) {
			timeout = val != NULL ? val : "";
		} else if ((val = cli_value(argc, argv, &i, "--lines",
		                &is_match)) != NULL ||
		           is_match ||
		           (val = cli_value(argc, argv, &i, "-n", &is_match)) !=
		               NULL ||
		           is_match) {
			lines = val != NULL ? val : "";
		} else {
			snprintf(err, errsize,
			    "unknown option '%s'; lodgectl --help lists the "
			    "options",
			    a);
			return -1;
		}
	}
	if (c->is_version_flag && nwords == 0)
		return 0;
	if (nwords == 0) {
		/* Plain lodgectl: what a provider wants to see first. */
		def = &cli_defs[0];
	} else {
		for (size_t k = 0; k < CLI_NDEFS; k++)
			if (strcmp(words[0], cli_defs[k].word) == 0)
				def = &cli_defs[k];
		if (def == NULL) {
			snprintf(err, errsize,
			    "unknown command '%s'; lodgectl --help lists the "
			    "commands",
			    words[0]);
			return -1;
		}
		nwords--;
	}
	c->cmd = def->cmd;
	c->word = def->word;
	if (nwords < def->min_args || nwords > def->max_args) {
		snprintf(err, errsize, "%s; write lodgectl %s",
		    nwords < def->min_args ? "missing argument"
		                           : "too many arguments",
		    def->usage);
		return -1;
	}
	if (nwords == 1) {
		char user[CTLPROTO_MAX_USER + 1], app[CTLPROTO_MAX_APP + 1];
		const char *why = NULL;

		c->target = words[1];
		if (ctlproto_target_split(c->target, user, app, &why) < 0 ||
		    (!def->has_app && app[0] != '\0')) {
			snprintf(err, errsize, "'%s': %s; write lodgectl %s",
			    c->target,
			    why != NULL ? why : "an app is not allowed here",
			    def->usage);
			return -1;
		}
		c->args[c->nargs++] = c->target;
	}
	if (timeout != NULL &&
	    util_parse_u64(timeout, 1, 3600, false, &v) < 0) {
		snprintf(err, errsize,
		    "--timeout needs a number of seconds from 1 to 3600, not "
		    "'%s'",
		    timeout);
		return -1;
	}
	if (timeout != NULL)
		c->timeout_s = (unsigned)v;
	if (lines != NULL) {
		if (c->cmd != CLI_LOGS) {
			snprintf(err, errsize,
			    "-n/--lines is for the logs command only");
			return -1;
		}
		if (util_parse_u64(
		        lines, 1, CTLPROTO_LOG_LINES_MAX, false, &v) < 0) {
			snprintf(err, errsize,
			    "-n needs a number of lines from 1 to %d, not "
			    "'%s'",
			    CTLPROTO_LOG_LINES_MAX, lines);
			return -1;
		}
		c->lines = (unsigned)v;
		snprintf(c->lines_buf, sizeof(c->lines_buf), "%u", c->lines);
		c->args[c->nargs++] = c->lines_buf;
	}
	return 0;
}
