"""End-to-end tests of lodged, the launcher: real users, real sockets, the
real (sandboxed) lodge-worker.

Runs as root only (skipped otherwise).  setUpClass creates hosted users
with useradd -m (lodgetest-a/-b/-c, and lodgetest-d who is not listed),
puts a hello app in their homes, writes a config in a temp dir and starts
`lodged --foreground --config FILE`; tearDownClass stops it and removes the
users with userdel -r, even when a test failed.

Environment: LODGED and LODGE_WORKER name the binaries under test.  The
worker is copied into a temp dir that every user can traverse (the build
tree may not be, and the sandbox gives workers a /tmp of their own).  If the worker does not know --sandboxed yet, a small
wrapper script that drops that one option is installed as the worker, so
the launcher can be tested before the worker side lands; the test says so
on stderr.

LODGE_TEST_KEEP=1 keeps the temp dir (the path goes to stderr).
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import lodgehost

TIMEOUT = float(os.environ.get("LODGE_TEST_TIMEOUT", "30"))

PREFIX = "lodgetest-"
USER_A = PREFIX + "a"   # hosted
USER_B = PREFIX + "b"   # hosted, idle_timeout = 2
USER_C = PREFIX + "c"   # hosted, no apps dir: its worker fails at start
USER_D = PREFIX + "d"   # exists, not listed
LOW_UID_USER = "daemon"  # listed, uid below min_uid

HELLO_APP = '''\
import os

def application(environ, start_response):
    body = ("uid=%d pid=%d\\n" % (os.getuid(), os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def wait_for(predicate, timeout=TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def run(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def request(path, timeout=TIMEOUT):
    """GET / on a Unix socket; returns (status, body) or raises."""
    data = lodgehost.unix_exchange(
        path, b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
        timeout)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body.decode("latin-1")


@unittest.skipUnless(os.geteuid() == 0, "lodged tests need root (useradd, "
                     "sockets owned by root:www-data, setuid workers)")
class LodgedTest(unittest.TestCase):
    tmp = None
    bindir = None
    proc = None
    users = []

    @classmethod
    def setUpClass(cls):
        cls.lodged = os.environ.get("LODGED")
        worker = os.environ.get("LODGE_WORKER")
        if not cls.lodged or not worker:
            raise unittest.SkipTest("set LODGED and LODGE_WORKER")
        lodgehost.set_up_class(cls)

    @classmethod
    def _set_up(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lodged-test-")
        if os.environ.get("LODGE_TEST_KEEP"):
            print("lodged test dir: %s" % cls.tmp, file=sys.stderr)
        # A dir every user can traverse, for the worker binary, outside
        # the build tree (maybe not traversable) and outside what the
        # sandbox replaces or hides (/tmp, /var/tmp, /dev/shm, /run/lodge,
        # homes).
        bindir = cls.bindir = tempfile.mkdtemp(prefix="lodgetest-bin-",
                                               dir="/var/lib")
        os.chmod(bindir, 0o755)
        worker_bin = os.path.join(bindir, "lodge-worker")
        shutil.copy2(os.environ["LODGE_WORKER"], worker_bin)
        os.chmod(worker_bin, 0o755)
        cls.worker_path = worker_bin
        with open(worker_bin, "rb") as f:
            data = f.read()
        knows_sandboxed = b"sandboxed" in data
        # An AddressSanitizer worker reserves terabytes of shadow memory:
        # no RLIMIT_AS for it (memory_max = max).
        cls.is_asan = b"__asan_init" in data
        if not knows_sandboxed:
            print("note: lodge-worker does not know --sandboxed yet; "
                  "testing through a wrapper that drops it",
                  file=sys.stderr)
            wrapper = os.path.join(bindir, "lodge-worker-wrapper")
            with open(wrapper, "w") as f:
                f.write('#!/bin/sh\n'
                        'for a; do shift; [ "$a" = --sandboxed ] || '
                        'set -- "$@" "$a"; done\n'
                        'exec %s "$@"\n' % worker_bin)
            os.chmod(wrapper, 0o755)
            cls.worker_path = wrapper

        for name in (USER_A, USER_B, USER_C, USER_D):
            if name in [p.pw_name for p in pwd.getpwall()]:
                run("userdel", "-r", name, check=False)
            run("useradd", "-m", "-s", "/usr/sbin/nologin", name)
            cls.users.append(name)
        for name in (USER_A, USER_B, USER_D):
            cls._install_app(name)

        cls.socket_dir = os.path.join(cls.tmp, "sockets")
        cls.conf = os.path.join(cls.tmp, "lodge.conf")
        cls.good_conf = cls._config()
        with open(cls.conf, "w") as f:
            f.write(cls.good_conf)
        # A stale socket (no one listening) where USER_A's goes: lodged
        # replaces it.
        os.mkdir(cls.socket_dir, 0o755)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(os.path.join(cls.socket_dir, USER_A + ".sock"))
        cls.log_path = os.path.join(cls.tmp, "lodged.log")
        cls.log = open(cls.log_path, "w")
        cls.proc = subprocess.Popen(
            [cls.lodged, "--foreground", "--config", cls.conf],
            stdin=subprocess.DEVNULL, stdout=cls.log, stderr=cls.log)
        if not wait_for(lambda: "ready:" in cls.read_log()
                        or cls.proc.poll() is not None):
            raise RuntimeError("lodged did not start:\n" + cls.read_log())
        if cls.proc.poll() is not None:
            raise RuntimeError("lodged exited %d:\n%s"
                               % (cls.proc.returncode, cls.read_log()))

    @classmethod
    def _install_app(cls, name):
        pw = pwd.getpwnam(name)
        app = os.path.join(pw.pw_dir, "apps", "hello")
        os.makedirs(app)
        with open(os.path.join(app, "wsgi.py"), "w") as f:
            f.write(HELLO_APP)
        for d in (os.path.join(pw.pw_dir, "apps"), app,
                  os.path.join(app, "wsgi.py")):
            os.chown(d, pw.pw_uid, pw.pw_gid)

    @classmethod
    def _config(cls, extra=""):
        return (
            "; written by test_lodged.py\n"
            "[lodge]\n"
            "users = %s %s, %s\n"
            "  %s\n"
            "min_uid = 1000\n"
            "socket_dir = %s\n"
            "socket_group = www-data\n"
            "worker = %s\n"
            "policy = %s\n"
            "threads = 2\n"
            "%s"
            "\n"
            "[user %s]\n"
            "idle_timeout = 2\n"
            "\n"
            "[user %s]\n"
            "processes = 2\n"
            "%s"
            % (USER_A, USER_B, USER_C, LOW_UID_USER, cls.socket_dir,
               cls.worker_path,
               os.path.abspath(os.path.join(
                   os.path.dirname(__file__), "..", "..", "policy",
                   "default.policy")),
               "memory_max = max\n" if cls.is_asan else "",
               USER_B, USER_A, extra))

    @classmethod
    def _tear_down(cls):
        if cls.proc is not None and cls.proc.poll() is None:
            cls.proc.send_signal(signal.SIGTERM)
            try:
                cls.proc.wait(40)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        for name in cls.users:
            # Workers of these users must be gone before userdel.
            run("pkill", "-KILL", "-u", name, check=False)
            run("userdel", "-r", name, check=False)
        cls.users = []
        if cls.bindir:
            shutil.rmtree(cls.bindir, ignore_errors=True)
        if cls.tmp and not os.environ.get("LODGE_TEST_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._tear_down()

    @classmethod
    def read_log(cls):
        with open(cls.log_path, errors="replace") as f:
            return f.read()

    def sock(self, name):
        return os.path.join(self.socket_dir, name + ".sock")

    def started_pids(self, name):
        return [int(p) for p in re.findall(
            r"worker %s: started \(pid (\d+)" % re.escape(name),
            self.read_log())]

    def assert_log(self, pattern, timeout=TIMEOUT, msg=None):
        found = wait_for(lambda: re.search(pattern, self.read_log()),
                         timeout)
        if not found:
            self.fail((msg or "no log line matching %r" % pattern)
                      + "\n--- lodged log ---\n" + self.read_log())
        return found

    def write_conf(self, text):
        # Whole or not at all: lodged never reads a half-written file.
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def reconfigure(self, text, expect="loaded;"):
        """Writes the config, sends SIGHUP and waits until lodged has
        read it (one SIGHUP at a time: two sent back to back would fold
        into one)."""
        mark = len(self.read_log())
        self.write_conf(text)
        self.proc.send_signal(signal.SIGHUP)
        if not wait_for(lambda: expect in self.read_log()[mark:]):
            self.fail("lodged did not report %r after SIGHUP\n"
                      "--- lodged log ---\n%s" % (expect, self.read_log()))
        return mark

    def assert_serves_as(self, name):
        status, body = request(self.sock(name))
        self.assertEqual(status, 200, body)
        uid = pwd.getpwnam(name).pw_uid
        self.assertIn("uid=%d " % uid, body)

    # ------------------------------------------------------------------

    def test_01_sockets(self):
        www = grp.getgrnam("www-data").gr_gid
        st = os.stat(self.socket_dir)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o755)
        for name in (USER_A, USER_B, USER_C):
            st = os.lstat(self.sock(name))
            self.assertTrue(stat.S_ISSOCK(st.st_mode), name)
            self.assertEqual((st.st_uid, st.st_gid), (0, www), name)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o660, name)

    def test_02_not_hosted(self):
        # Not listed; listed but uid below min_uid: no socket, ever.
        self.assertFalse(os.path.exists(self.sock(USER_D)))
        self.assertFalse(os.path.exists(self.sock(LOW_UID_USER)))
        self.assertEqual(sorted(os.listdir(self.socket_dir)),
                         sorted(n + ".sock" for n in (USER_A, USER_B, USER_C)))
        self.assertIn("user 'daemon' has uid 1, below min_uid",
                      self.read_log())

    def test_03_serves_as_user(self):
        self.assert_serves_as(USER_A)
        self.assert_serves_as(USER_B)
        # Several requests; USER_A has processes = 2: two workers share
        # the socket, started together on the first connection.
        for _ in range(5):
            self.assert_serves_as(USER_A)
        pids = self.started_pids(USER_A)
        self.assertEqual(len(set(pids)), 2, self.read_log())
        self.assertEqual(len(self.started_pids(USER_B)), 1, self.read_log())

    def test_04_killed_worker_restarts(self):
        self.assert_serves_as(USER_A)
        pids = self.started_pids(USER_A)
        os.kill(pids[-1], signal.SIGKILL)
        self.assert_log(r"worker %s \(pid %d\): killed by signal 9"
                        % (USER_A, pids[-1]))
        self.assert_log(r"worker %s: restarting in 1 s" % USER_A)
        self.assert_serves_as(USER_A)
        self.assertTrue(wait_for(
            lambda: len(self.started_pids(USER_A)) > len(pids)))

    def test_05_crash_backoff(self):
        # USER_C has no ~/apps: the worker exits 1 at start, again and
        # again; lodged backs off 1 s, 2 s, 4 s, 8 s and says so.
        try:
            request(self.sock(USER_C), timeout=2)
        except OSError:
            pass
        self.assert_log(r"worker %s: restarting in 1 s" % USER_C)
        self.assert_log(r"worker %s: restarting in 2 s" % USER_C)
        self.assert_log(r"worker %s: restarting in 4 s" % USER_C)
        self.assert_log(r"worker %s: restarting in 8 s" % USER_C,
                        timeout=TIMEOUT)
        self.assert_log(
            r"worker %s keeps crashing \(5 times in \d+ s\); next try in "
            r"16 s; see ~%s/logs/lodge/\*\.log" % (USER_C, USER_C),
            timeout=TIMEOUT + 10)
        # Times between starts double.
        log = self.read_log()
        self.assertGreaterEqual(log.count("worker %s: started" % USER_C), 5)

    def test_06_idle_exit_and_restart(self):
        idle_re = (r"worker %s \(pid \d+\): exited \(idle or drained\)"
                   % USER_B)
        self.assert_serves_as(USER_B)
        before = len(self.started_pids(USER_B))
        exits = len(re.findall(idle_re, self.read_log()))
        self.assertTrue(wait_for(
            lambda: len(re.findall(idle_re, self.read_log())) > exits,
            timeout=15), self.read_log())
        self.assert_serves_as(USER_B)
        self.assertEqual(len(self.started_pids(USER_B)), before + 1)

    def test_07_sighup_bad_config_keeps_old(self):
        try:
            self.reconfigure(self.good_conf.replace("threads = 2",
                                                    "threads = lots")
                             + "bogus line\n", expect="not loaded;")
            self.assert_log(r"%s:10: threads: expected a number from 1 to "
                            r"256, got 'lots'" % re.escape(self.conf))
            self.assert_log(r"%s:\d+: 'bogus line': not a setting"
                            % re.escape(self.conf))
            self.assert_log(r"not loaded; the previous configuration stays")
            self.assert_serves_as(USER_A)
            self.assertTrue(os.path.exists(self.sock(USER_B)))
        finally:
            self.write_conf(self.good_conf)

    def test_08_sighup_removes_and_adds(self):
        # Drop USER_C (socket gone), add USER_D (socket appears), then
        # go back.
        conf = self.good_conf.replace(", %s\n" % USER_C, ", %s\n" % USER_D)
        try:
            self.reconfigure(conf)
            self.assertTrue(wait_for(
                lambda: os.path.exists(self.sock(USER_D))
                and not os.path.exists(self.sock(USER_C))), self.read_log())
            self.assert_serves_as(USER_D)
            self.assert_serves_as(USER_A)
        finally:
            self.reconfigure(self.good_conf)
        self.assertTrue(wait_for(
            lambda: os.path.exists(self.sock(USER_C))
            and not os.path.exists(self.sock(USER_D))), self.read_log())

    def test_09_check_config(self):
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("[lodge]\nusers = alice\nthreads = 0\nseccomp = off\n"
                    "[weird]\n")
        r = subprocess.run([self.lodged, "--check-config", bad],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:3: threads: expected a number from 1 to 256"
                      % bad, r.stderr)
        self.assertIn("%s:4: seccomp: expected 'enforce', 'log' or 'kill'"
                      % bad, r.stderr)
        self.assertIn("%s:5: [weird]: unknown section" % bad, r.stderr)
        r = subprocess.run([self.lodged, "--check-config", self.conf],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s: ok" % self.conf, r.stdout)

    def test_10_sighup_changed_settings_replace_workers(self):
        # A changed limit replaces USER_A's workers gracefully (SIGTERM,
        # they drain and exit 0); the next connection starts new ones.
        self.assert_serves_as(USER_A)
        before = len(self.started_pids(USER_A))
        try:
            self.reconfigure(self.good_conf.replace("processes = 2",
                                                    "processes = 1"))
            self.assert_log(r"user %s: settings changed; replacing its "
                            r"workers" % USER_A)
            self.assert_log(r"worker %s \(pid \d+\): stopped, exited with "
                            r"status 0" % USER_A)
            self.assert_serves_as(USER_A)
            self.assertTrue(wait_for(
                lambda: len(self.started_pids(USER_A)) == before + 1))
        finally:
            self.reconfigure(self.good_conf)

    def test_10b_settings_change_with_pooled_connection(self):
        # A front end holds an idle keep-alive connection to alice's
        # socket (Apache's connection pool) when her settings change: a
        # new connection is served at once by a new worker, beside the
        # old one that keeps the idle connection, and a request sent on
        # the pooled connection is still answered, never reset.
        self.assert_serves_as(USER_A)
        pooled = socket.socket(socket.AF_UNIX)
        self.addCleanup(pooled.close)
        pooled.settimeout(TIMEOUT)
        pooled.connect(self.sock(USER_A))
        get = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
        pooled.sendall(get)
        self.assertIn(b" 200 ", pooled.recv(65536).split(b"\r\n")[0] + b" ")
        try:
            mark = self.reconfigure(self.good_conf.replace("threads = 2",
                                                           "threads = 3"))
            self.assertIn("user %s: settings changed; replacing" % USER_A,
                          self.read_log()[mark:])
            t0 = time.monotonic()
            self.assert_serves_as(USER_A)
            self.assertLess(time.monotonic() - t0, 5.0,
                            "a new connection waited for the old worker")
            time.sleep(1.0)
            pooled.sendall(get)
            data = b""
            while True:
                chunk = pooled.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertIn(b"connection: close", data.lower())
        finally:
            self.reconfigure(self.good_conf)

    def test_10c_scheduling(self):
        # Workers start SCHED_BATCH (the default); 'scheduling = normal'
        # replaces them, and the new ones run SCHED_OTHER.
        def policies(pids):
            out = set()
            for pid in pids:
                for tid in os.listdir("/proc/%d/task" % pid):
                    out.add(os.sched_getscheduler(int(tid)))
            return out

        self.assert_serves_as(USER_A)
        self.assertEqual(policies(self.started_pids(USER_A)[-2:]),
                         {os.SCHED_BATCH})
        before = len(self.started_pids(USER_A))
        try:
            mark = self.reconfigure(self.good_conf.replace(
                "threads = 2\n", "threads = 2\nscheduling = normal\n"))
            self.assertIn("user %s: settings changed; replacing" % USER_A,
                          self.read_log()[mark:])
            self.assertTrue(wait_for(lambda: re.search(
                r"worker %s \(pid \d+\): stopped" % USER_A,
                self.read_log()[mark:])), self.read_log())
            self.assert_serves_as(USER_A)
            self.assertTrue(wait_for(
                lambda: len(self.started_pids(USER_A)) >= before + 2),
                self.read_log())
            self.assertEqual(policies(self.started_pids(USER_A)[-2:]),
                             {os.SCHED_OTHER})
        finally:
            self.reconfigure(self.good_conf)

    def test_11_path_not_a_socket(self):
        # A regular file where a new user's socket would go is left alone
        # and reported; that user gets no socket, the others keep theirs.
        path = self.sock(USER_D)
        with open(path, "w") as f:
            f.write("not a socket\n")
        conf = self.good_conf.replace(", %s\n" % USER_C,
                                      ", %s %s\n" % (USER_C, USER_D))
        try:
            self.reconfigure(conf)
            self.assert_log(r"socket %s: exists and is not a socket"
                            % re.escape(path))
            self.assertTrue(stat.S_ISREG(os.lstat(path).st_mode))
            self.assert_serves_as(USER_A)
        finally:
            self.reconfigure(self.good_conf, expect="loaded; 3 user")
        self.assertTrue(stat.S_ISREG(os.lstat(path).st_mode))
        os.unlink(path)

    def test_99_sigterm_stops_everything(self):
        self.assert_serves_as(USER_A)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(40), 0, self.read_log())
        self.assertEqual(os.listdir(self.socket_dir), [])
        for name in (USER_A, USER_B, USER_C):
            r = run("pgrep", "-u", name, check=False)
            self.assertEqual(r.stdout.strip(), "", name)


if __name__ == "__main__":
    unittest.main()
