/*
 * control.c: the worker's control socket (--control PATH): list the apps
 * with their state, force a reload of one, replace the process.  The
 * launcher will drive the same commands; for now a person or a test does,
 * with socat or lodge's own tests.  See docs/worker-control.md.
 *
 * Runs in lodge-worker as the hosted user, on the watcher thread (so the
 * reload state it reports is never half-updated).  The socket is created
 * 0600; every connection's peer must be the worker's own uid or root
 * (SO_PEERCRED), anything else is refused.  One command line per
 * connection, answered, then closed; a peer that sends nothing within a
 * second is dropped, so a stuck client can't stall reloads.
 */
#include "worker.h"

#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define CONTROL_MAX_LINE 512
#define CONTROL_TIMEOUT_MS 1000

/* Written by the main thread once, read by the watcher thread. */
static _Atomic int control_listen_fd = -1;

int control_fd(void)
{
	return control_listen_fd;
}

int control_open(const char *path)
{
	struct util_listen_spec ls;
	mode_t old;

	memset(&ls, 0, sizeof(ls));
	ls.kind = UTIL_LISTEN_UNIX;
	if (strlen(path) >= sizeof(ls.path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(ls.path, path);
	old = umask(0177);
	control_listen_fd = util_listen(&ls);
	umask(old);
	if (control_listen_fd < 0)
		return -1;
	/* Wake the watcher so that it polls the new socket at once. */
	{
		uint64_t one = 1;

		if (write(wctx.reload_efd, &one, sizeof(one)) < 0)
			(void)0;
	}
	return 0;
}

void control_close(void)
{
	struct pollfd p = {.fd = control_listen_fd, .events = POLLIN};

	if (control_listen_fd < 0)
		return;
	while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN))
		control_serve();
	close(control_listen_fd);
	control_listen_fd = -1;
}

/* Appends a JSON string literal. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void status_json(FILE *f)
{
	fprintf(f, "{\"pid\": %d, \"threads\": %d, \"busy\": %d, \"apps\": [",
	    (int)getpid(), wctx.nthreads, atomic_load(&wctx.busy));
	for (int i = 0; i < wctx.napps; i++) {
		struct app *app = wctx.apps[i];
		struct app_gen *gen = atomic_load(&app->current);
		int retiring = 0;

		for (struct app_gen *g = app->retiring; g != NULL; g = g->next)
			retiring++;
		struct appproc *proc = atomic_load(&app->proc);
		bool is_ok = app->is_process_mode ? proc != NULL : gen != NULL;

		fprintf(f, "%s{\"name\": ", i ? ", " : "");
		json_str(f, app->name);
		fprintf(f, ", \"state\": \"%s\", \"mode\": \"%s\", "
		    "\"version\": %d, \"inflight\": %d, \"retiring\": %d, "
		    "\"reloads_ok\": %d, \"reloads_failed\": %d, "
		    "\"watched_files\": %zu, \"process_pid\": %d, "
		    "\"mode_reason\": ",
		    is_ok ? "ok" : "broken",
		    app->is_process_mode ? "process" : "sub",
		    app->is_process_mode ? app->proc_version :
		    gen ? gen->version : 0,
		    gen ? atomic_load(&gen->inflight) : 0, retiring,
		    app->reloads_ok, app->reloads_failed, app->nfiles,
		    proc ? (int)proc->pid : 0);
		json_str(f, app->mode_reason);
		/* The interpreter waiting for the next reload (preload.c). */
		fprintf(f, ", \"spare\": \"%s\", \"spare_libraries\": %zu",
		    app->spare == NULL ? "none" :
		    app->preload_next < app->npreload ? "loading" : "ready",
		    app->spare ? app->spare_preloaded : 0);
		fprintf(f, ", \"reason\": ");
		json_str(f, is_ok ? "" : app->reason);
		fprintf(f, ", \"last_reload\": ");
		if (app->last.when_ms == 0) {
			fprintf(f, "null");
		} else {
			char ts[32];

			log_format_time(ts, app->last.when_ms);
			fprintf(f, "{\"when\": \"%s\", \"ok\": %s, "
			    "\"took_ms\": %lld, \"reason\": ", ts,
			    app->last.is_ok ? "true" : "false",
			    (long long)app->last.took_ms);
			json_str(f, app->last.reason);
			fputc('}', f);
		}
		fputc('}', f);
	}
	fprintf(f, "]}\n");
}

/* Runs one command line; writes the answer to f. */
static void control_command(char *line, FILE *f)
{
	char *arg = strchr(line, ' ');

	if (arg != NULL)
		*arg++ = '\0';
	if (strcmp(line, "status") == 0) {
		status_json(f);
	} else if (strcmp(line, "reload") == 0 && arg != NULL) {
		struct app *app = app_find(arg, strlen(arg));

		if (app == NULL) {
			fprintf(f, "error: no app named '%s' (see 'status')\n",
			    arg);
			return;
		}
		reload_request(app);
		fprintf(f, "ok: reload of %s scheduled\n", app->name);
	} else if (strcmp(line, "replace") == 0) {
		reload_request_replace("asked on the control socket");
		fprintf(f, "ok: replacement of the worker process scheduled\n");
	} else {
		fprintf(f, "error: unknown command '%s' (commands: status, "
		    "reload APP, replace)\n", line);
	}
}

void control_serve(void)
{
	char line[CONTROL_MAX_LINE + 1];
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	size_t len = 0;
	int fd;

	fd = accept4(control_listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		log_warn("control: refused a connection from uid %d",
		    (int)cred.uid);
		close(fd);
		return;
	}
	while (len < CONTROL_MAX_LINE) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, CONTROL_TIMEOUT_MS) <= 0)
			break;
		n = read(fd, line + len, CONTROL_MAX_LINE - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len) != NULL)
			break;
	}
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (len > 0) {
		char *out = NULL;
		size_t outlen = 0;
		FILE *f = open_memstream(&out, &outlen);

		if (f != NULL) {
			control_command(line, f);
			fclose(f);
			if (write(fd, out, outlen) < 0)
				(void)0; /* the peer went away */
			free(out);
		}
	}
	close(fd);
}
