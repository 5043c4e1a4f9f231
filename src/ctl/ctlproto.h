/*
 * ctlproto.h: the control protocol between lodgectl and lodged, over the
 * control socket (SOCK_SEQPACKET, /run/lodge/control.sock).  Pure: used by
 * lodged (control.c, as root) and by lodgectl.
 *
 * One connection carries one command:
 *
 *   request   one datagram, ASCII words separated by single spaces:
 *             "LODGECTL <version> <command> [<arg>...]"
 *             (a trailing newline is allowed; at most CTLPROTO_MAX_REQUEST
 *             bytes, CTLPROTO_MAX_ARGS arguments, each word printable
 *             ASCII without spaces)
 *   reply     one or more datagrams, then lodged closes the connection.
 *             Their concatenation is a head line and a JSON body:
 *               "LODGECTL <version> OK\n" <json>
 *               "LODGECTL <version> ERR <kind> <sentence>\n" <json>
 *             The ERR body is an object with "error": {"kind", "message"}
 *             and, for some commands, the details (the errors of a
 *             config).  A reply that ends before its JSON does is cut
 *             short (lodged died): the reader says so.
 *
 * Versions: the ERR head line is the same in every version, so that an
 * old lodgectl can print why a newer lodged refused it and the other way
 * round.  lodged answers a request of another version with ERR version;
 * lodgectl refuses an OK reply of another version.  Bump CTLPROTO_VERSION
 * whenever a command, an argument or the meaning of a JSON field changes;
 * adding a JSON field does not need a bump (readers ignore what they do not
 * know, and every field lodged cannot fill yet is null, not absent).
 */
#ifndef LODGE_CTLPROTO_H
#define LODGE_CTLPROTO_H

#include <stdbool.h>
#include <stddef.h>

#define CTLPROTO_VERSION 1
#define CTLPROTO_MAGIC "LODGECTL"
#define CTLPROTO_DEFAULT_SOCKET "/run/lodge/control.sock"
#define CTLPROTO_SOCKET_ENV "LODGE_CONTROL_SOCKET"

#define CTLPROTO_MAX_REQUEST 1024
#define CTLPROTO_MAX_ARGS 6
#define CTLPROTO_MAX_HEAD 1024 /* the reply's head line, with its LF */
#define CTLPROTO_CHUNK 16384   /* bytes per reply datagram */
#define CTLPROTO_MAX_REPLY (64 << 20)

/* Account names (as lodge.conf accepts them) and app folder names. */
#define CTLPROTO_MAX_USER 32
#define CTLPROTO_MAX_APP 128

/* logs: the tail lodged sends, at most this many bytes and lines. */
#define CTLPROTO_LOG_BYTES (64 * 1024)
#define CTLPROTO_LOG_LINES_DEFAULT 100
#define CTLPROTO_LOG_LINES_MAX 10000

/* The kind of an ERR reply; lodgectl maps each to an exit status. */
enum ctlproto_err {
	CTLPROTO_OK = 0,
	CTLPROTO_ERR_USAGE,   /* the request is wrong (lodgectl exits 2) */
	CTLPROTO_ERR_DENIED,  /* the peer may not use the socket (4) */
	CTLPROTO_ERR_NOUSER,  /* no such hosted user (5) */
	CTLPROTO_ERR_NOFILE,  /* no such log (5) */
	CTLPROTO_ERR_FAILED,  /* the command ran and failed (1) */
	CTLPROTO_ERR_VERSION, /* another protocol version (6) */
	CTLPROTO_ERR_NOTYET,  /* a command this lodged cannot do yet (1) */
	CTLPROTO_ERR_BUSY,    /* too many connections at once (1) */
	CTLPROTO_ERR_MAX,
};

/* "usage", "denied", ...: the word on the wire; NULL for CTLPROTO_OK. */
const char *ctlproto_err_name(enum ctlproto_err kind);

/* The kind named by word; an unknown word (a newer lodged) is FAILED. */
enum ctlproto_err ctlproto_err_parse(const char *word);

/* A parsed request; the strings point into buf. */
struct ctlproto_req {
	unsigned version;
	char buf[CTLPROTO_MAX_REQUEST + 1];
	const char *cmd;
	const char *args[CTLPROTO_MAX_ARGS];
	int nargs;
};

/*
 * Pure: splits the datagram data[0..len) into r.  A request of another
 * version is not an error here (r->version says which: the caller answers
 * ERR version); from such a request only r->version is meaningful.
 * Returns 0, or -1 with *errstr_r saying what is wrong (not a lodgectl
 * request, a word with a space or a control character, too long, too many
 * words).
 */
int ctlproto_req_parse(const void *data, size_t len, struct ctlproto_req *r,
    const char **errstr_r);

/*
 * Pure: writes the request "LODGECTL <CTLPROTO_VERSION> cmd args..." into
 * out[0..size) (NUL-terminated, without a newline).  Returns its length,
 * or -1 if a word is empty, has a space or a control character, there are
 * too many, or it does not fit.
 */
int ctlproto_req_format(char *out, size_t size, const char *cmd,
    const char *const *args, int nargs);

/*
 * Pure: writes the head line of a reply, "LODGECTL 1 OK\n" or "LODGECTL 1
 * ERR <kind> <sentence>\n", into out[0..size).  Control characters in
 * sentence become spaces (one line, always); a sentence too long is cut.
 * Returns the length.  size must be at least 64.
 */
size_t ctlproto_head_format(char *out, size_t size, unsigned version,
    enum ctlproto_err kind, const char *sentence);

/* A parsed reply; body points into the caller's buffer. */
struct ctlproto_reply {
	unsigned version;
	enum ctlproto_err kind;
	char message[CTLPROTO_MAX_HEAD]; /* the ERR sentence, "" for OK */
	const char *body;
	size_t body_len;
};

/*
 * Pure: splits a whole reply data[0..len) into its head line and body.
 * Returns 0, or -1 with *errstr_r set when the data does not start with a
 * head line of this protocol (the peer is not lodged's control socket).
 * An OK of another version parses (the caller refuses it).
 */
int ctlproto_reply_parse(const char *data, size_t len, struct ctlproto_reply *r,
    const char **errstr_r);

/* Pure: 0 if s can be a hosted user's name here (1..32 bytes of letters,
 * digits, '_', '.', '-', first not '-'; a trailing '$' as account names
 * allow), else -1. */
int ctlproto_user_check(const char *s);

/* Pure: 0 if s can be an app's folder name (1..128 printable bytes, no
 * '/', no space, not starting with '.'), else -1. */
int ctlproto_app_check(const char *s);

/*
 * Pure: splits "USER" or "USER/APP" into user (at least
 * CTLPROTO_MAX_USER + 1 bytes) and app (CTLPROTO_MAX_APP + 1 bytes; ""
 * without an app), each checked as above.  0, or -1 with *errstr_r saying
 * which part is wrong.
 */
int ctlproto_target_split(
    const char *target, char *user, char *app, const char **errstr_r);

/*
 * Pure: the last nlines lines of the text buf[0..len).  is_cut says that
 * buf is the end of a longer file, so its first line is probably partial
 * and is dropped (unless it is the only one).  Returns the offset in buf
 * where the tail starts.  A missing final newline is fine (the last line
 * is still being written).
 */
size_t ctlproto_tail(const char *buf, size_t len, bool is_cut, unsigned nlines);

#endif
