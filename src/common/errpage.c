/*
 * errpage.c: the complete HTTP/1.1 responses lodge answers itself with when
 * a request cannot reach an application, or the application fails (400,
 * 404, 413, 431, 500, 502, 503, 504 ...).  Pure code: it formats into the
 * caller's buffer and does no I/O, no allocation and keeps no state, so it
 * runs in lodge-worker (as the hosted user) and in lodge-router (as the
 * unprivileged "lodge" user) alike.  What it writes goes to an anonymous
 * visitor: it must never include anything it was not given here, never a
 * traceback, a path, a user name, a version string or the reason that went
 * to the log, and the page must stay a fixed, small size.
 */
#include "errpage.h"

#include "http.h"

#include <stdio.h>
#include <string.h>

/* The one sentence a visitor reads, per status; anything else gets the
 * generic sentence.  Written for a visitor, not for the site's owner. */
static const struct {
	int status;
	const char *sentence;
} sentences[] = {
    {400, "The request was malformed."},
    {404, "No application is served at this address."},
    {405, "This method is not allowed here."},
    {408, "The request took too long to arrive."},
    {411, "The request needs a Content-Length."},
    {413, "The request body is too large."},
    {414, "The request address is too long."},
    {417, "The request's Expect header cannot be met."},
    {429, "Too many requests; retry shortly."},
    {431, "The request headers are too large."},
    {500, "The application failed to answer this request."},
    {501, "The request uses a feature this server does not implement."},
    {502, "The application could not be reached."},
    {503, "The application is overloaded; retry shortly."},
    {504, "The application did not answer in time."},
    {505, "The HTTP version of the request is not supported."},
};

static const char *sentence_for(int status)
{
	size_t i;

	for (i = 0; i < sizeof(sentences) / sizeof(sentences[0]); i++) {
		if (sentences[i].status == status)
			return sentences[i].sentence;
	}
	return "The request could not be completed.";
}

/* The body that answers status, into buf[0..size); its length or 0. */
static size_t render_body(char *buf, size_t size, int status)
{
	const char *reason = http_reason(status);
	int n;

	n = snprintf(buf, size,
	    "<!DOCTYPE html>\n"
	    "<html><head><meta charset=\"utf-8\">"
	    "<title>%d %s</title></head>\n"
	    "<body><h1>%d %s</h1>\n"
	    "<p>%s</p>\n"
	    "</body></html>\n",
	    status, reason, status, reason, sentence_for(status));
	if (n < 0 || (size_t)n >= size)
		return 0;
	return n;
}

size_t errpage_render(char *buf, size_t size, int status, bool is_head,
    bool keep_alive, int retry_after)
{
	char body[512], head[256], retry[32] = "";
	size_t body_len, head_len, len;
	int n;

	/* A page needs a status that may carry a body: 1xx, 204 and 304 may
	 * not (RFC 9110 6.4.1), and a number out of range is no status at
	 * all.  Such a call is a bug in the caller; the visitor gets a 500
	 * rather than a response that breaks the connection's framing. */
	if (status < 200 || status > 999 || status == 204 || status == 304)
		status = 500;
	body_len = render_body(body, sizeof(body), status);
	if (body_len == 0)
		return 0;
	if (retry_after > 0)
		snprintf(
		    retry, sizeof(retry), "Retry-After: %d\r\n", retry_after);

	/* Both parts are formatted on the stack and copied, so that a buffer
	 * of exactly the response's size is enough (no room for a NUL) and a
	 * buffer too small is left as it was. */
	n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: %s\r\n"
	    "%s"
	    "\r\n",
	    status, http_reason(status), body_len,
	    keep_alive ? "keep-alive" : "close", retry);
	if (n < 0 || (size_t)n >= sizeof(head))
		return 0;
	head_len = n;
	/* A HEAD response announces the length of the body it leaves out
	 * (RFC 9110 9.3.2), so the headers are the same either way. */
	len = head_len + (is_head ? 0 : body_len);
	if (len > size)
		return 0;
	memcpy(buf, head, head_len);
	if (!is_head)
		memcpy(buf + head_len, body, body_len);
	return len;
}
