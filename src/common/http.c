/*
 * http.c: the strict HTTP/1.x request-head parser, the chunked-body decoder
 * and the small checks applied to what an application answers.  Pure code:
 * no I/O, no allocation, no global state other than constant tables, so it
 * runs unchanged in lodge-worker (as the hosted user, under seccomp) and in
 * lodge-router (as the unprivileged "lodge" user, under seccomp).  Every
 * byte it reads comes from an untrusted client: it must never read past the
 * end of the buffer it was given, never loop more than once over a byte per
 * call, and never accept a message that another parser on the path (Apache,
 * a proxy, the application) could frame differently; when in doubt it
 * rejects.
 */
#include "http.h"

#include <string.h>

/*
 * Character classes.  T: tchar (RFC 9110 5.6.2), the characters of a token
 * (method, header name, transfer coding, connection option).  H: the
 * characters that may appear in a Host value or an absolute-form authority
 * (RFC 3986 reg-name, IP-literal and port: unreserved, sub-delims, "%",
 * ":", "[" and "]").  Bytes from 0x80 up are in neither class.
 */
#define T 0x01
#define H 0x02
/* clang-format off */
static const unsigned char char_class[256] = {
	/* 0x00 */   0,   0,   0,   0,   0,   0,   0,   0,
	/* 0x08 */   0,   0,   0,   0,   0,   0,   0,   0,
	/* 0x10 */   0,   0,   0,   0,   0,   0,   0,   0,
	/* 0x18 */   0,   0,   0,   0,   0,   0,   0,   0,
	/* 0x20 */   0, T|H,   0,   T, T|H, T|H, T|H, T|H,
	/* 0x28 */   H,   H, T|H, T|H,   H, T|H, T|H,   0,
	/* 0x30 */ T|H, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x38 */ T|H, T|H,   H,   H,   0,   H,   0,   0,
	/* 0x40 */   0, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x48 */ T|H, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x50 */ T|H, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x58 */ T|H, T|H, T|H,   H,   0,   H,   T, T|H,
	/* 0x60 */   T, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x68 */ T|H, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x70 */ T|H, T|H, T|H, T|H, T|H, T|H, T|H, T|H,
	/* 0x78 */ T|H, T|H, T|H,   0,   T,   0, T|H,   0,
};
/* clang-format on */
#undef T
#undef H

static inline bool is_tchar(unsigned char c)
{
	return char_class[c] & 0x01;
}

static inline bool is_hostchar(unsigned char c)
{
	return char_class[c] & 0x02;
}

/* VCHAR: the visible ASCII characters, the only ones a request-target and
 * the HTTP version may hold. */
static inline bool is_vchar(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* A byte of a field value: VCHAR, obs-text (0x80-0xff), SP or HTAB.  Every
 * other control character, NUL, CR, LF and DEL included, is refused. */
static inline bool is_field_char(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static inline bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Compares s[0..len) with a lower-case literal, ignoring ASCII case only
 * (never the locale's idea of case). */
static bool ascii_ieq(const char *s, size_t len, const char *lit)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (lit[i] == '\0' ||
		    ascii_lower(s[i]) != (unsigned char)lit[i])
			return false;
	}
	return lit[i] == '\0';
}

static bool ascii_ieq2(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i;

	if (alen != blen)
		return false;
	for (i = 0; i < alen; i++) {
		if (ascii_lower(a[i]) != ascii_lower(b[i]))
			return false;
	}
	return true;
}

static bool all_hostchars(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!is_hostchar(s[i]))
			return false;
	}
	return true;
}

/*
 * One element of a comma-separated list (RFC 9110 5.6.1) at *sp, with the
 * optional whitespace around it removed.  Returns false at the end of the
 * list, where *sp is NULL.  An element may be empty ("a, , b"); the caller
 * decides whether that is acceptable.
 */
static bool list_next(
    const char **sp, const char *end, const char **elem_r, size_t *elem_len_r)
{
	const char *s = *sp, *e, *comma;

	if (s == NULL)
		return false;
	comma = memchr(s, ',', end - s);
	e = comma != NULL ? comma : end;
	*sp = comma != NULL ? comma + 1 : NULL;
	while (s < e && is_ows(*s))
		s++;
	while (e > s && is_ows(e[-1]))
		e--;
	*elem_r = s;
	*elem_len_r = e - s;
	return true;
}

/* What the parser learnt from the header fields that frame the message. */
struct head_state {
	const char *end;  /* buf + min(len, max_head) */
	bool is_at_limit; /* len >= max_head: running out of bytes is a 431 */
	int status;
	const char *errstr;
	unsigned nhost;
	bool has_content_length;
	bool has_transfer_encoding;
	bool has_close;
	bool has_keep_alive;
	bool is_absolute_form;
	const char *authority; /* of an absolute-form target */
	size_t authority_len;
};

static int fail(struct head_state *st, int status, const char *errstr)
{
	st->status = status;
	st->errstr = errstr;
	return -1;
}

/* The bytes seen so far end inside the head.  More may come, unless the
 * head has already reached its size limit. */
static int need_more(struct head_state *st)
{
	if (st->is_at_limit)
		return fail(st, 431, "request head too large");
	return 0;
}

/* Called with *p == '\r': accepts only CR LF.  A lone CR is the other half
 * of the bare-LF trick: two parsers would split lines differently. */
static int eat_crlf(struct head_state *st, const char **pp)
{
	const char *p = *pp;

	if (p + 1 >= st->end)
		return need_more(st);
	if (p[1] != '\n')
		return fail(st, 400, "bare CR in request head");
	*pp = p + 2;
	return 1;
}

static int parse_version(
    struct head_state *st, const char *v, size_t len, struct http_request *req)
{
	if (len == 8 && memcmp(v, "HTTP/1.", 7) == 0 &&
	    (v[7] == '0' || v[7] == '1')) {
		req->version_minor = v[7] - '0';
		return 1;
	}
	if (len == 8 && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' &&
	    v[5] <= '9' && v[6] == '.' && v[7] >= '0' && v[7] <= '9')
		return fail(st, 505, "unsupported HTTP version");
	return fail(st, 400, "malformed HTTP version");
}

/*
 * request-line = method SP request-target SP HTTP-version CRLF, with exactly
 * one space between the parts: a parser that tolerates more spaces, or
 * other whitespace, reads a different target than one that does not.
 */
static int parse_request_line(
    struct head_state *st, const char **pp, struct http_request *req)
{
	const char *p = *pp, *end = st->end, *start;
	int r;

	start = p;
	while (p < end && is_tchar(*p))
		p++;
	if (p == end)
		return need_more(st);
	if (*p == '\n')
		return fail(st, 400, "bare LF in request head");
	if (p == start || *p != ' ')
		return fail(st, 400, "invalid character in method");
	req->method = start;
	req->method_len = p - start;
	p++;

	start = p;
	while (p < end && is_vchar(*p))
		p++;
	if (p == end)
		return need_more(st);
	if (p == start && *p == ' ')
		return fail(st, 400, "more than one space in request line");
	if (*p == '\n')
		return fail(st, 400, "bare LF in request head");
	if (p == start)
		return fail(st, 400, "missing request-target");
	if (*p != ' ')
		return fail(st, 400, "invalid character in request-target");
	req->target = start;
	req->target_len = p - start;
	p++;

	start = p;
	while (p < end && is_vchar(*p))
		p++;
	if (p == end)
		return need_more(st);
	if (*p == '\n')
		return fail(st, 400, "bare LF in request head");
	if (*p != '\r')
		return fail(st, 400, "malformed HTTP version");
	if ((r = eat_crlf(st, &p)) != 1)
		return r;
	if (parse_version(st, start, p - 2 - start, req) < 0)
		return -1;
	*pp = p;
	return 1;
}

/* Splits path?query; the query keeps everything after the first '?'. */
static void split_query(const char *s, size_t len, struct http_request *req)
{
	const char *q = memchr(s, '?', len);

	if (q == NULL) {
		req->path = s;
		req->path_len = len;
		req->query = "";
		req->query_len = 0;
	} else {
		req->path = s;
		req->path_len = q - s;
		req->query = q + 1;
		req->query_len = len - (q + 1 - s);
	}
}

/*
 * The four request-target forms of RFC 9112 3.2.  origin-form and
 * absolute-form (http and https only) are served; asterisk-form only with
 * OPTIONS; authority-form belongs to CONNECT, which lodge does not
 * implement (501), and is a 400 with any other method.
 */
static int parse_target(struct head_state *st, struct http_request *req)
{
	const char *t = req->target, *a, *e, *tend = t + req->target_len;
	size_t skip;

	if (req->method_len == 7 && memcmp(req->method, "CONNECT", 7) == 0)
		return fail(st, 501, "CONNECT is not implemented");
	if (t[0] == '/') {
		split_query(t, req->target_len, req);
		return 1;
	}
	if (req->target_len == 1 && t[0] == '*') {
		if (req->method_len != 7 || memcmp(req->method, "OPTIONS", 7))
			return fail(st, 400, "asterisk-form without OPTIONS");
		split_query(t, 1, req);
		return 1;
	}
	if (req->target_len > 7 && ascii_ieq(t, 7, "http://"))
		skip = 7;
	else if (req->target_len > 8 && ascii_ieq(t, 8, "https://"))
		skip = 8;
	else
		return fail(st, 400, "unsupported request-target form");

	/* absolute-form: the authority runs up to the path or the query.  It
	 * must be a plain host[:port]; userinfo ("user@") is refused, as RFC
	 * 9110 4.2.4 asks of http URIs. */
	a = t + skip;
	for (e = a; e < tend && *e != '/' && *e != '?'; e++)
		;
	if (e == a || !all_hostchars(a, e - a))
		return fail(st, 400, "invalid authority in request-target");
	st->is_absolute_form = true;
	st->authority = a;
	st->authority_len = e - a;
	if (e == tend || *e == '?') {
		/* "http://host" and "http://host?q" ask for "/". */
		req->path = "/";
		req->path_len = 1;
		req->query = e == tend ? "" : e + 1;
		req->query_len = e == tend ? 0 : tend - (e + 1);
	} else {
		split_query(e, tend - e, req);
	}
	return 1;
}

/* Content-Length = 1*DIGIT.  Nineteen digits at most and no more than
 * INT64_MAX, so the value fits every off_t and ssize_t that will hold it. */
static int parse_content_length(
    struct head_state *st, const char *v, size_t len, struct http_request *req)
{
	uint64_t x = 0;
	size_t i;

	if (len == 0)
		return fail(st, 400, "empty Content-Length");
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return fail(st, 400, "invalid Content-Length");
	}
	if (len > 19)
		return fail(st, 400, "Content-Length too large");
	for (i = 0; i < len; i++)
		x = x * 10 + (v[i] - '0');
	if (x > INT64_MAX)
		return fail(st, 400, "Content-Length too large");
	/* A repeated Content-Length is harmless only when every copy says the
	 * same number: otherwise one parser would take the first, another
	 * the last. */
	if (st->has_content_length && x != req->content_length)
		return fail(st, 400, "differing Content-Length values");
	st->has_content_length = true;
	req->content_length = x;
	return 1;
}

/*
 * Transfer-Encoding.  lodge decodes only "chunked", and the rule it follows
 * is: when the length of the body cannot be known (chunked missing, not
 * last, or twice; a malformed list) the answer is 400, because RFC 9112 6.3
 * says so and the connection cannot be trusted afterwards; when the length
 * is known but another coding sits under chunked ("gzip, chunked") the
 * answer is 501, a coding lodge does not implement.
 */
static int parse_transfer_encoding(
    struct head_state *st, const char *v, size_t len, struct http_request *req)
{
	const char *s = v, *elem;
	size_t elem_len, nelem = 0, nchunked = 0;
	bool is_last_chunked = false;

	if (req->version_minor == 0)
		return fail(st, 400, "Transfer-Encoding in HTTP/1.0");
	if (st->has_transfer_encoding)
		return fail(st, 400, "repeated Transfer-Encoding");
	st->has_transfer_encoding = true;
	while (list_next(&s, v + len, &elem, &elem_len)) {
		if (!http_is_token(elem, elem_len))
			return fail(st, 400, "malformed Transfer-Encoding");
		is_last_chunked = ascii_ieq(elem, elem_len, "chunked");
		nchunked += is_last_chunked;
		nelem++;
	}
	if (nchunked > 1)
		return fail(st, 400, "chunked applied more than once");
	if (!is_last_chunked)
		return fail(
		    st, 400, "chunked is not the final transfer coding");
	if (nelem > 1)
		return fail(st, 501, "unsupported transfer coding");
	return 1;
}

/* Connection: a list of options.  Only "close" and "keep-alive" mean
 * something here; others (e.g. "Upgrade") are accepted and ignored. */
static int parse_connection(struct head_state *st, const char *v, size_t len)
{
	const char *s = v, *elem;
	size_t elem_len;

	while (list_next(&s, v + len, &elem, &elem_len)) {
		if (elem_len == 0)
			continue;
		if (!http_is_token(elem, elem_len))
			return fail(st, 400, "malformed Connection");
		if (ascii_ieq(elem, elem_len, "close"))
			st->has_close = true;
		else if (ascii_ieq(elem, elem_len, "keep-alive"))
			st->has_keep_alive = true;
	}
	return 1;
}

/* The header fields that decide how the message is framed or answered.
 * Dispatching on the length first keeps the common case (any other field)
 * to one switch. */
static int semantic_header(struct head_state *st, const struct http_header *h,
    struct http_request *req)
{
	switch (h->name_len) {
	case 4:
		if (!ascii_ieq(h->name, 4, "host"))
			return 1;
		if (++st->nhost > 1)
			return fail(st, 400, "more than one Host");
		if (!all_hostchars(h->value, h->value_len))
			return fail(st, 400, "invalid Host");
		req->host = h->value;
		req->host_len = h->value_len;
		return 1;
	case 6:
		if (!ascii_ieq(h->name, 6, "expect"))
			return 1;
		/* RFC 9110 10.1.1: an HTTP/1.0 client cannot wait for 100,
		 * so the field means nothing there. */
		if (req->version_minor == 0)
			return 1;
		if (!ascii_ieq(h->value, h->value_len, "100-continue"))
			return fail(st, 417, "unsupported Expect");
		req->expect_continue = true;
		return 1;
	case 10:
		if (!ascii_ieq(h->name, 10, "connection"))
			return 1;
		return parse_connection(st, h->value, h->value_len);
	case 14:
		if (!ascii_ieq(h->name, 14, "content-length"))
			return 1;
		return parse_content_length(st, h->value, h->value_len, req);
	case 17:
		if (!ascii_ieq(h->name, 17, "transfer-encoding"))
			return 1;
		return parse_transfer_encoding(st, h->value, h->value_len, req);
	default:
		return 1;
	}
}

/*
 * One field line: field-name ":" OWS field-value OWS CRLF.  Called at the
 * start of a line that is not the empty line ending the head.
 */
static int parse_field_line(
    struct head_state *st, const char **pp, struct http_request *req)
{
	const char *p = *pp, *end = st->end, *line = p, *vstart, *vend;
	struct http_header *h;
	int r;

	/* A line that starts with whitespace continues the previous one
	 * (obs-fold, RFC 9112 5.2); unfolding it is where parsers disagree,
	 * so it is refused, even right after the request line. */
	if (is_ows(*p))
		return fail(st, 400, "obs-fold in header");
	if (req->nheaders == HTTP_MAX_HEADERS)
		return fail(st, 431, "too many header fields");

	while (p < end && is_tchar(*p))
		p++;
	if (p == end)
		return need_more(st);
	if (*p != ':') {
		if (*p == '\n')
			return fail(st, 400, "bare LF in request head");
		if (is_ows(*p))
			return fail(st, 400, "whitespace before colon");
		if (*p == '\r' && p > line)
			return fail(st, 400, "header line without a colon");
		return fail(st, 400, "invalid character in header name");
	}
	if (p == line)
		return fail(st, 400, "empty header name");
	h = &req->headers[req->nheaders];
	h->name = line;
	h->name_len = p - line;
	p++;

	while (p < end && is_ows(*p))
		p++;
	vstart = p;
	while (p < end && is_field_char(*p))
		p++;
	if (p == end)
		return need_more(st);
	if (*p != '\r') {
		if (*p == '\n')
			return fail(st, 400, "bare LF in request head");
		if (*p == '\0')
			return fail(st, 400, "NUL in header value");
		return fail(st, 400, "control character in header value");
	}
	vend = p;
	while (vend > vstart && is_ows(vend[-1]))
		vend--;
	if ((r = eat_crlf(st, &p)) != 1)
		return r;
	h->value = vstart;
	h->value_len = vend - vstart;
	h->line = line;
	h->line_len = p - line;
	req->nheaders++;
	*pp = p;
	return semantic_header(st, h, req);
}

/* Checks that need the whole head: Host, framing and persistence. */
static int finish_head(struct head_state *st, struct http_request *req)
{
	if (req->version_minor == 1 && st->nhost == 0)
		return fail(st, 400, "missing Host header");
	if (st->has_transfer_encoding && st->has_content_length)
		return fail(st, 400, "Content-Length with Transfer-Encoding");
	/* RFC 9112 3.2.2: with an absolute-form target the authority in the
	 * target is the host.  A Host field that names another host is
	 * refused rather than ignored, so that the router, the worker and the
	 * application cannot each pick a different one. */
	if (st->is_absolute_form) {
		if (req->host != NULL && !ascii_ieq2(req->host, req->host_len,
		                             st->authority, st->authority_len))
			return fail(
			    st, 400, "Host differs from request-target");
		req->host = st->authority;
		req->host_len = st->authority_len;
	}
	if (st->has_transfer_encoding)
		req->body_kind = HTTP_BODY_CHUNKED;
	else if (st->has_content_length)
		req->body_kind = HTTP_BODY_LENGTH;
	else
		req->body_kind = HTTP_BODY_NONE;
	if (req->body_kind != HTTP_BODY_LENGTH)
		req->content_length = 0;
	if (st->has_close)
		req->is_keep_alive = false;
	else if (req->version_minor == 1)
		req->is_keep_alive = true;
	else
		req->is_keep_alive = st->has_keep_alive;
	return 1;
}

int http_parse_request(const char *buf, size_t len, size_t max_head,
    struct http_request *req, int *status_r, const char **errstr_r)
{
	struct head_state st;
	const char *p = buf;
	int r;

	/* A limit of 0 would refuse every request; read it as "the
	 * default", which is what a zeroed configuration means. */
	if (max_head == 0)
		max_head = HTTP_DEFAULT_MAX_HEAD;
	memset(&st, 0, sizeof(st));
	st.end = buf + (len < max_head ? len : max_head);
	st.is_at_limit = len >= max_head;

	req->method = req->target = req->path = req->query = NULL;
	req->method_len = req->target_len = req->path_len = 0;
	req->query_len = 0;
	req->version_minor = 0;
	req->nheaders = 0;
	req->head_len = 0;
	req->body_kind = HTTP_BODY_NONE;
	req->content_length = 0;
	req->is_keep_alive = false;
	req->expect_continue = false;
	req->host = NULL;
	req->host_len = 0;

	/* RFC 9112 2.2: empty lines before the request line are skipped,
	 * as a client may send a stray CRLF after a previous body. */
	while (p < st.end && *p == '\r') {
		if ((r = eat_crlf(&st, &p)) != 1)
			goto out;
	}
	if ((r = parse_request_line(&st, &p, req)) != 1)
		goto out;
	if ((r = parse_target(&st, req)) != 1)
		goto out;
	for (;;) {
		if (p == st.end) {
			r = need_more(&st);
			goto out;
		}
		if (*p == '\r') {
			if ((r = eat_crlf(&st, &p)) != 1)
				goto out;
			break;
		}
		if ((r = parse_field_line(&st, &p, req)) != 1)
			goto out;
	}
	if ((r = finish_head(&st, req)) != 1)
		goto out;
	req->head_len = p - buf;
out:
	if (r < 0) {
		if (status_r != NULL)
			*status_r = st.status;
		if (errstr_r != NULL)
			*errstr_r = st.errstr;
	}
	return r;
}

const struct http_header *http_find_header(
    const struct http_request *req, const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];

		if (ascii_ieq2(h->name, h->name_len, name, len))
			return h;
	}
	return NULL;
}

/*
 * The chunked decoder is a byte-at-a-time state machine for the framing
 * (size lines, CRLFs, trailers) and hands out chunk data in bulk, pointing
 * into the caller's buffer.  State 0 is the start of a chunk-size line, so
 * a zeroed struct is ready.  Whitespace inside a chunk-size line (the BWS
 * that RFC 9112 7.1.1 tolerates around ";" and "=") is refused: no client
 * in use sends it, and "5 \r\n" read as 5 by one parser and as garbage by
 * another is a known smuggling vector.
 */
enum chunked_state {
	CH_SIZE = 0,        /* hex digits of the chunk size */
	CH_EXT_NAME_START,  /* after ';' */
	CH_EXT_NAME,        /* inside an extension name */
	CH_EXT_VALUE_START, /* after '=' */
	CH_EXT_TOKEN,       /* inside a token value */
	CH_EXT_QUOTED,      /* inside a quoted-string value */
	CH_EXT_QUOTED_ESC,  /* after a backslash in a quoted-string */
	CH_EXT_AFTER_QUOTE, /* after the closing quote */
	CH_SIZE_LF,         /* after the CR ending the size line */
	CH_DATA,            /* chunk data: remaining bytes to go */
	CH_DATA_CR,         /* the CR after chunk data */
	CH_DATA_LF,         /* the LF after chunk data */
	CH_TRAILER_START,   /* start of a trailer line, or the final CRLF */
	CH_TRAILER_NAME,    /* inside a trailer field name */
	CH_TRAILER_VALUE,   /* inside a trailer field value */
	CH_TRAILER_LF,      /* the LF ending a trailer line */
	CH_END_LF,          /* the LF of the final empty line */
	CH_DONE,
	CH_FAILED,
};

void http_chunked_init(struct http_chunked *c, uint64_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->max_body = max_body;
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = ascii_lower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* qdtext and the characters a quoted-pair may escape (RFC 9110 5.6.4). */
static bool is_qdtext(unsigned char ch)
{
	return ch == '\t' || ch == ' ' || ch == 0x21 ||
	       (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e) ||
	       ch >= 0x80;
}

static bool is_quoted_pair_char(unsigned char ch)
{
	return ch == '\t' || ch == ' ' || is_vchar(ch) || ch >= 0x80;
}

/* After a chunk extension name or value: another extension or the end of
 * the line; CH_FAILED for anything else. */
static int ext_end(unsigned char ch)
{
	if (ch == ';')
		return CH_EXT_NAME_START;
	if (ch == '\r')
		return CH_SIZE_LF;
	return CH_FAILED;
}

enum http_chunked_result http_chunked_feed(struct http_chunked *c,
    const char *in, size_t in_len, size_t *in_used_r, const char **data_r,
    size_t *data_len_r, const char **errstr_r)
{
	const char *errstr = "malformed chunked body";
	enum http_chunked_result fail_result = HTTP_CHUNKED_ERROR;
	size_t i = 0;
	int next, v;

	*in_used_r = 0;
	*data_r = NULL;
	*data_len_r = 0;
	if (c->state == CH_DONE)
		return HTTP_CHUNKED_DONE;
	if (c->state == CH_FAILED) {
		errstr = "chunked body already failed";
		goto fail;
	}

	while (i < in_len) {
		unsigned char ch = in[i];

		if (c->state == CH_DATA) {
			size_t n = in_len - i;

			if (n > c->remaining)
				n = c->remaining;
			c->remaining -= n;
			c->total += n;
			if (c->remaining == 0)
				c->state = CH_DATA_CR;
			*data_r = in + i;
			*data_len_r = n;
			*in_used_r = i + n;
			return HTTP_CHUNKED_DATA;
		}
		if (ch == '\n' && c->state != CH_SIZE_LF &&
		    c->state != CH_DATA_LF && c->state != CH_TRAILER_LF &&
		    c->state != CH_END_LF) {
			errstr = "bare LF in chunked body";
			goto fail;
		}
		if (c->state <= CH_SIZE_LF &&
		    ++c->line_len > HTTP_MAX_CHUNK_LINE) {
			errstr = "chunk-size line too long";
			goto fail;
		}
		if (c->state >= CH_TRAILER_START && c->state <= CH_END_LF &&
		    ++c->trailer_len > HTTP_MAX_TRAILER) {
			errstr = "trailer section too large";
			goto fail;
		}

		switch (c->state) {
		case CH_SIZE:
			if ((v = hex_value(ch)) >= 0) {
				if (c->digits == 16) {
					errstr = "chunk size too large";
					goto fail;
				}
				c->remaining = c->remaining << 4 | (unsigned)v;
				c->digits++;
				break;
			}
			if (c->digits == 0 || (ch != ';' && ch != '\r')) {
				errstr = "invalid chunk size";
				goto fail;
			}
			c->state = ext_end(ch);
			c->in_ext = ch == ';';
			break;
		case CH_EXT_NAME_START:
			if (!is_tchar(ch)) {
				errstr = "invalid chunk extension";
				goto fail;
			}
			c->state = CH_EXT_NAME;
			break;
		case CH_EXT_NAME:
			if (is_tchar(ch))
				break;
			next = ch == '=' ? CH_EXT_VALUE_START : ext_end(ch);
			if (next == CH_FAILED) {
				errstr = "invalid chunk extension";
				goto fail;
			}
			c->state = next;
			break;
		case CH_EXT_VALUE_START:
			if (is_tchar(ch)) {
				c->state = CH_EXT_TOKEN;
			} else if (ch == '"') {
				c->state = CH_EXT_QUOTED;
			} else {
				errstr = "invalid chunk extension";
				goto fail;
			}
			break;
		case CH_EXT_TOKEN:
			if (is_tchar(ch))
				break;
			/* fall through */
		case CH_EXT_AFTER_QUOTE:
			if ((next = ext_end(ch)) == CH_FAILED) {
				errstr = "invalid chunk extension";
				goto fail;
			}
			c->state = next;
			break;
		case CH_EXT_QUOTED:
			if (ch == '"') {
				c->state = CH_EXT_AFTER_QUOTE;
			} else if (ch == '\\') {
				c->state = CH_EXT_QUOTED_ESC;
			} else if (!is_qdtext(ch)) {
				errstr = "invalid chunk extension";
				goto fail;
			}
			break;
		case CH_EXT_QUOTED_ESC:
			if (!is_quoted_pair_char(ch)) {
				errstr = "invalid chunk extension";
				goto fail;
			}
			c->state = CH_EXT_QUOTED;
			break;
		case CH_SIZE_LF:
			if (ch != '\n') {
				errstr = "bare CR in chunked body";
				goto fail;
			}
			c->in_ext = false;
			if (c->remaining == 0) {
				c->state = CH_TRAILER_START;
				c->trailer_len = 0;
				break;
			}
			/* Refuse a chunk that would pass the limit now,
			 * before any of its bytes reach the application. */
			if (c->max_body != 0 &&
			    c->remaining > c->max_body - c->total) {
				errstr = "chunked body too large";
				fail_result = HTTP_CHUNKED_TOO_BIG;
				goto fail;
			}
			if (c->remaining > UINT64_MAX - c->total) {
				errstr = "chunk size too large";
				goto fail;
			}
			c->state = CH_DATA;
			break;
		case CH_DATA_CR:
			if (ch != '\r') {
				errstr = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (ch != '\n') {
				errstr = "missing CRLF after chunk data";
				goto fail;
			}
			c->state = CH_SIZE;
			c->remaining = 0;
			c->digits = 0;
			c->line_len = 0;
			break;
		case CH_TRAILER_START:
			if (ch == '\r') {
				c->state = CH_END_LF;
			} else if (is_tchar(ch)) {
				c->state = CH_TRAILER_NAME;
			} else {
				errstr = is_ows(ch) ? "obs-fold in trailer"
				                    : "invalid trailer field";
				goto fail;
			}
			break;
		case CH_TRAILER_NAME:
			if (ch == ':') {
				c->state = CH_TRAILER_VALUE;
			} else if (!is_tchar(ch)) {
				errstr = "invalid trailer field";
				goto fail;
			}
			break;
		case CH_TRAILER_VALUE:
			if (ch == '\r') {
				c->state = CH_TRAILER_LF;
			} else if (!is_field_char(ch)) {
				errstr = "control character in trailer";
				goto fail;
			}
			break;
		case CH_TRAILER_LF:
			if (ch != '\n') {
				errstr = "bare CR in chunked body";
				goto fail;
			}
			c->state = CH_TRAILER_START;
			break;
		case CH_END_LF:
			if (ch != '\n') {
				errstr = "bare CR in chunked body";
				goto fail;
			}
			c->state = CH_DONE;
			*in_used_r = i + 1;
			return HTTP_CHUNKED_DONE;
		default:
			/* CH_DATA is handled above, CH_DONE and CH_FAILED
			 * before the loop: any other value is a corrupted
			 * struct, which must not be read as a valid body. */
			errstr = "chunked decoder in an unknown state";
			goto fail;
		}
		i++;
	}
	*in_used_r = in_len;
	return HTTP_CHUNKED_MORE;

fail:
	c->state = CH_FAILED;
	*in_used_r = i;
	if (errstr_r != NULL)
		*errstr_r = errstr;
	return fail_result;
}

bool http_is_token(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		if (!is_tchar(s[i]))
			return false;
	}
	return true;
}

bool http_is_field_value(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (!is_field_char(s[i]))
			return false;
	}
	return true;
}

int http_parse_status(const char *s, size_t len)
{
	size_t i;

	/* The space is required: PEP 3333 asks for a reason phrase, but an
	 * empty one ("200 ") is still a well-formed status line. */
	if (len < 4 || s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[2] < '0' || s[2] > '9' || s[3] != ' ')
		return -1;
	for (i = 4; i < len; i++) {
		if (!is_field_char(s[i]))
			return -1;
	}
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* Reason phrases of RFC 9110 15, in code order. */
static const struct {
	int status;
	const char *reason;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *http_reason(int status)
{
	size_t i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].status == status)
			return reasons[i].reason;
	}
	return "Unknown";
}
