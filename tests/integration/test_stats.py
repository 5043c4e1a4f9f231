"""Integration tests of lodge-worker's channel to lodged (--lodged-fd,
src/worker/stats.c): the real worker, and Python playing lodged on the
other end of the SOCK_SEQPACKET channel (src/common/proto.h: MSG_STATS
from the worker, MSG_RELOAD_APP to it).

Run:  LODGE_WORKER=/path/to/lodge-worker \
      /usr/bin/python3 -m unittest -v test_stats

Checked: the exact layout of MSG_STATS (sizes, padding, strings
NUL-terminated and NUL-padded, served == the histogram's count), the
counters after known requests (status classes, per-app requests), the
apps' records (mode, version, broken apps and their reason), a reload
asked with MSG_RELOAD_APP (a new version, ok) and one that fails (the
old version serves, failed with its reason), that nothing is sent while
nothing changes, that garbage from "lodged" never stops the worker, and
that a successor (SIGHUP) reports on the same channel under its own pid.
And a process-mode app (its own process serves the requests handed to
it): the worker's reports count them once, their totals survive a new
app process after a reload and never go back, and garbage stats from the
app's process (which runs the user's code) cost that process, never the
worker.
"""

import os
import signal
import socket
import struct
import subprocess
import textwrap
import time
import unittest

from lodgetest import (START_TIMEOUT, TIMEOUT, ConnectionClosed, Worker,
                       wait_for, worker_binary)

# proto.h
MSG_HELLO = 1
MSG_STATS = 13
MSG_RELOAD_APP = 14
MSG_MAX_PAYLOAD = 128 * 1024
NBUCKETS = 13
NCLASSES = 5
# struct msg_stats: u32 pid, napps, inflight, pad; u64 served,
# status[5], buckets[13], latency_sum_us.
STATS = struct.Struct("<IIII Q 5Q 13Q Q")
assert STATS.size == 176
# struct msg_stats_app: char name[72]; u8 mode, state, is_last_ok, pad;
# u32 version; i64 last_reload_ms; u32 reloads_ok, reloads_failed;
# u64 requests; char reason[200].
APP = struct.Struct("<72s BBBB I q II Q 200s")
assert APP.size == 304
MODE_SUB, MODE_PROCESS = 0, 1
STATE_OK, STATE_BROKEN = 0, 1


def message(mtype, payload=b""):
    return struct.pack("<II", mtype, len(payload)) + payload


def field_str(testcase, raw):
    """A NUL-terminated, NUL-padded, printable field as a str."""
    nul = raw.index(b"\0")
    testcase.assertEqual(raw[nul:], b"\0" * (len(raw) - nul),
                         "junk after the NUL: %r" % raw)
    text = raw[:nul]
    testcase.assertTrue(all(0x20 <= c <= 0x7e for c in text), text)
    return text.decode("ascii")


class Stats:
    """One decoded MSG_STATS (asserting its layout on the way)."""

    def __init__(self, testcase, payload):
        testcase.assertGreaterEqual(len(payload), STATS.size)
        f = STATS.unpack_from(payload)
        self.pid, self.napps, self.inflight, pad, self.served = f[:5]
        self.status = list(f[5:5 + NCLASSES])
        self.buckets = list(f[5 + NCLASSES:5 + NCLASSES + NBUCKETS])
        self.latency_sum_us = f[-1]
        testcase.assertEqual(pad, 0)
        testcase.assertEqual(len(payload), STATS.size + self.napps * APP.size)
        testcase.assertEqual(self.served, sum(self.buckets))
        testcase.assertLessEqual(sum(self.status), self.served)
        self.apps = {}
        for i in range(self.napps):
            a = APP.unpack_from(payload, STATS.size + i * APP.size)
            app = {
                "name": field_str(testcase, a[0]),
                "mode": a[1], "state": a[2], "last_ok": a[3],
                "version": a[5], "last_reload_ms": a[6],
                "reloads_ok": a[7], "reloads_failed": a[8],
                "requests": a[9],
                "reason": field_str(testcase, a[10]),
            }
            testcase.assertEqual(a[4], 0, "app pad")
            testcase.assertIn(app["mode"], (MODE_SUB, MODE_PROCESS))
            testcase.assertIn(app["state"], (STATE_OK, STATE_BROKEN))
            self.apps[app["name"]] = app
        testcase.assertEqual(len(self.apps), self.napps)

    def __repr__(self):
        return "<stats pid %d served %d inflight %d status %r apps %r>" % (
            self.pid, self.served, self.inflight, self.status, self.apps)


class StatsWorker(Worker):
    """A lodge-worker with --lodged-fd; self.lodged is our end."""

    def __init__(self, apps, **kw):
        super().__init__(apps, **kw)
        self.lodged = None

    def launch(self):
        binary = worker_binary()
        self.launches += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET)
        self.lodged = ours
        args = [binary, "--apps", self.apps_dir, "--log-dir", self.log_dir,
                "--listen", "tcp:127.0.0.1:%d" % self.port,
                "--lodged-fd", str(theirs.fileno())] + self.extra_args
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.stderr_path = self.path("worker-stderr-%d.txt" % self.launches)
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                env=env, cwd=self.tmp, start_new_session=True,
                pass_fds=[theirs.fileno()])
        theirs.close()
        self.pgid = self.proc.pid
        self.args = args
        self._wait_ready()

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            if self.lodged is not None:
                self.lodged.close()

    # -- the channel

    def recv(self, timeout):
        """(type, payload) of the next message; None at EOF."""
        self.lodged.settimeout(timeout)
        data, fds, _flags, _addr = socket.recv_fds(self.lodged,
                                                   MSG_MAX_PAYLOAD + 64, 4)
        for fd in fds:
            os.close(fd)
        if not data:
            return None
        mtype, mlen = struct.unpack_from("<II", data)
        assert not fds, "a descriptor came with message %d" % mtype
        assert mlen == len(data) - 8, (mlen, len(data))
        return mtype, data[8:]

    def stats_until(self, testcase, predicate, timeout=TIMEOUT):
        """Reads MSG_STATS until one satisfies predicate; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                testcase.fail("no stats as wanted within %ds; last %r; "
                              "stderr:\n%s" % (timeout, last,
                                               self.stderr_text()[-3000:]))
            try:
                m = self.recv(left)
            except socket.timeout:
                continue
            testcase.assertIsNotNone(m, "the channel closed")
            testcase.assertEqual(m[0], MSG_STATS)
            last = Stats(testcase, m[1])
            if predicate(last):
                return last

    def send(self, mtype, payload=b""):
        self.lodged.send(message(mtype, payload))

    def drain(self):
        """Drops what is queued now."""
        self.lodged.setblocking(False)
        try:
            while True:
                self.lodged.recv(MSG_MAX_PAYLOAD + 64)
        except BlockingIOError:
            pass
        finally:
            self.lodged.setblocking(True)


def settled(s):
    """The report after start(): its readiness probe (a 404) counted."""
    return s.served >= 1 and s.inflight == 0


# A process-mode app (lodge.ini: interpreter = main): says which process
# served it; /garbage first writes a MSG_STATS that does not add up
# (served 5, an empty histogram) up its process's channel to the worker,
# as buggy or hostile code in the app could.
PROCAPP_INI = "interpreter = main\n"
PROCAPP = textwrap.dedent('''\
    import os
    import struct

    def handoff_fd():
        with open("/proc/self/cmdline", "rb") as f:
            args = f.read().split(b"\\0")
        return int(args[args.index(b"--handoff-fd") + 1])

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/garbage":
            payload = struct.pack("<IIII Q 5Q 13Q Q", os.getpid(), 0, 0, 0,
                                  5, *([0] * 19))
            os.write(handoff_fd(), struct.pack("<II", %d, len(payload))
                     + payload)
        body = b"pid=%%d" %% os.getpid()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    ''') % MSG_STATS


def add_procapp(worker):
    worker.write_file("apps/procapp/lodge.ini", PROCAPP_INI)
    worker.write_file("apps/procapp/wsgi.py", PROCAPP)


def pid_gone(pid):
    return not os.path.exists("/proc/%d" % pid)


class Reports:
    """Every report read, checked as it comes: a total never goes back."""

    COUNTERS = (("served", lambda s: s.served),
                ("2xx", lambda s: s.status[1]),
                ("latency sum", lambda s: s.latency_sum_us),
                ("procapp requests", lambda s: s.apps["procapp"]["requests"]),
                ("hello requests", lambda s: s.apps["hello"]["requests"]))

    def __init__(self, testcase, worker):
        self.t = testcase
        self.w = worker
        self.last = None

    def until(self, predicate, timeout=TIMEOUT):
        def check(s):
            if self.last is not None:
                for name, get in self.COUNTERS:
                    self.t.assertGreaterEqual(
                        get(s), get(self.last), "%s went back: %r after %r"
                        % (name, s, self.last))
                for i in range(NBUCKETS):
                    self.t.assertGreaterEqual(s.buckets[i],
                                              self.last.buckets[i], s)
            self.last = s
            return predicate(s)
        return self.w.stats_until(self.t, check, timeout)


class StatsTest(unittest.TestCase):

    def start(self, apps, **kw):
        w = StatsWorker(apps, **kw).start()
        self.addCleanup(w.cleanup)
        return w

    def test_layout_and_counters(self):
        w = self.start(["hello", "broken_syntax", "errors"])
        # The start-up probe's 404 came before: count from the report
        # that has it (start() returned once it was answered).
        base = w.stats_until(self, settled)
        for _ in range(3):
            self.assertEqual(w.request("GET", "/", app="u/hello").status,
                             200)
        self.assertEqual(w.request("GET", "/", app="u/nosuch").status, 404)
        self.assertEqual(w.request("GET", "/", app="u/broken_syntax").status,
                         500)
        self.assertEqual(w.request("GET", "/before", app="u/errors").status,
                         500)
        s = w.stats_until(self, lambda s: s.served >= base.served + 6)
        self.assertEqual(s.served, base.served + 6)
        self.assertEqual(s.pid, w.proc.pid)
        self.assertEqual(s.inflight, 0)
        self.assertEqual(s.status[1] - base.status[1], 3)   # 2xx
        self.assertEqual(s.status[3] - base.status[3], 1)   # 4xx
        self.assertEqual(s.status[4] - base.status[4], 2)   # 5xx
        self.assertEqual(s.status[0] + s.status[2], 0)
        self.assertGreater(s.latency_sum_us, base.latency_sum_us)
        self.assertEqual(sorted(s.apps), ["broken_syntax", "errors", "hello"])
        hello = s.apps["hello"]
        self.assertEqual((hello["mode"], hello["state"], hello["version"]),
                         (MODE_SUB, STATE_OK, 1))
        self.assertEqual(hello["requests"], 3)
        self.assertEqual(hello["reason"], "")
        self.assertEqual(hello["last_reload_ms"], 0)   # never reloaded
        self.assertEqual(s.apps["errors"]["requests"], 1)
        broken = s.apps["broken_syntax"]
        self.assertEqual(broken["state"], STATE_BROKEN)
        self.assertEqual(broken["version"], 0)
        self.assertEqual(broken["requests"], 1)
        self.assertIn("SyntaxError", broken["reason"])
        self.assertEqual(broken["last_ok"], 0)

    def test_nothing_sent_while_nothing_changes(self):
        w = self.start(["hello"])
        w.stats_until(self, settled)
        w.drain()
        # Nothing happens: the worker has nothing new to say.
        with self.assertRaises(socket.timeout):
            m = w.recv(2.5)
            self.fail("a message although nothing changed: %r" % (m,))
        # One request: it is reported.
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)
        s = w.stats_until(self, lambda s: s.apps["hello"]["requests"] == 1)
        self.assertEqual(s.inflight, 0)

    def test_reload_app(self):
        w = self.start(["hello"])
        w.stats_until(self, lambda s: s.inflight == 0)
        before = int(time.time() * 1000)
        w.send(MSG_RELOAD_APP, b"hello")
        s = w.stats_until(self, lambda s: s.apps["hello"]["version"] == 2)
        hello = s.apps["hello"]
        self.assertEqual((hello["reloads_ok"], hello["reloads_failed"]),
                         (1, 0))
        self.assertEqual(hello["last_ok"], 1)
        self.assertGreaterEqual(hello["last_reload_ms"], before - 1000)
        self.assertLessEqual(hello["last_reload_ms"],
                             int(time.time() * 1000) + 1000)
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)

    def test_failed_reload_keeps_serving(self):
        w = self.start(["hello"])
        w.stats_until(self, lambda s: s.inflight == 0)
        with open(os.path.join(w.apps_dir, "hello", "wsgi.py"), "a") as f:
            f.write("\ndef broken(:\n")
        # The watcher sees the edit itself; ask too, in case it did not.
        w.send(MSG_RELOAD_APP, b"hello")
        s = w.stats_until(self,
                          lambda s: s.apps["hello"]["reloads_failed"] >= 1)
        hello = s.apps["hello"]
        self.assertEqual(hello["last_ok"], 0)
        self.assertEqual(hello["version"], 1)     # the old one serves
        self.assertEqual(hello["state"], STATE_OK)
        self.assertIn("SyntaxError", hello["reason"])
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)

    def test_garbage_from_lodged(self):
        w = self.start(["hello"])
        w.stats_until(self, lambda s: s.inflight == 0)
        garbage = [
            message(MSG_RELOAD_APP, b"../etc"),        # a bad name
            message(MSG_RELOAD_APP, b"-x"),
            message(MSG_RELOAD_APP, b"hello\0"),
            message(MSG_RELOAD_APP, b"x" * 65),        # too long
            message(MSG_RELOAD_APP, b"nosuch"),        # no such app
            message(MSG_HELLO, struct.pack("<II", 2, 1)),  # not for us
            message(MSG_STATS, b"\0" * 10),            # malformed
            struct.pack("<II", MSG_RELOAD_APP, 100) + b"hello",  # lies
            b"\x0e\0\0",                               # a header cut short
            struct.pack("<II", 9999, 0),               # unknown type
        ]
        for g in garbage:
            w.lodged.send(g)
        # A descriptor with a message that takes none.
        r, s2 = socket.socketpair()
        socket.send_fds(w.lodged, [message(MSG_RELOAD_APP, b"nosuch")],
                        [r.fileno()])
        r.close()
        s2.close()
        # Still alive, still serving, and still listening to lodged.
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)
        w.send(MSG_RELOAD_APP, b"hello")
        s = w.stats_until(self, lambda s: s.apps["hello"]["version"] == 2)
        self.assertEqual(s.apps["hello"]["reloads_ok"], 1)
        self.assertTrue(w.alive())
        err = w.stderr_text()
        self.assertIn("lodged channel: bad message", err)
        self.assertIn("'nosuch'", err)

    def test_successor_reports_on_the_same_channel(self):
        w = self.start(["hello"])
        first = w.stats_until(self, lambda s: s.inflight == 0)
        self.assertEqual(first.pid, w.proc.pid)
        w.signal(signal.SIGHUP)
        # The successor's first report: its own pid, counted from zero.
        s = w.stats_until(self, lambda s: s.pid != first.pid,
                          timeout=START_TIMEOUT)
        self.assertEqual(s.apps["hello"]["requests"], 0)
        self.assertTrue(wait_for(lambda: not w.alive(), TIMEOUT))
        # It serves, and takes lodged's reloads.
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)
        w.send(MSG_RELOAD_APP, b"hello")
        s = w.stats_until(self, lambda s: s.apps["hello"]["version"] == 2
                          and s.pid != first.pid)
        self.assertEqual(s.apps["hello"]["requests"], 1)

    def procapp_pid(self, w):
        r = w.request("GET", "/", app="u/procapp")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.body.startswith(b"pid="), r)
        return int(r.body[4:])

    def test_process_mode_requests_counted(self):
        """Requests served by a process-mode app's own process count in
        the worker's reports, once: served, 2xx, the histogram and the
        app's requests; after a reload (a new app process, the old one
        drains and exits) the totals go on from there, never lower."""
        w = self.start(["hello"], prepare=add_procapp)
        reports = Reports(self, w)
        base = reports.until(lambda s: settled(s) and "procapp" in s.apps)
        self.assertEqual(base.apps["procapp"]["mode"], MODE_PROCESS)
        self.assertEqual(base.apps["procapp"]["requests"], 0)
        n = 5
        pids = {self.procapp_pid(w) for _ in range(n)}
        self.assertEqual(len(pids), 1, pids)
        pid1 = pids.pop()
        self.assertNotEqual(pid1, w.proc.pid, "not in a process of its own")
        for _ in range(2):
            self.assertEqual(w.request("GET", "/", app="u/hello").status,
                             200)
        # Not one more: what the worker handed over it did not count.
        s = reports.until(lambda s: s.served >= base.served + n + 2
                          and s.apps["procapp"]["requests"] >= n)
        self.assertEqual(s.served, base.served + n + 2, s)
        self.assertEqual(s.status[1] - base.status[1], n + 2, s)
        self.assertEqual(sum(s.buckets) - sum(base.buckets), n + 2, s)
        self.assertEqual(s.apps["procapp"]["requests"], n, s)
        self.assertEqual(s.apps["hello"]["requests"], 2, s)
        self.assertEqual(s.inflight, 0, s)
        self.assertGreater(s.latency_sum_us, base.latency_sum_us)

        # A reload: a new process serves, the old one drains and exits.
        with open(os.path.join(w.apps_dir, "procapp", "restart.txt"),
                  "w") as f:
            f.write("now\n")
        reports.until(lambda s: s.apps["procapp"]["version"] >= 2,
                      timeout=START_TIMEOUT)
        pid2 = self.procapp_pid(w)
        self.assertNotEqual(pid2, pid1, "the reload gave no new process")
        m = 3
        for _ in range(m - 1):
            self.assertEqual(self.procapp_pid(w), pid2)
        self.assertTrue(wait_for(lambda: pid_gone(pid1), START_TIMEOUT),
                        "the old app process %d did not exit" % pid1)
        s = reports.until(lambda s: s.apps["procapp"]["requests"] >= n + m)
        self.assertEqual(s.apps["procapp"]["requests"], n + m, s)
        self.assertEqual(s.served, base.served + n + m + 2, s)
        self.assertEqual(s.status[1] - base.status[1], n + m + 2, s)
        # The old process's counts outlive it: one more request, and
        # the total is one more.
        self.assertEqual(self.procapp_pid(w), pid2)
        s = reports.until(lambda s: s.served >= base.served + n + m + 3)
        self.assertEqual(s.served, base.served + n + m + 3, s)
        self.assertEqual(s.apps["procapp"]["requests"], n + m + 1, s)
        self.assertEqual(s.inflight, 0, s)
        self.assertEqual(s.pid, w.proc.pid)

    def test_garbage_stats_from_app_process(self):
        """An app's process that sends stats that do not add up is cut
        off and killed; the worker lives on, restarts the app's process,
        keeps reporting, and what the old process had reported stays
        counted."""
        w = self.start(["hello"], prepare=add_procapp)
        reports = Reports(self, w)
        pid1 = self.procapp_pid(w)
        self.assertEqual(self.procapp_pid(w), pid1)
        s = reports.until(lambda s: s.apps["procapp"]["requests"] >= 2)
        self.assertEqual(s.apps["procapp"]["requests"], 2, s)
        try:
            w.request("GET", "/garbage", app="u/procapp")
        except (ConnectionClosed, OSError):
            pass   # killed before it answered: fine
        self.assertTrue(wait_for(lambda: pid_gone(pid1), TIMEOUT),
                        "the app process %d that sent garbage still runs"
                        % pid1)
        self.assertIn("its process %d sent a bad message (STATS whose "
                      "served is not the sum of its buckets)" % pid1,
                      w.stderr_text())
        self.assertTrue(w.alive(), w.stderr_text()[-3000:])
        self.assertEqual(w.request("GET", "/", app="u/hello").status, 200)
        # A new process after the crash backoff (no request meanwhile:
        # a 503 would count too).
        self.assertTrue(wait_for(
            lambda: "serves it in process mode (restart after a crash)"
            in w.stderr_text(), START_TIMEOUT), w.stderr_text()[-3000:])
        pid2 = self.procapp_pid(w)
        self.assertNotEqual(pid2, pid1)
        s = reports.until(lambda s: s.apps["procapp"]["requests"] >= 3)
        self.assertEqual(s.apps["procapp"]["requests"], 3, s)
        self.assertEqual(s.apps["hello"]["requests"], 1, s)
        self.assertEqual(s.inflight, 0, s)
        self.assertTrue(w.alive())

    def test_bad_lodged_fd(self):
        """--lodged-fd must be a SEQPACKET socket: refused at start."""
        binary = worker_binary()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            p = subprocess.run(
                [binary, "--apps", "/nonexistent", "--listen",
                 "tcp:127.0.0.1:1", "--lodged-fd", str(s.fileno())],
                pass_fds=[s.fileno()], capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        p = subprocess.run([binary, "--apps", "/x", "--listen",
                            "tcp:127.0.0.1:1", "--lodged-fd", "two"],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--lodged-fd", p.stderr)


if __name__ == "__main__":
    unittest.main()
