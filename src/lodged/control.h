/*
 * control.h: lodged's control socket, the server side of lodgectl
 * (control.c; the protocol is src/ctl/ctlproto.h).  Runs in lodged as
 * root.
 */
#ifndef LODGE_CONTROL_H
#define LODGE_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "lodged.h"

/*
 * At start, after the config is loaded and the epoll set exists: creates
 * ctx->control and the socket at ctx->conf.control_socket (root:
 * control_group 0660, or 0600 without a group).  A socket that cannot be
 * created is logged, not fatal: the sites matter more than lodgectl.
 * Fatal only when out of memory.
 */
void control_open(struct lodged_ctx *ctx);

/* At exit: ends every connection (and log reader), removes the socket
 * file, frees ctx->control.  Can't fail. */
void control_close(struct lodged_ctx *ctx);

/* An epoll event whose data.ptr is a LODGED_EV_CONTROL: only I/O here
 * (accepting, reading a request, writing a reply, a log reader's pipe);
 * the commands run in control_run. */
void control_event(struct lodged_ctx *ctx, enum lodged_ev *ev);

/*
 * After each batch of events: runs the commands read, and frees the
 * connections that ended.  Commands run here, outside the batch, because
 * some free a user (reload-config) that a later event of the batch could
 * point to, as signals do.
 */
void control_run(struct lodged_ctx *ctx);

/* After a config reload: the socket's group follows control_group (a new
 * control_socket path takes effect when lodged restarts). */
void control_reconfigured(struct lodged_ctx *ctx);

/* supervise.c: a birth of slot s of u took took_ms and worked (is_ok) or
 * not; counted for status and metrics.  Can't fail. */
void control_spawn_done(
    struct lodged_ctx *ctx, struct lodged_slot *s, int64_t took_ms, bool is_ok);

#endif
