/*
 * fuzz_msg.c: libFuzzer harness for the pure decoders of src/common/msg.c,
 * which every lodge process runs on what a peer (possibly a compromised
 * worker) sends it.  The first input byte says whether a descriptor came
 * with the datagram (its low bit) and the rest is the datagram, given to
 * msg_decode; a FRONT it accepts goes on to msg_front_decode.  The rest
 * of the input is also read as a FRONT payload directly and as a user
 * name, so the fuzzer reaches those checks without building a header.
 * A STATS it accepts goes on to msg_stats_decode, whose accepted apps
 * must obey the strings' rules; a QUEUES to msg_queues_decode, whose
 * accepted users must have valid names.
 *
 * Properties, besides the sanitizers' checks:
 *   - a decoded message's payload is the datagram's, and each type's
 *     rules hold (user names pass msg_user_check, sizes are exact);
 *   - a decoded FRONT encodes back, with msg_front_encode, to exactly the
 *     same bytes, in a buffer of exactly its size, and never fits in less;
 *   - msg_front_encode never writes past the size it is given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_msg: %s:%d: %s\n", __FILE__,     \
			    __LINE__, #cond);                                  \
			abort();                                               \
		}                                                              \
	} while (0)

static void check_front(const struct msg *m)
{
	static struct msg_front_view v;
	const char *str[MSG_FRONT_NSTR], *errstr = NULL;
	size_t n;
	uint8_t *out;

	if (msg_front_decode(m, &v, &errstr) < 0) {
		CHECK(errstr != NULL);
		return;
	}
	CHECK(v.id != 0);
	CHECK((v.flags & ~MSG_FRONT_HTTPS) == 0);
	CHECK(v.nbytes > 0);
	CHECK(
	    v.bytes > m->payload && v.bytes + v.nbytes == m->payload + m->len);
	for (int i = 0; i < MSG_FRONT_NSTR; i++) {
		CHECK(v.str_len[i] <= MSG_FRONT_MAX_STR);
		CHECK(strlen(v.str[i]) == v.str_len[i]);
		for (size_t k = 0; k < v.str_len[i]; k++)
			CHECK(v.str[i][k] >= 0x21 && v.str[i][k] <= 0x7e);
		str[i] = v.str[i];
	}
	if (m->len > MSG_MAX_PAYLOAD)
		return;

	/* The round trip: same bytes, exactly m->len of them. */
	out = malloc(m->len);
	CHECK(out != NULL);
	n = msg_front_encode(
	    out, m->len, v.id, v.flags, str, v.bytes, v.nbytes);
	CHECK(n == m->len);
	CHECK(memcmp(out, m->payload, m->len) == 0);
	free(out);
	/* One byte less, or much less, does not fit; a buffer of exactly
	 * that size lets AddressSanitizer see any write past it. */
	for (size_t size = 0; size < m->len; size = size * 2 + 1) {
		out = malloc(size ? size : 1);
		CHECK(out != NULL);
		CHECK(msg_front_encode(out, size, v.id, v.flags, str, v.bytes,
		          v.nbytes) == 0);
		free(out);
	}
	out = malloc(m->len - 1);
	CHECK(out != NULL);
	CHECK(msg_front_encode(
	          out, m->len - 1, v.id, v.flags, str, v.bytes, v.nbytes) == 0);
	free(out);
}

static void check_stats(const struct msg *m)
{
	static struct msg_stats_app apps[MSG_STATS_MAX_APPS];
	struct msg_stats st;
	const char *errstr = NULL;
	uint64_t sum = 0;

	if (msg_stats_decode(m, &st, apps, &errstr) < 0) {
		CHECK(errstr != NULL);
		return;
	}
	CHECK(st.napps <= MSG_STATS_MAX_APPS);
	CHECK(m->len == sizeof(st) + st.napps * sizeof(apps[0]));
	for (int i = 0; i < MSG_STATS_NBUCKETS; i++)
		sum += st.buckets[i];
	CHECK(sum == st.served);
	for (uint32_t i = 0; i < st.napps; i++) {
		size_t nl = strnlen(apps[i].name, sizeof(apps[i].name));
		size_t rl = strnlen(apps[i].reason, sizeof(apps[i].reason));

		CHECK(nl < sizeof(apps[i].name) && rl < sizeof(apps[i].reason));
		CHECK(msg_app_check((const uint8_t *)apps[i].name, nl) == 0);
		for (size_t k = 0; k < rl; k++)
			CHECK(apps[i].reason[k] >= 0x20 &&
			      apps[i].reason[k] <= 0x7e);
	}
}

static void check_queues(const struct msg *m)
{
	static struct msg_queue_user users[MSG_QUEUES_MAX_USERS];
	struct msg_queues q;
	const char *errstr = NULL;

	if (msg_queues_decode(m, &q, users, &errstr) < 0) {
		CHECK(errstr != NULL);
		return;
	}
	CHECK(q.nusers <= MSG_QUEUES_MAX_USERS);
	CHECK(m->len == sizeof(q) + q.nusers * sizeof(users[0]));
	CHECK((q.flags & ~MSG_QUEUES_FIRST) == 0);
	for (uint32_t i = 0; i < q.nusers; i++) {
		size_t nl = strnlen(users[i].name, sizeof(users[i].name));

		CHECK(nl < sizeof(users[i].name) && users[i].pad == 0);
		CHECK(msg_user_check((const uint8_t *)users[i].name, nl) == 0);
	}
}

static void check_decoded(
    const uint8_t *buf, size_t n, int has_fd, const struct msg *m)
{
	CHECK(n >= sizeof(struct msg_hdr));
	CHECK(m->payload == buf + sizeof(struct msg_hdr));
	CHECK(m->len == n - sizeof(struct msg_hdr));
	CHECK(m->len <= MSG_MAX_PAYLOAD);
	switch (m->type) {
	case MSG_HELLO:
		CHECK(!has_fd && m->len == sizeof(struct msg_hello));
		break;
	case MSG_READY:
	case MSG_DRAIN:
	case MSG_RELOAD:
		CHECK(!has_fd && m->len == 0);
		break;
	case MSG_CONN:
		CHECK(has_fd);
		break;
	case MSG_FRONT:
		CHECK(has_fd && m->len > sizeof(struct msg_front));
		check_front(m);
		break;
	case MSG_DONE:
		CHECK(!has_fd && m->len == sizeof(struct msg_done));
		break;
	case MSG_BADPEER:
		CHECK(!has_fd && m->len == sizeof(struct msg_badpeer));
		break;
	case MSG_START:
	case MSG_NOUSER:
	case MSG_FAILED:
		CHECK(!has_fd && msg_user_check(m->payload, m->len) == 0);
		break;
	case MSG_STATS:
		CHECK(!has_fd && m->len >= sizeof(struct msg_stats));
		check_stats(m);
		break;
	case MSG_RELOAD_APP:
		CHECK(!has_fd && msg_app_check(m->payload, m->len) == 0);
		break;
	case MSG_QUEUES:
		CHECK(!has_fd && m->len >= sizeof(struct msg_queues));
		check_queues(m);
		break;
	case MSG_WORKER:
		CHECK(has_fd && m->len > sizeof(struct msg_worker));
		CHECK(msg_user_check(m->payload + sizeof(struct msg_worker),
		          m->len - sizeof(struct msg_worker)) == 0);
		break;
	default:
		CHECK(!"msg_decode accepted an unknown type");
	}
}

static void check_user(const uint8_t *name, size_t len)
{
	int is_ok = len >= 1 && len <= MSG_MAX_USER && name[0] != '-';

	for (size_t i = 0; is_ok && i < len; i++) {
		uint8_t c = name[i];

		is_ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		        c == '_' || c == '.' || c == '-';
	}
	CHECK(msg_user_check(name, len) == (is_ok ? 0 : -1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg m;
	const char *errstr = NULL;
	int has_fd;

	if (size == 0)
		return 0;
	has_fd = data[0] & 1;
	m.fd = 1234;
	if (msg_decode(data + 1, size - 1, has_fd, &m, &errstr) == 0) {
		CHECK(m.fd == 1234);
		check_decoded(data + 1, size - 1, has_fd, &m);
	} else {
		CHECK(errstr != NULL);
	}

	/* The same bytes as a FRONT payload and as a user name. */
	m.type = MSG_FRONT;
	m.payload = data + 1;
	m.len = size - 1;
	check_front(&m);
	check_user(data + 1, size - 1);
	return 0;
}
