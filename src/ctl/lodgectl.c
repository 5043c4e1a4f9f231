/*
 * lodgectl.c: the provider's command-line tool.  Runs as whoever calls it
 * (root, or a member of lodge.conf's control_group: lodged checks); needs
 * no privilege of its own and opens nothing but the control socket.  It
 * sends one command to lodged (ctlproto.h), reads the whole reply until
 * lodged closes the connection, and prints it: the JSON as it is with
 * --json, or a screen (render.c).  Every error it prints is one sentence
 * saying what to do, and its exit status says which kind (cli.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ctlproto.h"
#include "json.h"
#include "render.h"
#include "util.h"

#define LODGECTL_RECV (256 * 1024) /* more than any reply datagram */

/* {"error": {"kind", "message"}} on stdout, as lodged's ERR bodies. */
static void lodgectl_json_error(const char *kind, const char *msg)
{
	struct json_out j = {0};

	json_out_obj(&j, NULL);
	json_out_obj(&j, "error");
	json_out_str(&j, "kind", kind);
	json_out_str(&j, "message", msg);
	json_out_obj_end(&j);
	json_out_obj_end(&j);
	if (!j.is_failed)
		printf("%s\n", j.buf);
	json_out_free(&j);
}

/* An error of lodgectl's own (no reply to show): the sentence on stderr,
 * and with --json the same as an ERR body on stdout.  Returns code. */
static int lodgectl_fail(const struct cli *c, enum cli_exit code,
    const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int lodgectl_fail(const struct cli *c, enum cli_exit code,
    const char *kind, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs("lodgectl: ", stderr);
	render_clean(stderr, msg);
	fputc('\n', stderr);
	if (c->is_json)
		lodgectl_json_error(kind, msg);
	return code;
}

/* Connects to the control socket; the descriptor or -1 (after saying
 * why, *code_r the exit status). */
static int lodgectl_connect(const struct cli *c, int *code_r)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(c->socket) >= sizeof(sun.sun_path)) {
		*code_r = lodgectl_fail(c, CLI_EXIT_USAGE, "usage",
		    "the socket path %s is too long for a Unix socket; use a "
		    "shorter one",
		    c->socket);
		return -1;
	}
	strcpy(sun.sun_path, c->socket);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "cannot make a socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	switch (errno) {
	case ENOENT:
		*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "no control socket at %s: is lodged running (systemctl "
		    "status lodge)? For another socket use --socket PATH or "
		    "%s",
		    c->socket, CTLPROTO_SOCKET_ENV);
		break;
	case EACCES:
	case EPERM:
		*code_r = lodgectl_fail(c, CLI_EXIT_DENIED, "denied",
		    "permission denied on %s: run lodgectl as root, or as a "
		    "member of the control_group that lodge.conf names",
		    c->socket);
		break;
	case ECONNREFUSED:
		*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "nothing listens on %s (lodged is not running, or it is "
		    "not a socket): start lodged (systemctl start lodge)",
		    c->socket);
		break;
	case EPROTOTYPE:
		*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "%s is not lodged's control socket (it is not a "
		    "SOCK_SEQPACKET socket); check --socket",
		    c->socket);
		break;
	default:
		*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "cannot connect to %s: %s", c->socket, strerror(errno));
		break;
	}
	close(fd);
	return -1;
}

/* Reads datagrams until lodged closes the connection.  0 with *data_r
 * (malloc'ed, NUL-terminated) and *len_r, or -1 after saying why. */
static int lodgectl_read(
    const struct cli *c, int fd, char **data_r, size_t *len_r, int *code_r)
{
	int64_t deadline = util_now_ms() + (int64_t)c->timeout_s * 1000;
	char *chunk = malloc(LODGECTL_RECV);
	char *data = NULL;
	size_t len = 0;

	if (chunk == NULL) {
		*code_r = lodgectl_fail(
		    c, CLI_EXIT_FAILED, "failed", "out of memory");
		return -1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - util_now_ms();
		ssize_t n;
		char *grown;

		if (left <= 0) {
			*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE,
			    "unreachable",
			    "lodged did not answer within %u s (it may be "
			    "busy); try again, or wait longer with --timeout",
			    c->timeout_s);
			goto fail;
		}
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE,
			    "unreachable", "poll: %s", strerror(errno));
			goto fail;
		}
		if (p.revents == 0)
			continue;
		n = recv(fd, chunk, LODGECTL_RECV, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			*code_r = lodgectl_fail(c, CLI_EXIT_UNREACHABLE,
			    "unreachable",
			    "reading lodged's reply: %s; lodged's log may "
			    "say why",
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if ((size_t)n == LODGECTL_RECV ||
		    len + (size_t)n > CTLPROTO_MAX_REPLY) {
			*code_r = lodgectl_fail(c, CLI_EXIT_FAILED, "failed",
			    "lodged's reply is larger than lodgectl accepts "
			    "(%d MiB); use a lodgectl of the same version",
			    CTLPROTO_MAX_REPLY >> 20);
			goto fail;
		}
		grown = realloc(data, len + (size_t)n + 1);
		if (grown == NULL) {
			*code_r = lodgectl_fail(
			    c, CLI_EXIT_FAILED, "failed", "out of memory");
			goto fail;
		}
		data = grown;
		memcpy(data + len, chunk, (size_t)n);
		len += (size_t)n;
		data[len] = '\0';
	}
	free(chunk);
	*data_r = data;
	*len_r = len;
	return 0;
fail:
	free(chunk);
	free(data);
	return -1;
}

static int lodgectl_run(const struct cli *c)
{
	char req[CTLPROTO_MAX_REQUEST + 1];
	struct ctlproto_reply r;
	struct json_val *body = NULL;
	const char *err = NULL;
	char *data = NULL;
	size_t len = 0, off = 0;
	int n, fd, code = CLI_EXIT_OK;

	n = ctlproto_req_format(req, sizeof(req), c->word, c->args, c->nargs);
	if (n < 0)
		return lodgectl_fail(c, CLI_EXIT_USAGE, "usage",
		    "the command is too long; shorten its arguments");
	fd = lodgectl_connect(c, &code);
	if (fd < 0)
		return code;
	/* lodged may have answered and closed already (ERR busy): the
	 * answer is still there to read. */
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n && errno != EPIPE &&
	    errno != ECONNRESET) {
		code = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "cannot send the command to lodged: %s", strerror(errno));
		close(fd);
		return code;
	}
	if (lodgectl_read(c, fd, &data, &len, &code) < 0) {
		close(fd);
		return code;
	}
	close(fd);
	if (ctlproto_reply_parse(data != NULL ? data : "", len, &r, &err) < 0) {
		code = lodgectl_fail(c, CLI_EXIT_UNREACHABLE, "unreachable",
		    "%s did not answer like lodged (%s); is it lodged's "
		    "control socket, and did lodged stay up (its log)?",
		    c->socket, err);
		goto out;
	}
	if (r.kind == CTLPROTO_OK && r.version != CTLPROTO_VERSION) {
		code = lodgectl_fail(c, CLI_EXIT_VERSION, "version",
		    "lodged answered in control protocol %u and this lodgectl "
		    "speaks %u; use the lodgectl installed with lodged (the "
		    "same lodge package)",
		    r.version, CTLPROTO_VERSION);
		goto out;
	}
	if (r.body_len > 0)
		body = json_parse(r.body, r.body_len, &err, &off);
	if (r.kind == CTLPROTO_OK && body == NULL) {
		code = lodgectl_fail(c, CLI_EXIT_FAILED, "failed",
		    "lodged's reply was cut short or garbled (%s at byte "
		    "%zu); lodged may have stopped: see its log",
		    r.body_len == 0 ? "no body" : err, off);
		goto out;
	}
	if (c->is_json) {
		/* As lodged sent it; an ERR without a body (an old or a
		 * foreign lodged) gets one made from its sentence. */
		if (body != NULL) {
			fwrite(r.body, 1, r.body_len, stdout);
			fputc('\n', stdout);
		} else {
			lodgectl_json_error(
			    ctlproto_err_name(r.kind), r.message);
		}
		if (r.kind != CTLPROTO_OK) {
			fputs("lodgectl: ", stderr);
			render_clean(stderr, r.message);
			fputc('\n', stderr);
		}
		code = cli_exit_for(r.kind);
		goto out;
	}
	if (render_reply(stdout, c, body, (int64_t)time(NULL),
	        r.kind != CTLPROTO_OK) < 0 &&
	    r.kind == CTLPROTO_OK) {
		code = lodgectl_fail(c, CLI_EXIT_FAILED, "failed",
		    "lodgectl does not understand lodged's reply; use the "
		    "lodgectl installed with lodged (--json shows the reply)");
		goto out;
	}
	if (r.kind != CTLPROTO_OK) {
		fflush(stdout);
		fputs("lodgectl: ", stderr);
		render_clean(stderr, r.message);
		fputc('\n', stderr);
	}
	code = cli_exit_for(r.kind);
out:
	json_free(body);
	free(data);
	return code;
}

int main(int argc, char **argv)
{
	struct cli c;
	char err[512];

	if (cli_parse(argc, argv, getenv(CTLPROTO_SOCKET_ENV), &c, err,
	        sizeof(err)) < 0) {
		fprintf(stderr, "lodgectl: %s\n", err);
		return CLI_EXIT_USAGE;
	}
	if (c.is_version_flag) {
		printf("lodgectl %s (control protocol %d)\n", LODGE_VERSION,
		    CTLPROTO_VERSION);
		return CLI_EXIT_OK;
	}
	if (c.cmd == CLI_HELP) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	if (c.cmd == CLI_VERSION && !c.is_json)
		printf("lodgectl %s (control protocol %d)\n", LODGE_VERSION,
		    CTLPROTO_VERSION);
	return lodgectl_run(&c);
}
