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
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	struct cmsghdr *c;
	int fd = -1, nfds = 0;
	ssize_t n;

	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0 && mh.msg_controllen == 0)
		return 0;
	if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(&mh);
		*errstr_r = "message or its descriptors truncated";
		return -2;
	}
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			close_fds(&mh);
			*errstr_r = "unexpected control data";
			return -2;
		}
		nfds += (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (nfds == 1)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	}
	if (nfds > 1) {
		close_fds(&mh);
		*errstr_r = "more than one descriptor";
		return -2;
	}
	if (msg_decode(buf, (size_t)n, fd >= 0, m, errstr_r) < 0) {
		if (fd >= 0)
			close(fd);
		return -2;
	}
	m->fd = fd;
	return 1;
}
