/*
 * sandbox_net.c: brings up the loopback interface of a worker's own
 * network namespace ("loopback" mode, step 4 of SANDBOX.md §2).
 * sandbox_net_prepare runs in lodged as root before the fork and builds
 * the RTM_NEWLINK request with libnl's route API; sandbox_net_lo_up runs
 * in the child (root, inside the new network namespace, between fork and
 * exec) and only makes system calls: libnl's nl_connect and nl_sendto,
 * then a recv of the kernel's ack into a stack buffer (libnl's receive
 * path allocates, which the child must not).  It never touches the host's
 * network namespace: it is only called after unshare(CLONE_NEWNET).
 *
 * lo is ifindex 1 in every network namespace (LOOPBACK_IFINDEX), so the
 * request can be built before the namespace exists.  The kernel adds
 * 127.0.0.1/8 and ::1 itself when lo goes up.
 */
#include "sandbox.h"

#include <errno.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOOPBACK_IFINDEX 1

int sandbox_net_prepare(struct sandbox_net *net, char *err, size_t errsize)
{
	struct rtnl_link *lo = NULL, *chg = NULL;
	int rc = -NLE_NOMEM;

	memset(net, 0, sizeof(*net));
	net->sk = nl_socket_alloc();
	lo = rtnl_link_alloc();
	chg = rtnl_link_alloc();
	if (net->sk && lo && chg) {
		rtnl_link_set_ifindex(lo, LOOPBACK_IFINDEX);
		rtnl_link_set_name(lo, "lo");
		rtnl_link_set_flags(chg, IFF_UP);
		rc = rtnl_link_build_change_request(lo, chg, 0, &net->msg);
	}
	if (rc == 0) {
		/* Sequence number and NLM_F_ACK, as nl_send_auto would. */
		nl_complete_msg(net->sk, net->msg);
	}
	rtnl_link_put(lo);
	rtnl_link_put(chg);
	if (rc < 0) {
		snprintf(err, errsize, "libnl: building the lo request: %s",
		    nl_geterror(rc));
		sandbox_net_release(net);
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int sandbox_net_lo_up(struct sandbox_net *net, const char **what_r)
{
	struct nlmsghdr *req = nlmsg_hdr(net->msg);
	union {
		struct nlmsghdr h;
		char buf[1024];
	} ack;
	struct nlmsgerr *e;
	ssize_t n;
	int fd, rc;

	*what_r = "netlink connect";
	rc = nl_connect(net->sk, NETLINK_ROUTE);
	if (rc < 0) {
		errno = rc == -NLE_PERM ? EPERM : EPROTO;
		return -1;
	}
	fd = nl_socket_get_fd(net->sk);
	*what_r = "netlink send (lo up)";
	if (nl_sendto(net->sk, req, req->nlmsg_len) < 0) {
		errno = EIO;
		return -1;
	}
	*what_r = "netlink ack (lo up)";
	do
		n = recv(fd, &ack, sizeof(ack), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n < NLMSG_LENGTH(sizeof(*e)) ||
	    ack.h.nlmsg_type != NLMSG_ERROR || ack.h.nlmsg_seq != req->nlmsg_seq) {
		errno = EPROTO;
		return -1;
	}
	e = NLMSG_DATA(&ack.h);
	if (e->error != 0) {
		errno = -e->error;
		return -1;
	}
	close(fd);
	return 0;
}

void sandbox_net_release(struct sandbox_net *net)
{
	if (net->msg)
		nlmsg_free(net->msg);
	if (net->sk)
		nl_socket_free(net->sk);
	net->msg = NULL;
	net->sk = NULL;
}
