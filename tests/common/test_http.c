/*
 * test_http.c: table-driven unit tests of the request-head parser, the
 * chunked decoder and the response-side checks in src/common/http.c.  Runs
 * as any user, touches no file and no socket.  Every input is copied into a
 * buffer of exactly its size, so that AddressSanitizer catches a read past
 * the end; the parser must never need a terminating NUL.
 */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* Input bytes with their exact length, so rows may hold NUL bytes. */
#define IN(s) .in = (s), .in_len = sizeof(s) - 1

#define CHECK(c, cond)                                                         \
	do {                                                                   \
		if (!(cond))                                                   \
			fail_msg("case \"%s\": %s", (c)->name, #cond);         \
	} while (0)

#define CHECK_NUM(c, got, want)                                                \
	do {                                                                   \
		unsigned long long got_ = (got), want_ = (want);               \
		if (got_ != want_)                                             \
			fail_msg("case \"%s\": %s is %llu, want %llu",         \
			    (c)->name, #got, got_, want_);                     \
	} while (0)

#define CHECK_STR(c, got, got_len, want)                                       \
	do {                                                                   \
		if ((got) == NULL || (got_len) != strlen(want) ||              \
		    memcmp((got), (want), (got_len)) != 0)                     \
			fail_msg("case \"%s\": %s is \"%.*s\", want \"%s\"",   \
			    (c)->name, #got, (got) ? (int)(got_len) : 6,       \
			    (got) ? (got) : "(null)", (want));                 \
	} while (0)

static char *copy_exact(const char *in, size_t len)
{
	/* malloc(0) may return NULL; one spare byte keeps the copy valid
	 * while the parser is still only given len bytes. */
	char *b = malloc(len ? len : 1);

	assert_non_null(b);
	if (len)
		memcpy(b, in, len);
	return b;
}

/* ---------------------------------------------------------------------- */
/* Request heads                                                           */
/* ---------------------------------------------------------------------- */

struct parse_case {
	const char *name;
	const char *in;
	size_t in_len;
	size_t max_head; /* 0: HTTP_DEFAULT_MAX_HEAD */
	int ret;
	int status; /* when ret == -1 */
	/* When ret == 1: */
	const char *method;
	const char *path;
	const char *query;
	int minor;
	enum http_body_kind body;
	uint64_t clen;
	bool keep_alive;
	bool expect;
	size_t nheaders;
	const char *host;   /* NULL: no host */
	size_t after_head;  /* bytes after the head (body, next request) */
	const char *hname;  /* optional: a header to look up ... */
	const char *hvalue; /* ... and its expected value */
};

/* Accepted HTTP/1.1 and HTTP/1.0 requests, persistent or not. */
#define OK(m, p, q, v, ka)                                                     \
	.ret = 1, .method = (m), .path = (p), .query = (q), .minor = (v),      \
	.keep_alive = (ka)
#define OK11(m, p, q) OK(m, p, q, 1, true)
#define OK11_CLOSE(m, p, q) OK(m, p, q, 1, false)
#define OK10(m, p, q) OK(m, p, q, 0, false)
#define OK10_KEEP(m, p, q) OK(m, p, q, 0, true)
#define BAD(s) .ret = -1, .status = (s)

/* clang-format off */
static const struct parse_case parse_cases[] = {
	/* Accepted heads. */
	{"simple GET", IN("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "a"},
	{"GET with headers", IN("GET /index.html HTTP/1.1\r\nHost: example.com\r\n"
	    "User-Agent: curl/8\r\nAccept: */*\r\n\r\n"),
	    OK11("GET", "/index.html", ""), .nheaders = 3, .host = "example.com",
	    .hname = "user-agent", .hvalue = "curl/8"},
	{"HTTP/1.0 without Host", IN("GET / HTTP/1.0\r\n\r\n"),
	    OK10("GET", "/", "")},
	{"HTTP/1.0 with Host", IN("GET /x HTTP/1.0\r\nHost: h\r\n\r\n"),
	    OK10("GET", "/x", ""), .nheaders = 1, .host = "h"},
	{"HTTP/1.0 keep-alive", IN("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
	    OK10_KEEP("GET", "/", ""), .nheaders = 1},
	{"HTTP/1.0 Keep-Alive mixed case", IN("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
	    OK10_KEEP("GET", "/", ""), .nheaders = 1},
	{"HTTP/1.0 close wins over keep-alive", IN("GET / HTTP/1.0\r\n"
	    "Connection: keep-alive, close\r\n\r\n"),
	    OK10("GET", "/", ""), .nheaders = 1},
	{"HTTP/1.0 close in second Connection", IN("GET / HTTP/1.0\r\n"
	    "Connection: keep-alive\r\nConnection: close\r\n\r\n"),
	    OK10("GET", "/", ""), .nheaders = 2},
	{"HTTP/1.1 close", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
	    OK11_CLOSE("GET", "/", ""), .nheaders = 2, .host = "a"},
	{"HTTP/1.1 CLOSE in a list", IN("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Connection: Upgrade,  CLOSE \r\n\r\n"),
	    OK11_CLOSE("GET", "/", ""), .nheaders = 2, .host = "a"},
	{"HTTP/1.1 keep-alive", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a"},
	{"Connection with empty elements", IN("GET / HTTP/1.1\r\nHost: a\r\n"
	    "Connection: , te, ,\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a"},
	{"empty Connection", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection:\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a"},
	{"absolute-form", IN("GET http://example.com/p/q?x=1 HTTP/1.1\r\n"
	    "Host: example.com\r\n\r\n"),
	    OK11("GET", "/p/q", "x=1"), .nheaders = 1, .host = "example.com"},
	{"absolute-form https, no path", IN("GET HTTPS://Example.com:8443 HTTP/1.1\r\n"
	    "Host: example.COM:8443\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "Example.com:8443"},
	{"absolute-form query without path", IN("GET http://h?a=b HTTP/1.1\r\n"
	    "Host: h\r\n\r\n"),
	    OK11("GET", "/", "a=b"), .nheaders = 1, .host = "h"},
	{"absolute-form in HTTP/1.0 without Host", IN("GET http://h/x HTTP/1.0\r\n\r\n"),
	    OK10("GET", "/x", ""), .host = "h"},
	{"asterisk-form", IN("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("OPTIONS", "*", ""), .nheaders = 1, .host = "a"},
	{"query string", IN("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/a/b", "x=1&y=%20"), .nheaders = 1, .host = "a"},
	{"empty query", IN("GET /? HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "a"},
	{"split at the first ?", IN("GET /p??q?r HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/p", "?q?r"), .nheaders = 1, .host = "a"},
	{"double slash path", IN("GET //x HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "//x", ""), .nheaders = 1, .host = "a"},
	{"one leading CRLF", IN("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "a"},
	{"three leading CRLFs", IN("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "a"},
	{"extension method", IN("M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("M-SEARCH", "/x", ""), .nheaders = 1, .host = "a"},
	{"trailing whitespace trimmed", IN("GET / HTTP/1.1\r\nHost: a \t\r\n"
	    "X-A:  \tv v \t \r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a", .hname = "x-a",
	    .hvalue = "v v"},
	{"empty value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-E:\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a", .hname = "X-E",
	    .hvalue = ""},
	{"whitespace-only value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-E: \t \r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a", .hname = "X-E",
	    .hvalue = ""},
	{"obs-text in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-U: caf\xc3\xa9\xff\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a", .hname = "x-u",
	    .hvalue = "caf\xc3\xa9\xff"},
	{"HTAB inside value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-T: a\tb\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a", .hname = "x-t",
	    .hvalue = "a\tb"},
	{"colon in value", IN("GET / HTTP/1.1\r\nHost: a:80\r\nX-C: a: b\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 2, .host = "a:80", .hname = "x-c",
	    .hvalue = "a: b"},
	{"IPv6 Host", IN("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "[::1]:8080"},
	{"empty Host", IN("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = ""},
	{"lower-case host name", IN("GET / HTTP/1.1\r\nhOsT: x\r\n\r\n"),
	    OK11("GET", "/", ""), .nheaders = 1, .host = "x"},
	{"Content-Length with body", IN("POST /f HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\nhello"),
	    OK11("POST", "/f", ""), .body = HTTP_BODY_LENGTH, .clen = 5,
	    .nheaders = 2, .host = "a", .after_head = 5},
	{"Content-Length 0", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_LENGTH, .clen = 0,
	    .nheaders = 2, .host = "a"},
	{"Content-Length leading zeros", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 007\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_LENGTH, .clen = 7,
	    .nheaders = 2, .host = "a"},
	{"Content-Length identical duplicate", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 12\r\ncontent-length: 12\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_LENGTH, .clen = 12,
	    .nheaders = 3, .host = "a"},
	{"Content-Length INT64_MAX", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9223372036854775807\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_LENGTH,
	    .clen = 9223372036854775807ULL, .nheaders = 2, .host = "a"},
	{"Content-Length in HTTP/1.0", IN("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"),
	    OK10("POST", "/", ""), .body = HTTP_BODY_LENGTH, .clen = 3,
	    .nheaders = 1, .after_head = 3},
	{"chunked", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "0\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_CHUNKED, .nheaders = 2,
	    .host = "a", .after_head = 5},
	{"chunked, mixed case", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "transfer-encoding: ChUnKeD\r\n\r\n"),
	    OK11("POST", "/", ""), .body = HTTP_BODY_CHUNKED, .nheaders = 2,
	    .host = "a"},
	{"Expect 100-continue", IN("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
	    "Expect: 100-continue\r\n\r\n"),
	    OK11("PUT", "/", ""), .body = HTTP_BODY_LENGTH, .clen = 1,
	    .expect = true, .nheaders = 3, .host = "a"},
	{"Expect 100-Continue mixed case", IN("PUT / HTTP/1.1\r\nHost: a\r\n"
	    "Expect: 100-Continue\r\n\r\n"),
	    OK11("PUT", "/", ""), .expect = true, .nheaders = 2, .host = "a"},
	{"Expect ignored in HTTP/1.0", IN("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Expect: fancy\r\n\r\n"),
	    OK10("PUT", "/", ""), .nheaders = 2},
	{"pipelined request after the head", IN("GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
	    "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    OK11("GET", "/1", ""), .nheaders = 1, .host = "a", .after_head = 28},
	{"head exactly at max_head", IN("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    .max_head = 27, OK11("GET", "/", ""), .nheaders = 1, .host = "a"},

	/* Incomplete heads. */
	{"empty input", IN(""), .ret = 0},
	{"only leading CRLFs", IN("\r\n\r\n"), .ret = 0},
	{"CR at the end", IN("GET / HTTP/1.1\r"), .ret = 0},
	{"no final CRLF", IN("GET / HTTP/1.1\r\nHost: a\r\n"), .ret = 0},
	{"incomplete below a small max_head", IN("GET / HTTP/1.1\r\nHost: a\r\n"),
	    .max_head = 26, .ret = 0},

	/* Size limits. */
	{"head one byte over max_head", IN("GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    .max_head = 26, BAD(431)},
	{"no end within max_head", IN("GET / HTTP/1.1\r\nHost: a\r\n"),
	    .max_head = 25, BAD(431)},
	{"request line longer than max_head", IN("GET /aaaaaaaaaaaaaaaaaaaaaaaa"),
	    .max_head = 16, BAD(431)},
	{"leading CRLFs count toward max_head", IN("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
	    .max_head = 32, BAD(431)},

	/* Line endings. */
	{"bare LF after request line", IN("GET / HTTP/1.1\nHost: a\r\n\r\n"), BAD(400)},
	{"bare LF after a field", IN("GET / HTTP/1.1\r\nHost: a\n\r\n"), BAD(400)},
	{"bare LF ending the head", IN("GET / HTTP/1.1\r\nHost: a\r\n\n"), BAD(400)},
	{"bare LF before request line", IN("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"bare LF in method", IN("GE\nT / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"bare LF in target", IN("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"bare LF in name", IN("GET / HTTP/1.1\r\nHo\nst: a\r\n\r\n"), BAD(400)},
	{"bare CR in value", IN("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), BAD(400)},
	{"bare CR after request line", IN("GET / HTTP/1.1\rHost: a\r\n\r\n"), BAD(400)},
	{"bare CR ending the head", IN("GET / HTTP/1.1\r\nHost: a\r\n\rX"), BAD(400)},
	{"bare CR before request line", IN("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"bare CR in target", IN("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"CRCRLF", IN("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), BAD(400)},

	/* Field lines. */
	{"obs-fold", IN("GET / HTTP/1.1\r\nHost: a\r\nX-F: a\r\n b\r\n\r\n"), BAD(400)},
	{"obs-fold with HTAB", IN("GET / HTTP/1.1\r\nHost: a\r\nX-F: a\r\n\tb\r\n\r\n"), BAD(400)},
	{"whitespace before the first field", IN("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), BAD(400)},
	{"space before colon", IN("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), BAD(400)},
	{"HTAB before colon", IN("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), BAD(400)},
	{"NUL in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX-N: a\0b\r\n\r\n"), BAD(400)},
	{"NUL in name", IN("GET / HTTP/1.1\r\nHost: a\r\nX\0N: a\r\n\r\n"), BAD(400)},
	{"control char in name", IN("GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n"), BAD(400)},
	{"control char in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\x1b[0m\r\n\r\n"), BAD(400)},
	{"DEL in value", IN("GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n"), BAD(400)},
	{"non-ASCII in name", IN("GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: a\r\n\r\n"), BAD(400)},
	{"separator in name", IN("GET / HTTP/1.1\r\nHost: a\r\nX(y): a\r\n\r\n"), BAD(400)},
	{"empty name", IN("GET / HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n"), BAD(400)},
	{"line without colon", IN("GET / HTTP/1.1\r\nHost: a\r\nHello\r\n\r\n"), BAD(400)},

	/* Request line. */
	{"invalid method char", IN("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"HTAB after method", IN("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"empty method", IN(" / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"space in target", IN("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"two spaces after method", IN("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"two spaces after target", IN("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"space after version", IN("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), BAD(400)},
	{"HTAB in target", IN("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"non-ASCII in target", IN("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"DEL in target", IN("GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"no version", IN("GET /\r\nHost: a\r\n\r\n"), BAD(400)},
	{"empty version", IN("GET / \r\nHost: a\r\n\r\n"), BAD(400)},
	{"bad version", IN("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), BAD(400)},
	{"lower-case version", IN("GET / http/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"long version", IN("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), BAD(400)},
	{"version without dot", IN("GET / HTTP/11\r\nHost: a\r\n\r\n"), BAD(400)},
	{"HTTP/2.0", IN("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), BAD(505)},
	{"HTTP/0.9", IN("GET / HTTP/0.9\r\n\r\n"), BAD(505)},
	{"HTTP/1.2", IN("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), BAD(505)},
	{"garbage", IN("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), BAD(400)},

	/* Target forms. */
	{"CONNECT", IN("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
	    BAD(501)},
	{"authority-form with GET", IN("GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n"),
	    BAD(400)},
	{"asterisk-form with GET", IN("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},
	{"asterisk-form with lower-case options", IN("options * HTTP/1.1\r\nHost: a\r\n\r\n"),
	    BAD(400)},
	{"OPTIONS with a longer asterisk", IN("OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n"),
	    BAD(400)},
	{"ftp scheme", IN("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n"), BAD(400)},
	{"empty authority", IN("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), BAD(400)},
	{"scheme only", IN("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n"), BAD(400)},
	{"userinfo in authority", IN("GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
	    BAD(400)},
	{"absolute-form Host mismatch", IN("GET http://alice.example/ HTTP/1.1\r\n"
	    "Host: bob.example\r\n\r\n"), BAD(400)},
	{"relative target", IN("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n"), BAD(400)},

	/* Host. */
	{"missing Host in HTTP/1.1", IN("GET / HTTP/1.1\r\nX: a\r\n\r\n"), BAD(400)},
	{"absolute-form still needs Host in 1.1", IN("GET http://h/ HTTP/1.1\r\n\r\n"),
	    BAD(400)},
	{"duplicate Host", IN("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), BAD(400)},
	{"duplicate Host in HTTP/1.0", IN("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
	    BAD(400)},
	{"Host with a space", IN("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), BAD(400)},
	{"Host with a slash", IN("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), BAD(400)},
	{"Host with userinfo", IN("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), BAD(400)},

	/* Content-Length. */
	{"CL and TE (smuggling)", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), BAD(400)},
	{"TE and CL (smuggling)", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"), BAD(400)},
	{"differing duplicate CL", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
	    "Content-Length: 5\r\n\r\n"), BAD(400)},
	{"CL with plus sign", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"),
	    BAD(400)},
	{"CL with minus sign", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"),
	    BAD(400)},
	{"CL with inner space", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n"),
	    BAD(400)},
	{"CL list", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\n\r\n"),
	    BAD(400)},
	{"CL list with space", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n"),
	    BAD(400)},
	{"CL hex", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n"),
	    BAD(400)},
	{"CL empty", IN("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  \r\n\r\n"),
	    BAD(400)},
	{"CL INT64_MAX + 1", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9223372036854775808\r\n\r\n"), BAD(400)},
	{"CL 19 nines", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 9999999999999999999\r\n\r\n"), BAD(400)},
	{"CL 20 digits", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 00000000000000000001\r\n\r\n"), BAD(400)},
	{"CL overflowing uint64", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 18446744073709551617\r\n\r\n"), BAD(400)},

	/* Transfer-Encoding. */
	{"TE in HTTP/1.0", IN("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
	    BAD(400)},
	{"TE not chunked", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
	    BAD(400)},
	{"TE identity", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"),
	    BAD(400)},
	{"TE gzip, chunked", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n"), BAD(501)},
	{"TE chunked, gzip", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked, gzip\r\n\r\n"), BAD(400)},
	{"TE chunked, chunked", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked, chunked\r\n\r\n"), BAD(400)},
	{"TE header repeated", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), BAD(400)},
	{"TE empty", IN("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"),
	    BAD(400)},
	{"TE trailing comma", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked,\r\n\r\n"), BAD(400)},
	{"TE with parameter", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked;x=1\r\n\r\n"), BAD(400)},
	{"TE chunkedx", IN("POST / HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunkedx\r\n\r\n"), BAD(400)},

	/* Connection and Expect. */
	{"Connection not a token", IN("GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n"),
	    BAD(400)},
	{"unknown Expect", IN("PUT / HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\n\r\n"),
	    BAD(417)},
	{"Expect list", IN("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue, x\r\n\r\n"),
	    BAD(417)},
	{"empty Expect", IN("PUT / HTTP/1.1\r\nHost: a\r\nExpect:\r\n\r\n"), BAD(417)},
};
/* clang-format on */

static void check_parsed(
    const struct parse_case *c, const char *buf, const struct http_request *req)
{
	const struct http_header *h;
	size_t i;

	CHECK_STR(c, req->method, req->method_len, c->method);
	CHECK_STR(c, req->path, req->path_len, c->path);
	CHECK_STR(c, req->query, req->query_len, c->query);
	CHECK_NUM(c, req->version_minor, c->minor);
	CHECK_NUM(c, req->body_kind, c->body);
	CHECK_NUM(c, req->content_length, c->clen);
	CHECK_NUM(c, req->is_keep_alive, c->keep_alive);
	CHECK_NUM(c, req->expect_continue, c->expect);
	CHECK_NUM(c, req->nheaders, c->nheaders);
	CHECK_NUM(c, req->head_len, c->in_len - c->after_head);
	if (c->host == NULL)
		CHECK(c, req->host == NULL);
	else
		CHECK_STR(c, req->host, req->host_len, c->host);
	if (c->hname != NULL) {
		h = http_find_header(req, c->hname);
		CHECK(c, h != NULL);
		CHECK_STR(c, h->value, h->value_len, c->hvalue);
	}

	/* The target lies between the method and the version; the field
	 * lines tile the head after the request line, each ending in CRLF,
	 * and the head ends with one more CRLF after the last of them. */
	CHECK(c, req->target == req->method + req->method_len + 1);
	for (i = 0; i < req->nheaders; i++) {
		h = &req->headers[i];
		CHECK(c, h->line == h->name);
		CHECK(c, h->name[h->name_len] == ':');
		CHECK(c, h->line_len >= 3);
		CHECK(c, memcmp(h->line + h->line_len - 2, "\r\n", 2) == 0);
		CHECK(c, h->value >= h->name + h->name_len + 1);
		CHECK(c, h->value + h->value_len <= h->line + h->line_len - 2);
		if (i + 1 < req->nheaders)
			CHECK(c,
			    h->line + h->line_len == req->headers[i + 1].line);
		else
			CHECK(c,
			    h->line + h->line_len + 2 == buf + req->head_len);
	}
}

static void test_parse_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct http_request req;
		const char *errstr = NULL;
		int status = 0, r;
		char *buf = copy_exact(c->in, c->in_len);

		r = http_parse_request(
		    buf, c->in_len, c->max_head, &req, &status, &errstr);
		CHECK_NUM(c, r, c->ret);
		if (r == -1) {
			CHECK_NUM(c, status, c->status);
			CHECK(c, errstr != NULL && errstr[0] != '\0');
		} else if (r == 1) {
			check_parsed(c, buf, &req);
		}
		free(buf);
	}
}

/* Every proper prefix of an accepted head needs more bytes: no check may
 * fire before the line it depends on is complete. */
static void test_parse_prefixes(void **state)
{
	size_t i, k;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t head_len = c->in_len - c->after_head;

		if (c->ret != 1)
			continue;
		for (k = 0; k < head_len; k++) {
			struct http_request req;
			const char *errstr = NULL;
			int status = 0, r;
			char *buf = copy_exact(c->in, k);

			r = http_parse_request(
			    buf, k, 0, &req, &status, &errstr);
			if (r != 0)
				fail_msg("case \"%s\": prefix %zu returned %d "
				         "(%d %s)",
				    c->name, k, r, status,
				    errstr ? errstr : "");
			free(buf);
		}
	}
}

/* An accepted head fits a limit of exactly its size, and is a 431 with a
 * limit one byte smaller, whatever follows it. */
static void test_parse_max_head_edges(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t head_len = c->in_len - c->after_head;
		struct http_request req;
		int status = 0;
		const char *errstr;
		char *buf;

		if (c->ret != 1)
			continue;
		buf = copy_exact(c->in, c->in_len);
		CHECK_NUM(c,
		    http_parse_request(
		        buf, c->in_len, head_len, &req, &status, &errstr),
		    1);
		CHECK_NUM(c, req.head_len, head_len);
		CHECK_NUM(c,
		    http_parse_request(
		        buf, c->in_len, head_len - 1, &req, &status, &errstr),
		    (unsigned long long)-1);
		CHECK_NUM(c, status, 431);
		free(buf);
	}
}

/* Builds "GET / HTTP/1.1\r\nHost: a\r\n" + n fields "X-n: v" + CRLF. */
static char *build_fields(size_t n, size_t *len_r)
{
	size_t size = 64 + n * 32, len = 0, i;
	char *b = malloc(size);

	assert_non_null(b);
	len += sprintf(b + len, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 0; i < n; i++)
		len += sprintf(b + len, "X-%zu: v\r\n", i);
	len += sprintf(b + len, "\r\n");
	*len_r = len;
	return b;
}

struct size_case {
	const char *name;
	size_t nfields;   /* besides Host */
	size_t value_len; /* of one extra "X-Big" field, 0 for none */
	size_t max_head;
	int ret;
	int status;
};

static const struct size_case size_cases[] = {
    {"99 fields plus Host", HTTP_MAX_HEADERS - 1, 0, 0, 1, 0},
    {"100 fields plus Host", HTTP_MAX_HEADERS, 0, 0, -1, 431},
    {"1000 fields", 1000, 0, 0, -1, 431},
    {"64 KiB value", 0, HTTP_DEFAULT_MAX_HEAD, 0, -1, 431},
    {"value just below the default limit", 0, HTTP_DEFAULT_MAX_HEAD - 100, 0, 1,
        0},
    {"1 MiB value with a 1 MiB limit", 0, 1 << 20, (1 << 20) + 100, 1, 0},
};

static void test_parse_sizes(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		const struct size_case *c = &size_cases[i];
		struct http_request req;
		const char *errstr;
		int status = 0, r;
		size_t len, flen;
		char *fields = build_fields(c->nfields, &flen), *buf;

		/* Insert the big field before the final CRLF. */
		len = flen + (c->value_len ? c->value_len + 9 : 0);
		buf = malloc(len);
		assert_non_null(buf);
		memcpy(buf, fields, flen - 2);
		if (c->value_len) {
			memcpy(buf + flen - 2, "X-Big: ", 7);
			memset(buf + flen + 5, 'v', c->value_len);
			memcpy(buf + flen + 5 + c->value_len, "\r\n", 2);
		}
		memcpy(buf + len - 2, "\r\n", 2);

		r = http_parse_request(
		    buf, len, c->max_head, &req, &status, &errstr);
		CHECK_NUM(c, r, c->ret);
		if (r == -1)
			CHECK_NUM(c, status, c->status);
		else
			CHECK_NUM(c, req.head_len, len);
		free(fields);
		free(buf);
	}
}

/* A client that sends a huge head one piece at a time gets 0 until it
 * reaches the limit, then 431, never 0 again. */
static void test_parse_growing_buffer(void **state)
{
	static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
	size_t max_head = 4096, len;
	char *buf = malloc(max_head + 10);
	struct http_request req;
	const char *errstr;
	int status, r;

	assert_non_null(buf);
	memcpy(buf, start, sizeof(start) - 1);
	memset(buf + sizeof(start) - 1, 'x', max_head + 10 - sizeof(start) + 1);
	for (len = 0; len <= max_head + 10; len++) {
		r = http_parse_request(
		    buf, len, max_head, &req, &status, &errstr);
		if (len < max_head) {
			assert_int_equal(r, 0);
		} else {
			assert_int_equal(r, -1);
			assert_int_equal(status, 431);
		}
	}
	free(buf);
}

static void test_find_header(void **state)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: h\r\nX-One: 1\r\n"
	                         "x-two: 2\r\nX-One: again\r\n\r\n";
	struct http_request req;
	const struct http_header *h;
	const char *errstr;
	int status;

	assert_int_equal(
	    http_parse_request(in, sizeof(in) - 1, 0, &req, &status, &errstr),
	    1);
	h = http_find_header(&req, "X-TWO");
	assert_non_null(h);
	assert_int_equal(h->value_len, 1);
	assert_memory_equal(h->value, "2", 1);
	assert_memory_equal(h->line, "x-two: 2\r\n", h->line_len);
	/* The first of two fields with the same name is found. */
	h = http_find_header(&req, "x-one");
	assert_non_null(h);
	assert_memory_equal(h->value, "1", h->value_len);
	assert_null(http_find_header(&req, "X-Thre"));
	assert_null(http_find_header(&req, "X-On"));
	assert_null(http_find_header(&req, ""));
}

/* The parser in a loop, as the worker uses it: two pipelined requests, the
 * first with a chunked body, each body decoded from where its head ends. */
static void test_pipeline(void **state)
{
	static const char in[] = "POST /a HTTP/1.1\r\nHost: h\r\n"
	                         "Transfer-Encoding: chunked\r\n\r\n"
	                         "3\r\nabc\r\n0\r\n\r\n"
	                         "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	struct http_request req;
	struct http_chunked ch;
	const char *errstr, *data;
	size_t off = 0, used, data_len;
	int status;

	assert_int_equal(
	    http_parse_request(in, sizeof(in) - 1, 0, &req, &status, &errstr),
	    1);
	assert_int_equal(req.body_kind, HTTP_BODY_CHUNKED);
	off = req.head_len;
	http_chunked_init(&ch, 0);
	assert_int_equal(http_chunked_feed(&ch, in + off, sizeof(in) - 1 - off,
	                     &used, &data, &data_len, &errstr),
	    HTTP_CHUNKED_DATA);
	assert_int_equal(data_len, 3);
	assert_memory_equal(data, "abc", 3);
	off += used;
	assert_int_equal(http_chunked_feed(&ch, in + off, sizeof(in) - 1 - off,
	                     &used, &data, &data_len, &errstr),
	    HTTP_CHUNKED_DONE);
	off += used;
	assert_int_equal(http_parse_request(in + off, sizeof(in) - 1 - off, 0,
	                     &req, &status, &errstr),
	    1);
	assert_memory_equal(req.path, "/b", 2);
	assert_int_equal(off + req.head_len, sizeof(in) - 1);
}

/* ---------------------------------------------------------------------- */
/* Chunked bodies                                                          */
/* ---------------------------------------------------------------------- */

struct chunk_case {
	const char *name;
	const char *in;
	size_t in_len;
	uint64_t max_body;            /* 0: unlimited */
	enum http_chunked_result ret; /* DONE, MORE, ERROR or TOO_BIG */
	const char *body;             /* decoded bytes, for DONE and MORE */
	size_t body_len;
	size_t after; /* bytes left after DONE */
};

#define BODY(s) .body = (s), .body_len = sizeof(s) - 1

/* clang-format off */
static const struct chunk_case chunk_cases[] = {
	/* Valid bodies. */
	{"empty body", IN("0\r\n\r\n"), .ret = HTTP_CHUNKED_DONE, BODY("")},
	{"one chunk", IN("5\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_DONE,
	    BODY("hello")},
	{"several chunks", IN("3\r\nabc\r\n1\r\nd\r\n4\r\nefgh\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("abcdefgh")},
	{"upper-case hex", IN("A\r\n0123456789\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("0123456789")},
	{"lower-case hex", IN("a\r\n0123456789\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("0123456789")},
	{"leading zeros", IN("0005\r\nhello\r\n000\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hello")},
	{"16 hex digits", IN("0000000000000003\r\nabc\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("abc")},
	{"CRLF and NUL inside data", IN("6\r\n\r\n\0\r\n\0\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("\r\n\0\r\n\0")},
	{"extension without value", IN("5;foo\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hello")},
	{"extension with token", IN("5;foo=bar;baz\r\nhello\r\n0;last=1\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hello")},
	{"extension with quoted string", IN("5;q=\"a b;\\\"c\\\\\";z\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hello")},
	{"extension with obs-text", IN("2;q=\"\xe9\"\r\nhi\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hi")},
	{"trailers", IN("2\r\nhi\r\n0\r\nX-Sum: 1234\r\nX-Empty:\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("hi")},
	{"trailer with obs-text", IN("0\r\nX: caf\xc3\xa9\t!\r\n\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("")},
	{"next request after DONE", IN("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n"),
	    .ret = HTTP_CHUNKED_DONE, BODY("x"), .after = 16},
	{"stray bytes after DONE", IN("0\r\n\r\n\r\n"), .ret = HTTP_CHUNKED_DONE,
	    BODY(""), .after = 2},
	{"exactly max_body", IN("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"), .max_body = 6,
	    .ret = HTTP_CHUNKED_DONE, BODY("abcdef")},

	/* Incomplete bodies. */
	{"nothing yet", IN(""), .ret = HTTP_CHUNKED_MORE, BODY("")},
	{"inside data", IN("5\r\nhel"), .ret = HTTP_CHUNKED_MORE, BODY("hel")},
	{"before the data CRLF", IN("5\r\nhello"), .ret = HTTP_CHUNKED_MORE,
	    BODY("hello")},
	{"inside trailers", IN("0\r\nX: y\r\n"), .ret = HTTP_CHUNKED_MORE, BODY("")},
	{"before the final LF", IN("0\r\n\r"), .ret = HTTP_CHUNKED_MORE, BODY("")},
	{"huge chunk, unlimited", IN("ffffffffffffffff\r\nab"),
	    .ret = HTTP_CHUNKED_MORE, BODY("ab")},

	/* Malformed bodies. */
	{"bad hex", IN("g\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bad hex after a digit", IN("5g\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"0x prefix", IN("0x5\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"minus sign", IN("-5\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"empty size", IN("\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"space before size", IN(" 5\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"space after size", IN("5 \r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"space before extension", IN("5 ;a\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"17 hex digits", IN("00000000000000005\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"size overflow", IN("10000000000000000\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"missing CRLF after data", IN("5\r\nhelloX\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR,
	    BODY("hello")},
	{"LF only after data", IN("5\r\nhello\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR,
	    BODY("hello")},
	{"CR only after data", IN("5\r\nhello\r0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR,
	    BODY("hello")},
	{"data longer than announced", IN("3\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR, BODY("hel")},
	{"bare LF after size", IN("5\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bare CR after size", IN("5\rhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bare LF after last chunk", IN("0\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bare LF at the end", IN("0\r\n\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bare CR at the end", IN("0\r\n\rX"), .ret = HTTP_CHUNKED_ERROR},
	{"bare LF in a trailer", IN("0\r\nX: a\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"bare CR in a trailer", IN("0\r\nX: a\rb\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"obs-fold in trailers", IN("0\r\nX: a\r\n b\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"trailer without colon", IN("0\r\nX\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"space before colon in trailer", IN("0\r\nX : a\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"NUL in trailer", IN("0\r\nX: a\0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"control char in trailer", IN("0\r\nX: \x01\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"extension without name", IN("5;=x\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"extension with empty value", IN("5;a=\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"extension with empty name", IN("5;\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"space in extension", IN("5;a b\r\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},
	{"CTL in quoted extension", IN("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"unterminated quoted extension", IN("5;a=\"x\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"garbage after quoted extension", IN("5;a=\"x\"y\r\nhello\r\n0\r\n\r\n"),
	    .ret = HTTP_CHUNKED_ERROR},
	{"bare LF in extension", IN("5;a\nhello\r\n0\r\n\r\n"), .ret = HTTP_CHUNKED_ERROR},

	/* Size limit. */
	{"max_body passed in one chunk", IN("7\r\nabcdefg\r\n0\r\n\r\n"), .max_body = 6,
	    .ret = HTTP_CHUNKED_TOO_BIG},
	{"max_body passed in the second chunk", IN("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"),
	    .max_body = 6, .ret = HTTP_CHUNKED_TOO_BIG, BODY("abc")},
	{"huge chunk with a limit", IN("ffffffffffffffff\r\n"), .max_body = 1 << 20,
	    .ret = HTTP_CHUNKED_TOO_BIG},
};
/* clang-format on */

struct chunk_run {
	enum http_chunked_result ret;
	char *out;
	size_t out_len;
	size_t used;
};

/*
 * Feeds in to a fresh decoder in pieces: each piece ends at the next
 * multiple of step (0: one piece) or at split (if not 0).  Every piece is
 * a separate exact-size copy, so a read past it is caught.
 */
static void run_chunked(const struct chunk_case *c, size_t step, size_t split,
    struct chunk_run *run)
{
	struct http_chunked ch;
	size_t pos = 0;

	http_chunked_init(&ch, c->max_body);
	run->out = malloc(c->in_len + 1);
	assert_non_null(run->out);
	run->out_len = 0;
	run->ret = HTTP_CHUNKED_MORE;
	run->used = 0;
	do {
		size_t piece_end = c->in_len, off = 0, piece_len;
		char *piece;

		if (split != 0)
			piece_end = pos < split ? split : c->in_len;
		else if (step != 0 && pos + step < c->in_len)
			piece_end = pos + step;
		piece_len = piece_end - pos;
		piece = copy_exact(c->in + pos, piece_len);
		for (;;) {
			const char *data, *errstr = NULL;
			size_t used, data_len;
			enum http_chunked_result r;

			r = http_chunked_feed(&ch, piece + off, piece_len - off,
			    &used, &data, &data_len, &errstr);
			CHECK(c, used <= piece_len - off);
			off += used;
			if (r == HTTP_CHUNKED_DATA) {
				CHECK(c, data_len > 0);
				memcpy(run->out + run->out_len, data, data_len);
				run->out_len += data_len;
				continue;
			}
			run->ret = r;
			if (r == HTTP_CHUNKED_ERROR ||
			    r == HTTP_CHUNKED_TOO_BIG)
				CHECK(c, errstr != NULL);
			break;
		}
		free(piece);
		pos += off;
		if (run->ret != HTTP_CHUNKED_MORE)
			break;
		CHECK(c, off == piece_len);
	} while (pos < c->in_len);
	run->used = pos;
}

static void check_chunked(const struct chunk_case *c, size_t step, size_t split)
{
	struct chunk_run run;

	run_chunked(c, step, split, &run);
	if (run.ret != c->ret)
		fail_msg("case \"%s\" (step %zu, split %zu): returned %d, "
		         "want %d",
		    c->name, step, split, run.ret, c->ret);
	if (c->ret == HTTP_CHUNKED_DONE || c->ret == HTTP_CHUNKED_MORE ||
	    c->body != NULL) {
		CHECK_NUM(c, run.out_len, c->body_len);
		CHECK(c, memcmp(run.out, c->body, c->body_len) == 0);
	}
	if (c->ret == HTTP_CHUNKED_DONE)
		CHECK_NUM(c, run.used, c->in_len - c->after);
	if (c->ret == HTTP_CHUNKED_MORE)
		CHECK_NUM(c, run.used, c->in_len);
	free(run.out);
}

static void check_chunked_all_ways(const struct chunk_case *c)
{
	size_t k;

	check_chunked(c, 0, 0); /* in one piece */
	check_chunked(c, 1, 0); /* one byte at a time */
	check_chunked(c, 3, 0);
	for (k = 1; k < c->in_len; k++)
		check_chunked(c, 0, k); /* in two pieces, split at k */
}

static void test_chunked_table(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++)
		check_chunked_all_ways(&chunk_cases[i]);
}

/* Rows too long to write out: size lines and trailer sections at and just
 * past their limits. */
static void test_chunked_limits(void **state)
{
	size_t big = HTTP_MAX_CHUNK_LINE + HTTP_MAX_TRAILER + 64;
	char *b = malloc(big);
	struct chunk_case c;
	size_t n;

	assert_non_null(b);

	/* "1;" + name + CRLF is exactly HTTP_MAX_CHUNK_LINE bytes. */
	n = HTTP_MAX_CHUNK_LINE - 4;
	memcpy(b, "1;", 2);
	memset(b + 2, 'e', n);
	memcpy(b + 2 + n, "\r\nx\r\n0\r\n\r\n", 10);
	c = (struct chunk_case){.name = "size line at the limit",
	    .in = b,
	    .in_len = n + 12,
	    .ret = HTTP_CHUNKED_DONE,
	    BODY("x")};
	check_chunked(&c, 0, 0);
	check_chunked(&c, 1, 0);

	n++;
	memset(b + 2, 'e', n);
	memcpy(b + 2 + n, "\r\nx\r\n0\r\n\r\n", 10);
	c = (struct chunk_case){.name = "size line over the limit",
	    .in = b,
	    .in_len = n + 12,
	    .ret = HTTP_CHUNKED_ERROR};
	check_chunked(&c, 0, 0);
	check_chunked(&c, 1, 0);

	/* A size line that never ends: the error comes at the limit, not
	 * when the line ends. */
	memset(b, '0', HTTP_MAX_CHUNK_LINE + 10);
	memcpy(b, "1;", 2);
	c = (struct chunk_case){.name = "endless size line",
	    .in = b,
	    .in_len = HTTP_MAX_CHUNK_LINE + 10,
	    .ret = HTTP_CHUNKED_ERROR};
	check_chunked(&c, 0, 0);

	/* "0\r\n" + "X: " + value + "\r\n" + "\r\n": the trailer section
	 * (after the last-chunk line, final CRLF included) is 7 bytes plus
	 * the value, exactly the limit here. */
	n = HTTP_MAX_TRAILER - 7;
	memcpy(b, "0\r\nX: ", 6);
	memset(b + 6, 'v', n);
	memcpy(b + 6 + n, "\r\n\r\n", 4);
	c = (struct chunk_case){.name = "trailers at the limit",
	    .in = b,
	    .in_len = n + 10,
	    .ret = HTTP_CHUNKED_DONE,
	    BODY("")};
	check_chunked(&c, 0, 0);
	check_chunked(&c, 1, 0);

	n++;
	memset(b + 6, 'v', n);
	memcpy(b + 6 + n, "\r\n\r\n", 4);
	c = (struct chunk_case){.name = "trailers over the limit",
	    .in = b,
	    .in_len = n + 10,
	    .ret = HTTP_CHUNKED_ERROR};
	check_chunked(&c, 0, 0);
	check_chunked(&c, 1, 0);

	/* Many small trailer fields add up as well. */
	n = 3;
	memcpy(b, "0\r\n", 3);
	while (n + 6 < HTTP_MAX_TRAILER + 32) {
		memcpy(b + n, "A: b\r\n", 6);
		n += 6;
	}
	memcpy(b + n, "\r\n", 2);
	c = (struct chunk_case){.name = "many trailer fields",
	    .in = b,
	    .in_len = n + 2,
	    .ret = HTTP_CHUNKED_ERROR};
	check_chunked(&c, 0, 0);
	free(b);
}

/* Once finished, the decoder stays finished: DONE consumes nothing more
 * and an error stays an error. */
static void test_chunked_sticky(void **state)
{
	struct http_chunked ch;
	const char *data, *errstr = NULL;
	size_t used, data_len;

	memset(&ch, 0, sizeof(ch)); /* a zeroed struct is ready to use */
	assert_int_equal(http_chunked_feed(&ch, "0\r\n\r\nXY", 7, &used, &data,
	                     &data_len, &errstr),
	    HTTP_CHUNKED_DONE);
	assert_int_equal(used, 5);
	assert_int_equal(
	    http_chunked_feed(&ch, "XY", 2, &used, &data, &data_len, &errstr),
	    HTTP_CHUNKED_DONE);
	assert_int_equal(used, 0);

	http_chunked_init(&ch, 0);
	assert_int_equal(
	    http_chunked_feed(&ch, "z", 1, &used, &data, &data_len, &errstr),
	    HTTP_CHUNKED_ERROR);
	assert_non_null(errstr);
	assert_int_equal(http_chunked_feed(&ch, "0\r\n\r\n", 5, &used, &data,
	                     &data_len, &errstr),
	    HTTP_CHUNKED_ERROR);
}

/* ---------------------------------------------------------------------- */
/* Response-side checks                                                    */
/* ---------------------------------------------------------------------- */

struct str_case {
	const char *name;
	const char *in;
	size_t in_len;
	int want; /* bool for the predicates, the code for parse_status */
};

/* clang-format off */
static const struct str_case token_cases[] = {
	{"plain", IN("Content-Type"), 1},
	{"all tchar symbols", IN("!#$%&'*+-.^_`|~09azAZ"), 1},
	{"empty", IN(""), 0},
	{"space", IN("X Y"), 0},
	{"colon", IN("X:"), 0},
	{"NUL", IN("X\0"), 0},
	{"obs-text", IN("X\xe9"), 0},
	{"separators", IN("(),/:;<=>?@[\\]{}\""), 0},
	{"DEL", IN("\x7f"), 0},
};

static const struct str_case field_value_cases[] = {
	{"plain", IN("text/html; charset=utf-8"), 1},
	{"empty", IN(""), 1},
	{"HTAB and SP", IN("a\tb c"), 1},
	{"obs-text", IN("caf\xc3\xa9"), 1},
	{"CR", IN("a\rb"), 0},
	{"LF", IN("a\nb"), 0},
	{"CRLF injection", IN("a\r\nSet-Cookie: x"), 0},
	{"NUL", IN("a\0b"), 0},
	{"ESC", IN("\x1b"), 0},
	{"DEL", IN("\x7f"), 0},
};

static const struct str_case status_cases[] = {
	{"200 OK", IN("200 OK"), 200},
	{"404 with a long reason", IN("404 Not Found Here\tor there"), 404},
	{"empty reason", IN("204 "), 204},
	{"999", IN("999 Whatever"), 999},
	{"100", IN("100 Continue"), 100},
	{"obs-text reason", IN("200 D\xc3\xa9j\xc3\xa0"), 200},
	{"no space", IN("200"), -1},
	{"no space, reason", IN("200OK"), -1},
	{"two digits", IN("20 OK"), -1},
	{"four digits", IN("2000 OK"), -1},
	{"leading zero", IN("099 X"), -1},
	{"letters", IN("2x0 OK"), -1},
	{"leading space", IN(" 200 OK"), -1},
	{"HTAB separator", IN("200\tOK"), -1},
	{"CRLF in reason", IN("200 OK\r\nX: y"), -1},
	{"NUL in reason", IN("200 O\0K"), -1},
	{"empty", IN(""), -1},
};
/* clang-format on */

static void test_is_token(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(token_cases) / sizeof(token_cases[0]); i++) {
		const struct str_case *c = &token_cases[i];

		CHECK_NUM(c, http_is_token(c->in, c->in_len), c->want);
	}
}

static void test_is_field_value(void **state)
{
	size_t i;

	for (i = 0;
	     i < sizeof(field_value_cases) / sizeof(field_value_cases[0]);
	     i++) {
		const struct str_case *c = &field_value_cases[i];

		CHECK_NUM(c, http_is_field_value(c->in, c->in_len), c->want);
	}
}

static void test_parse_status(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
		const struct str_case *c = &status_cases[i];
		char *buf = copy_exact(c->in, c->in_len);
		int got = http_parse_status(buf, c->in_len);

		if (got != c->want)
			fail_msg("case \"%s\": got %d, want %d", c->name, got,
			    c->want);
		free(buf);
	}
}

static const struct {
	int status;
	const char *reason;
} reason_cases[] = {
    {100, "Continue"},
    {200, "OK"},
    {201, "Created"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {411, "Length Required"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {417, "Expectation Failed"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {0, "Unknown"},
    {-1, "Unknown"},
    {299, "Unknown"},
    {1000, "Unknown"},
};

static void test_reason(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(reason_cases) / sizeof(reason_cases[0]); i++)
		assert_string_equal(http_reason(reason_cases[i].status),
		    reason_cases[i].reason);
	/* Every known reason can go on a status line as it is. */
	for (i = 100; i < 1000; i++) {
		const char *r = http_reason((int)i);

		assert_true(r[0] != '\0' && http_is_field_value(r, strlen(r)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_table),
	    cmocka_unit_test(test_parse_prefixes),
	    cmocka_unit_test(test_parse_max_head_edges),
	    cmocka_unit_test(test_parse_sizes),
	    cmocka_unit_test(test_parse_growing_buffer),
	    cmocka_unit_test(test_find_header),
	    cmocka_unit_test(test_pipeline),
	    cmocka_unit_test(test_chunked_table),
	    cmocka_unit_test(test_chunked_limits),
	    cmocka_unit_test(test_chunked_sticky),
	    cmocka_unit_test(test_is_token),
	    cmocka_unit_test(test_is_field_value),
	    cmocka_unit_test(test_parse_status),
	    cmocka_unit_test(test_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
