"""Integration tests of lodge-router on its own.

The real lodge-router binary (LODGE_ROUTER) runs with listeners this test
creates and a SOCK_SEQPACKET channel whose other end the test holds:
Python plays lodged (it reads HELLO, START and BADPEER and answers with
WORKER, NOUSER or FAILED) and the workers (FakeWorker: a channel per
"worker", HELLO, FRONT messages with the connection's descriptor, the
answer written on that descriptor, DONE).  So every rule of the router
is checked by itself: routing by header, host map and uwsgi var; the
router's own answers (400, 404, 408, 431, 502, 503, 504) with their log
lines; workers that die or misbehave; queues, caps and balancing;
forwarded headers; the DRAIN handshake; SIGHUP and SIGTERM.  When
lodge-worker knows --router-fd (LODGE_WORKER), one test puts a real
worker behind the router.

Run with Debian's python3 only:
  cd tests/integration && LODGE_ROUTER=../../build/lodge-router \\
      /usr/bin/python3 -m unittest -v test_router
LODGE_TEST_LOG=1 prints each router's log at the end of its test.
"""

import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import lodgetest
from lodgetest import TIMEOUT, Conn, build_request, wait_for

(MSG_HELLO, MSG_READY, MSG_CONN, MSG_DRAIN, MSG_RELOAD, MSG_FRONT, MSG_DONE,
 MSG_START, MSG_WORKER, MSG_NOUSER, MSG_FAILED, MSG_BADPEER, MSG_STATS,
 MSG_RELOAD_APP, MSG_QUEUES) = range(1, 16)
PROTO_VERSION = 3
# struct msg_queues: u32 nusers, u32 flags, u64 answers[9]; then nusers
# struct msg_queue_user: char name[40], u32 queued, u32 pad, u64 answers[9].
QUEUES_REC = struct.Struct("<II9Q")
QUEUE_USER = struct.Struct("<40sII9Q")
QUEUES_STATUSES = (400, 404, 408, 413, 431, 502, 503, 504, "other")
QUEUES_FIRST = 0x1
HDR = struct.Struct("<II")
# struct msg_front: u32 id, u32 flags, u16 len[6], u16 pad, then 2 bytes
# of padding to its 4-byte alignment (sizeof is 24).
FRONT_REC = struct.Struct("<II6HH2x")
FRONT_HTTPS = 0x1
STRS = ("app", "remote_addr", "remote_port", "server_name", "server_port",
        "script_name")


def router_binary():
    path = os.environ.get("LODGE_ROUTER")
    if not path:
        raise unittest.SkipTest("set LODGE_ROUTER to the lodge-router binary")
    if not wait_for(lambda: os.access(path, os.X_OK), 30, 0.2):
        raise AssertionError("LODGE_ROUTER=%s is not executable" % path)
    return path


def msg(mtype, payload=b""):
    return HDR.pack(mtype, len(payload)) + payload


def recv_msg(sock):
    """(type, payload, fds) of one message, or None at EOF."""
    data, fds, _flags, _addr = socket.recv_fds(sock, 256 * 1024, 4)
    if not data and not fds:
        return None
    mtype, n = HDR.unpack_from(data)
    assert n == len(data) - HDR.size, "bad length from the router"
    return mtype, data[HDR.size:], fds


def uwsgi_packet(pairs, modifier1=0):
    body = b""
    for k, v in pairs:
        k = k.encode() if isinstance(k, str) else k
        v = v.encode() if isinstance(v, str) else v
        body += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return struct.pack("<BHB", modifier1, len(body), 0) + body


class Front:
    """A FRONT message as a worker gets it."""

    def __init__(self, payload, fd):
        rec = FRONT_REC.unpack_from(payload)
        self.id, self.flags = rec[0], rec[1]
        self.pad = rec[8]
        off = FRONT_REC.size
        self.strs = {}
        for name, n in zip(STRS, rec[2:8]):
            self.strs[name] = payload[off:off + n].decode("ascii")
            off += n
        self.data = payload[off:]
        self.sock = socket.socket(fileno=fd)
        self.sock.settimeout(TIMEOUT)

    @property
    def is_https(self):
        return bool(self.flags & FRONT_HTTPS)

    def echo(self):
        d = dict(self.strs)
        d["id"] = self.id
        d["https"] = self.is_https
        d["data"] = self.data.decode("latin-1")
        return json.dumps(d).encode()


class FakeWorker:
    """One worker's channel, played by the test.

    mode "answer": every FRONT is answered at once (200, a JSON echo of
    what the worker was told), shut down, closed, and DONE is sent.
    mode "hold": FRONTs wait in self.fronts until the test answers them.
    mode "deaf": the channel is never read (a worker that stopped).
    """

    def __init__(self, router, user, wid, mode="answer", hello=True,
                 keep_copy=True):
        self.router = router
        self.user = user
        self.id = wid
        self.mode = mode
        self.sock, theirs = socket.socketpair(socket.AF_UNIX,
                                              socket.SOCK_SEQPACKET)
        self.cond = threading.Condition()
        self.fronts = []     # every FRONT received, in order
        self.msgs = []       # the other messages' types
        self.is_closed = False
        self.send_lock = threading.Lock()
        if hello:
            self.send(MSG_HELLO, struct.pack("<II", PROTO_VERSION, os.getpid()))
        router.lodged_send(MSG_WORKER, struct.pack("<I", wid) + user.encode(),
                           theirs)
        # lodged keeps a copy of the router's end (so that a restarted
        # router gets it again): the channel outlives the router, and
        # only ends for the worker when lodged drops it too.
        self.lodged_copy = theirs if keep_copy else None
        if not keep_copy:
            theirs.close()
        self.thread = None
        if mode != "deaf":
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def send(self, mtype, payload=b"", fd=None):
        with self.send_lock:
            if fd is None:
                self.sock.send(msg(mtype, payload))
            else:
                socket.send_fds(self.sock, [msg(mtype, payload)], [fd])

    def send_raw(self, data, fds=()):
        with self.send_lock:
            socket.send_fds(self.sock, [data], list(fds))

    def _run(self):
        while True:
            try:
                m = recv_msg(self.sock)
            except OSError:
                m = None
            if m is None:
                break
            mtype, payload, fds = m
            if mtype == MSG_FRONT and len(fds) == 1:
                f = Front(payload, fds[0])
                with self.cond:
                    self.fronts.append(f)
                    self.cond.notify_all()
                if self.mode == "answer":
                    self.answer(f)
            else:
                for fd in fds:
                    os.close(fd)
                with self.cond:
                    self.msgs.append(mtype)
                    self.cond.notify_all()
        with self.cond:
            self.is_closed = True
            self.cond.notify_all()

    def answer(self, f, status=200, body=None, shutdown=True, done=True):
        """Answers f on its connection, closes it, sends DONE."""
        if body is None:
            body = f.echo()
        try:
            f.sock.sendall(b"HTTP/1.1 %d Fine\r\nContent-Length: %d\r\n"
                           b"Connection: close\r\n\r\n" % (status, len(body))
                           + body)
            if shutdown:
                f.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        f.sock.close()
        if done:
            self.done(f)

    def done(self, f):
        try:
            self.send(MSG_DONE, struct.pack("<I", f.id))
        except OSError:
            pass

    def wait_fronts(self, n, timeout=TIMEOUT):
        with self.cond:
            self.cond.wait_for(lambda: len(self.fronts) >= n, timeout)
            if len(self.fronts) < n:
                raise AssertionError("worker %s (id %d): %d FRONT(s), "
                                     "expected %d" % (self.user, self.id,
                                                      len(self.fronts), n))
            return list(self.fronts)

    def wait_msg(self, mtype, timeout=TIMEOUT):
        with self.cond:
            return self.cond.wait_for(lambda: mtype in self.msgs, timeout)

    def wait_closed(self, timeout=TIMEOUT):
        with self.cond:
            return self.cond.wait_for(lambda: self.is_closed, timeout)

    def drop_lodged_copy(self):
        if self.lodged_copy is not None:
            self.lodged_copy.close()
            self.lodged_copy = None

    def die(self):
        """Ends the channel as a dying process would (the reader thread
        sees the end too: a plain close would not wake its recv)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.thread is not None:
            self.thread.join(TIMEOUT)

    def close(self):
        self.die()
        self.drop_lodged_copy()
        for f in self.fronts:
            f.sock.close()


class Router:
    """A lodge-router process with Python as its lodged.

    listeners: specs like "http", "http:trusted", "uwsgi", "unix:http"
    (a Unix socket).  on_start: what lodged does with a START: "worker"
    (a FakeWorker of worker_mode for that user), "nouser", "failed", or
    None (nothing: requests wait).
    """

    def __init__(self, args=(), listeners=("http",), on_start="worker",
                 worker_mode="answer", wrapper=()):
        self.tmp = tempfile.mkdtemp(prefix="lodge-router-test-")
        self.lodged, theirs = socket.socketpair(socket.AF_UNIX,
                                                socket.SOCK_SEQPACKET)
        self.lodged_lock = threading.Lock()
        self.on_start = on_start
        self.worker_mode = worker_mode
        self.cond = threading.Condition()
        self.starts = []
        self.badpeers = []
        self.other_msgs = []
        # From MSG_QUEUES: the router's answers added up, by user ("" for
        # no user's) and status, and each user's last queue depth.
        self.answers = {}
        self.queued = {}
        self.nreports = 0
        self.workers = []
        self.next_wid = 100
        self.log_lines = []
        self.addrs = []
        socks = []
        cmd = list(wrapper) + [router_binary(), "--lodged-fd",
                               str(theirs.fileno())]
        for i, spec in enumerate(listeners):
            parts = spec.split(":")
            if parts[0] == "unix":
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                path = os.path.join(self.tmp, "front%d.sock" % i)
                s.bind(path)
                self.addrs.append(path)
                parts = parts[1:]
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.1", 0))
                self.addrs.append(s.getsockname())
            s.listen(4096)
            socks.append(s)
            cmd += ["--listen", "%d:%s" % (s.fileno(), ":".join(parts))]
        cmd += list(args)
        self.proc = subprocess.Popen(
            cmd, pass_fds=[theirs.fileno()] + [s.fileno() for s in socks],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        theirs.close()
        for s in socks:
            s.close()
        self.log_thread = threading.Thread(target=self._read_log, daemon=True)
        self.log_thread.start()
        self.lodged.settimeout(TIMEOUT)
        try:
            m = recv_msg(self.lodged)
        except socket.timeout:
            m = None
        if m is None:
            self.stop()
            raise AssertionError("no HELLO from the router:\n" + self.logtext())
        mtype, payload, fds = m
        assert mtype == MSG_HELLO and not fds, m
        version, pid = struct.unpack("<II", payload)
        assert version == PROTO_VERSION and pid == self.proc.pid, (version, pid)
        self.lodged.settimeout(None)
        self.lodged_thread = threading.Thread(target=self._run_lodged,
                                              daemon=True)
        self.lodged_thread.start()

    # -- lodged's side

    def lodged_send(self, mtype, payload=b"", fd=None):
        with self.lodged_lock:
            if fd is None:
                self.lodged.send(msg(mtype, payload))
            else:
                fd = fd.fileno() if hasattr(fd, "fileno") else fd
                socket.send_fds(self.lodged, [msg(mtype, payload)], [fd])

    def _run_lodged(self):
        while True:
            try:
                m = recv_msg(self.lodged)
            except OSError:
                return
            if m is None:
                return
            mtype, payload, fds = m
            for fd in fds:
                os.close(fd)
            if mtype == MSG_START:
                user = payload.decode()
                with self.cond:
                    self.starts.append(user)
                    self.cond.notify_all()
                try:
                    if self.on_start == "worker":
                        self.add_worker(user)
                    elif self.on_start == "nouser":
                        self.lodged_send(MSG_NOUSER, payload)
                    elif self.on_start == "failed":
                        self.lodged_send(MSG_FAILED, payload)
                except OSError:
                    return
            elif mtype == MSG_QUEUES:
                self._queues(payload)
            elif mtype == MSG_BADPEER:
                wid = struct.unpack("<I", payload)[0]
                # lodged ends that worker (here: drops its copy of the
                # channel, so the fake worker sees the end).
                with self.cond:
                    for w in self.workers:
                        if w.id == wid:
                            w.drop_lodged_copy()
                    self.badpeers.append(wid)
                    self.cond.notify_all()
            else:
                with self.cond:
                    self.other_msgs.append(mtype)
                    self.cond.notify_all()

    def _queues(self, payload):
        nusers, flags, *answers = QUEUES_REC.unpack_from(payload)
        assert len(payload) == QUEUES_REC.size + nusers * QUEUE_USER.size
        with self.cond:
            self.nreports += 1
            if flags & QUEUES_FIRST:
                self.queued = {}
            self._add_answers("", answers)
            for i in range(nusers):
                name, queued, pad, *ua = QUEUE_USER.unpack_from(
                    payload, QUEUES_REC.size + i * QUEUE_USER.size)
                assert pad == 0
                name = name.rstrip(b"\0").decode()
                self.queued[name] = queued
                self._add_answers(name, ua)
            self.cond.notify_all()

    def _add_answers(self, user, answers):
        for status, n in zip(QUEUES_STATUSES, answers):
            if n:
                key = (user, status)
                self.answers[key] = self.answers.get(key, 0) + n

    def wait_report(self, predicate, timeout=TIMEOUT):
        """Waits until predicate(answers, queued) holds for the reports
        received; False if it never did."""
        with self.cond:
            return self.cond.wait_for(
                lambda: predicate(self.answers, self.queued), timeout)

    def add_worker(self, user, mode=None, hello=True, keep_copy=True):
        with self.cond:
            wid = self.next_wid
            self.next_wid += 1
        w = FakeWorker(self, user, wid, mode or self.worker_mode, hello,
                       keep_copy)
        with self.cond:
            self.workers.append(w)
            self.cond.notify_all()
        return w

    def wait_workers(self, n, timeout=TIMEOUT):
        with self.cond:
            self.cond.wait_for(lambda: len(self.workers) >= n, timeout)
            assert len(self.workers) >= n, "%d worker(s), expected %d" % (
                len(self.workers), n)
            return list(self.workers)

    def wait_badpeer(self, wid, timeout=TIMEOUT):
        with self.cond:
            return self.cond.wait_for(lambda: wid in self.badpeers, timeout)

    def wait_starts(self, n, timeout=TIMEOUT):
        with self.cond:
            self.cond.wait_for(lambda: len(self.starts) >= n, timeout)
            return list(self.starts)

    # -- the router's log

    def _read_log(self):
        for line in self.proc.stderr:
            with self.cond:
                self.log_lines.append(line.decode("utf-8", "replace").rstrip())
                self.cond.notify_all()

    def logtext(self):
        with self.cond:
            return "\n".join(self.log_lines)

    def wait_log(self, *words, timeout=TIMEOUT, after=0):
        """The first log line holding every word (among the lines from
        number after on); AssertionError if none comes in time."""
        def find():
            for line in self.log_lines[after:]:
                if all(w in line for w in words):
                    return line
            return None
        with self.cond:
            line = self.cond.wait_for(find, timeout)
        if line is None:
            raise AssertionError("no log line with %r in:\n%s" % (
                words, self.logtext()))
        return line

    def nfds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    # -- clients

    def conn(self, i=0, timeout=TIMEOUT):
        return Conn(self.addrs[i], timeout)

    def request(self, app="alice/blog", i=0, method="GET", target="/", **kw):
        with self.conn(i) as c:
            return c.request(method, target, app=app, **kw)

    # -- the end

    def stop(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_thread.join(TIMEOUT)
        self.proc.stderr.close()
        try:
            self.lodged.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lodged.close()
        for w in list(self.workers):
            w.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if os.environ.get("LODGE_TEST_LOG"):
            sys.stderr.write("\n--- router log ---\n%s\n" % self.logtext())


def setUpModule():
    # 2000 idle connections and their router ends: raise our own limit
    # (the router raises its own to the hard limit by itself).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 16384:
        want = 16384
    else:
        want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class RouterTest(unittest.TestCase):
    def router(self, *args, **kw):
        r = Router(*args, **kw)
        self.addCleanup(r.stop)
        return r

    def assert_page(self, resp, status, retry_after=None):
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(resp.complete, resp)
        self.assertEqual(resp.header("Content-Type"),
                         "text/html; charset=utf-8")
        self.assertTrue(resp.has_token("Connection", "close"), resp)
        self.assertIn(b"%d" % status, resp.body)
        self.assertEqual(resp.header("Retry-After"), retry_after)


class TestRouting(RouterTest):
    def test_header_route_and_front_message(self):
        """X-Lodge-App picks the user: START for the first request, a
        worker from lodged, then a FRONT that carries exactly the bytes
        read, the app and the socket's meta; the worker's answer reaches
        the client."""
        r = self.router()
        req = build_request("GET", "/hello?x=1", app="alice/blog",
                            headers=[("X-Other", "1")])
        with r.conn() as c:
            c.send(req)
            resp = c.read_response()
            client_port = c.sock.getsockname()[1]
        self.assertEqual(resp.status, 200, resp)
        echo = json.loads(resp.body)
        self.assertEqual(r.wait_starts(1), ["alice"])
        self.assertEqual(echo["app"], "blog")
        self.assertEqual(echo["data"].encode("latin-1"), req)
        self.assertEqual(echo["remote_addr"], "127.0.0.1")
        self.assertEqual(echo["remote_port"], str(client_port))
        self.assertEqual(echo["server_name"], "")
        self.assertEqual(echo["server_port"], str(r.addrs[0][1]))
        self.assertEqual(echo["script_name"], "")
        self.assertFalse(echo["https"])
        self.assertNotEqual(echo["id"], 0)
        w = r.wait_workers(1)[0]
        self.assertEqual(w.fronts[0].pad, 0)
        # A second request goes to the same worker, without a START.
        resp = r.request("alice/other")
        self.assertEqual(json.loads(resp.body)["app"], "other")
        self.assertEqual(len(w.fronts), 2)
        self.assertNotEqual(w.fronts[0].id, w.fronts[1].id)
        self.assertEqual(r.starts, ["alice"])

    def test_body_bytes_already_read_go_along(self):
        """Body bytes that arrived with the head are in the FRONT; the
        rest stays on the socket for the worker."""
        r = self.router(worker_mode="hold")
        body = b"0123456789" * 10
        req = build_request("POST", "/up", app="alice/blog", body=body)
        with r.conn() as c:
            c.send(req[:len(req) - 40])
            w = r.wait_workers(1)[0]
            f = w.wait_fronts(1)[0]
            self.assertTrue(req.startswith(f.data), f.data)
            c.send(req[len(req) - 40:])
            rest = b""
            while len(f.data) + len(rest) < len(req):
                rest += f.sock.recv(65536)
            self.assertEqual(f.data + rest, req)
            w.answer(f, body=b"ok")
            self.assertEqual(c.read_response().body, b"ok")

    def test_host_map_route_and_sighup(self):
        """--route host: the Host header (port dropped, any case) through
        the map; bad lines are logged with file:line; SIGHUP reads the
        map again, and a map that cannot be read keeps the old one."""
        tmp = tempfile.mkdtemp(prefix="lodge-router-map-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "hosts")
        with open(path, "w") as f:
            f.write("# hosts\nblog.example.com alice/blog\n"
                    "bad line with four\nshop.example.com bob/.shop\n")
        r = self.router(["--route", "host", "--host-map", path])
        r.wait_log("%s:3:" % path, "line skipped")
        r.wait_log("%s:4:" % path, "line skipped")
        resp = r.request(None, host="Blog.Example.COM:8080")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["app"], "blog")
        self.assertEqual(r.starts, ["alice"])
        # The header does not count with host routes.
        self.assert_page(r.request("alice/blog", host="nope.example.com"), 404)
        r.wait_log("404", "host not in the host map")
        self.assert_page(r.request(None, host="shop.example.com"), 404)
        # A new map on SIGHUP.
        with open(path + ".new", "w") as f:
            f.write("shop.example.com bob/shop\n")
        os.rename(path + ".new", path)
        # (The first map had 1 good line too: wait for the new report.)
        mark = len(r.log_lines)
        r.proc.send_signal(signal.SIGHUP)
        r.wait_log("host map", "1 hosts", after=mark)
        resp = r.request(None, host="shop.example.com")
        self.assertEqual(json.loads(resp.body)["app"], "shop")
        self.assert_page(r.request(None, host="blog.example.com"), 404)
        # A map that cannot be read: the old one stays.
        os.unlink(path)
        r.proc.send_signal(signal.SIGHUP)
        r.wait_log("the old map (1 hosts) stays")
        resp = r.request(None, host="shop.example.com")
        self.assertEqual(resp.status, 200, resp)

    def test_host_map_missing_at_start(self):
        """A host map that cannot be read at start: the router says why
        and exits 1 (lodged restarts it)."""
        cmd_tmp = tempfile.mkdtemp(prefix="lodge-router-map-")
        self.addCleanup(shutil.rmtree, cmd_tmp, True)
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with a, b, socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            p = subprocess.run(
                [router_binary(), "--lodged-fd", str(b.fileno()), "--listen",
                 "%d:http" % s.fileno(), "--route", "host", "--host-map",
                 os.path.join(cmd_tmp, "none")],
                pass_fds=[b.fileno(), s.fileno()], capture_output=True,
                timeout=TIMEOUT)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"No such file or directory", p.stderr)

    def test_uwsgi_var_route(self):
        """A uwsgi listener with --route var: LODGE_APP picks the route;
        the FRONT carries an HTTP head built from the vars, then the body
        bytes that followed the packet; the meta comes from the vars."""
        r = self.router(["--route", "var"], listeners=("uwsgi",),
                        worker_mode="hold")
        pkt = uwsgi_packet([
            ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/blog/up?x=1"),
            ("QUERY_STRING", "x=1"), ("SCRIPT_NAME", "/blog"),
            ("PATH_INFO", "/up"), ("HTTP_HOST", "shop.example.com"),
            ("CONTENT_LENGTH", "11"), ("CONTENT_TYPE", "text/plain"),
            ("REMOTE_ADDR", "203.0.113.5"), ("REMOTE_PORT", "50123"),
            ("SERVER_NAME", "shop.example.com"), ("SERVER_PORT", "443"),
            ("HTTPS", "on"), ("LODGE_APP", "bob/shop"),
            ("HTTP_X_LODGE_APP", "alice/blog")])
        with r.conn() as c:
            c.send(pkt + b"hello")
            w = r.wait_workers(1)[0]
            self.assertEqual(w.user, "bob")
            f = w.wait_fronts(1)[0]
            self.assertEqual(f.strs["app"], "shop")
            self.assertEqual(f.strs["remote_addr"], "203.0.113.5")
            self.assertEqual(f.strs["remote_port"], "50123")
            self.assertEqual(f.strs["server_name"], "shop.example.com")
            self.assertEqual(f.strs["server_port"], "443")
            self.assertEqual(f.strs["script_name"], "/blog")
            self.assertTrue(f.is_https)
            head, sep, body = f.data.partition(b"\r\n\r\n")
            self.assertEqual(sep, b"\r\n\r\n")
            lines = head.split(b"\r\n")
            self.assertEqual(lines[0], b"POST /blog/up?x=1 HTTP/1.1")
            self.assertIn(b"Host: shop.example.com", lines)
            self.assertIn(b"Content-Length: 11", lines)
            self.assertIn(b"Connection: close", lines)
            self.assertEqual(body, b"hello")
            c.send(b" world")
            self.assertEqual(f.sock.recv(100), b" world")
            w.answer(f, body=b"done")
            self.assertEqual(c.read_response().body, b"done")

    def test_uwsgi_header_route_and_bad_packets(self):
        """uwsgi with --route header: HTTP_X_LODGE_APP; a bad packet is a
        400, a packet without a route a 404."""
        r = self.router(listeners=("uwsgi",))
        base = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/"),
                ("HTTP_HOST", "x.example")]
        with r.conn() as c:
            c.send(uwsgi_packet(base + [("HTTP_X_LODGE_APP", "alice/blog")]))
            resp = c.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["app"], "blog")
        with r.conn() as c:
            c.send(uwsgi_packet(base + [("LODGE_APP", "alice/blog")]))
            self.assert_page(c.read_response(), 404)
        r.wait_log("404", "no HTTP_X_LODGE_APP var")
        for name, pkt in [
                ("modifier1", uwsgi_packet(base, modifier1=5)),
                ("empty", b"\x00\x00\x00\x00"),
                ("junk", b"\x00\x05\x00\x00\x01\x00A\x09\x00"),
                ("no method", uwsgi_packet([("REQUEST_URI", "/"),
                                            ("HTTP_X_LODGE_APP", "alice/b")]))]:
            with self.subTest(name), r.conn() as c:
                c.send(pkt)
                self.assert_page(c.read_response(), 400)
        r.wait_log("400", "bad uwsgi packet")
        r.wait_log("400", "uwsgi vars make no HTTP request")
        # More fields than a worker takes: 431.
        many = [("HTTP_X_F%d" % i, "v") for i in range(150)]
        with r.conn() as c:
            c.send(uwsgi_packet(base + many + [("HTTP_X_LODGE_APP", "a/b")]))
            self.assert_page(c.read_response(), 431)
        r.wait_log("431", "too many header fields")

    def test_unknown_route_is_404(self):
        """No X-Lodge-App, a bad one, or two: 404 with the reason in the
        log, and lodged is not asked."""
        r = self.router()
        cases = [
            ([], "no X-Lodge-App header"),
            ([("X-Lodge-App", "alice/../etc")], "app name"),
            ([("X-Lodge-App", "Alice/blog")], "bad user name"),
            ([("X-Lodge-App", "alice")], "no '/'"),
            ([("X-Lodge-App", "alice/.git")], "starts with '.'"),
            ([("X-Lodge-App", "alice/a"), ("X-Lodge-App", "alice/a")],
             "more than once"),
        ]
        for headers, why in cases:
            with self.subTest(why), r.conn() as c:
                self.assert_page(c.request(headers=headers), 404)
                r.wait_log("404", why)
        # HEAD: the same page's head, without its body.
        with r.conn() as c:
            resp = c.request("HEAD")
        self.assertEqual(resp.status, 404)
        self.assertEqual(resp.body, b"")
        self.assertGreater(int(resp.header("Content-Length")), 0)
        self.assertEqual(r.starts, [])


class TestAnswers(RouterTest):
    def test_nouser_is_404(self):
        r = self.router(on_start="nouser")
        self.assert_page(r.request("mallory/app"), 404)
        self.assertEqual(r.wait_starts(1), ["mallory"])
        r.wait_log("404", "mallory/app", "not a hosted user")
        # Asked again, the same answer.
        self.assert_page(r.request("mallory/app"), 404)

    def test_failed_is_502(self):
        r = self.router(on_start="failed")
        self.assert_page(r.request("alice/blog"), 502)
        r.wait_log("502", "alice/blog", "no worker can be started")

    def test_worker_dies_with_request_502(self):
        """The worker's channel closes with a request in flight: the
        client gets a 502 and the connection ends, although the dead
        worker's descriptor (held by the test) is still open."""
        r = self.router(worker_mode="hold")
        with r.conn() as c:
            c.send(build_request(app="alice/blog"))
            w = r.wait_workers(1)[0]
            f = w.wait_fronts(1)[0]
            w.die()
            self.assert_page(c.read_response(), 502)
            self.assertTrue(c.wait_closed(TIMEOUT))
            r.wait_log("502", "alice/blog", "gone")
            f.sock.close()

    def test_garbage_from_worker_cuts_it_off(self):
        """Anything a worker has no business sending cuts it off: its
        requests in flight get a 502, lodged gets BADPEER with its id, its
        channel is closed, and descriptors it sent are closed too."""
        r = self.router(on_start=None)
        fds_before = r.nfds()
        x, y = socket.socketpair()
        with x, y:
            garbage = [
                ("READY", lambda w: w.send(MSG_READY)),
                ("unknown type", lambda w: w.send_raw(msg(99))),
                ("short", lambda w: w.send_raw(b"\x07\x00\x00")),
                ("length", lambda w: w.send_raw(HDR.pack(MSG_DONE, 8)
                                                + b"\x01\x00\x00\x00")),
                ("HELLO version", lambda w: w.send(
                    MSG_HELLO, struct.pack("<II", 1, 1))),
                ("DONE with fd", lambda w: w.send(
                    MSG_DONE, struct.pack("<I", 1), x.fileno())),
                ("FRONT", lambda w: w.send(MSG_FRONT, b"\x00" * 40, x.fileno())),
                ("two fds", lambda w: w.send_raw(msg(MSG_DRAIN),
                                                 [x.fileno(), y.fileno()])),
                ("START", lambda w: w.send(MSG_START, b"bob")),
            ]
            for i, (name, send_bad) in enumerate(garbage):
                with self.subTest(name):
                    user = "u%d" % i
                    w = r.add_worker(user, mode="hold")
                    with r.conn() as c:
                        c.send(build_request(app=user + "/app"))
                        f = w.wait_fronts(1)[0]
                        send_bad(w)
                        self.assert_page(c.read_response(), 502)
                        self.assertTrue(c.wait_closed(TIMEOUT))
                    self.assertTrue(r.wait_badpeer(w.id), r.logtext())
                    self.assertTrue(w.wait_closed(), "channel still open")
                    r.wait_log("worker %s (id %d)" % (user, w.id), "cut off")
                    f.sock.close()
        # Every channel, connection and stray descriptor is closed again
        # (none more than at the start; one fewer was seen once on a
        # loaded machine, while the router was still settling).
        self.assertTrue(wait_for(lambda: r.nfds() <= fds_before),
                        "router holds %d descriptors, had %d" % (
                            r.nfds(), fds_before))
        r.wait_log("bad message (more than one descriptor)")
        r.wait_log("bad message (HELLO for protocol version 1")
        # The router still serves.
        w = r.add_worker("alice")
        self.assertEqual(r.request("alice/blog").status, 200)

    def test_done_for_unknown_or_other_id_is_ignored(self):
        """A DONE naming no connection, or another worker's connection,
        changes nothing: that connection stays open until its own
        worker's DONE."""
        r = self.router(on_start=None)
        a = r.add_worker("alice", mode="hold")
        b = r.add_worker("bob", mode="hold")
        with r.conn() as c:
            c.send(build_request(app="alice/blog"))
            f = a.wait_fronts(1)[0]
            b.send(MSG_DONE, struct.pack("<I", f.id))
            b.send(MSG_DONE, struct.pack("<I", 12345))
            # The worker answers without shutting the socket down and
            # closes its copy: the router's copy keeps it open.
            a.answer(f, body=b"x", shutdown=False, done=False)
            self.assertEqual(c.read_response().body, b"x")
            self.assertFalse(c.wait_closed(1.0))
            a.done(f)
            self.assertTrue(c.wait_closed(TIMEOUT))
        self.assertEqual(r.badpeers, [])
        self.assertFalse(b.is_closed)

    def test_queue_full_is_503(self):
        """Beyond --queue-max waiting requests of one user: 503 with
        Retry-After: 1; the waiting ones are served once a worker comes."""
        r = self.router(["--queue-max", "2", "--verbose"], on_start=None)
        conns = [r.conn() for _ in range(2)]
        for c in conns:
            c.send(build_request(app="alice/blog"))
        r.wait_log("queued for alice", "2 waiting")
        self.assert_page(r.request("alice/blog"), 503, retry_after="1")
        r.wait_log("503", "queue full")
        r.add_worker("alice")
        for c in conns:
            with c:
                self.assertEqual(c.read_response().status, 200)

    def test_queues_and_answers_reported_to_lodged(self):
        """The router tells lodged, at most once a second, each user's
        queue depth and the answers it gave itself, by user and status
        (for lodgectl metrics): counted once each, and a queue that
        empties is reported as 0."""
        r = self.router(["--queue-max", "2"], on_start=None)
        conns = [r.conn() for _ in range(2)]
        for c in conns:
            c.send(build_request(app="alice/blog"))
        self.assertTrue(r.wait_report(lambda a, q: q.get("alice") == 2),
                        (r.answers, r.queued))
        self.assert_page(r.request("alice/blog"), 503, retry_after="1")
        self.assert_page(r.request("alice/blog"), 503, retry_after="1")
        with r.conn() as c:
            c.send(b"GARBAGE\r\n\r\n")
            self.assert_page(c.read_response(), 400)
        self.assert_page(r.request(None), 404)
        self.assertTrue(r.wait_report(
            lambda a, q: a.get(("alice", 503)) == 2
            and a.get(("", 400)) == 1 and a.get(("", 404)) == 1),
            (r.answers, r.queued))
        r.add_worker("alice")
        for c in conns:
            with c:
                self.assertEqual(c.read_response().status, 200)
        self.assertTrue(r.wait_report(lambda a, q: q.get("alice", 0) == 0),
                        (r.answers, r.queued))
        # Nothing more happens: no report, and nothing counted twice.
        time.sleep(2.5)
        n = r.nreports
        time.sleep(1.5)
        self.assertEqual(r.nreports, n)
        self.assertEqual(r.answers, {("alice", 503): 2, ("", 400): 1,
                                     ("", 404): 1})

    def test_queue_timeout_is_504(self):
        r = self.router(["--queue-timeout", "1"], on_start=None)
        t0 = time.monotonic()
        self.assert_page(r.request("alice/blog"), 504)
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)
        r.wait_log("504", "alice/blog", "no worker took the request in 1 s")
        self.assertEqual(r.starts[0], "alice")

    def test_start_asked_again_while_waiting(self):
        """lodged does not answer: the router asks again while requests
        still wait, but not for every request."""
        r = self.router(["--queue-timeout", "10"], on_start=None)
        conns = [r.conn() for _ in range(5)]
        for c in conns:
            c.send(build_request(app="alice/blog"))
        self.assertEqual(r.wait_starts(2, timeout=8), ["alice", "alice"])
        r.add_worker("alice")
        for c in conns:
            with c:
                self.assertEqual(c.read_response().status, 200)
        self.assertLess(len(r.starts), 5)

    def test_bad_heads_are_400(self):
        r = self.router()
        cases = [
            (b"GARBAGE\r\n\r\n", "bad head"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nX-Lodge-App: alice/b\r\n"
             b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
             "Transfer-Encoding"),
            (b"GET / HTTP/1.1\r\nHost: x\r\n bad fold\r\n\r\n", "bad head"),
            (b"GET / HTTP/1.1\nHost: x\n\n", "bad head"),
        ]
        for data, why in cases:
            with self.subTest(data=data), r.conn() as c:
                c.send(data)
                self.assert_page(c.read_response(), 400)
                r.wait_log("400", why)
        self.assertEqual(r.starts, [])

    def test_empty_lines_trickled_are_400(self):
        """Empty lines sent one by one before a request: after a few the
        router refuses, so the head parser never runs more than a bounded
        number of times per connection."""
        r = self.router()
        with r.conn() as c:
            for _ in range(3000):
                if not c.send_quietly(b"\r\n"):
                    break
                if select.select([c.sock], [], [], 0.001)[0]:
                    break
            resp = c.read_response()
        self.assert_page(resp, 400)
        r.wait_log("400", "too many empty lines")

    def test_huge_head_is_431(self):
        r = self.router()
        with r.conn() as c:
            c.send_quietly(build_request(app="alice/blog",
                                         headers=[("X-Big", "a" * 70000)]))
            self.assert_page(c.read_response(), 431)
        r.wait_log("431", "bad head")
        self.assertEqual(r.starts, [])

    def test_slow_head_is_closed(self):
        """--head-timeout: a partial head gets a 408, a connection that
        sent nothing is closed without a word."""
        r = self.router(["--head-timeout", "1"])
        with r.conn() as partial, r.conn() as silent:
            partial.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Lo")
            self.assertEqual(silent.read_until_close(TIMEOUT), b"")
            self.assert_page(partial.read_response(), 408)
            self.assertTrue(partial.wait_closed(TIMEOUT))
        # And the router still serves.
        self.assertEqual(r.request("alice/blog").status, 200)


class TestFairness(RouterTest):
    def test_idle_connections_do_not_block(self):
        """2000 connections that send nothing: another client is served.
        (The kernel holds a TCP connection that sent nothing for a second
        before the router gets it: TCP_DEFER_ACCEPT.)"""
        r = self.router()
        idle = []
        try:
            for _ in range(2000):
                s = socket.create_connection(r.addrs[0], TIMEOUT)
                idle.append(s)
            self.assertEqual(r.request("alice/blog").status, 200)
            # Once the idle ones are really open in the router, again.
            self.assertTrue(wait_for(lambda: r.nfds() > 2000, 30), r.nfds())
            self.assertEqual(r.request("alice/blog").status, 200)
        finally:
            for s in idle:
                s.close()

    def test_max_conns_makes_room(self):
        """At --max-conns, the oldest connection still sending its head
        makes room for a new one: an idle flood beyond the limit still
        lets a real request through.  (The idle ones send the first line
        of a head, so that the kernel hands them over at once, in order:
        TCP_DEFER_ACCEPT.)"""
        r = self.router(["--max-conns", "50"])
        idle = []
        try:
            for _ in range(200):
                s = socket.create_connection(r.addrs[0], TIMEOUT)
                s.sendall(b"GET / HTTP/1.1\r\n")
                idle.append(s)
            self.assertTrue(wait_for(lambda: r.nfds() >= 50), r.nfds())
            resp = r.request("alice/blog")
            self.assertEqual(resp.status, 200)
            self.assertLessEqual(r.nfds(), 50 + 20)
            # The first idle ones were closed by the router.
            idle[0].settimeout(TIMEOUT)
            self.assertEqual(idle[0].recv(10), b"")
        finally:
            for s in idle:
                s.close()

    def test_out_of_descriptors_pauses_accepting(self):
        """accept fails with EMFILE: the router pauses accepting for a
        moment instead of spinning, serves what it has, and takes the
        waiting connections once descriptors are free again."""
        r = self.router(on_start=None)
        for i in range(30):
            r.add_worker("w%d" % i)
        self.assertTrue(wait_for(lambda: r.nfds() >= 30 + 7), r.nfds())
        limit = r.nfds() + 3
        resource.prlimit(r.proc.pid, resource.RLIMIT_NOFILE, (limit, limit))
        conns = [r.conn() for _ in range(8)]
        for c in conns:
            c.send(build_request(app="w0/app"))
        for c in conns:
            with c:
                self.assertEqual(c.read_response().status, 200)
        r.wait_log("accept: Too many open files; pausing 100 ms")
        self.assertLessEqual(r.nfds(), limit)

    def test_fewest_in_flight_gets_the_request(self):
        r = self.router(on_start=None)
        a = r.add_worker("alice", mode="hold")
        b = r.add_worker("alice", mode="hold")
        r.wait_log("worker alice (id %d) connected" % b.id)
        base = r.nfds()
        c1, c2 = r.conn(), r.conn()
        c1.send(build_request(app="alice/blog"))
        self.assertTrue(wait_for(lambda: len(a.fronts) + len(b.fronts) == 1))
        first = a if a.fronts else b
        other = b if first is a else a
        c2.send(build_request(app="alice/blog"))
        self.assertTrue(wait_for(lambda: len(a.fronts) + len(b.fronts) == 2))
        self.assertEqual((len(a.fronts), len(b.fronts)), (1, 1))
        # The first one's worker finishes: it has the fewest now.
        first_front = first.fronts[0]
        first.answer(first_front)
        with c1:
            self.assertEqual(c1.read_response().status, 200)
        self.assertTrue(wait_for(lambda: r.nfds() == base + 1))
        with r.conn() as c3:
            c3.send(build_request(app="alice/blog"))
            self.assertTrue(wait_for(lambda: len(first.fronts) == 2),
                            (len(a.fronts), len(b.fronts)))
            self.assertEqual(len(other.fronts), 1)
            first.answer(first.fronts[1])
            self.assertEqual(c3.read_response().status, 200)
        other.answer(other.fronts[0])
        with c2:
            self.assertEqual(c2.read_response().status, 200)

    def test_inflight_cap_queues(self):
        """--inflight-max 1: a second request waits in the queue until
        the first is DONE."""
        r = self.router(["--inflight-max", "1"], on_start=None)
        w = r.add_worker("alice", mode="hold")
        with r.conn() as c1, r.conn() as c2:
            c1.send(build_request(app="alice/one"))
            f1 = w.wait_fronts(1)[0]
            c2.send(build_request(app="alice/two"))
            time.sleep(0.3)
            self.assertEqual(len(w.fronts), 1)
            w.answer(f1)
            self.assertEqual(c1.read_response().status, 200)
            f2 = w.wait_fronts(2)[1]
            self.assertEqual(f2.strs["app"], "two")
            w.answer(f2)
            self.assertEqual(c2.read_response().status, 200)

    def test_stuck_user_does_not_slow_another(self):
        """alice's app hangs (her worker holds every request): her
        requests fill her share (in flight, then queue, then 503), and bob
        is served all the while."""
        r = self.router(["--inflight-max", "2", "--queue-max", "2",
                         "--queue-timeout", "30"], on_start=None)
        a = r.add_worker("alice", mode="hold")
        r.add_worker("bob")
        conns = []
        for _ in range(4):
            c = r.conn()
            c.send(build_request(app="alice/slow"))
            conns.append(c)
        a.wait_fronts(2)
        self.assert_page(r.request("alice/slow"), 503, retry_after="1")
        for _ in range(20):
            self.assertEqual(r.request("bob/fast").status, 200)
        self.assertEqual(len(a.fronts), 2)
        for c in conns:
            c.close()

    def test_deaf_worker_never_blocks_the_router(self):
        """A worker that stops reading its channel: the router's sends to
        it fail with EAGAIN, its requests wait and time out (504), and
        every other user is served meanwhile; when it goes away, what
        was already in its channel gets a 502."""
        r = self.router(["--queue-timeout", "2"], on_start=None)
        deaf = r.add_worker("carol", mode="deaf")
        r.add_worker("bob")
        conns = []
        pad = "p" * 60000
        for _ in range(12):
            c = r.conn()
            c.send(build_request(app="carol/app", headers=[("X-Pad", pad)]))
            conns.append(c)
        for _ in range(5):
            self.assertEqual(r.request("bob/fast").status, 200)
        statuses = []
        # The ones still queued time out ...
        r.wait_log("504", "carol/app", timeout=TIMEOUT)
        deaf.close()
        # ... and those stuck in the dead channel get a 502.
        for c in conns:
            with c:
                statuses.append(c.read_response().status)
        self.assertIn(504, statuses)
        self.assertIn(502, statuses)
        self.assertEqual(set(statuses), {502, 504})


class TestForwarded(RouterTest):
    HEADERS = [("X-Forwarded-For", "10.1.1.1, 203.0.113.77"),
               ("X-Forwarded-Proto", "https"),
               ("X-Forwarded-Host", "www.example.org"),
               ("X-Forwarded-Prefix", "/app/")]

    def test_untrusted_listener_ignores_forwarded_headers(self):
        r = self.router(listeners=("http",))
        with r.conn() as c:
            echo = json.loads(c.request(app="alice/b",
                                        headers=self.HEADERS).body)
            port = c.sock.getsockname()[1]
        self.assertEqual(echo["remote_addr"], "127.0.0.1")
        self.assertEqual(echo["remote_port"], str(port))
        self.assertFalse(echo["https"])
        self.assertEqual(echo["server_name"], "")
        self.assertEqual(echo["server_port"], str(r.addrs[0][1]))
        self.assertEqual(echo["script_name"], "")
        # The worker still gets the headers as they came.
        self.assertIn("X-Forwarded-For: 10.1.1.1, 203.0.113.77", echo["data"])

    def test_trusted_listener_takes_the_last_hop(self):
        r = self.router(listeners=("http:trusted",))
        echo = json.loads(r.request("alice/b", headers=self.HEADERS).body)
        self.assertEqual(echo["remote_addr"], "203.0.113.77")
        self.assertEqual(echo["remote_port"], "")
        self.assertTrue(echo["https"])
        self.assertEqual(echo["server_name"], "www.example.org")
        self.assertEqual(echo["server_port"], "443")
        self.assertEqual(echo["script_name"], "/app")
        # A forged value the front end passed on is not an address.
        echo = json.loads(r.request(
            "alice/b", headers=[("X-Forwarded-For", "<script>")]).body)
        self.assertEqual(echo["remote_addr"], "127.0.0.1")

    def test_unix_listener(self):
        """A Unix front socket: no visitor address, no server port."""
        r = self.router(listeners=("unix:http",))
        echo = json.loads(r.request("alice/b").body)
        self.assertEqual(echo["remote_addr"], "")
        self.assertEqual(echo["remote_port"], "")
        self.assertEqual(echo["server_port"], "")


class TestLifecycle(RouterTest):
    def test_drain_handshake(self):
        """A worker that sends DRAIN gets DRAIN back and no new request;
        its request in flight finishes normally; new requests make the
        router ask lodged for another worker."""
        r = self.router(worker_mode="hold")
        with r.conn() as c1:
            c1.send(build_request(app="alice/blog"))
            a = r.wait_workers(1)[0]
            f1 = a.wait_fronts(1)[0]
            a.send(MSG_DRAIN)
            self.assertTrue(a.wait_msg(MSG_DRAIN), "no DRAIN answer")
            r.worker_mode = "answer"
            resp = r.request("alice/blog")
            self.assertEqual(resp.status, 200)
            self.assertEqual(r.wait_starts(2), ["alice", "alice"])
            self.assertEqual(len(a.fronts), 1)
            a.answer(f1, body=b"late")
            self.assertEqual(c1.read_response().body, b"late")
        a.close()
        r.wait_log("worker alice (id %d)" % a.id, "channel closed")
        self.assertNotIn(" 502 ", r.logtext())

    def test_second_hello_is_a_successor(self):
        """A worker replaced by a successor shares its channel: a second
        HELLO is fine."""
        r = self.router(on_start=None)
        w = r.add_worker("alice")
        w.send(MSG_HELLO, struct.pack("<II", PROTO_VERSION, 4242))
        r.wait_log("is pid 4242", "successor")
        self.assertEqual(r.request("alice/blog").status, 200)
        self.assertEqual(r.badpeers, [])

    def test_front_before_hello(self):
        """FRONT may be sent before the worker's HELLO arrives."""
        r = self.router(on_start=None)
        w = r.add_worker("alice", hello=False)
        self.assertEqual(r.request("alice/blog").status, 200)
        self.assertEqual(len(w.fronts), 1)

    def test_duplicate_worker_id_closes_new_channel(self):
        r = self.router(on_start=None)
        w1 = r.add_worker("alice")
        with r.cond:
            r.next_wid = w1.id
        w2 = r.add_worker("alice", keep_copy=False)
        self.assertTrue(w2.wait_closed(), "the second channel stays open")
        r.wait_log("worker id %d again" % w1.id)
        self.assertEqual(r.request("alice/blog").status, 200)
        self.assertFalse(w1.is_closed)

    def test_sigterm_hands_over_what_is_queued(self):
        """SIGTERM: no new connection is taken; a request waiting for a
        worker is still handed over when one comes; then exit 0."""
        r = self.router(on_start=None)
        with r.conn() as c:
            c.send(build_request(app="alice/blog"))
            r.wait_starts(1)
            r.proc.send_signal(signal.SIGTERM)
            r.wait_log("finishing what is queued")
            r.add_worker("alice")
            self.assertEqual(c.read_response().status, 200)
        self.assertEqual(r.proc.wait(TIMEOUT), 0)
        r.wait_log("stopped")

    def test_sigterm_deadline_answers_503(self):
        """SIGTERM with a request no worker takes: after the 10 s stop
        deadline it gets a 503, and the router exits 0."""
        r = self.router(on_start=None)
        with r.conn() as c:
            c.send(build_request(app="alice/blog"))
            r.wait_starts(1)
            r.proc.send_signal(signal.SIGTERM)
            self.assert_page(c.read_response(), 503, retry_after="1")
        self.assertEqual(r.proc.wait(TIMEOUT), 0)
        r.wait_log("503", "the router is stopping")

    def test_lodged_gone_exits_1(self):
        r = self.router()
        r.lodged.shutdown(socket.SHUT_RDWR)
        self.assertEqual(r.proc.wait(TIMEOUT), 1)
        r.wait_log("lodged closed its channel")

    def test_lodged_garbage_exits_1(self):
        for name, data in [("type", msg(MSG_DONE, b"\x01\x00\x00\x00")),
                           ("user", msg(MSG_NOUSER, b"Bad/Name")),
                           ("short", b"\x01")]:
            with self.subTest(name):
                r = self.router()
                with r.lodged_lock:
                    r.lodged.send(data)
                self.assertEqual(r.proc.wait(TIMEOUT), 1)
                r.wait_log("lodged sent")

    def test_options_are_checked(self):
        for args, word in [([], "--lodged-fd"),
                           (["--lodged-fd", "0"], "--listen"),
                           (["--lodged-fd", "0", "--listen", "0:http"],
                            "not a"),
                           (["--lodged-fd", "0", "--listen", "0:ftp"],
                            "neither http nor uwsgi"),
                           (["--queue-max", "0"], "queue-max")]:
            with self.subTest(args=args):
                p = subprocess.run([router_binary()] + args,
                                   stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=TIMEOUT)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(word.encode(), p.stderr)


class TestSeccomp(RouterTest):
    def test_router_runs_under_its_policy(self):
        """The real router under policy/router.policy in kill mode (a
        system call the policy lacks kills it with SIGSYS): every path of
        its job, then a clean exit on SIGTERM."""
        helper = os.environ.get("LODGE_SECCOMP_EXEC")
        policy = os.environ.get("LODGE_ROUTER_POLICY")
        if not helper or not policy:
            self.skipTest("set LODGE_SECCOMP_EXEC and LODGE_ROUTER_POLICY "
                          "(ctest does)")
        with open(router_binary(), "rb") as f:
            if b"__asan_init" in f.read():
                self.skipTest("an ASan router makes system calls the "
                              "policy rightly refuses")
        tmp = tempfile.mkdtemp(prefix="lodge-router-map-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "hosts")
        with open(path, "w") as f:
            f.write("blog.example.com alice/blog\nbad\n")
        r = self.router(["--route", "host", "--host-map", path,
                         "--head-timeout", "1", "--queue-timeout", "1"],
                        listeners=("http:trusted", "uwsgi"),
                        wrapper=[helper, policy, "kill"])
        resp = r.request(None, host="blog.example.com",
                         headers=[("X-Forwarded-For", "203.0.113.1")])
        self.assertEqual(resp.status, 200, resp)
        with r.conn(1) as c:
            c.send(uwsgi_packet([("REQUEST_METHOD", "GET"),
                                 ("REQUEST_URI", "/"),
                                 ("HTTP_HOST", "blog.example.com")]))
            self.assertEqual(c.read_response().status, 200)
        with r.conn() as c:
            c.send(b"BAD\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        self.assertEqual(r.request(None, host="x.example").status, 404)
        with r.conn() as c:
            c.send(b"GET / HTTP/1.1\r\n")
            self.assertEqual(c.read_response().status, 408)
        # SIGHUP: the map is read again.
        with open(path, "w") as f:
            f.write("shop.example.com bob/shop\n")
        r.proc.send_signal(signal.SIGHUP)
        r.wait_log("host map", "1 hosts")
        # A worker that dies with a request, one that sends garbage, one
        # that leaves; a request no worker takes.
        r.on_start = None
        dying = r.add_worker("bob", mode="hold")
        with r.conn() as c:
            c.send(build_request(host="shop.example.com"))
            dying.wait_fronts(1)
            dying.die()
            self.assertEqual(c.read_response().status, 502)
        bad = r.add_worker("bob", mode="hold")
        bad.send(MSG_READY)
        self.assertTrue(r.wait_badpeer(bad.id))
        leaving = r.add_worker("bob")
        leaving.send(MSG_DRAIN)
        self.assertTrue(leaving.wait_msg(MSG_DRAIN))
        self.assertEqual(r.request(None, host="shop.example.com").status, 504)
        r.proc.send_signal(signal.SIGTERM)
        self.assertEqual(r.proc.wait(TIMEOUT), 0, r.logtext())


def real_worker_has_router_fd():
    path = os.environ.get("LODGE_WORKER")
    if not path or not os.access(path, os.X_OK):
        return False
    p = subprocess.run([path, "--help"], capture_output=True, timeout=TIMEOUT)
    return b"--router-fd" in p.stdout + p.stderr


class TestRealWorker(RouterTest):
    def test_real_worker_behind_router(self):
        """The real lodge-worker on a router channel: the router hands
        requests to it and the app answers (environ from the FRONT)."""
        if not real_worker_has_router_fd():
            self.skipTest("lodge-worker has no --router-fd yet")
        r = self.router(listeners=("http:trusted",), on_start=None)
        tmp = tempfile.mkdtemp(prefix="lodge-router-worker-")
        self.addCleanup(shutil.rmtree, tmp, True)
        apps = os.path.join(tmp, "apps")
        os.makedirs(os.path.join(apps, "env"))
        with open(os.path.join(apps, "env", "wsgi.py"), "w") as f:
            f.write(
                "import json\n"
                "KEYS = ('REMOTE_ADDR', 'SERVER_NAME', 'SERVER_PORT',\n"
                "        'SCRIPT_NAME', 'PATH_INFO', 'wsgi.url_scheme',\n"
                "        'HTTP_X_LODGE_APP')\n"
                "def application(environ, start_response):\n"
                "    body = json.dumps({k: environ.get(k) for k in KEYS})\n"
                "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [body.encode()]\n")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        port = lodgetest.free_port()
        proc = subprocess.Popen(
            [os.environ["LODGE_WORKER"], "--apps", apps, "--listen",
             "tcp:127.0.0.1:%d" % port, "--router-fd", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        theirs.close()

        def stop_worker():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            proc.stderr.close()
        self.addCleanup(stop_worker)
        r.lodged_send(MSG_WORKER, struct.pack("<I", 7) + b"alice", mine)
        mine.close()
        r.wait_log("worker alice (id 7)", "is pid %d" % proc.pid,
                   timeout=lodgetest.START_TIMEOUT)
        resp = None
        deadline = time.monotonic() + lodgetest.START_TIMEOUT
        while time.monotonic() < deadline:
            resp = r.request("alice/env", target="/app/x/y", headers=[
                ("X-Forwarded-For", "203.0.113.9"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "site.example"),
                ("X-Forwarded-Prefix", "/app")])
            if resp.status == 200:
                break
            time.sleep(0.2)
        self.assertEqual(resp.status, 200, resp)
        self.assertTrue(resp.has_token("Connection", "close"), resp)
        env = json.loads(resp.body)
        self.assertEqual(env["REMOTE_ADDR"], "203.0.113.9")
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["SERVER_NAME"], "site.example")
        self.assertEqual(env["SERVER_PORT"], "443")
        self.assertEqual(env["SCRIPT_NAME"], "/app")
        self.assertEqual(env["PATH_INFO"], "/x/y")
        self.assertIsNone(env["HTTP_X_LODGE_APP"])
        # An app it does not have: the worker's own 404.
        self.assertEqual(r.request("alice/nope").status, 404)
        # The worker's DONEs let the router close its copies.
        self.assertNotIn("cut off", r.logtext())


if __name__ == "__main__":
    unittest.main()
