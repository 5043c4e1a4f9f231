#!/usr/bin/python3
"""Writes the seed corpus of the fuzzers (fuzz/corpus/{http,uwsgi,msg}/).

Run with Debian's python3 from the top of the tree:

    /usr/bin/python3 fuzz/make_corpus.py [OUTDIR]

The seeds are small, valid or nearly valid inputs that start the fuzzers
off deep inside each format: request heads with every body framing, uwsgi
packets as Apache's mod_proxy_uwsgi sends them (and in the harness's
"KEY=VALUE" line form), and one datagram of each internal message type.
The output is deterministic, so the checked-in corpus can be regenerated
and compared.  scripts/fuzz.sh copies it before a run and never writes
into it.
"""

import os
import struct
import sys

# proto.h, in enum order.
(MSG_HELLO, MSG_READY, MSG_CONN, MSG_DRAIN, MSG_RELOAD, MSG_FRONT, MSG_DONE,
 MSG_START, MSG_WORKER, MSG_NOUSER, MSG_FAILED, MSG_BADPEER) = range(1, 13)
MSG_STATS, MSG_RELOAD_APP, MSG_QUEUES = 13, 14, 15
LODGE_PROTO_VERSION = 3


def http_seeds():
    return {
        "get": b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "get-headers": b"GET /blog/x?a=1&b=%20 HTTP/1.1\r\n"
                       b"Host: blog.example.com:8080\r\nUser-Agent: curl/8\r\n"
                       b"Accept: */*\r\nX-Lodge-App: alice/blog\r\n"
                       b"Connection: keep-alive, Upgrade\r\n\r\n",
        "http10": b"\r\nGET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "post-length": b"POST /form HTTP/1.1\r\nHost: h\r\n"
                       b"Content-Type: text/plain\r\nContent-Length: 5\r\n"
                       b"Content-Length: 5\r\n\r\nhello",
        "post-chunked": b"POST /up HTTP/1.1\r\nHost: h\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n1a;ext=1;q=\"a\\\"b\"\r\n"
                        b"abcdefghijklmnopqrstuvwxyz\r\n0\r\n"
                        b"Trailer-One: x\r\nT2: \t y\r\n\r\n"
                        b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        "expect": b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                  b"Content-Length: 3\r\n\r\nabc",
        "absolute": b"GET http://Example.com:81/p?q HTTP/1.1\r\n"
                    b"Host: example.com:81\r\n\r\n",
        "options-star": b"OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
        "cl-and-te": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n b\r\n\r\n",
        "bare-lf": b"GET / HTTP/1.1\nHost: h\n\n",
        "http2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "chunked-only": b"4\r\nWiki\r\n5;a=b\r\npedia\r\n0\r\n\r\n",
        "te-twice": b"POST / HTTP/1.1\r\nHost: h\r\n"
                    b"Transfer-Encoding: chunked, chunked\r\n\r\n",
        # Just past HTTP_MAX_TRAILER: also lifts libFuzzer's input size
        # limit (the largest seed) above it.
        "big-trailer": b"POST / HTTP/1.1\r\nHost: h\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
                       + b"".join(b"T%03d: %s\r\n" % (i, b"v" * 70)
                                  for i in range(110)) + b"\r\n",
    }


def uwsgi_packet(pairs, mod1=0, mod2=0):
    data = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                    for k, v in pairs)
    return struct.pack("<BHB", mod1, len(data), mod2) + data


# What Apache 2.4.71 (Debian 12) sends besides the header fields, in its
# order, as captured from a real mod_proxy_uwsgi.
APACHE = [
    (b"PATH", b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"),
    (b"SERVER_SIGNATURE", b""),
    (b"SERVER_SOFTWARE", b"Apache/2.4.71 (Debian)"),
    (b"SERVER_NAME", b"blog.example.com"),
    (b"SERVER_ADDR", b"127.0.0.1"),
    (b"SERVER_PORT", b"443"),
    (b"REMOTE_ADDR", b"192.0.2.7"),
    (b"DOCUMENT_ROOT", b"/var/www/html"),
    (b"REQUEST_SCHEME", b"https"),
    (b"CONTEXT_PREFIX", b""),
    (b"CONTEXT_DOCUMENT_ROOT", b"/var/www/html"),
    (b"SERVER_ADMIN", b"[no address given]"),
    (b"SCRIPT_FILENAME", b"proxy:uwsgi://lodge//x y"),
    (b"REMOTE_PORT", b"53412"),
    (b"GATEWAY_INTERFACE", b"CGI/1.1"),
    (b"SERVER_PROTOCOL", b"HTTP/1.1"),
    (b"HTTPS", b"on"),
]


def lines(pairs):
    return b"".join(k + b"=" + v + b"\n" for k, v in pairs)


def uwsgi_seeds():
    get = [(b"LODGE_APP", b"alice/blog"), (b"PATH_INFO", b"/x y"),
           (b"HTTP_HOST", b"blog.example.com"),
           (b"HTTP_USER_AGENT", b"curl/7.88.1"), (b"HTTP_ACCEPT", b"*/*"),
           (b"HTTP_X_LODGE_APP", b"alice/blog")] + APACHE + [
           (b"REQUEST_METHOD", b"GET"), (b"QUERY_STRING", b"a=1"),
           (b"REQUEST_URI", b"/blog/x%20y?a=1"), (b"SCRIPT_NAME", b"/blog"),
           (b"HTTP_AUTHORIZATION", b"Basic YTpi")]
    post = [(b"HTTP_HOST", b"h"), (b"CONTENT_TYPE", b"application/json"),
            (b"CONTENT_LENGTH", b"13"), (b"HTTP_EXPECT", b"100-continue"),
            (b"REQUEST_METHOD", b"POST"), (b"REQUEST_URI", b"/api"),
            (b"LODGE_APP", b"bob/api")]
    cgi = [(b"REQUEST_METHOD", b"GET"), (b"SCRIPT_NAME", b"/app"),
           (b"PATH_INFO", b"/a b/\xc3\xa9%"), (b"QUERY_STRING", b"q=1 2"),
           (b"SERVER_NAME", b"h.example")]
    hop = [(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/"),
           (b"HTTP_HOST", b"h"), (b"HTTP_CONNECTION", b"Upgrade"),
           (b"HTTP_UPGRADE", b"websocket"), (b"HTTP_TRANSFER_ENCODING", b"chunked"),
           (b"HTTP_CONTENT_LENGTH", b"5"), (b"HTTP_PROXY", b"http://x"),
           (b"HTTP_TE", b"trailers"), (b"HTTP_KEEP_ALIVE", b"1"),
           (b"HTTP_COOKIE", b"a=1"), (b"HTTP_COOKIE", b"b=2")]
    return {
        "apache-get": uwsgi_packet(get),
        "apache-post-body": uwsgi_packet(post) + b'{"hello": 1}\n',
        "absolute": uwsgi_packet([(b"REQUEST_METHOD", b"GET"),
                                  (b"REQUEST_URI", b"https://h.example:8443/p?q"),
                                  (b"HTTP_HOST", b"other")]),
        "options-star": uwsgi_packet([(b"REQUEST_METHOD", b"OPTIONS"),
                                      (b"REQUEST_URI", b"*"),
                                      (b"HTTP_HOST", b"[::1]")]),
        "cgi-fallback": uwsgi_packet(cgi),
        "hop-by-hop": uwsgi_packet(hop),
        "injection": uwsgi_packet([(b"REQUEST_METHOD", b"GET"),
                                   (b"REQUEST_URI", b"/"),
                                   (b"HTTP_HOST", b"h"),
                                   (b"HTTP_X_A", b"1\r\nTransfer-Encoding: chunked")]),
        "duplicate": uwsgi_packet([(b"REQUEST_METHOD", b"GET"),
                                   (b"REQUEST_URI", b"/"),
                                   (b"REQUEST_URI", b"/admin")]),
        "bad-modifier2": uwsgi_packet([(b"A", b"b")], mod2=1),
        "lines-get": lines([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/x"),
                            (b"HTTP_HOST", b"h"), (b"HTTP_X_FOO_BAR", b"1"),
                            (b"CONTENT_LENGTH", b"0")]),
        "lines-apache": lines(get),
        "lines-cgi": lines(cgi + [(b"HTTP_DNT", b"1\r")]),
    }


def msg(type_, payload=b"", has_fd=False):
    return bytes([1 if has_fd else 0]) + struct.pack("=II", type_, len(payload)) + payload


def front_payload(id_, flags, strs, data):
    rec = struct.pack("=II6HH", id_, flags, *[len(s) for s in strs], 0)
    return rec + b"".join(strs) + data


def stats_payload(apps):
    """A MSG_STATS payload (proto.h's struct msg_stats and
    struct msg_stats_app) for apps: [(name, reason)]."""
    buckets = [5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    rec = struct.pack("=IIII Q 5Q 13Q Q", 4242, len(apps), 1, 0,
                      sum(buckets), 0, sum(buckets) - 2, 0, 1, 1, *buckets,
                      123456)
    for i, (name, reason) in enumerate(apps):
        rec += struct.pack("=72s BBBB I q II Q 200s", name, i % 2, 0, 1, 0,
                           i + 1, 1795600000000 + i, i, 1, 10 * i, reason)
    return rec


def queues_payload(users):
    """A MSG_QUEUES payload (proto.h's struct msg_queues and
    struct msg_queue_user) for users: [(name, queued)]."""
    rec = struct.pack("=II9Q", len(users), 1, 2, 1, 0, 0, 0, 0, 0, 0, 0)
    for name, queued in users:
        rec += struct.pack("=40sII9Q", name, queued, 0,
                           0, 0, 0, 0, 0, 1, 3, 1, 0)
    return rec


def msg_seeds():
    head = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    strs = [b"blog", b"192.0.2.7", b"53412", b"blog.example.com", b"443",
            b"/blog"]
    front = front_payload(7, 1, strs, head + b"body")
    return {
        "hello": msg(MSG_HELLO, struct.pack("=II", LODGE_PROTO_VERSION, 4242)),
        "ready": msg(MSG_READY),
        "drain": msg(MSG_DRAIN),
        "reload": msg(MSG_RELOAD),
        "conn": msg(MSG_CONN, head, has_fd=True),
        "front": msg(MSG_FRONT, front, has_fd=True),
        "front-empty-strings": msg(MSG_FRONT, front_payload(1, 0, [b""] * 6, b"x"),
                                   has_fd=True),
        "front-payload-only": b"\x01" + front,
        "done": msg(MSG_DONE, struct.pack("=I", 7)),
        "start": msg(MSG_START, b"alice"),
        "worker": msg(MSG_WORKER, struct.pack("=I", 3) + b"bob.smith-2",
                      has_fd=True),
        "nouser": msg(MSG_NOUSER, b"nobody_"),
        "failed": msg(MSG_FAILED, b"carol"),
        "badpeer": msg(MSG_BADPEER, struct.pack("=I", 3)),
        "stats": msg(MSG_STATS, stats_payload(
            [(b"blog", b""), (b"shop", b"SyntaxError: invalid syntax "
                                       b"(views.py, line 3)")])),
        "stats-no-apps": msg(MSG_STATS, stats_payload([])),
        "reload-app": msg(MSG_RELOAD_APP, b"blog"),
        "queues": msg(MSG_QUEUES, queues_payload([(b"alice", 3),
                                                  (b"bob.smith-2", 0)])),
        "queues-no-users": msg(MSG_QUEUES, queues_payload([])),
    }


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    for kind, seeds in (("http", http_seeds()), ("uwsgi", uwsgi_seeds()),
                        ("msg", msg_seeds())):
        d = os.path.join(top, kind)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("make_corpus: %d seeds in %s" % (len(seeds), d))


if __name__ == "__main__":
    main()
