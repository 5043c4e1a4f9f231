"""Integration tests of lodge-worker behind lodge-router: the real worker
with --router-fd, and Python playing the router on the other end of the
SOCK_SEQPACKET channel (src/common/proto.h: HELLO, FRONT, DONE, DRAIN).

Run:  LODGE_WORKER=/path/to/lodge-worker \
      /usr/bin/python3 -m unittest -v test_front

A FRONT carries a real connection: one end of a Unix (or TCP) stream pair
goes to the worker with SCM_RIGHTS, the test keeps a copy of it as the
router does (until the worker's DONE), and plays the client on the other
end.  Because of that copy, the client sees the end of its connection only
if the worker shuts it down (closing its own descriptor is not enough).
Every test checks the DONE of each connection it sent.
"""

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest
import urllib.parse

from lodgetest import (START_TIMEOUT, TIMEOUT, Conn, ConnectionClosed, Worker,
                       WorkerError, build_request, wait_for, worker_binary)

# proto.h
PROTO_VERSION = 3
MSG_HELLO, MSG_READY, MSG_CONN, MSG_DRAIN, MSG_RELOAD, MSG_FRONT, MSG_DONE = \
    range(1, 8)
MSG_FRONT_HTTPS = 0x1
MSG_MAX_PAYLOAD = 128 * 1024
# struct msg_front: u32 id, u32 flags, u16 len[6], u16 pad, and the C
# compiler's 2 bytes of padding that round it up to 24.
FRONT_RECORD = struct.Struct("<II6HHH")
assert FRONT_RECORD.size == 24
STRINGS = ("app", "remote_addr", "remote_port", "server_name", "server_port",
           "script_name")

MiB = 1 << 20


def message(mtype, payload=b""):
    return struct.pack("<II", mtype, len(payload)) + payload


def front_payload(fid, strings, data, flags=0):
    """The payload of a MSG_FRONT: strings is a dict (missing: "")."""
    values = [strings.get(k, "").encode() for k in STRINGS]
    return (FRONT_RECORD.pack(fid, flags, *[len(v) for v in values], 0, 0)
            + b"".join(values) + data)


class SockConn(Conn):
    """lodgetest's Conn around a socket we already have."""

    def __init__(self, sock, timeout=TIMEOUT):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False
        self.received = b""


class Front:
    """A connection sent to the worker in a FRONT: client is the test's
    side (a SockConn), peer the router's copy of the worker's side."""

    def __init__(self, fid, client, peer):
        self.id = fid
        self.client = client
        self.peer = peer

    def response(self, method="GET"):
        return self.client.read_response(method)

    def close(self):
        self.client.close()
        if self.peer is not None:
            self.peer.close()
            self.peer = None


class Router:
    """The test's end of the router channel."""

    def __init__(self, sock):
        self.sock = sock
        self.next_id = 1000
        self.pending = []    # messages read while waiting for others
        self.done = set()    # ids of the DONEs received
        self.copies = {}     # id -> the router's copy of the descriptor
        self.fronts = []

    def close(self):
        self.sock.close()
        for s in self.copies.values():
            s.close()
        self.copies.clear()
        for f in self.fronts:
            f.client.close()

    # -- receiving

    def recv(self, timeout=TIMEOUT):
        """(type, payload, fds) of the next message; None at EOF;
        socket.timeout if nothing comes."""
        self.sock.settimeout(timeout)
        data, fds, _flags, _addr = socket.recv_fds(self.sock,
                                                   MSG_MAX_PAYLOAD + 64, 4)
        if not data and not fds:
            return None
        mtype, mlen = struct.unpack_from("<II", data)
        assert mlen == len(data) - 8, "length %d for %d bytes" % (mlen,
                                                                  len(data))
        return mtype, data[8:], fds

    def _take(self, mtype):
        for i, m in enumerate(self.pending):
            if m[0] == mtype:
                return self.pending.pop(i)
        return None

    def expect(self, mtype, timeout=TIMEOUT):
        """The next message of that type (others are kept for later)."""
        m = self._take(mtype)
        deadline = time.monotonic() + timeout
        while m is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no message of type %d within %ds "
                                     "(got %r)" % (mtype, timeout,
                                                   self.pending))
            m = self.recv(left)
            if m is None:
                raise AssertionError("the channel closed while waiting for "
                                     "a message of type %d" % mtype)
            if m[0] == MSG_DONE:
                self._note_done(m)
                if mtype == MSG_DONE:
                    return m
                m = None
            elif m[0] != mtype:
                self.pending.append(m)
                m = None
        return m

    def _note_done(self, m):
        assert len(m[1]) == 4 and not m[2], "malformed DONE %r" % (m,)
        fid = struct.unpack("<I", m[1])[0]
        assert fid not in self.done, "two DONEs for %d" % fid
        self.done.add(fid)
        # The router closes its copy once the worker is done.
        copy = self.copies.pop(fid, None)
        if copy is not None:
            copy.close()

    def wait_done(self, ids, timeout=TIMEOUT):
        """Waits for the DONE of every id; fails naming the missing ones."""
        ids = set(ids)
        deadline = time.monotonic() + timeout
        while not ids <= self.done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no DONE for %s within %ds"
                                     % (sorted(ids - self.done), timeout))
            try:
                self.expect(MSG_DONE, left)
            except (socket.timeout, AssertionError):
                continue

    def wait_closed(self, timeout=TIMEOUT):
        """True if the channel reaches EOF within timeout (messages on the
        way are kept)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                m = self.recv(left)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if m is None:
                return True
            if m[0] == MSG_DONE:
                self._note_done(m)
            else:
                self.pending.append(m)

    # -- sending

    def send(self, mtype, payload=b"", fds=()):
        socket.send_fds(self.sock, [message(mtype, payload)], list(fds))

    def pair(self, tcp=False):
        """(worker's side, client's side) of a new stream connection."""
        if not tcp:
            return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ls:
            ls.bind(("127.0.0.1", 0))
            ls.listen(1)
            client = socket.create_connection(ls.getsockname())
            server, _ = ls.accept()
        return server, client

    def front(self, data, app="frontenv", flags=0, tcp=False, fid=None,
              **strings):
        """Sends a FRONT for a new connection whose first bytes (already
        "read by the router") are data; returns a Front."""
        if fid is None:
            self.next_id += 1
            fid = self.next_id
        strings = dict(strings, app=app)
        server, client = self.pair(tcp)
        self.send(MSG_FRONT, front_payload(fid, strings, data, flags),
                  [server.fileno()])
        self.copies[fid] = server
        f = Front(fid, SockConn(client), server)
        self.fronts.append(f)
        return f


class FrontWorker(Worker):
    """A lodge-worker with a router channel.  listen: also a --listen TCP
    socket (the readiness probe uses it); listen_fd: a TCP listening socket
    made here and passed as --listen-fd (then the probe uses that)."""

    def __init__(self, apps, router=True, listen=True, listen_fd=False,
                 **kw):
        super().__init__(apps, **kw)
        self.with_router = router
        self.with_listen = listen
        self.with_listen_fd = listen_fd
        self.router = None
        self.first_message = None

    def launch(self):
        binary = worker_binary()
        self.launches += 1
        args = [binary, "--apps", self.apps_dir, "--log-dir", self.log_dir]
        keep = []
        theirs = lsock = None
        if self.with_listen:
            self.port = self._free_port()
            args += ["--listen", "tcp:127.0.0.1:%d" % self.port]
        if self.with_listen_fd:
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(64)
            self.port = lsock.getsockname()[1]
            args += ["--listen-fd", str(lsock.fileno())]
            keep.append(lsock.fileno())
        if self.with_router:
            ours, theirs = socket.socketpair(socket.AF_UNIX,
                                             socket.SOCK_SEQPACKET)
            self.router = Router(ours)
            args += ["--router-fd", str(theirs.fileno())]
            keep.append(theirs.fileno())
        if self.threads is not None:
            args += ["--threads", str(self.threads)]
        args += self.extra_args
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.stderr_path = self.path("worker-stderr-%d.txt" % self.launches)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                env=env, cwd=self.tmp, start_new_session=True,
                pass_fds=keep)
        # The worker holds the only copies now: its exit closes them.
        for s in (theirs, lsock):
            if s is not None:
                s.close()
        self.pgid = self.proc.pid
        self.args = args
        if self.with_router:
            try:
                self.first_message = self.router.recv(START_TIMEOUT)
            except socket.timeout:
                raise WorkerError("no message on the router channel within "
                                  "%ds; stderr:\n%s" % (
                                      START_TIMEOUT, self.stderr_text()))
        if self.with_listen or self.with_listen_fd:
            self._wait_ready()
        else:
            self._wait_ready_router()

    @staticmethod
    def _free_port():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def _wait_ready_router(self):
        """Without a listener: a FRONT for no app gets the worker's 404
        once its threads serve."""
        f = self.router.front(build_request("GET", "/"), app="__probe__")
        try:
            r = f.response()
        except (OSError, ConnectionClosed) as e:
            raise WorkerError("the worker did not answer a FRONT: %s; "
                              "stderr:\n%s" % (e, self.stderr_text()))
        if r.status != 404:
            raise WorkerError("probe FRONT got %r" % r)
        self.router.wait_done([f.id])

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            if self.router is not None:
                self.router.close()


def body_json(testcase, resp):
    testcase.assertEqual(resp.status, 200, resp)
    testcase.assertTrue(resp.complete, resp)
    return json.loads(resp.body)


class FrontCase(unittest.TestCase):
    APPS = ("frontenv", "hello", "echo")
    OPTIONS = {}

    @classmethod
    def prepare(cls, worker):
        pass

    @classmethod
    def setUpClass(cls):
        cls.worker = FrontWorker(cls.APPS, prepare=cls.prepare, **cls.OPTIONS)
        cls.addClassCleanup(cls.worker.cleanup)
        cls.worker.start()

    def setUp(self):
        if not self.worker.alive():
            self.fail("lodge-worker is not running (%s); stderr:\n%s"
                      % (self.worker.describe_exit(),
                         self.worker.stderr_text()[-3000:]))
        self.router = self.worker.router
        self.log_start = self.worker.log_sizes()

    def tearDown(self):
        if not self.worker.alive():
            self.fail("lodge-worker died during this test (%s); stderr:\n%s"
                      % (self.worker.describe_exit(),
                         self.worker.stderr_text()[-3000:]))
        for f in self.router.fronts:
            f.close()
        self.router.fronts.clear()

    def assertEnded(self, front, what="the worker"):
        """The client sees the end of the connection although the router
        still holds a copy: the worker shut it down."""
        self.assertTrue(front.client.wait_closed(10),
                        "%s did not end the connection (got %r)"
                        % (what, front.client.buf[:300]))

    def roundtrip(self, data, method="GET", **kw):
        """One FRONT: its response, the end of its connection (while the
        router's copy is still open), its DONE."""
        f = self.router.front(data, **kw)
        r = f.response(method)
        self.assertEnded(f)
        self.router.wait_done([f.id])
        return f, r


class TestFront(FrontCase):
    OPTIONS = {"threads": 4}

    def test_hello_is_the_first_message(self):
        m = self.worker.first_message
        self.assertIsNotNone(m)
        self.assertEqual(m[0], MSG_HELLO, m)
        self.assertEqual(len(m[1]), 8)
        self.assertEqual(m[2], [])
        version, pid = struct.unpack("<II", m[1])
        self.assertEqual(version, PROTO_VERSION)
        self.assertEqual(pid, self.worker.proc.pid)

    def test_environ_from_the_router(self):
        req = build_request("GET", "/blog/a%20b/c?x=1",
                            host="other.example:8080", app="alice/hello")
        f, r = self.roundtrip(req, flags=MSG_FRONT_HTTPS,
                              remote_addr="192.0.2.7", remote_port="54321",
                              server_name="blog.example.com",
                              server_port="443", script_name="/blog")
        env = body_json(self, r)["environ"]
        self.assertEqual(env["REMOTE_ADDR"], "192.0.2.7")
        self.assertEqual(env["REMOTE_PORT"], "54321")
        self.assertEqual(env["SERVER_NAME"], "blog.example.com")
        self.assertEqual(env["SERVER_PORT"], "443")
        self.assertEqual(env["SCRIPT_NAME"], "/blog")
        self.assertEqual(env["PATH_INFO"], "/a b/c")
        self.assertEqual(env["QUERY_STRING"], "x=1")
        self.assertEqual(env["REQUEST_URI"], "/blog/a%20b/c?x=1")
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["HTTPS"], "on")
        self.assertEqual(env["HTTP_HOST"], "other.example:8080")
        self.assertNotIn("HTTP_X_LODGE_APP", env)
        self.assertFalse([k for k in env if "LODGE_APP" in k], env)

    def test_environ_defaults_when_the_router_says_nothing(self):
        f, r = self.roundtrip(build_request("GET", "/p/q",
                                            host="site.example"))
        env = body_json(self, r)["environ"]
        self.assertEqual(env["REMOTE_ADDR"], "")
        self.assertEqual(env["REMOTE_PORT"], "")
        self.assertEqual(env["SERVER_NAME"], "site.example")  # from Host
        self.assertEqual(env["SERVER_PORT"], "80")  # a Unix socket's default
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(env["PATH_INFO"], "/p/q")
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertNotIn("HTTPS", env)

    def test_server_port_default_of_a_tcp_connection(self):
        f = self.router.front(build_request("GET", "/"), tcp=True,
                              remote_addr="2001:db8::1", remote_port="1")
        port = f.peer.getsockname()[1]
        env = body_json(self, f.response())["environ"]
        self.router.wait_done([f.id])
        # The worker's default: the local port of the socket it got; the
        # client is the one the router named, not the socket's peer.
        self.assertEqual(env["SERVER_PORT"], str(port))
        self.assertEqual(env["REMOTE_ADDR"], "2001:db8::1")
        self.assertEqual(env["REMOTE_PORT"], "1")

    def test_server_name_default_of_a_tcp_connection(self):
        """No Host (HTTP/1.0) and no name from the router: SERVER_NAME is
        the local address of the socket the worker got (the port is the
        router's when it gives one)."""
        f = self.router.front(build_request("GET", "/", version="HTTP/1.0",
                                            host=None),
                              tcp=True, server_port="8080")
        addr = f.peer.getsockname()[0]
        env = body_json(self, f.response())["environ"]
        self.router.wait_done([f.id])
        self.assertEqual(env["SERVER_NAME"], addr)
        self.assertEqual(env["SERVER_PORT"], "8080")
        self.assertNotIn("HTTP_HOST", env)

    def test_script_name_and_path_info(self):
        rows = [
            # SCRIPT_NAME from the router, path -> SCRIPT_NAME, PATH_INFO
            ("/blog", "/blog", "/blog", ""),
            ("/blog", "/blog/", "/blog", "/"),
            ("/blog", "/blog/post/1", "/blog", "/post/1"),
            ("/blog", "/blogger/x", "/blog", "/blogger/x"),
            ("/blog", "/other", "/blog", "/other"),
            ("/blog/", "/blog/x", "/blog", "/x"),
            ("/", "/x", "", "/x"),
            ("/a/b", "/a/b/c", "/a/b", "/c"),
            ("/caf%C3%A9", "/caf%C3%A9/x", "/caf%C3%A9", "/caf\u00c3\u00a9/x"),
        ]
        for script, path, want_script, want_path in rows:
            with self.subTest(script=script, path=path):
                f, r = self.roundtrip(build_request("GET", path),
                                      script_name=script)
                env = body_json(self, r)["environ"]
                self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]),
                                 (want_script, want_path))
                f.close()

    def test_app_string_selects_the_app_not_the_header(self):
        f, r = self.roundtrip(build_request("GET", "/", app="alice/frontenv"),
                              app="hello")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"Hello, world!\n")
        f, r = self.roundtrip(build_request("GET", "/", app="alice/hello"),
                              app="frontenv")
        self.assertIn("environ", body_json(self, r))

    def test_unknown_app_is_404(self):
        f, r = self.roundtrip(build_request("GET", "/", app="alice/hello"),
                              app="nosuchapp")
        self.assertEqual(r.status, 404, r)
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEnded(f)

    def test_one_request_then_shutdown(self):
        # A keep-alive request and a pipelined second one: only the first
        # is answered, with Connection: close, and the connection ends
        # although the router's copy of it is still open.
        data = build_request("GET", "/") * 2
        f = self.router.front(data, app="hello")
        r = f.response()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEnded(f)
        self.assertEqual(f.client.buf, b"")
        self.router.wait_done([f.id])

    def test_shutdown_of_a_tcp_connection(self):
        f = self.router.front(build_request("GET", "/"), app="hello", tcp=True)
        r = f.response()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEnded(f)
        self.router.wait_done([f.id])

    def test_done_for_each_connection(self):
        fronts = [self.router.front(build_request("GET", "/"), app="hello")
                  for _ in range(12)]
        for f in fronts:
            self.assertEqual(f.response().status, 200)
            self.assertEnded(f)
        self.router.wait_done([f.id for f in fronts])

    def test_done_after_an_error_page(self):
        # A bad head in a FRONT (the router checks heads, but the worker
        # trusts nobody): 400, ended, DONE.
        f = self.router.front(
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
            app="hello")
        r = f.response()
        self.assertEqual(r.status, 400, r)
        self.assertEnded(f)
        self.router.wait_done([f.id])

    def test_done_when_the_client_goes_away(self):
        # The head is incomplete, the client leaves: the worker closes
        # the connection and says DONE.
        f = self.router.front(b"GET / HTTP/1.1\r\nHost: a\r\n", app="hello")
        f.client.sock.shutdown(socket.SHUT_WR)
        self.router.wait_done([f.id])

    def test_rest_of_the_head_arrives_later(self):
        f = self.router.front(b"GET / HTTP/1.1\r\n", app="hello")
        time.sleep(0.2)
        f.client.send(b"Host: a\r\n\r\n")
        r = f.response()
        self.assertEqual(r.body, b"Hello, world!\n")
        self.assertEnded(f)
        self.router.wait_done([f.id])

    def test_post_body_split_between_message_and_socket(self):
        body = os.urandom(MiB + 12345)
        head = build_request("POST", "/", body=body)[:-len(body)]
        first = 5000
        f = self.router.front(head + body[:first], app="frontenv")

        def rest():
            f.client.sock.sendall(body[first:])
        t = threading.Thread(target=rest, daemon=True)
        t.start()
        r = f.response()
        t.join(TIMEOUT)
        got = body_json(self, r)["body"]
        self.assertEqual(got, {"length": len(body),
                               "sha256": hashlib.sha256(body).hexdigest()})
        self.assertEnded(f)
        self.router.wait_done([f.id])

    def test_whole_body_in_the_message(self):
        body = b"a=1&b=2"
        f, r = self.roundtrip(build_request("POST", "/", body=body),
                              method="POST", app="echo")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body)

    def test_listener_still_serves_with_keep_alive(self):
        with self.worker.conn() as c:
            for _ in range(3):
                r = c.request("GET", "/", app="alice/hello")
                self.assertEqual(r.status, 200, r)
                self.assertFalse(r.has_token("Connection", "close"), r)


class TestFrontProcessMode(FrontCase):
    """A front connection for a process-mode app goes to the app's own
    process as a FRONT; the worker says DONE as it hands it over."""
    APPS = ("frontenv", "hello")
    OPTIONS = {"threads": 2, "extra_args": ["--request-timeout", "2"]}

    @classmethod
    def prepare(cls, worker):
        worker.write_file("apps/frontenv/lodge.ini", "interpreter = main\n")

    def test_environ_reaches_the_app_process(self):
        req = build_request("GET", "/mnt/x?y=2", host="h.example",
                            app="bob/hello")
        f = self.router.front(req, flags=MSG_FRONT_HTTPS,
                              remote_addr="198.51.100.9",
                              remote_port="4242", server_name="site.example",
                              server_port="8443", script_name="/mnt")
        r = f.response()
        out = body_json(self, r)
        env = out["environ"]
        self.assertNotEqual(out["pid"], self.worker.proc.pid,
                            "not served by the app's own process")
        self.assertEqual(env["REMOTE_ADDR"], "198.51.100.9")
        self.assertEqual(env["REMOTE_PORT"], "4242")
        self.assertEqual(env["SERVER_NAME"], "site.example")
        self.assertEqual(env["SERVER_PORT"], "8443")
        self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]),
                         ("/mnt", "/x"))
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["HTTPS"], "on")
        self.assertNotIn("HTTP_X_LODGE_APP", env)
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEnded(f, "the app's process")
        self.router.wait_done([f.id])

    def test_body_split_in_process_mode(self):
        body = os.urandom(300000)
        head = build_request("POST", "/", body=body)[:-len(body)]
        f = self.router.front(head + body[:1000])
        t = threading.Thread(target=lambda: f.client.sock.sendall(body[1000:]),
                             daemon=True)
        t.start()
        r = f.response()
        t.join(TIMEOUT)
        self.assertEqual(body_json(self, r)["body"],
                         {"length": len(body),
                          "sha256": hashlib.sha256(body).hexdigest()})
        self.assertEnded(f, "the app's process")
        self.router.wait_done([f.id])

    def test_many_in_turn(self):
        pids = set()
        for _ in range(5):
            f = self.router.front(build_request("GET", "/"))
            pids.add(body_json(self, f.response())["pid"])
            self.assertEnded(f, "the app's process")
            self.router.wait_done([f.id])
        self.assertEqual(len(pids), 1)
        self.assertNotIn(self.worker.proc.pid, pids)

    def test_request_timeout_in_the_app_process(self):
        f = self.router.front(build_request("GET", "/?sleep=5"))
        r = f.response()
        self.assertEqual(r.status, 504, r)
        self.assertEnded(f, "the app's process")
        self.router.wait_done([f.id])
        self.worker.wait_log("frontenv", r"lodge: request timeout: frontenv "
                             r"GET / after 2 s \(answered 504",
                             since=self.log_start.get("frontenv", 0))

    def test_sub_interpreter_app_beside_it(self):
        f, r = self.roundtrip(build_request("GET", "/"), app="hello")
        self.assertEqual(r.body, b"Hello, world!\n")
        self.assertEnded(f)


class TestRequestTimeout(FrontCase):
    """--request-timeout 1: 504 if nothing was sent yet, a cut response
    otherwise; on front connections and on a --listen-fd listener."""
    APPS = ("frontenv",)
    OPTIONS = {"threads": 1, "listen": False, "listen_fd": True,
               "extra_args": ["--request-timeout", "1"]}

    def wait_log_line(self, what):
        return self.worker.wait_log(
            "frontenv",
            r"lodge: request timeout: frontenv GET / after 1 s \(%s" % what,
            since=self.log_start.get("frontenv", 0))

    def release_file(self):
        """A path the app waits for; created at the end of the test at the
        latest, so that the app's thread never outlives it."""
        path = self.worker.path("release-%s" % self.id().rsplit(".", 1)[1])

        def release():
            open(path, "w").close()
        self.addCleanup(release)
        return path, release

    def test_front_request_gets_504(self):
        path, release = self.release_file()
        f = self.router.front(build_request(
            "GET", "/?wait=" + urllib.parse.quote(path)))
        r = f.response()
        self.assertEqual(r.status, 504, r)
        self.assertTrue(r.has_token("Connection", "close"), r)
        self.assertEnded(f)
        # DONE as the connection is given up, while the app still runs.
        self.router.wait_done([f.id])
        self.wait_log_line("answered 504")
        # The app's thread comes back when the app returns: with one
        # thread, the next request is served after that.
        release()
        f2 = self.router.front(build_request("GET", "/"))
        self.assertEqual(f2.response().status, 200)
        self.router.wait_done([f2.id])

    def test_listen_fd_request_gets_504(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/?sleep=4")
            self.assertEqual(r.status, 504, r)
            self.assertTrue(c.wait_closed(10))
        self.wait_log_line("answered 504")
        with self.worker.conn() as c:
            self.assertEqual(c.request("GET", "/").status, 200)

    def test_started_response_is_cut(self):
        path, release = self.release_file()
        f = self.router.front(build_request(
            "GET", "/?stream=1&wait=" + urllib.parse.quote(path)))
        r = f.response()
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.chunked, r)
        self.assertFalse(r.complete, "a cut response looks complete: %r" % r)
        self.assertEnded(f)
        self.router.wait_done([f.id])
        self.wait_log_line("response cut short")
        release()
        f2 = self.router.front(build_request("GET", "/"))
        self.assertEqual(f2.response().status, 200)

    def test_quick_request_is_not_touched(self):
        f, r = self.roundtrip(build_request("GET", "/"))
        self.assertEqual(r.status, 200, r)


class TestFrontBadMessages(unittest.TestCase):
    """A router that sends garbage is cut off: the worker shuts the
    channel down (the router sees EOF), closes any descriptor that came
    with it, and keeps serving its --listen-fd listener.  One worker per
    case."""

    def start(self):
        w = FrontWorker(["hello"], threads=2, listen=False, listen_fd=True)
        self.addCleanup(w.cleanup)
        w.start()
        return w

    def check_cut_off(self, w, send, with_fd=True):
        worker_side, client = socket.socketpair(socket.AF_UNIX,
                                                socket.SOCK_STREAM)
        try:
            send(w.router, worker_side.fileno() if with_fd else None)
            worker_side.close()  # the worker holds the only copy now
            self.assertTrue(w.router.wait_closed(TIMEOUT),
                            "the channel was not cut off; stderr:\n%s"
                            % w.stderr_text()[-2000:])
            if with_fd:
                client.settimeout(10)
                self.assertEqual(client.recv(100), b"",
                                 "the descriptor was not closed")
        finally:
            client.close()
        self.assertTrue(wait_for(lambda: "router channel: bad message ("
                                 in w.stderr_text(), 10),
                        w.stderr_text()[-2000:])
        self.assertTrue(w.alive(), w.stderr_text()[-2000:])
        r = w.request("GET", "/", app="alice/hello")
        self.assertEqual(r.status, 200, r)

    def front_with(self, fid=1, flags=0, **strings):
        def send(router, fd):
            strings.setdefault("app", "hello")
            router.send(MSG_FRONT, front_payload(fid, strings,
                                                 build_request("GET", "/"),
                                                 flags), [fd])
        return send

    def test_bad_string(self):
        self.check_cut_off(self.start(),
                           self.front_with(remote_addr="1.2.3.4 x"))

    def test_non_digit_port(self):
        self.check_cut_off(self.start(), self.front_with(server_port="8o"))

    def test_id_zero(self):
        self.check_cut_off(self.start(), self.front_with(fid=0))

    def test_unknown_flag(self):
        self.check_cut_off(self.start(), self.front_with(flags=0x80))

    def test_no_descriptor(self):
        def send(router, fd):
            router.send(MSG_FRONT, front_payload(7, {"app": "hello"},
                                                 build_request("GET", "/")))
        self.check_cut_off(self.start(), send, with_fd=False)

    def test_no_request_bytes(self):
        def send(router, fd):
            router.send(MSG_FRONT, front_payload(7, {"app": "hello"}, b""),
                        [fd])
        self.check_cut_off(self.start(), send)

    def test_descriptor_not_a_stream_socket(self):
        r, wfd = os.pipe()
        self.addCleanup(os.close, r)

        def send(router, fd):
            router.send(MSG_FRONT, front_payload(7, {"app": "hello"},
                                                 build_request("GET", "/")),
                        [wfd])
            os.close(wfd)
        self.check_cut_off(self.start(), send, with_fd=False)

    def test_message_a_router_never_sends(self):
        def send(router, fd):
            router.send(MSG_CONN, build_request("GET", "/"), [fd])
        self.check_cut_off(self.start(), send)


class TestLeaving(unittest.TestCase):
    """The worker leaves without losing a FRONT the router already sent:
    DRAIN, serve until the router answers DRAIN, then exit.  One worker
    per case."""

    def start(self, **kw):
        w = FrontWorker(["hello", "frontenv"], threads=2, **kw)
        self.addCleanup(w.cleanup)
        w.start()
        return w

    def wait_exit(self, w, timeout=TIMEOUT):
        try:
            return w.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("lodge-worker did not exit within %ds; stderr:\n%s"
                      % (timeout, w.stderr_text()[-3000:]))

    def test_idle_exit_waits_for_the_drain_answer(self):
        w = self.start(extra_args=["--idle-exit", "1"])
        m = w.router.expect(MSG_DRAIN, 30)
        self.assertEqual((m[1], m[2]), (b"", []))
        # A FRONT the router sent before it read our DRAIN, right before
        # its answer: still ours.
        f = w.router.front(build_request("GET", "/"), app="hello")
        w.router.send(MSG_DRAIN)
        r = f.response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"Hello, world!\n")
        w.router.wait_done([f.id])
        self.assertEqual(self.wait_exit(w), 0, w.stderr_text()[-3000:])
        self.assertIn("router channel: the router answered DRAIN",
                      w.stderr_text())

    def test_sigterm_serves_until_the_answer(self):
        w = self.start()
        w.signal(signal.SIGTERM)
        w.router.expect(MSG_DRAIN)
        # Not answered yet: the worker keeps serving what comes.
        for _ in range(2):
            f = w.router.front(build_request("GET", "/"), app="hello")
            self.assertEqual(f.response().status, 200)
            w.router.wait_done([f.id])
        self.assertTrue(w.alive(), "left before the router answered DRAIN")
        w.router.send(MSG_DRAIN)
        self.assertEqual(self.wait_exit(w), 0, w.stderr_text()[-3000:])

    def test_sigterm_finishes_a_request_in_flight(self):
        w = self.start()
        f = w.router.front(build_request("GET", "/?sleep=1.5"))
        w.wait_log("frontenv", "frontenv: sleeping")
        w.signal(signal.SIGTERM)
        w.router.expect(MSG_DRAIN)
        w.router.send(MSG_DRAIN)
        r = f.response()
        self.assertEqual(r.status, 200, r)
        w.router.wait_done([f.id])
        self.assertEqual(self.wait_exit(w), 0, w.stderr_text()[-3000:])

    def test_no_answer_leaves_after_a_while(self):
        w = self.start()
        w.signal(signal.SIGTERM)
        w.router.expect(MSG_DRAIN)
        self.assertEqual(self.wait_exit(w), 0, w.stderr_text()[-3000:])
        self.assertIn("no answer to DRAIN", w.stderr_text())

    def test_router_gone_other_listener_keeps_serving(self):
        w = self.start()
        w.router.sock.close()
        self.assertTrue(wait_for(lambda: "closed by the router" in
                                 w.stderr_text(), 10), w.stderr_text())
        r = w.request("GET", "/", app="alice/hello")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(w.alive())

    def test_router_gone_without_listener_exits(self):
        w = self.start(listen=False)
        # A request in flight is finished first.
        f = w.router.front(build_request("GET", "/?sleep=1"))
        w.wait_log("frontenv", "frontenv: sleeping")
        w.router.sock.close()
        r = f.response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.wait_exit(w), 0, w.stderr_text()[-3000:])
        self.assertIn("no other listener", w.stderr_text())


class TestReplacement(unittest.TestCase):
    """A successor inherits the router channel (its own HELLO); the old
    process stops reading it once the successor is ready, and its
    requests in flight still say DONE on it."""

    def test_successor_takes_the_channel(self):
        w = FrontWorker(["frontenv"], threads=2)
        self.addCleanup(w.cleanup)
        w.start()
        old = w.proc.pid
        slow = w.router.front(build_request("GET", "/?sleep=2"))
        w.wait_log("frontenv", "frontenv: sleeping")
        w.signal(signal.SIGHUP)
        m = w.router.expect(MSG_HELLO)
        version, new = struct.unpack("<II", m[1])
        self.assertEqual(version, PROTO_VERSION)
        self.assertNotEqual(new, old)
        self.assertTrue(wait_for(lambda: "the new process reads it now" in
                                 w.stderr_text(), TIMEOUT),
                        w.stderr_text()[-3000:])
        # From now on the new process alone reads what the router sends.
        fronts = [w.router.front(build_request("GET", "/")) for _ in range(10)]
        pids = [body_json(self, f.response())["pid"] for f in fronts]
        self.assertEqual(pids, [new] * len(fronts))
        w.router.wait_done([f.id for f in fronts])
        # The old one finishes its request and says DONE for it.
        self.assertEqual(body_json(self, slow.response())["pid"], old)
        self.assertTrue(slow.client.wait_closed(10))
        w.router.wait_done([slow.id])
        self.assertEqual(w.proc.wait(TIMEOUT), 0)
        f = w.router.front(build_request("GET", "/"))
        self.assertEqual(body_json(self, f.response())["pid"], new)
        w.router.wait_done([f.id])

    def test_old_process_gives_up_at_its_deadline(self):
        # A request the old process can't finish within --drain-timeout:
        # it ends the connection and says DONE before it leaves (the
        # channel lives on with the successor, so the router would not
        # notice otherwise).
        w = FrontWorker(["frontenv"], threads=2,
                        extra_args=["--drain-timeout", "1"])
        self.addCleanup(w.cleanup)
        w.start()
        slow = w.router.front(build_request("GET", "/?sleep=8"))
        w.wait_log("frontenv", "frontenv: sleeping")
        w.signal(signal.SIGHUP)
        w.router.expect(MSG_HELLO)
        self.assertEqual(w.proc.wait(TIMEOUT), 0)
        self.assertTrue(slow.client.wait_closed(10),
                        "the old process left the connection open")
        self.assertEqual(slow.client.buf, b"")
        w.router.wait_done([slow.id])


if __name__ == "__main__":
    unittest.main()
