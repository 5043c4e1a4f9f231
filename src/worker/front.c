/*
 * front.c: lodge-worker behind lodge-router.  lodged gives the worker one
 * end of a SOCK_SEQPACKET channel (--router-fd) whose other end is the
 * router's; the router sends each front connection it routed to this
 * user as a MSG_FRONT (the descriptor, who the client is, the app, and the
 * bytes it already read), and the worker answers one request on it, shuts
 * it down, closes it and says DONE.  This file is that channel: HELLO at
 * start, turning a MSG_FRONT into a struct conn (for the router's
 * connections and for those a predecessor or a parent worker passes on),
 * DONE, and the DRAIN handshake that lets the worker leave without losing
 * a FRONT already queued in the channel.
 *
 * Runs in lodge-worker as the hosted user: on the serving threads (reading
 * the channel, closing connections), on the main thread (HELLO, the DRAIN
 * handshake) and on the watcher thread (handing the channel to a
 * successor).  The router is trusted no more than any peer: every
 * MSG_FRONT goes through msg_front_decode, its descriptor must be a stream
 * socket, and a router that sends anything but FRONT and the answer to
 * our DRAIN is cut off (the channel is shut down, so it sees us gone).
 * A front connection is never kept alive and never handed to another
 * process as an idle keep-alive connection: its next request may be
 * another user's (DESIGN.md, "Routing and the front end").
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* How long a leaving worker waits for the router's answer to DRAIN. */
#define FRONT_LEAVE_TIMEOUT_MS 5000

int front_open(int fd)
{
	struct msg_hello hello = {
	    .version = LODGE_PROTO_VERSION,
	    .pid = (uint32_t)getpid(),
	};
	struct chan *ch;
	int type = 0;
	socklen_t tl = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	    type != SOCK_SEQPACKET) {
		errno = ENOTSOCK;
		return -1;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	ch = calloc(1, sizeof(*ch));
	if (ch == NULL)
		return -1;
	ch->ev_kind = EV_CHAN;
	ch->fd = fd;
	ch->is_router = true;
	wctx.router = ch;
	atomic_store(&wctx.router_state, FRONT_UP);
	/* In the epoll set before the serving threads start: FRONTs the
	 * router sends meanwhile wait in the channel. */
	if (chan_add(ch) < 0) {
		log_error("router channel: epoll_ctl: %s", strerror(errno));
		front_closed(ch, NULL);
		return 0;
	}
	if (msg_send(fd, MSG_HELLO, &hello, sizeof(hello), -1) == 0)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET) {
		/* The router has gone already (lodged stopping, or the router
		 * restarting): what it sent before it left is still in the
		 * channel and ours to serve; the end of the channel, read by
		 * the serving threads, closes it (front_closed). */
		log_info("router channel: the router has gone; serving what "
		         "it sent before");
		return 0;
	}
	log_warn("router channel: cannot say HELLO: %s", strerror(errno));
	front_closed(ch, NULL);
	return 0;
}

int front_fd(void)
{
	if (wctx.router == NULL || atomic_load(&wctx.router_state) != FRONT_UP)
		return -1;
	return wctx.router->fd;
}

/* The strings of v in one allocation, with the record's id and flags. */
static struct conn_front *front_record(
    const struct msg_front_view *v, bool owes_done)
{
	struct conn_front *f;
	size_t size = 0, off = 0;
	int i;

	for (i = 0; i < MSG_FRONT_NSTR; i++)
		size += v->str_len[i] + 1;
	f = malloc(sizeof(*f) + size);
	if (f == NULL)
		return NULL;
	f->id = v->id;
	f->flags = v->flags;
	atomic_init(&f->owes_done, owes_done);
	for (i = 0; i < MSG_FRONT_NSTR; i++) {
		f->str[i] = f->text + off;
		memcpy(f->str[i], v->str[i], v->str_len[i] + 1);
		off += v->str_len[i] + 1;
	}
	return f;
}

struct conn *front_conn_new(
    const struct msg *m, bool owes_done, const char **errstr_r)
{
	/* About 6 KiB (six strings of up to 1 KiB): kept off the stack,
	 * one per thread. */
	static _Thread_local struct msg_front_view v;
	struct conn_front *f;
	struct conn *c;
	int type = 0, one = 1;
	socklen_t tl = sizeof(type);
	bool is_tcp;

	if (msg_front_decode(m, &v, errstr_r) < 0) {
		close(m->fd);
		errno = EPROTO;
		return NULL;
	}
	/* Only a stream socket can be a client connection.  TCP_NODELAY
	 * (our responses go out as they are written) is set only on a TCP
	 * socket, so setting it checks that too, in one call, for the usual
	 * TCP front; anything else is asked its type. */
	is_tcp = setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one,
	             sizeof(one)) == 0;
	if (!is_tcp &&
	    (getsockopt(m->fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
	        type != SOCK_STREAM)) {
		*errstr_r =
		    "FRONT with a descriptor that is not a stream socket";
		close(m->fd);
		errno = EPROTO;
		return NULL;
	}
	f = front_record(&v, owes_done);
	c = f != NULL ? conn_new(m->fd, v.bytes, v.nbytes) : NULL;
	if (c == NULL) {
		/* Not the router's fault: give the connection up, and say so
		 * (it holds a copy that only DONE releases). */
		log_warn(
		    "front connection %u: out of memory; closing it", v.id);
		shutdown(m->fd, SHUT_RDWR);
		close(m->fd);
		if (owes_done)
			front_send_done(v.id);
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	c->front = f;
	/* O_NONBLOCK belongs to the open file, which the router shares (it
	 * accepted it so): conn.c reads and writes with MSG_DONTWAIT, and
	 * checks the flag only before a sendfile, which has no such flag
	 * (an F_GETFL saved per request). */
	c->may_block = true;
	/* The socket's own addresses are the defaults for what the router
	 * left empty (SERVER_NAME, SERVER_PORT): conn_read_head asks for
	 * them only when the head needs them.  The client is the one the
	 * router names, never the socket's peer (the front end), so the
	 * peer's address is not even asked for. */
	c->is_unix = !is_tcp;
	strcpy(c->server_name, "localhost");
	strcpy(c->server_port, "80");
	snprintf(c->remote_addr, sizeof(c->remote_addr), "%s",
	    f->str[MSG_FRONT_REMOTE_ADDR]);
	snprintf(c->remote_port, sizeof(c->remote_port), "%s",
	    f->str[MSG_FRONT_REMOTE_PORT]);
	return c;
}

int front_send_conn(int sock, const struct conn *c)
{
	const char *str[MSG_FRONT_NSTR];
	size_t size = sizeof(struct msg_front) + c->buf_len, n;
	uint8_t *buf;
	int rc, saved;

	for (int i = 0; i < MSG_FRONT_NSTR; i++) {
		str[i] = c->front->str[i];
		size += strlen(str[i]);
	}
	if (c->buf_len == 0 || size > MSG_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	buf = malloc(size);
	if (buf == NULL)
		return -1;
	n = msg_front_encode(
	    buf, size, c->front->id, c->front->flags, str, c->buf, c->buf_len);
	if (n == 0) {
		free(buf);
		errno = EMSGSIZE;
		return -1;
	}
	rc = msg_send(sock, MSG_FRONT, buf, n, c->fd);
	saved = errno;
	free(buf);
	errno = saved;
	return rc;
}

void front_send_done(uint32_t id)
{
	struct msg_done done = {.id = id};
	struct chan *ch = wctx.router;

	if (ch == NULL || atomic_load(&wctx.router_state) == FRONT_GONE)
		return;
	/* Sends block at most HANDOFF_SEND_TIMEOUT_S (chan_add); the
	 * router never blocks on us, so in practice they never wait. */
	if (msg_send(ch->fd, MSG_DONE, &done, sizeof(done), -1) < 0)
		log_debug("router channel: DONE %u not sent: %s", id,
		    strerror(errno));
}

int front_message(struct chan *ch, struct msg *m, struct conn **serve_r,
    const char **errstr_r)
{
	struct conn *c;
	int expected;

	*serve_r = NULL;
	switch (m->type) {
	case MSG_FRONT:
		c = front_conn_new(m, true, errstr_r);
		if (c == NULL)
			return errno == EPROTO ? -1 : 0;
		conn_register(c);
		/* Its head is buffered: the thread that read it serves it,
		 * without a trip through the epoll set (an EPOLL_CTL_ADD, a
		 * wake-up, an EPOLL_CTL_DEL).  Idle, like any connection
		 * waiting for a thread: a drain may claim it meanwhile. */
		pthread_mutex_lock(&wctx.conns_lock);
		c->state = CONN_IDLE;
		pthread_mutex_unlock(&wctx.conns_lock);
		*serve_r = c;
		return 0;
	case MSG_DRAIN:
		/* The answer to our DRAIN: the router sends nothing more. */
		expected = FRONT_LEAVING;
		if (!atomic_compare_exchange_strong(
		        &wctx.router_state, &expected, FRONT_LEFT))
			log_warn("router channel: DRAIN that answers nothing; "
			         "ignored");
		return 0;
	case MSG_HELLO:
	case MSG_READY:
	case MSG_CONN:
	case MSG_RELOAD:
	case MSG_DONE:
	case MSG_START:
	case MSG_WORKER:
	case MSG_NOUSER:
	case MSG_FAILED:
	case MSG_BADPEER:
	case MSG_STATS:
	case MSG_RELOAD_APP:
	case MSG_QUEUES:
	case MSG_TYPE_MAX:
		break;
	}
	if (m->fd >= 0)
		close(m->fd);
	*errstr_r = "a message the router never sends to a worker";
	return -1;
}

void front_closed(struct chan *ch, const char *why)
{
	int was = atomic_exchange(&wctx.router_state, FRONT_GONE);

	atomic_store(&ch->is_closed, true);
	epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, ch->fd, NULL);
	/* Shut down, not closed: the router sees us gone (and answers 502
	 * for what we still hold), while the descriptor number stays ours,
	 * so a thread about to send DONE on it can't hit a reused one. */
	shutdown(ch->fd, SHUT_RDWR);
	if (why != NULL)
		log_warn(
		    "router channel: bad message (%s); cutting it off", why);
	else if (was != FRONT_GONE)
		log_warn("router channel: closed by the router");
	if (was != FRONT_UP)
		return; /* leaving already, or the successor's business */
	if (worker_has_listener()) {
		log_info("router channel: gone; serving the other listeners");
		return;
	}
	/* Nothing can reach us any more: finish what we hold and leave
	 * (lodged starts a worker again when the router asks). */
	log_info("router channel: gone and no other listener; finishing "
	         "and exiting");
	atomic_store(&wctx.stop_asked, true);
}

void front_leave(void)
{
	int expected = FRONT_UP, state;
	int64_t deadline;

	if (wctx.router == NULL ||
	    !atomic_compare_exchange_strong(
	        &wctx.router_state, &expected, FRONT_LEAVING))
		return;
	/* A FRONT may already wait in the channel, or be on its way: the
	 * router stops sending once it reads our DRAIN and answers it, and
	 * everything before that answer is ours to serve. */
	if (msg_send(wctx.router->fd, MSG_DRAIN, NULL, 0, -1) == 0) {
		log_info("router channel: DRAIN sent; serving until the "
		         "router answers");
	} else if (errno == EPIPE || errno == ECONNRESET) {
		/* The router has gone (lodged stops it before the workers):
		 * what it sent before it left is still in the channel, and
		 * ours to serve, up to the end of the channel. */
		log_info("router channel: the router has gone; serving what "
		         "it sent before");
	} else {
		log_warn("router channel: cannot send DRAIN: %s; leaving "
		         "anyway",
		    strerror(errno));
		return;
	}
	deadline = util_now_ms() + FRONT_LEAVE_TIMEOUT_MS;
	while ((state = atomic_load(&wctx.router_state)) == FRONT_LEAVING &&
	       util_now_ms() < deadline) {
		worker_timeout_sweep();
		usleep(10 * 1000);
	}
	if (state == FRONT_LEFT)
		log_info("router channel: the router answered DRAIN");
	else if (state == FRONT_LEAVING)
		log_warn("router channel: no answer to DRAIN after %d s; "
		         "leaving anyway",
		    FRONT_LEAVE_TIMEOUT_MS / 1000);
}

void front_handover(void)
{
	int expected = FRONT_UP;

	if (wctx.router == NULL ||
	    !atomic_compare_exchange_strong(
	        &wctx.router_state, &expected, FRONT_HANDED))
		return;
	/* Both processes read the channel until the successor is ready
	 * (whoever reads a FRONT serves it); from now on only the successor
	 * does.  Our connections in flight still say DONE on it. */
	epoll_ctl(wctx.epfd, EPOLL_CTL_DEL, wctx.router->fd, NULL);
	log_info("router channel: the new process reads it now");
}
