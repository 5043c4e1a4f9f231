/*
 * fuzz_http.c: libFuzzer harness for the strict HTTP request-head parser
 * and the chunked-body decoder of src/common/http.c, which read bytes
 * straight from clients in lodge-router and lodge-worker.  Besides the
 * sanitizers' checks (no read past the input, no UB), it asserts
 * properties that must hold for every input:
 *   - a parsed head lies inside the input, every pointer of the result
 *     points into it, and a status comes with every refusal;
 *   - the parser is incremental: every prefix of an accepted head asks
 *     for more bytes, and the head alone parses the same way;
 *   - the chunked decoder gives the same answer, the same body bytes and
 *     the same end whether it is fed everything at once or byte by byte;
 *   - http_find_header finds every field of a head by its name in any
 *     case, and http_parse_status answers -1 or a code of three digits.
 * The body decoded is the input after an accepted head, or the whole
 * input when no head was accepted, so garbage reaches the decoder too.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_http: %s:%d: %s\n", __FILE__,    \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

static void check_inside(const char *p, size_t n, const char *buf, size_t len)
{
	if (n == 0)
		return;
	CHECK(p >= buf && p + n <= buf + len);
}

static void check_head(
    const char *buf, size_t len, const struct http_request *r)
{
	CHECK(r->head_len > 0 && r->head_len <= len);
	CHECK(buf[r->head_len - 1] == '\n' && buf[r->head_len - 2] == '\r');
	check_inside(r->method, r->method_len, buf, r->head_len);
	CHECK(r->method_len > 0 && http_is_token(r->method, r->method_len));
	check_inside(r->target, r->target_len, buf, r->head_len);
	CHECK(r->target_len > 0);
	CHECK(r->version_minor == 0 || r->version_minor == 1);
	CHECK(r->nheaders <= HTTP_MAX_HEADERS);
	for (size_t i = 0; i < r->nheaders; i++) {
		const struct http_header *h = &r->headers[i];

		check_inside(h->line, h->line_len, buf, r->head_len);
		check_inside(h->name, h->name_len, buf, r->head_len);
		check_inside(h->value, h->value_len, buf, r->head_len);
		CHECK(http_is_token(h->name, h->name_len));
		CHECK(http_is_field_value(h->value, h->value_len));
	}
	if (r->body_kind == HTTP_BODY_CHUNKED)
		CHECK(r->version_minor == 1);
	if (r->body_kind != HTTP_BODY_LENGTH)
		CHECK(r->content_length == 0);
	if (r->version_minor == 1)
		CHECK(r->host != NULL);
}

/* The result of one decoding: the end state, the bytes consumed up to
 * DONE or an error, and the body bytes handed out. */
struct decoded {
	int result;
	size_t used;
	char *body;
	size_t body_len;
};

/* Feeds in[0..len) to a fresh decoder in pieces of step bytes (0: all at
 * once), until it is done, fails or has seen everything. */
static void decode(const char *in, size_t len, size_t step, uint64_t max_body,
    struct decoded *d)
{
	struct http_chunked c;
	size_t off = 0;

	http_chunked_init(&c, max_body);
	d->result = HTTP_CHUNKED_MORE;
	d->body_len = 0;
	while (off < len) {
		size_t avail = step == 0 || len - off < step ? len - off : step;
		size_t used, data_len;
		const char *data, *errstr = NULL;
		enum http_chunked_result r;

		r = http_chunked_feed(
		    &c, in + off, avail, &used, &data, &data_len, &errstr);
		CHECK(used <= avail);
		if (r == HTTP_CHUNKED_DATA) {
			CHECK(data_len > 0);
			CHECK(data >= in + off &&
			      data + data_len <= in + off + used);
			CHECK(d->body_len + data_len <= len);
			memcpy(d->body + d->body_len, data, data_len);
			d->body_len += data_len;
			CHECK(max_body == 0 || d->body_len <= max_body);
			off += used;
			continue;
		}
		off += used;
		if (r == HTTP_CHUNKED_MORE) {
			CHECK(used == avail);
			continue;
		}
		if (r < 0)
			CHECK(errstr != NULL);
		d->result = r;
		break;
	}
	d->used = off;
}

static void fuzz_chunked(const char *in, size_t len, uint64_t max_body)
{
	struct decoded whole, bytes, odd;

	whole.body = malloc(len + 1);
	bytes.body = malloc(len + 1);
	odd.body = malloc(len + 1);
	CHECK(whole.body && bytes.body && odd.body);
	decode(in, len, 0, max_body, &whole);
	decode(in, len, 1, max_body, &bytes);
	decode(in, len, 7, max_body, &odd);
	CHECK(whole.result == bytes.result && whole.result == odd.result);
	CHECK(whole.used == bytes.used && whole.used == odd.used);
	CHECK(
	    whole.body_len == bytes.body_len && whole.body_len == odd.body_len);
	CHECK(memcmp(whole.body, bytes.body, whole.body_len) == 0);
	CHECK(memcmp(whole.body, odd.body, whole.body_len) == 0);
	free(whole.body);
	free(bytes.body);
	free(odd.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_request req, again;
	const char *buf = (const char *)data, *errstr = NULL;
	int status = 0, rc, rc2;
	size_t body_off = 0;

	rc = http_parse_request(buf, size, 0, &req, &status, &errstr);
	if (rc < 0) {
		CHECK(rc == -1);
		CHECK(errstr != NULL);
		CHECK(status == 400 || status == 431 || status == 501 ||
		      status == 505 || status == 417);
	} else if (rc == 0) {
		CHECK(size < HTTP_DEFAULT_MAX_HEAD);
	} else {
		CHECK(rc == 1);
		check_head(buf, size, &req);
		/* The head alone parses the same way... */
		rc2 = http_parse_request(
		    buf, req.head_len, 0, &again, &status, &errstr);
		CHECK(rc2 == 1 && again.head_len == req.head_len);
		CHECK(again.nheaders == req.nheaders);
		CHECK(again.body_kind == req.body_kind);
		CHECK(again.content_length == req.content_length);
		CHECK(again.is_keep_alive == req.is_keep_alive);
		/* ... and without its last byte it is not complete yet. */
		rc2 = http_parse_request(
		    buf, req.head_len - 1, 0, &again, &status, &errstr);
		CHECK(rc2 == 0);
		/* A limit of exactly its size still takes it. */
		rc2 = http_parse_request(
		    buf, size, req.head_len, &again, &status, &errstr);
		CHECK(rc2 == 1 && again.head_len == req.head_len);
		/* Every field is found by its name, whatever its case;
		 * the first of that name. */
		for (size_t i = 0; i < req.nheaders; i++) {
			const struct http_header *h = &req.headers[i];
			const struct http_header *found;
			char name[64];

			if (h->name_len >= sizeof(name))
				continue;
			for (size_t k = 0; k < h->name_len; k++) {
				char c = h->name[k];
				bool is_letter = (c >= 'a' && c <= 'z') ||
				                 (c >= 'A' && c <= 'Z');

				name[k] = is_letter && k % 2 ? c ^ 0x20 : c;
			}
			name[h->name_len] = '\0';
			found = http_find_header(&req, name);
			CHECK(found != NULL && found >= req.headers &&
			      found <= h);
		}
		body_off = req.head_len;
	}
	/* The response-side checks, on the same bytes. */
	rc2 = http_parse_status(buf, size);
	CHECK(rc2 == -1 || (rc2 >= 100 && rc2 <= 999));
	if (rc2 > 0)
		CHECK(http_is_field_value(buf + 4, size - 4));
	/* The size limit, as a 431: a head is never taken past it. */
	if (size > 1) {
		size_t max_head = size / 2 + 1;

		rc2 = http_parse_request(
		    buf, size, max_head, &again, &status, &errstr);
		if (rc2 == 1)
			CHECK(again.head_len <= max_head);
		else if (rc2 == 0)
			CHECK(size < max_head);
	}
	fuzz_chunked(buf + body_off, size - body_off, size % 2 ? 0 : 64);
	return 0;
}
