/*
 * ctlproto.c: the words and lines of the control protocol (ctlproto.h):
 * requests, reply heads, names, the tail of a log.  Pure, no privileges;
 * linked into lodged (which runs it as root on requests from the control
 * socket, so every byte is checked before it is looked at) and lodgectl.
 */
#include "ctlproto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ctlproto_err_names[CTLPROTO_ERR_MAX] = {
    [CTLPROTO_OK] = NULL,
    [CTLPROTO_ERR_USAGE] = "usage",
    [CTLPROTO_ERR_DENIED] = "denied",
    [CTLPROTO_ERR_NOUSER] = "nouser",
    [CTLPROTO_ERR_NOFILE] = "nofile",
    [CTLPROTO_ERR_FAILED] = "failed",
    [CTLPROTO_ERR_VERSION] = "version",
    [CTLPROTO_ERR_NOTYET] = "notyet",
    [CTLPROTO_ERR_BUSY] = "busy",
};

const char *ctlproto_err_name(enum ctlproto_err kind)
{
	if ((unsigned)kind >= CTLPROTO_ERR_MAX)
		return "failed";
	return ctlproto_err_names[kind];
}

enum ctlproto_err ctlproto_err_parse(const char *word)
{
	for (int k = 1; k < CTLPROTO_ERR_MAX; k++)
		if (strcmp(word, ctlproto_err_names[k]) == 0)
			return (enum ctlproto_err)k;
	return CTLPROTO_ERR_FAILED;
}

/* A version number: 1..9 digits, no sign, no leading zero. */
static int ctlproto_version(const char *s, unsigned *v_r)
{
	unsigned v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 9 || s[0] == '0')
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*v_r = v;
	return 0;
}

int ctlproto_req_parse(
    const void *data, size_t len, struct ctlproto_req *r, const char **errstr_r)
{
	const char *in = data;
	char *words[CTLPROTO_MAX_ARGS + 3];
	int nwords = 0;

	memset(r, 0, sizeof(*r));
	if (len > CTLPROTO_MAX_REQUEST) {
		*errstr_r = "request too long";
		return -1;
	}
	if (len > 0 && in[len - 1] == '\n')
		len--;
	memcpy(r->buf, in, len);
	r->buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)r->buf[i];

		if (c != ' ' && (c < 0x21 || c > 0x7e)) {
			*errstr_r = "request with a control character or a "
			            "byte that is not ASCII";
			return -1;
		}
	}
	for (char *s = r->buf; *s != '\0';) {
		char *sp = strchr(s, ' ');

		if (sp == s) {
			*errstr_r = "request with an empty word";
			return -1;
		}
		if (nwords == CTLPROTO_MAX_ARGS + 3) {
			*errstr_r = "request with too many words";
			return -1;
		}
		words[nwords++] = s;
		if (sp == NULL)
			break;
		*sp = '\0';
		s = sp + 1;
		if (*s == '\0') {
			*errstr_r = "request ending in a space";
			return -1;
		}
	}
	if (nwords < 2 || strcmp(words[0], CTLPROTO_MAGIC) != 0 ||
	    ctlproto_version(words[1], &r->version) < 0) {
		*errstr_r = "not a lodgectl request (it must start with "
		            "\"" CTLPROTO_MAGIC " <version>\")";
		return -1;
	}
	if (r->version != CTLPROTO_VERSION)
		return 0; /* the caller answers ERR version */
	if (nwords < 3) {
		*errstr_r = "request without a command";
		return -1;
	}
	r->cmd = words[2];
	for (int i = 3; i < nwords; i++)
		r->args[r->nargs++] = words[i];
	return 0;
}

static int ctlproto_word_ok(const char *w)
{
	if (w == NULL || *w == '\0')
		return -1;
	for (; *w != '\0'; w++)
		if ((unsigned char)*w < 0x21 || (unsigned char)*w > 0x7e)
			return -1;
	return 0;
}

int ctlproto_req_format(
    char *out, size_t size, const char *cmd, const char *const *args, int nargs)
{
	size_t len;
	int n;

	if (nargs < 0 || nargs > CTLPROTO_MAX_ARGS || ctlproto_word_ok(cmd) < 0)
		return -1;
	n = snprintf(
	    out, size, "%s %d %s", CTLPROTO_MAGIC, CTLPROTO_VERSION, cmd);
	if (n < 0 || (size_t)n >= size)
		return -1;
	len = (size_t)n;
	for (int i = 0; i < nargs; i++) {
		if (ctlproto_word_ok(args[i]) < 0)
			return -1;
		n = snprintf(out + len, size - len, " %s", args[i]);
		if (n < 0 || (size_t)n >= size - len)
			return -1;
		len += (size_t)n;
	}
	if (len > CTLPROTO_MAX_REQUEST)
		return -1;
	return (int)len;
}

size_t ctlproto_head_format(char *out, size_t size, unsigned version,
    enum ctlproto_err kind, const char *sentence)
{
	size_t len;
	int n;

	if (size > CTLPROTO_MAX_HEAD)
		size = CTLPROTO_MAX_HEAD;
	if (kind == CTLPROTO_OK) {
		n = snprintf(out, size, "%s %u OK\n", CTLPROTO_MAGIC, version);
		return (size_t)n;
	}
	n = snprintf(out, size - 1, "%s %u ERR %s %s", CTLPROTO_MAGIC, version,
	    ctlproto_err_name(kind),
	    sentence != NULL && *sentence != '\0' ? sentence : "(no reason)");
	len = n < 0 ? 0 : (size_t)n >= size - 1 ? size - 2 : (size_t)n;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
	out[len++] = '\n';
	out[len] = '\0';
	return len;
}

int ctlproto_reply_parse(const char *data, size_t len, struct ctlproto_reply *r,
    const char **errstr_r)
{
	const char *nl = memchr(
	    data, '\n', len < CTLPROTO_MAX_HEAD ? len : CTLPROTO_MAX_HEAD);
	char head[CTLPROTO_MAX_HEAD];
	char *version, *status, *kind, *rest;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	if (nl == NULL) {
		*errstr_r = len == 0 ? "the connection closed without a reply"
		                     : "the reply has no head line";
		return -1;
	}
	hlen = (size_t)(nl - data);
	memcpy(head, data, hlen);
	head[hlen] = '\0';
	if (strncmp(head, CTLPROTO_MAGIC " ", sizeof(CTLPROTO_MAGIC)) != 0) {
		*errstr_r =
		    "the reply does not start with \"" CTLPROTO_MAGIC "\"";
		return -1;
	}
	version = head + sizeof(CTLPROTO_MAGIC);
	status = strchr(version, ' ');
	if (status == NULL) {
		*errstr_r = "the reply's head line is cut short";
		return -1;
	}
	*status++ = '\0';
	if (ctlproto_version(version, &r->version) < 0) {
		*errstr_r = "the reply's version is not a number";
		return -1;
	}
	if (strcmp(status, "OK") == 0) {
		r->kind = CTLPROTO_OK;
	} else if (strncmp(status, "ERR ", 4) == 0) {
		kind = status + 4;
		rest = strchr(kind, ' ');
		if (rest != NULL)
			*rest++ = '\0';
		r->kind = ctlproto_err_parse(kind);
		snprintf(r->message, sizeof(r->message), "%s",
		    rest != NULL ? rest : "");
	} else {
		*errstr_r = "the reply is neither OK nor ERR";
		return -1;
	}
	r->body = nl + 1;
	r->body_len = len - hlen - 1;
	return 0;
}

int ctlproto_user_check(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CTLPROTO_MAX_USER || s[0] == '-')
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		    c == '-' || (c == '$' && i == n - 1 && i > 0))
			continue;
		return -1;
	}
	return 0;
}

int ctlproto_app_check(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CTLPROTO_MAX_APP || s[0] == '.')
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e ||
		    s[i] == '/')
			return -1;
	return 0;
}

int ctlproto_target_split(
    const char *target, char *user, char *app, const char **errstr_r)
{
	const char *slash = strchr(target, '/');
	size_t ulen = slash != NULL ? (size_t)(slash - target) : strlen(target);

	user[0] = app[0] = '\0';
	if (ulen == 0 || ulen > CTLPROTO_MAX_USER) {
		*errstr_r = "not a user name";
		return -1;
	}
	memcpy(user, target, ulen);
	user[ulen] = '\0';
	if (ctlproto_user_check(user) < 0) {
		*errstr_r = "not a user name";
		return -1;
	}
	if (slash == NULL)
		return 0;
	if (strlen(slash + 1) > CTLPROTO_MAX_APP ||
	    ctlproto_app_check(slash + 1) < 0) {
		*errstr_r = "not an app name (a folder name in the user's "
		            "apps dir: no '/', not starting with '.')";
		return -1;
	}
	strcpy(app, slash + 1);
	return 0;
}

size_t ctlproto_tail(const char *buf, size_t len, bool is_cut, unsigned nlines)
{
	size_t end = len, min_start = 0;
	unsigned count = 0;
	const char *first_nl;

	if (nlines == 0)
		return len;
	if (end > 0 && buf[end - 1] == '\n')
		end--;
	/* The first line of a cut buffer is the end of a line we did not
	 * read: drop it, unless the buffer holds nothing else. */
	if (is_cut && (first_nl = memchr(buf, '\n', end)) != NULL)
		min_start = (size_t)(first_nl - buf) + 1;
	for (size_t i = end; i > min_start; i--) {
		if (buf[i - 1] != '\n')
			continue;
		if (++count == nlines)
			return i;
	}
	return min_start;
}
