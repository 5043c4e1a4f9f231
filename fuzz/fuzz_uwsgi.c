/*
 * fuzz_uwsgi.c: libFuzzer harness for src/router/uwsgi.c, the uwsgi packet
 * parser and its translation into an HTTP/1.1 head in lodge-router.
 *
 * An input that starts with a 0 byte is a raw packet (modifier1 is 0 in
 * every packet the router accepts).  Any other input is a list of
 * variables, one "KEY=VALUE" per line (a value may hold any byte but LF),
 * which the harness encodes into a packet first: that way the fuzzer
 * spends its time on the variables, not on getting lengths right.
 *
 * Properties, besides the sanitizers' checks:
 *   - a parsed packet lies inside the input, every variable inside it,
 *     and every shorter prefix asks for more bytes;
 *   - whatever head uwsgi_to_http writes, the worker's strict parser
 *     (common/http.c) accepts all of it, with the same method, no
 *     keep-alive, a Host, and the framing of CONTENT_LENGTH (abort()
 *     otherwise: a head the two sides could frame differently);
 *   - the head fits in exactly its size and not in one byte less.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "uwsgi.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_uwsgi: %s:%d: %s\n", __FILE__,   \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

#define PKT_MAX (UWSGI_HEADER_LEN + 0xffff)

/* Encodes "KEY=VALUE" lines into a packet; 0 if it would not fit. */
static size_t encode_lines(const uint8_t *in, size_t len, uint8_t *out)
{
	size_t off = UWSGI_HEADER_LEN, pos = 0;

	while (pos < len) {
		const uint8_t *line = in + pos, *nl, *eq;
		size_t line_len, key_len, val_len;

		nl = memchr(line, '\n', len - pos);
		line_len = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += line_len + (nl != NULL);
		eq = memchr(line, '=', line_len);
		key_len = eq != NULL ? (size_t)(eq - line) : line_len;
		val_len = eq != NULL ? line_len - key_len - 1 : 0;
		if (off + 4 + key_len + val_len > PKT_MAX)
			return 0;
		out[off++] = (uint8_t)(key_len & 0xff);
		out[off++] = (uint8_t)(key_len >> 8);
		memcpy(out + off, line, key_len);
		off += key_len;
		out[off++] = (uint8_t)(val_len & 0xff);
		out[off++] = (uint8_t)(val_len >> 8);
		if (val_len > 0)
			memcpy(out + off, eq + 1, val_len);
		off += val_len;
	}
	out[0] = 0;
	out[1] = (uint8_t)((off - UWSGI_HEADER_LEN) & 0xff);
	out[2] = (uint8_t)((off - UWSGI_HEADER_LEN) >> 8);
	out[3] = 0;
	return off;
}

static void check_translation(const struct uwsgi_request *req)
{
	static char out[HTTP_DEFAULT_MAX_HEAD];
	static char again[HTTP_DEFAULT_MAX_HEAD];
	static struct http_request hr;
	const struct uwsgi_var *method, *cl;
	const char *errstr = NULL;
	int status = 0, rc;
	ssize_t n;

	n = uwsgi_to_http(req, out, sizeof(out), &errstr);
	if (n < 0) {
		CHECK(n == -1 && errstr != NULL);
		return;
	}
	CHECK(n > 0 && (size_t)n <= sizeof(out));

	/* The property this harness is for. */
	rc = http_parse_request(
	    out, (size_t)n, (size_t)n, &hr, &status, &errstr);
	if (rc != 1 || hr.head_len != (size_t)n) {
		fprintf(stderr,
		    "fuzz_uwsgi: the strict parser says %d (%d %s) "
		    "to:\n%.*s\n",
		    rc, status, rc < 0 ? errstr : "", (int)n, out);
		abort();
	}
	method = uwsgi_get(req, "REQUEST_METHOD");
	CHECK(method != NULL && method->val_len == hr.method_len &&
	      memcmp(method->val, hr.method, hr.method_len) == 0);
	CHECK(!hr.is_keep_alive);
	CHECK(hr.host != NULL);
	CHECK(hr.body_kind != HTTP_BODY_CHUNKED);
	cl = uwsgi_get(req, "CONTENT_LENGTH");
	if (cl != NULL && cl->val_len > 0)
		CHECK(hr.body_kind == HTTP_BODY_LENGTH &&
		      hr.content_length == req->content_length);
	else
		CHECK(hr.body_kind == HTTP_BODY_NONE);

	/* Exactly n bytes are needed, and the same ones come out. */
	CHECK(uwsgi_to_http(req, again, (size_t)n, &errstr) == n);
	CHECK(memcmp(again, out, (size_t)n) == 0);
	CHECK(uwsgi_to_http(req, again, (size_t)n - 1, &errstr) == -1);
}

static void fuzz_packet(const uint8_t *buf, size_t len)
{
	static struct uwsgi_request req, prefix;
	const char *errstr = NULL;
	int rc;

	rc = uwsgi_parse(buf, len, &req, &errstr);
	if (rc < 0) {
		CHECK(rc == -1 && errstr != NULL);
		return;
	}
	if (rc == 0) {
		CHECK(len < UWSGI_HEADER_LEN ||
		      len < UWSGI_HEADER_LEN + (buf[1] | (size_t)buf[2] << 8));
		return;
	}
	CHECK(rc == 1);
	CHECK(req.packet_len > UWSGI_HEADER_LEN && req.packet_len <= len);
	CHECK(req.nvars > 0 && req.nvars <= UWSGI_MAX_VARS);
	for (size_t i = 0; i < req.nvars; i++) {
		const struct uwsgi_var *v = &req.vars[i];

		CHECK(v->key_len > 0);
		CHECK((const uint8_t *)v->key >= buf + UWSGI_HEADER_LEN &&
		      (const uint8_t *)v->key + v->key_len <=
		          buf + req.packet_len);
		CHECK((const uint8_t *)v->val >= buf + UWSGI_HEADER_LEN &&
		      (const uint8_t *)v->val + v->val_len <=
		          buf + req.packet_len);
		CHECK(uwsgi_get(&req, "") == NULL);
	}
	/* A packet is complete only once all of it is there. */
	CHECK(uwsgi_parse(buf, req.packet_len - 1, &prefix, &errstr) == 0);
	check_translation(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pkt[PKT_MAX];
	size_t len;

	if (size > 0 && data[0] != 0) {
		len = encode_lines(data, size, pkt);
		if (len > 0) {
			/* A copy of exactly its size, for AddressSanitizer. */
			uint8_t *copy = malloc(len);

			CHECK(copy != NULL);
			memcpy(copy, pkt, len);
			fuzz_packet(copy, len);
			free(copy);
		}
		return 0;
	}
	fuzz_packet(data, size);
	return 0;
}
