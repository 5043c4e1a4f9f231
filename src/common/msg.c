/*
 * msg.c: the framing of lodge's internal messages (proto.h) over
 * SOCK_SEQPACKET socketpairs, with SCM_RIGHTS descriptors.  Used by every
 * lodge process; whoever receives treats the peer as hostile: sizes,
 * types and descriptor counts are checked before use, stray descriptors
 * are closed, and a bad message is reported so the caller can cut the peer
 * off (it never crashes or blocks the receiver).
 */
#include "msg.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int msg_user_check(const uint8_t *name, size_t len)
{
	if (len == 0 || len > MSG_MAX_USER || name[0] == '-')
		return -1;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		        ch == '_' || ch == '.' || ch == '-'))
			return -1;
	}
	return 0;
}

int msg_app_check(const uint8_t *name, size_t len)
{
	if (len == 0 || len > MSG_MAX_APP || name[0] == '.' || name[0] == '-')
		return -1;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		        (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		        ch == '-'))
			return -1;
	}
	return 0;
}

int msg_decode(const void *buf, size_t n, int has_fd, struct msg *m,
    const char **errstr_r)
{
	struct msg_hdr h;

	if (n < sizeof(h)) {
		*errstr_r = "message shorter than its header";
		return -1;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.type == 0 || h.type >= MSG_TYPE_MAX) {
		*errstr_r = "unknown message type";
		return -1;
	}
	if (h.len > MSG_MAX_PAYLOAD || h.len != n - sizeof(h)) {
		*errstr_r = "message length does not match its header";
		return -1;
	}
	switch ((enum msg_type)h.type) {
	case MSG_HELLO:
		if (h.len != sizeof(struct msg_hello) || has_fd) {
			*errstr_r = "malformed HELLO";
			return -1;
		}
		break;
	case MSG_READY:
	case MSG_DRAIN:
	case MSG_RELOAD:
		if (h.len != 0 || has_fd) {
			*errstr_r = "READY, DRAIN and RELOAD carry nothing";
			return -1;
		}
		break;
	case MSG_CONN:
		if (!has_fd) {
			*errstr_r = "CONN without a descriptor";
			return -1;
		}
		break;
	case MSG_FRONT:
		if (!has_fd || h.len <= sizeof(struct msg_front)) {
			*errstr_r = "malformed FRONT";
			return -1;
		}
		break;
	case MSG_DONE:
		if (h.len != sizeof(struct msg_done) || has_fd) {
			*errstr_r = "malformed DONE";
			return -1;
		}
		break;
	case MSG_BADPEER:
		if (h.len != sizeof(struct msg_badpeer) || has_fd) {
			*errstr_r = "malformed BADPEER";
			return -1;
		}
		break;
	case MSG_START:
	case MSG_NOUSER:
	case MSG_FAILED:
		if (has_fd || msg_user_check((const uint8_t *)buf + sizeof(h),
		    h.len) < 0) {
			*errstr_r = "malformed user name";
			return -1;
		}
		break;
	case MSG_WORKER:
		if (!has_fd || h.len <= sizeof(struct msg_worker) ||
		    msg_user_check((const uint8_t *)buf + sizeof(h) +
		    sizeof(struct msg_worker), h.len - sizeof(struct msg_worker)) <
		    0) {
			*errstr_r = "malformed WORKER";
			return -1;
		}
		break;
	case MSG_STATS: {
		struct msg_stats st;

		/* The app records are checked by msg_stats_decode; here the
		 * size, which the count of apps fixes exactly. */
		if (has_fd || h.len < sizeof(st)) {
			*errstr_r = "malformed STATS";
			return -1;
		}
		memcpy(&st, (const uint8_t *)buf + sizeof(h), sizeof(st));
		if (st.napps > MSG_STATS_MAX_APPS ||
		    h.len != sizeof(st) +
		        (size_t)st.napps * sizeof(struct msg_stats_app)) {
			*errstr_r = "STATS whose size does not match its apps";
			return -1;
		}
		break;
	}
	case MSG_QUEUES: {
		struct msg_queues q;

		/* The records are checked by msg_queues_decode. */
		if (has_fd || h.len < sizeof(q)) {
			*errstr_r = "malformed QUEUES";
			return -1;
		}
		memcpy(&q, (const uint8_t *)buf + sizeof(h), sizeof(q));
		if (q.nusers > MSG_QUEUES_MAX_USERS ||
		    h.len != sizeof(q) +
		        (size_t)q.nusers * sizeof(struct msg_queue_user)) {
			*errstr_r = "QUEUES whose size does not match its users";
			return -1;
		}
		break;
	}
	case MSG_RELOAD_APP:
		if (has_fd || msg_app_check((const uint8_t *)buf + sizeof(h),
		    h.len) < 0) {
			*errstr_r = "malformed app name";
			return -1;
		}
		break;
	case MSG_TYPE_MAX:
		*errstr_r = "unknown message type";
		return -1;
	}
	m->type = (enum msg_type)h.type;
	m->payload = (const uint8_t *)buf + sizeof(h);
	m->len = h.len;
	return 0;
}

int msg_send(int sock, enum msg_type type, const void *payload, size_t len,
    int fd)
{
	struct msg_hdr h = {.type = (uint32_t)type, .len = (uint32_t)len};
	struct iovec iov[2] = {
	    {.iov_base = &h, .iov_len = sizeof(h)},
	    {.iov_base = (void *)payload, .iov_len = len},
	};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1};

	if (len > MSG_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n >= 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Closes every descriptor in the control data. */
static void close_fds(struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			size_t k, nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (k = 0; k < nfd; k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int),
				    sizeof(int));
				close(fd);
			}
		}
	}
}

/* Checks a datagram of n bytes that recvmsg put in buf, with mh's
 * control data: 1 (m filled), 0 (the end of the channel), or -2 (bad:
 * *errstr_r says why; its descriptors are closed). */
static int received(struct msghdr *mh, const void *buf, size_t n,
    struct msg *m, const char **errstr_r)
{
	struct cmsghdr *c;
	int fd = -1, nfds = 0;

	if (n == 0 && mh->msg_controllen == 0)
		return 0;
	if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(mh);
		*errstr_r = "message or its descriptors truncated";
		return -2;
	}
	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			close_fds(mh);
			*errstr_r = "unexpected control data";
			return -2;
		}
		nfds += (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (nfds == 1)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	if (nfds > 1) {
		close_fds(mh);
		*errstr_r = "more than one descriptor";
		return -2;
	}
	if (msg_decode(buf, n, fd >= 0, m, errstr_r) < 0) {
		if (fd >= 0)
			close(fd);
		return -2;
	}
	m->fd = fd;
	return 1;
}

int msg_recv(int sock, void *buf, size_t size, struct msg *m,
    const char **errstr_r)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cm.buf,
	    .msg_controllen = sizeof(cm.buf),
	};
	ssize_t n;

	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	return received(&mh, buf, (size_t)n, m, errstr_r);
}

_Static_assert(sizeof(((struct msg_small *)0)->cm.buf) >=
        CMSG_SPACE(sizeof(int) * 4),
    "msg_small's control room matches msg_recv's");

int msg_recv_small(int sock, struct msg_small *slots, unsigned nslots)
{
	struct mmsghdr mm[MSG_SMALL_MAX];
	struct iovec iov[MSG_SMALL_MAX];
	int n;

	if (nslots > MSG_SMALL_MAX)
		nslots = MSG_SMALL_MAX;
	for (unsigned i = 0; i < nslots; i++) {
		iov[i] = (struct iovec){.iov_base = slots[i].buf,
		    .iov_len = sizeof(slots[i].buf)};
		mm[i].msg_hdr = (struct msghdr){
		    .msg_iov = &iov[i],
		    .msg_iovlen = 1,
		    .msg_control = slots[i].cm.buf,
		    .msg_controllen = sizeof(slots[i].cm.buf),
		};
		mm[i].msg_len = 0;
	}
	do {
		n = recvmmsg(sock, mm, nslots, MSG_CMSG_CLOEXEC | MSG_DONTWAIT,
		    NULL);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -1 : 0;
	for (int i = 0; i < n; i++) {
		struct msg_small *s = &slots[i];

		s->why = NULL;
		s->rc = received(&mm[i].msg_hdr, s->buf, mm[i].msg_len, &s->m,
		    &s->why);
		if (s->rc <= 0) {
			/* Nothing after the end or a bad message counts:
			 * close the descriptors that came with it. */
			for (int k = i + 1; k < n; k++)
				close_fds(&mm[k].msg_hdr);
			return i + 1;
		}
	}
	return n;
}

/* Printable ASCII without spaces; ports: digits, at most 5. */
static int front_str_ok(const uint8_t *p, size_t len, int which)
{
	bool is_port = which == MSG_FRONT_REMOTE_PORT ||
	    which == MSG_FRONT_SERVER_PORT;

	if (len > MSG_FRONT_MAX_STR || (is_port && len > 5))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x21 || p[i] > 0x7e)
			return -1;
		if (is_port && (p[i] < '0' || p[i] > '9'))
			return -1;
	}
	return 0;
}

int msg_front_decode(const struct msg *m, struct msg_front_view *v,
    const char **errstr_r)
{
	struct msg_front f;
	size_t off = sizeof(f);

	if (m->type != MSG_FRONT || m->len <= sizeof(f)) {
		*errstr_r = "FRONT shorter than its record";
		return -1;
	}
	memcpy(&f, m->payload, sizeof(f));
	if (f.id == 0 || (f.flags & ~MSG_FRONT_HTTPS) != 0 || f.pad[0] != 0 ||
	    f.pad[1] != 0) {
		*errstr_r = "FRONT with a bad id or flags";
		return -1;
	}
	v->id = f.id;
	v->flags = f.flags;
	for (int i = 0; i < MSG_FRONT_NSTR; i++) {
		if (f.len[i] > m->len - off ||
		    front_str_ok(m->payload + off, f.len[i], i) < 0) {
			*errstr_r = "FRONT with a bad string";
			return -1;
		}
		memcpy(v->str[i], m->payload + off, f.len[i]);
		v->str[i][f.len[i]] = '\0';
		v->str_len[i] = f.len[i];
		off += f.len[i];
	}
	if (off >= m->len) {
		*errstr_r = "FRONT without the request's bytes";
		return -1;
	}
	v->bytes = m->payload + off;
	v->nbytes = m->len - off;
	return 0;
}

size_t msg_front_encode(uint8_t *out, size_t size, uint32_t id,
    uint32_t flags, const char *const str[MSG_FRONT_NSTR],
    const void *bytes, size_t nbytes)
{
	struct msg_front f = {.id = id, .flags = flags};
	size_t off = sizeof(f);

	/* size below the record would make "size - off" below wrap around
	 * and let everything seem to fit. */
	if (id == 0 || nbytes == 0 || size < sizeof(f))
		return 0;
	for (int i = 0; i < MSG_FRONT_NSTR; i++) {
		size_t len = strlen(str[i]);

		if (front_str_ok((const uint8_t *)str[i], len, i) < 0 ||
		    len > size - off)
			return 0;
		f.len[i] = (uint16_t)len;
		memcpy(out + off, str[i], len);
		off += len;
	}
	if (nbytes > size - off || off + nbytes > MSG_MAX_PAYLOAD)
		return 0;
	memcpy(out, &f, sizeof(f));
	memcpy(out + off, bytes, nbytes);
	return off + nbytes;
}

/* A string field of the stats: NUL inside, zero after it, printable
 * before it.  The length, or -1. */
static int stats_str_ok(const char *field, size_t size)
{
	const char *nul = memchr(field, '\0', size);
	size_t len;

	if (nul == NULL)
		return -1;
	len = (size_t)(nul - field);
	for (size_t i = 0; i < len; i++)
		if (field[i] < 0x20 || field[i] > 0x7e)
			return -1;
	for (size_t i = len; i < size; i++)
		if (field[i] != '\0')
			return -1;
	return (int)len;
}

int msg_stats_decode(const struct msg *m, struct msg_stats *st,
    struct msg_stats_app *apps, const char **errstr_r)
{
	uint64_t sum = 0;

	if (m->type != MSG_STATS || m->len < sizeof(*st)) {
		*errstr_r = "STATS shorter than its record";
		return -1;
	}
	memcpy(st, m->payload, sizeof(*st));
	if (st->napps > MSG_STATS_MAX_APPS ||
	    m->len != sizeof(*st) + (size_t)st->napps * sizeof(*apps)) {
		*errstr_r = "STATS whose size does not match its apps";
		return -1;
	}
	if (st->pad != 0) {
		*errstr_r = "STATS with a nonzero pad";
		return -1;
	}
	/* Overflow would need 2^64 requests: a sum that wraps is garbage. */
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++) {
		if (sum + st->buckets[i] < sum) {
			*errstr_r = "STATS whose buckets overflow";
			return -1;
		}
		sum += st->buckets[i];
	}
	if (sum != st->served) {
		*errstr_r = "STATS whose served is not the sum of its buckets";
		return -1;
	}
	for (uint32_t i = 0; i < st->napps; i++) {
		struct msg_stats_app a;
		int len;

		memcpy(&a, m->payload + sizeof(*st) + i * sizeof(a), sizeof(a));
		len = stats_str_ok(a.name, sizeof(a.name));
		if (len < 0 || msg_app_check((const uint8_t *)a.name,
		    (size_t)len) < 0) {
			*errstr_r = "STATS with a bad app name";
			return -1;
		}
		if (stats_str_ok(a.reason, sizeof(a.reason)) < 0) {
			*errstr_r = "STATS with a bad reason";
			return -1;
		}
		if (a.mode > MSG_STATS_MODE_PROCESS ||
		    a.state > MSG_STATS_APP_BROKEN || a.is_last_ok > 1 ||
		    a.pad != 0 || a.last_reload_ms < 0) {
			*errstr_r = "STATS with a bad app record";
			return -1;
		}
		if (apps != NULL)
			apps[i] = a;
	}
	return 0;
}

int msg_queues_decode(const struct msg *m, struct msg_queues *q,
    struct msg_queue_user *users, const char **errstr_r)
{
	if (m->type != MSG_QUEUES || m->len < sizeof(*q)) {
		*errstr_r = "QUEUES shorter than its record";
		return -1;
	}
	memcpy(q, m->payload, sizeof(*q));
	if (q->nusers > MSG_QUEUES_MAX_USERS ||
	    m->len != sizeof(*q) + (size_t)q->nusers * sizeof(*users)) {
		*errstr_r = "QUEUES whose size does not match its users";
		return -1;
	}
	if ((q->flags & ~MSG_QUEUES_FIRST) != 0) {
		*errstr_r = "QUEUES with unknown flags";
		return -1;
	}
	for (uint32_t i = 0; i < q->nusers; i++) {
		struct msg_queue_user u;
		int len;

		memcpy(&u, m->payload + sizeof(*q) + i * sizeof(u), sizeof(u));
		len = stats_str_ok(u.name, sizeof(u.name));
		if (len <= 0 || msg_user_check((const uint8_t *)u.name,
		    (size_t)len) < 0) {
			*errstr_r = "QUEUES with a bad user name";
			return -1;
		}
		if (u.pad != 0) {
			*errstr_r = "QUEUES with a nonzero pad";
			return -1;
		}
		if (users != NULL)
			users[i] = u;
	}
	return 0;
}
