/*
 * errpage.h: the short HTML pages lodge answers itself with (400, 404, 413,
 * 431, 500, 502, 503, 504 ...).  Pure code.  A visitor never sees a
 * traceback or an internal path: the page says what happened in one
 * sentence; the reason goes to the log.
 */
#ifndef LODGE_ERRPAGE_H
#define LODGE_ERRPAGE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Writes a complete HTTP/1.1 response (status line, Content-Type,
 * Content-Length, Connection, optional Retry-After, blank line, HTML body)
 * into buf.  is_head omits the body (the Content-Length stays that of the
 * body).  keep_alive chooses "Connection: keep-alive" or "close".
 * retry_after > 0 adds "Retry-After: N".  Returns the length written, or
 * 0 if size is too small (512 bytes is always enough).  Can't fail otherwise.
 */
size_t errpage_render(char *buf, size_t size, int status, bool is_head,
    bool keep_alive, int retry_after);

#endif
