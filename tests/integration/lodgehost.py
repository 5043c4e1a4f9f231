"""A real lodge host for end-to-end tests, as root: Unix users created for
the test (useradd -m, removed afterwards with userdel -r), apps in their
homes, the binaries under test copied where every user can reach them,
a lodge.conf in a temp dir, and `lodged --foreground` started on it.

    host = LodgeHost("lodgetest-x", ["alice", "bob"])   # user name suffixes
    host.install_app("alice", "hello", HELLO_APP)
    host.start(extra="front = http:unix:%s\\n" % path)
    ...
    host.stop()

Environment: LODGED, LODGE_WORKER and LODGE_ROUTER name the binaries.
LODGE_TEST_KEEP=1 keeps the temp dir (its path goes to stderr).
"""

import fcntl
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT = float(os.environ.get("LODGE_TEST_TIMEOUT", "30"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout=TIMEOUT, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def set_up_class(cls, needs=()):
    """A test class's setUpClass body: skipped unless the environment
    variables needs (binaries) are set; cls._set_up(), and if that fails,
    cls._tear_down() (so that users, processes and files a half-made
    fixture made are removed) before the error goes on."""
    import unittest
    missing = missing_binaries(*needs)
    if missing:
        raise unittest.SkipTest("set " + ", ".join(missing))
    try:
        cls._set_up()
    except BaseException:
        cls._tear_down()
        raise


def unix_exchange(path, data, timeout=TIMEOUT):
    """Sends data on a new connection to the Unix stream socket at path
    and returns all it answers, up to its end."""
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def missing_binaries(*names):
    """The environment variables among names that are unset."""
    return [n for n in names if not os.environ.get(n)]


class LodgeHost:
    def __init__(self, prefix, users):
        self.prefix = prefix
        self.users = [prefix + u for u in users]
        self.created = []
        self.proc = None
        self.log = None
        self.tmp = tempfile.mkdtemp(prefix=prefix + "-")
        # Apache (www-data) reaches the front sockets in here.
        os.chmod(self.tmp, 0o755)
        if os.environ.get("LODGE_TEST_KEEP"):
            print("%s: test dir %s" % (prefix, self.tmp), file=sys.stderr)
        # The binaries, where every user can traverse (the build tree may
        # not be; /tmp is private in the sandbox).
        self.bindir = tempfile.mkdtemp(prefix=prefix + "-bin-",
                                       dir="/var/lib")
        os.chmod(self.bindir, 0o755)
        self.bin = {}
        for var, name in (("LODGE_WORKER", "lodge-worker"),
                          ("LODGE_ROUTER", "lodge-router")):
            if os.environ.get(var):
                dst = os.path.join(self.bindir, name)
                shutil.copy2(os.environ[var], dst)
                os.chmod(dst, 0o755)
                self.bin[name] = dst
        with open(self.bin["lodge-worker"], "rb") as f:
            self.is_asan = b"__asan_init" in f.read()
        self.conf = os.path.join(self.tmp, "lodge.conf")
        self.socket_dir = os.path.join(self.tmp, "users")
        self.log_path = os.path.join(self.tmp, "lodged.log")
        for name in self.users:
            if name in [p.pw_name for p in pwd.getpwall()]:
                run("pkill", "-KILL", "-u", name, check=False)
                run("userdel", "-r", name, check=False)
            run("useradd", "-m", "-s", "/usr/sbin/nologin", name)
            self.created.append(name)

    def home(self, user):
        return pwd.getpwnam(user).pw_dir

    def install_app(self, user, app, wsgi_text, files=None):
        """Writes ~user/apps/APP/wsgi.py (and files: {relpath: text})."""
        pw = pwd.getpwnam(user)
        apps = os.path.join(pw.pw_dir, "apps")
        root = os.path.join(apps, app)
        os.makedirs(root, exist_ok=True)
        todo = {"wsgi.py": wsgi_text}
        todo.update(files or {})
        for rel, text in todo.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        for dirpath, dirs, names in os.walk(apps):
            os.chown(dirpath, pw.pw_uid, pw.pw_gid)
            for n in names:
                os.chown(os.path.join(dirpath, n), pw.pw_uid, pw.pw_gid)

    def config(self, extra="", users=None, sections=""):
        policy_dir = os.path.join(REPO, "policy")
        text = (
            "; written by lodgehost.py\n"
            "[lodge]\n"
            "users = %s\n"
            "socket_dir = %s\n"
            "%s"
            "worker = %s\n"
            "policy = %s\n"
            "router = %s\n"
            "router_policy = %s\n"
            "threads = 4\n"
            "%s%s\n%s"
            % (" ".join(users if users is not None else self.users),
               self.socket_dir,
               "" if "control_socket" in extra else
               "control_socket = %s\n" % os.path.join(self.tmp,
                                                       "control.sock"),
               self.bin["lodge-worker"],
               os.path.join(policy_dir, "default.policy"),
               self.bin.get("lodge-router", "/usr/sbin/lodge-router"),
               os.path.join(policy_dir, "router.policy"),
               # An AddressSanitizer build needs system calls the
               # router's small policy denies (sigaltstack, ...): log
               # them instead; the plain build runs in enforce mode.
               "memory_max = max\nseccomp = log\n" if self.is_asan else "",
               extra, sections))
        return text

    def write_config(self, text):
        # Whole or not at all: a SIGHUP never finds a half-written file.
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.conf)

    def spawn(self, listen_fds=(), names=None, notify_socket=None):
        """Starts another `lodged --foreground` on the config as it is,
        logging to the same file; returns its Popen.  listen_fds (listening
        sockets) are passed as systemd passes lodge.socket's: as fds 3, 4,
        ... with LISTEN_FDS and LISTEN_PID (lodged's own pid, set after
        the fork), and names (one per fd) as LISTEN_FDNAMES.  The caller
        keeps its copies open, as systemd does.  notify_socket: the path
        given as NOTIFY_SOCKET (sd_notify, the fd store)."""
        if self.log is None:
            self.log = open(self.log_path, "a")
        n = len(listen_fds)
        nfds = str(n)
        fdnames = ":".join(names) if names is not None else None
        # Out of the way of 3 .. 3+n-1 first, so no source is overwritten.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64)
                for fd in listen_fds]

        def systemd_way():
            # In the child between fork and exec, while other threads of
            # the test may hold locks: dup2 and putenv only.
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)
            # (putenv, not Popen's env=: that one is fixed before the
            # fork, and LISTEN_PID is known only after it.)
            if n:
                os.putenv("LISTEN_FDS", nfds)
                os.putenv("LISTEN_PID", str(os.getpid()))
            if n and fdnames is not None:
                os.putenv("LISTEN_FDNAMES", fdnames)
            if notify_socket is not None:
                os.putenv("NOTIFY_SOCKET", notify_socket)
        try:
            return subprocess.Popen(
                [os.environ["LODGED"], "--foreground", "--config", self.conf],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                pass_fds=range(3, 3 + n),
                preexec_fn=systemd_way if n or notify_socket else None)
        finally:
            for fd in high:
                os.close(fd)

    def start(self, extra="", sections="", ready="ready:", listen_fds=(),
              names=None, notify_socket=None):
        self.write_config(self.config(extra, sections=sections))
        self.log = open(self.log_path, "a")
        self.proc = self.spawn(listen_fds, names, notify_socket)
        if not wait_for(lambda: ready in self.read_log()
                        or self.proc.poll() is not None):
            raise RuntimeError("lodged did not start:\n" + self.read_log())
        if self.proc.poll() is not None:
            raise RuntimeError("lodged exited %d:\n%s"
                               % (self.proc.returncode, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=TIMEOUT, start=0):
        """The first match of pattern in the log after offset start."""
        return wait_for(lambda: re.search(pattern, self.read_log()[start:]),
                        timeout)

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None
        for name in self.created:
            run("pkill", "-KILL", "-u", name, check=False)
            run("userdel", "-r", name, check=False)
        self.created = []
        shutil.rmtree(self.bindir, ignore_errors=True)
        if not os.environ.get("LODGE_TEST_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
