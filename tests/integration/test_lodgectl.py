"""End-to-end tests of lodgectl and lodged's control socket: the real
lodged (lodgehost.LodgeHost: real users, the real sandbox and worker)
driven by the real lodgectl.

Runs as root only (skipped otherwise).  Users: lodgectl-a and lodgectl-b
are hosted (an app "hello" each); lodgectl-m is a member of the control
group lodgectl-adm; lodgectl-x is not.  lodged gets

    control_socket = TMP/control.sock
    control_group = lodgectl-adm

Environment: LODGED, LODGE_WORKER and LODGECTL name the binaries under
test (LODGE_ROUTER is not needed: no front socket here).
"""

import grp
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import threading
import time
import unittest

import lodgehost
from lodgehost import TIMEOUT, wait_for

A = "lodgectl-a"
B = "lodgectl-b"
MEMBER = "lodgectl-m"
OUTSIDER = "lodgectl-x"
GROUP = "lodgectl-adm"

HELLO_APP = '''\
import os
import socket
import time

print("hello app imported")

def garbage_to_lodged():
    # What a taken-over app could do: write to the worker's channel to
    # lodged (the only SOCK_SEQPACKET socket of a worker without a router).
    for fd in range(3, 256):
        try:
            s = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if s.type == socket.SOCK_SEQPACKET:
            # A STATS (type 13) of 3 bytes: far too short.
            s.send(b"\\x0d\\x00\\x00\\x00\\x03\\x00\\x00\\x00abc")
        s.close()

def application(environ, start_response):
    qs = environ.get("QUERY_STRING", "")
    if qs == "garbage-to-lodged":
        garbage_to_lodged()
    if qs.startswith("sleep="):
        # Tells the test the request is in (the app's folder is visible
        # to root), then takes its time.
        mark = os.path.join(os.path.dirname(__file__), "sleeping")
        open(mark, "w").close()
        time.sleep(float(qs[6:]))
        os.unlink(mark)
    body = ("uid=%d pid=%d\\n" % (os.getuid(), os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

# A Prometheus text exposition sample line: name, optional labels, value.
SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)?\})? '
    r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')


def run(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def parse_prometheus(text):
    """{family: type} and [(name, {label: value}, value)]; raises on any
    line that is not the exposition format."""
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind not in ("counter", "gauge", "histogram", "summary",
                            "untyped"):
                raise ValueError("bad type: " + line)
            types[name] = kind
            continue
        m = SAMPLE_RE.match(line)
        if m is None:
            raise ValueError("not a sample line: %r" % line)
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                 m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(5))))
    return types, samples


def http_get(path, timeout=TIMEOUT, target="/"):
    """GET target on a Unix socket: (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                  % target.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body.decode()


@unittest.skipUnless(os.geteuid() == 0, "needs root (users, lodged)")
class LodgectlTest(unittest.TestCase):
    host = None
    extra_users = []

    @classmethod
    def setUpClass(cls):
        lodgehost.set_up_class(cls, needs=("LODGED", "LODGE_WORKER", "LODGECTL"))

    @classmethod
    def _set_up(cls):
        run("groupdel", GROUP, check=False)
        for name in (MEMBER, OUTSIDER):
            run("userdel", "-r", name, check=False)
        run("groupadd", GROUP)
        run("useradd", "-M", "-s", "/usr/sbin/nologin", "-G", GROUP, MEMBER)
        cls.extra_users.append(MEMBER)
        run("useradd", "-M", "-s", "/usr/sbin/nologin", OUTSIDER)
        cls.extra_users.append(OUTSIDER)

        cls.host = h = lodgehost.LodgeHost("lodgectl", ["-a", "-b"])
        for u in (A, B):
            h.install_app(u, "hello", HELLO_APP)
        # lodgectl where the test users can run it too.
        cls.ctl_bin = os.path.join(h.bindir, "lodgectl")
        shutil.copy2(os.environ["LODGECTL"], cls.ctl_bin)
        os.chmod(cls.ctl_bin, 0o755)
        cls.sock = os.path.join(h.tmp, "control.sock")
        cls.extra = ("control_socket = %s\ncontrol_group = %s\n"
                     % (cls.sock, GROUP))
        h.start(extra=cls.extra)
        cls.good_conf = h.config(cls.extra)

    @classmethod
    def tearDownClass(cls):
        cls._tear_down()

    @classmethod
    def _tear_down(cls):
        if cls.host is not None:
            cls.host.stop()
            cls.host = None
        for name in cls.extra_users:
            run("userdel", "-r", name, check=False)
        cls.extra_users = []
        run("groupdel", GROUP, check=False)

    # -- helpers -----------------------------------------------------------

    def ctl(self, *args, user=None, socket_path=None, timeout=TIMEOUT * 2):
        """Runs lodgectl; (exit status, stdout, stderr)."""
        env = dict(os.environ)
        env["LODGE_CONTROL_SOCKET"] = socket_path or self.sock
        cmd = [self.ctl_bin] + list(args)
        if user is not None:
            cmd = ["setpriv", "--reuid=" + user, "--regid=" + user,
                   "--init-groups", "--"] + cmd
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ctl_json(self, *args, expect=0, **kw):
        rc, out, err = self.ctl("--json", *args, **kw)
        self.assertEqual(rc, expect, "lodgectl %s: %s%s\n%s" % (
            " ".join(args), out, err, self.host.read_log()[-3000:]))
        return json.loads(out)

    def user_status(self, name):
        body = self.ctl_json("status", name)
        self.assertEqual(len(body["users"]), 1)
        return body["users"][0]

    def ensure_running(self, name):
        st = self.user_status(name)
        if st["running"] == 0:
            self.ctl_json("start", name)
        self.assertTrue(wait_for(lambda: self.user_status(name)["workers"][0]
                                 ["pid"] is not None),
                        self.host.read_log()[-3000:])
        return self.user_status(name)

    def wait_reported(self, name):
        """The user's status once its worker reported (apps known)."""
        u = wait_for(lambda: (lambda u: u["apps"] is not None and
                              u["workers"][0]["requests_served"] is not None
                              and u)(self.user_status(name)))
        self.assertTrue(u, self.host.read_log()[-3000:])
        return u

    def hello_app(self, name):
        return {a["name"]: a for a in self.user_status(name)["apps"]
                or []}.get("hello")

    def wait_app(self, name, predicate, what):
        """Waits until the hello app's record satisfies predicate."""
        a = wait_for(lambda: (lambda a: a is not None and predicate(a)
                              and a)(self.hello_app(name)))
        self.assertTrue(a, "%s: %r\n%s" % (what, self.hello_app(name),
                                           self.host.read_log()[-3000:]))
        return a

    def log_dir(self, name):
        pw = pwd.getpwnam(name)
        d = os.path.join(pw.pw_dir, "logs", "lodge")
        if not os.path.isdir(d):
            os.makedirs(d)
            for p in (os.path.join(pw.pw_dir, "logs"), d):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        return d

    # -- status ------------------------------------------------------------

    def test_status_json(self):
        body = self.ctl_json("status")
        lodged = body["lodged"]
        self.assertEqual(lodged["pid"], self.host.proc.pid)
        self.assertEqual(lodged["config"], self.host.conf)
        self.assertEqual(lodged["protocol"], 1)
        self.assertEqual(lodged["users_hosted"], 2)
        self.assertEqual(lodged["control_group"], GROUP)
        self.assertIsNone(body["router"])  # no front socket
        names = [u["name"] for u in body["users"]]
        self.assertEqual(names, [A, B])
        for u in body["users"]:
            self.assertEqual(u["uid"], pwd.getpwnam(u["name"]).pw_uid)
            self.assertIn(u["state"], ("idle", "running", "stopped",
                                       "stopping", "restarting",
                                       "draining"))
            self.assertEqual(u["processes"], 1)
            self.assertEqual(len(u["workers"]), 1)
            # What the workers report: counted over lodged's life for
            # the user; no front socket, no router: no queue (null).
            for key in ("requests_served", "requests_inflight",
                        "reloads_ok", "reloads_failed"):
                self.assertIsInstance(u[key], int)
            self.assertEqual(sorted(u["responses"]),
                             ["1xx", "2xx", "3xx", "4xx", "5xx"])
            self.assertIsNone(u["queue_depth"])
            self.assertIn("apps", u)
            self.assertTrue(u["apps"] is None or
                            isinstance(u["apps"], list), u["apps"])
            w = u["workers"][0]
            # A worker's own counts: null until it reported.
            for key in ("requests_served", "requests_inflight"):
                self.assertIn(key, w)
                if w["pid"] is None:
                    self.assertIsNone(w[key])
            # The overview leaves out the detail.
            self.assertNotIn("limits", u)

    def test_status_user_detail(self):
        u = self.ensure_running(A)
        pw = pwd.getpwnam(A)
        self.assertEqual(u["state"], "running")
        self.assertEqual(u["home"], pw.pw_dir)
        self.assertEqual(u["log_dir"], os.path.join(pw.pw_dir, "logs",
                                                    "lodge"))
        self.assertEqual(u["socket"], os.path.join(self.host.socket_dir,
                                                   A + ".sock"))
        self.assertEqual(u["limits"]["threads"], 4)
        w = u["workers"][0]
        self.assertEqual(w["state"], "running")
        self.assertGreaterEqual(w["starts"], 1)
        self.assertGreater(w["rss_bytes"], 0)
        self.assertGreaterEqual(w["cpu_seconds"], 0)
        self.assertGreaterEqual(w["processes"], 1)
        self.assertIsNotNone(w["spawn_seconds"])
        # pid is the worker itself: the user's, a child of the namespace
        # init lodged holds.
        with open("/proc/%d/status" % w["pid"]) as f:
            status = f.read()
        self.assertRegex(status, r"\nUid:\t%d\t" % pw.pw_uid)
        self.assertRegex(status, r"\nPPid:\t%d\n" % w["init_pid"])
        self.assertEqual(u["rss_bytes"], w["rss_bytes"])

        rc, out, err = self.ctl("status", A)
        self.assertEqual(rc, 0, err)
        self.assertIn("%s (uid %d): running, 1 of 1 worker(s) running"
                      % (A, pw.pw_uid), out)
        self.assertRegex(out, r"\n0  running  %d  %d " % (w["pid"],
                                                         w["init_pid"]))
        self.assertIn("  limits   processes 1, threads 4", out)

    def test_status_text(self):
        self.ensure_running(A)
        self.wait_reported(A)
        for args in ((), ("status",)):
            rc, out, err = self.ctl(*args)
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.startswith("lodged "), out)
            self.assertIn("router: none", out)
            self.assertRegex(out, r"\nUSER +STATE +W +PID +UPTIME +RSS +CPU "
                                  r"+REQS +INFL +RESTARTS +CRASHES +NOTE\n")
            # A running worker's row, with the requests it reported.
            self.assertRegex(out, r"\n%s +running +0 +\d+ +\S+ +[0-9.]+[KMG] "
                                  r"+[0-9.]+s +\d+ +\d+ +\d+ +\d+\n" % A)
            # The apps table: the app, its mode, version and state.
            self.assertRegex(out, r"\nUSER +APP +MODE +VERSION +STATE +"
                                  r"LAST RELOAD\n")
            self.assertRegex(out, r"\n%s +hello +sub +\d+ +ok +" % A)

    def test_status_unknown_user(self):
        rc, out, err = self.ctl("status", "nosuchuser")
        self.assertEqual(rc, 5)
        self.assertIn("nosuchuser is not a hosted user", err)
        body = self.ctl_json("status", "nosuchuser", expect=5)
        self.assertEqual(body["error"]["kind"], "nouser")

    # -- stop, start, restart, reload ---------------------------------------

    def test_stop_then_start(self):
        self.ensure_running(B)
        sock = os.path.join(self.host.socket_dir, B + ".sock")
        self.assertEqual(http_get(sock)[0], 200)
        body = self.ctl_json("stop", B)
        self.assertIn("is stopped", body["message"])
        self.assertTrue(wait_for(lambda: self.user_status(B)["state"]
                                 == "stopped"), self.user_status(B))
        u = self.user_status(B)
        self.assertTrue(u["held"])
        self.assertIsNone(u["workers"][0]["pid"])
        rc, out, _ = self.ctl("status")
        self.assertRegex(out, r"\n%s +stopped .*lodgectl start %s\n" % (B, B))

        # A connection now waits: no worker is started for it...
        log_mark = len(self.host.read_log())
        result = {}

        def get():
            try:
                result["r"] = http_get(sock, timeout=TIMEOUT * 2)
            except Exception as e:  # reported below
                result["r"] = e
        t = threading.Thread(target=get)
        t.start()
        time.sleep(1)
        self.assertEqual(self.user_status(B)["running"], 0)
        self.assertNotIn("worker %s: started" % B,
                         self.host.read_log()[log_mark:])
        self.assertNotIn("r", result)
        # ...until lodgectl start, and then it is served.
        body = self.ctl_json("start", B)
        self.assertEqual(body["running"], 1)
        self.assertIn("started again", body["message"])
        t.join(TIMEOUT * 2)
        self.assertEqual(result.get("r", (0,))[0], 200, result)
        self.assertFalse(self.user_status(B)["held"])

    def test_start_while_draining(self):
        u = self.ensure_running(B)
        old_init = u["workers"][0]["init_pid"]
        sock = os.path.join(self.host.socket_dir, B + ".sock")
        result = {}

        def slow():
            result["r"] = http_get(sock, target="/?sleep=3")
        mark = os.path.join(self.host.home(B), "apps", "hello", "sleeping")
        t = threading.Thread(target=slow)
        t.start()
        # The request is in the app when the worker is told to stop.
        self.assertTrue(wait_for(lambda: os.path.exists(mark)))
        self.ctl_json("stop", B)
        body = self.ctl_json("start", B)
        self.assertIn("new ones start as soon as they have exited",
                      body["message"])
        t.join(TIMEOUT)
        self.assertEqual(result.get("r", (0,))[0], 200, result)

        def new_worker():
            w = self.user_status(B)["workers"][0]
            return (w["state"] == "running" and w["pid"] is not None and
                    w["init_pid"] != old_init)
        self.assertTrue(wait_for(new_worker), self.host.read_log()[-3000:])
        self.assertFalse(self.user_status(B)["held"])

    def test_start_when_running(self):
        self.ensure_running(A)
        body = self.ctl_json("start", A)
        self.assertIn("already running", body["message"])
        self.assertEqual(body["running"], 1)

    def test_restart(self):
        u = self.ensure_running(A)
        old_init = u["workers"][0]["init_pid"]
        body = self.ctl_json("restart", A)
        self.assertEqual(body["draining"], 1)

        def restarted():
            w = self.user_status(A)["workers"][0]
            return (w["state"] == "running" and w["pid"] is not None
                    and w["init_pid"] != old_init)
        self.assertTrue(wait_for(restarted), self.host.read_log()[-3000:])
        self.assertFalse(os.path.exists("/proc/%d" % old_init))
        sock = os.path.join(self.host.socket_dir, A + ".sock")
        self.assertEqual(http_get(sock)[0], 200)

    def test_reload_user(self):
        u = self.ensure_running(A)
        w = u["workers"][0]
        body = self.ctl_json("reload", A)
        self.assertEqual(body["init_pids"], [w["init_pid"]])

        # The worker replaces itself: a new pid under the same init.
        def replaced():
            nw = self.user_status(A)["workers"][0]
            return nw["pid"] not in (None, w["pid"]) and nw
        nw = wait_for(replaced)
        self.assertTrue(nw, self.host.read_log()[-3000:])
        self.assertEqual(nw["init_pid"], w["init_pid"])
        sock = os.path.join(self.host.socket_dir, A + ".sock")
        status, text = http_get(sock)
        self.assertEqual(status, 200)

    def test_reload_app(self):
        self.ensure_running(A)
        before = self.wait_reported(A)
        hello = self.wait_app(A, lambda a: a["state"] == "ok", "serving")
        ok_before = before["reloads_ok"]
        rc, out, err = self.ctl("reload", A + "/hello")
        self.assertEqual(rc, 0, err)
        self.assertIn("%s/hello: reload asked of 1 worker(s)" % A, out)
        a = self.wait_app(A, lambda a: a["version"] > hello["version"],
                          "a new version")
        self.assertEqual(a["last_reload"]["ok"], True)
        self.assertEqual(a["reloads_ok"], hello["reloads_ok"] + 1)
        self.assertLessEqual(abs(a["last_reload"]["when"] - time.time()), 60)
        self.assertEqual(self.user_status(A)["reloads_ok"], ok_before + 1)
        body = self.ctl_json("reload", A + "/hello")
        self.assertEqual((body["user"], body["app"], body["workers"]),
                         (A, "hello", 1))
        # An app the worker does not have.
        rc, out, err = self.ctl("reload", A + "/nosuch")
        self.assertEqual(rc, 5)
        self.assertIn("has no app named 'nosuch'", err)
        body = self.ctl_json("reload", A + "/nosuch", expect=5)
        self.assertEqual(body["error"]["kind"], "nofile")

    def test_app_reload_shows_version_and_failure(self):
        """Editing the app: a new version, ok; a syntax error: failed with
        its reason, and the old version keeps serving."""
        self.ensure_running(A)
        self.wait_reported(A)
        hello = self.wait_app(A, lambda a: a["state"] == "ok", "serving")
        self.assertEqual(hello["mode"], "sub")
        sock = os.path.join(self.host.socket_dir, A + ".sock")
        try:
            self.host.install_app(A, "hello", HELLO_APP + "\n# edited\n")
            edited = self.wait_app(
                A, lambda a: a["version"] > hello["version"] and
                a["last_reload"] is not None and a["last_reload"]["ok"],
                "the edit reloaded")
            self.host.install_app(A, "hello",
                                  HELLO_APP + "\ndef broken(:\n")
            failed = self.wait_app(
                A, lambda a: a["reloads_failed"] > edited["reloads_failed"],
                "the syntax error reported")
            self.assertFalse(failed["last_reload"]["ok"])
            self.assertIn("SyntaxError", failed["last_reload"]["reason"])
            self.assertEqual(failed["version"], edited["version"])
            self.assertEqual(failed["state"], "ok")
            self.assertEqual(http_get(sock)[0], 200)
            rc, out, err = self.ctl("status", A)
            self.assertEqual(rc, 0, err)
            self.assertRegex(out, r"\n%s +hello +sub +%d +ok +FAILED \S+ "
                                  r"ago: .*SyntaxError" % (A, edited["version"]))
            self.assertGreaterEqual(self.user_status(A)["reloads_failed"], 1)
        finally:
            self.host.install_app(A, "hello", HELLO_APP)
        self.wait_app(A, lambda a: a["last_reload"]["ok"], "restored")
        self.assertEqual(http_get(sock)[0], 200)

    def test_requests_counted(self):
        self.ensure_running(A)
        before = self.wait_reported(A)
        sock = os.path.join(self.host.socket_dir, A + ".sock")
        for _ in range(3):
            self.assertEqual(http_get(sock)[0], 200)
        u = wait_for(lambda: (lambda u: u["requests_served"] >=
                              before["requests_served"] + 3 and u)(
                                  self.user_status(A)))
        self.assertTrue(u, self.user_status(A))
        self.assertEqual(u["responses"]["2xx"] - before["responses"]["2xx"],
                         u["requests_served"] - before["requests_served"])
        self.assertGreaterEqual(u["workers"][0]["requests_served"], 3)
        self.assertEqual(u["requests_inflight"], 0)
        hello = [a for a in u["apps"] if a["name"] == "hello"][0]
        self.assertGreaterEqual(hello["requests"], 3)

    def test_restart_while_stopped_is_refused(self):
        self.ctl_json("stop", B)
        try:
            rc, out, err = self.ctl("restart", B)
            self.assertEqual(rc, 1)
            self.assertIn("lodgectl start %s" % B, err)
        finally:
            self.ctl_json("start", B)

    # -- logs ----------------------------------------------------------------

    def test_logs(self):
        self.ensure_running(A)
        self.assertTrue(wait_for(lambda: "ready:" in self.ctl("logs", A)[1]))
        rc, out, err = self.ctl("logs", A + "/hello")
        self.assertEqual(rc, 0, err)
        self.assertIn("hello app imported", out)
        rc, out, err = self.ctl("logs", "-n", "1", A)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.count("\n"), 1, out)
        body = self.ctl_json("logs", A + "/hello")
        self.assertEqual(body["user"], A)
        self.assertEqual(body["app"], "hello")
        self.assertEqual(body["file"], os.path.join(self.log_dir(A),
                                                    "hello.log"))
        self.assertTrue(any("hello app imported" in l
                            for l in body["lines"]))
        body = self.ctl_json("logs", A + "/nosuchapp", expect=5)
        self.assertEqual(body["error"]["kind"], "nofile")

    def test_logs_tail_is_bounded(self):
        d = self.log_dir(B)
        pw = pwd.getpwnam(B)
        path = os.path.join(d, "big.log")
        with open(path, "w") as f:
            for i in range(20000):
                f.write("line %06d %s\n" % (i, "x" * 40))
        os.chown(path, pw.pw_uid, pw.pw_gid)
        try:
            body = self.ctl_json("logs", "-n", "10000", B + "/big")
            self.assertTrue(body["truncated"])
            lines = body["lines"]
            # The last 64 KiB, whole lines only, ending with the last.
            self.assertEqual(lines[-1], "line 019999 " + "x" * 40)
            self.assertLessEqual(sum(len(l) + 1 for l in lines), 65536)
            self.assertRegex(lines[0], r"^line \d{6} x{40}$")
            body = self.ctl_json("logs", "-n", "3", B + "/big")
            self.assertEqual([l[:11] for l in body["lines"]],
                             ["line 019997", "line 019998", "line 019999"])
        finally:
            os.unlink(path)

    def test_logs_are_read_as_the_user(self):
        d = self.log_dir(A)
        with open("/etc/shadow") as f:
            self.assertIn("root:", f.read())  # root could read it
        links = {
            "leak": "/etc/shadow",
        }
        for name, target in links.items():
            os.symlink(target, os.path.join(d, name + ".log"))
        secret = os.path.join(d, "secret.log")
        with open(secret, "w") as f:
            f.write("root's own secret\n")
        os.chmod(secret, 0o600)
        fifo = os.path.join(d, "fifo.log")
        os.mkfifo(fifo)
        try:
            for app in ("leak", "secret"):
                rc, out, err = self.ctl("logs", "%s/%s" % (A, app))
                self.assertEqual(rc, 1, out + err)
                self.assertIn("Permission denied", err)
                self.assertNotIn("root:", out + err)
                self.assertNotIn("secret", out)
                body = self.ctl_json("logs", "%s/%s" % (A, app), expect=1)
                self.assertNotIn("lines", body)
            # A FIFO neither blocks the reader nor lodged.
            rc, out, err = self.ctl("logs", A + "/fifo")
            self.assertEqual(rc, 1)
            self.assertIn("not a regular file", err)
            self.assertEqual(self.ctl("status")[0], 0)
        finally:
            for name in list(links) + ["secret", "fifo"]:
                os.unlink(os.path.join(d, name + ".log"))

    # -- the configuration ----------------------------------------------------

    def test_check_config(self):
        body = self.ctl_json("check-config")
        self.assertTrue(body["ok"])
        self.assertEqual(body["errors"], [])
        self.assertEqual([u["name"] for u in body["users"]], [A, B])
        rc, out, err = self.ctl("check-config")
        self.assertEqual(rc, 0, err)
        self.assertIn("%s: hosts %s (uid " % (self.host.conf, A), out)
        self.assertIn("is valid", out)

    def test_reload_config(self):
        body = self.ctl_json("reload-config")
        self.assertTrue(body["loaded"])
        self.assertEqual(body["users_hosted"], 2)
        self.assertIn("loaded; 2 user(s) hosted", body["message"])

    def test_reload_config_broken(self):
        self.host.write_config(self.good_conf + "threads = lots\n")
        try:
            rc, out, err = self.ctl("check-config")
            self.assertEqual(rc, 1)
            self.assertIn("threads", out)
            self.assertIn("fix them", err)
            rc, out, err = self.ctl("reload-config")
            self.assertEqual(rc, 1)
            self.assertRegex(out, r"lodge\.conf:\d+: threads: ")
            self.assertIn("was not loaded; the previous configuration "
                          "stays in force", err)
            body = self.ctl_json("reload-config", expect=1)
            self.assertFalse(body["loaded"])
            self.assertEqual(body["error"]["kind"], "failed")
            self.assertTrue(any("threads" in e for e in body["errors"]))
            # The old one is in force: both users still hosted.
            self.assertEqual(self.ctl_json("status")["lodged"]
                             ["users_hosted"], 2)
        finally:
            self.host.write_config(self.good_conf)
        self.assertTrue(self.ctl_json("reload-config")["loaded"])

    def test_reload_config_drops_a_user(self):
        self.host.write_config(self.host.config(self.extra, users=[A]))
        try:
            body = self.ctl_json("reload-config")
            self.assertEqual(body["users_hosted"], 1)
            self.ctl_json("status", B, expect=5)
        finally:
            self.host.write_config(self.good_conf)
            self.ctl_json("reload-config")
        self.assertEqual(self.user_status(B)["name"], B)

    # -- metrics --------------------------------------------------------------

    def test_metrics(self):
        self.ensure_running(A)
        rc, out, err = self.ctl("metrics")
        self.assertEqual(rc, 0, err)
        types, samples = parse_prometheus(out)
        self.assertEqual(types["lodge_workers"], "gauge")
        self.assertEqual(types["lodge_worker_starts_total"], "counter")
        self.assertEqual(types["lodge_worker_spawn_seconds"], "histogram")
        for name, labels, value in samples:
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in types or family in types, name)
        by = {(n, tuple(sorted(l.items()))): v for n, l, v in samples}
        self.assertEqual(by[("lodge_users_hosted", ())], 2)
        self.assertGreaterEqual(by[("lodge_workers", (("user", A),))], 1)
        self.assertIn(("lodge_workers", (("user", B),)), by)
        self.assertGreater(by[("lodge_worker_rss_bytes", (("user", A),))], 0)
        # The histogram: cumulative buckets ending in +Inf = count.
        buckets = [(l["le"], v) for n, l, v in samples
                   if n == "lodge_worker_spawn_seconds_bucket"]
        self.assertEqual(buckets[-1][0], "+Inf")
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values))
        count = by[("lodge_worker_spawn_seconds_count", ())]
        self.assertEqual(values[-1], count)
        self.assertGreaterEqual(count, 1)
        self.assertGreater(by[("lodge_worker_spawn_seconds_sum", ())], 0)
        body = self.ctl_json("metrics")
        self.assertEqual(body["format"], "lodge metrics 1")

    def test_metrics_requests(self):
        self.ensure_running(A)
        self.wait_reported(A)
        sock = os.path.join(self.host.socket_dir, A + ".sock")
        self.assertEqual(http_get(sock)[0], 200)
        self.assertEqual(http_get(sock, target="/nosuch")[0], 200)
        served = wait_for(lambda: self.user_status(A)["requests_served"] >= 2
                          and self.user_status(A)["requests_served"])
        self.assertTrue(served)
        rc, out, err = self.ctl("metrics")
        self.assertEqual(rc, 0, err)
        types, samples = parse_prometheus(out)
        self.assertEqual(types["lodge_requests_total"], "counter")
        self.assertEqual(types["lodge_responses_total"], "counter")
        self.assertEqual(types["lodge_request_duration_seconds"],
                         "histogram")
        self.assertEqual(types["lodge_app_reloads_total"], "counter")
        by = {(n, tuple(sorted(l.items()))): v for n, l, v in samples}
        total = by[("lodge_requests_total", (("user", A),))]
        self.assertGreaterEqual(total, served)
        self.assertIn(("lodge_requests_total", (("user", B),)), by)
        classes = {l["class"]: v for n, l, v in samples
                   if n == "lodge_responses_total" and l["user"] == A}
        self.assertEqual(sorted(classes), ["1xx", "2xx", "3xx", "4xx",
                                           "5xx"])
        self.assertGreaterEqual(classes["2xx"], 2)
        self.assertLessEqual(sum(classes.values()), total)
        for user in (A, B):
            buckets = [(l["le"], v) for n, l, v in samples
                       if n == "lodge_request_duration_seconds_bucket"
                       and l["user"] == user]
            self.assertEqual(len(buckets), 13)
            self.assertEqual(buckets[-1][0], "+Inf")
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values))
            count = by[("lodge_request_duration_seconds_count",
                        (("user", user),))]
            self.assertEqual(values[-1], count)
            self.assertEqual(count, by[("lodge_requests_total",
                                        (("user", user),))])
        self.assertGreater(by[("lodge_request_duration_seconds_sum",
                               (("user", A),))], 0)
        for result in ("ok", "failed"):
            self.assertIn(("lodge_app_reloads_total",
                           (("result", result), ("user", A))), by)

    # -- who may ask ------------------------------------------------------------

    def test_socket_permissions(self):
        st = os.stat(self.sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_uid, 0)
        self.assertEqual(st.st_gid, grp.getgrnam(GROUP).gr_gid)

    def test_member_of_control_group(self):
        rc, out, err = self.ctl("--json", "status", user=MEMBER)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["lodged"]["users_hosted"], 2)

    def test_permission_denied(self):
        # The socket's mode keeps the outsider out...
        rc, out, err = self.ctl("status", user=OUTSIDER)
        self.assertEqual(rc, 4, out + err)
        self.assertIn("permission denied", err)
        self.assertIn("control_group", err)
        # ...and so does lodged, when the mode would not.
        os.chmod(self.sock, 0o666)
        try:
            rc, out, err = self.ctl("status", user=OUTSIDER)
            self.assertEqual(rc, 4, out + err)
            self.assertIn("may not use lodged's control socket", err)
            self.assertIn(GROUP, err)
            self.assertEqual(out, "")
            rc, out, err = self.ctl("--json", "stop", A, user=OUTSIDER)
            self.assertEqual(rc, 4)
            self.assertEqual(json.loads(out)["error"]["kind"], "denied")
            self.assertNotEqual(self.user_status(A)["state"], "stopped")
        finally:
            os.chmod(self.sock, 0o660)
        self.assertIn("refused uid %d" % pwd.getpwnam(OUTSIDER).pw_uid,
                      self.host.read_log())

    # -- the protocol -----------------------------------------------------------

    def raw(self, request):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.settimeout(TIMEOUT)
            s.connect(self.sock)
            s.send(request)
            data = b""
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    return data.decode()
                data += chunk

    def test_worker_sending_garbage_is_killed(self):
        """A worker whose channel to lodged carries garbage (here: its
        app writes a malformed STATS on it) is killed as a crash."""
        u = self.ensure_running(B)
        old_init = u["workers"][0]["init_pid"]
        crashes = u["crashes"]
        mark = len(self.host.read_log())
        sock = os.path.join(self.host.socket_dir, B + ".sock")
        try:
            http_get(sock, target="/?garbage-to-lodged")
        except (OSError, IndexError, ValueError):
            pass  # killed before it answered: fine
        self.assertTrue(self.host.wait_log(
            r"worker %s \(pid %d\): bad stats message \(.*\); killing it"
            % (B, old_init), start=mark), self.host.read_log()[mark:])
        self.assertTrue(wait_for(lambda: self.user_status(B)["crashes"]
                                 == crashes + 1), self.user_status(B))
        # Started again (start lifts the backoff), it serves.
        self.ctl_json("start", B)
        self.assertTrue(wait_for(lambda: self.user_status(B)["workers"][0]
                                 ["pid"] is not None))
        self.assertEqual(http_get(sock)[0], 200)

    def test_version_mismatch_from_lodgectl(self):
        reply = self.raw(b"LODGECTL 999 status")
        head, _, body = reply.partition("\n")
        self.assertTrue(head.startswith("LODGECTL 1 ERR version "), head)
        self.assertIn("protocol 999", head)
        self.assertIn("use the lodgectl installed with this lodged", head)
        self.assertEqual(json.loads(body)["error"]["kind"], "version")

    def test_garbage_requests(self):
        for req in (b"GET / HTTP/1.1\r\n\r\n", b"LODGECTL 1",
                    b"LODGECTL 1 status \x1b", b"LODGECTL 1 frob",
                    b"LODGECTL 1 status a b", b"x" * 5000):
            head = self.raw(req).partition("\n")[0]
            self.assertTrue(head.startswith("LODGECTL 1 ERR usage "),
                            (req, head))
        self.assertEqual(self.ctl("status")[0], 0)

    def fake_lodged(self, reply):
        """A control socket that answers reply to anything; its path."""
        path = os.path.join(self.host.tmp, "fake.sock")
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        srv.bind(path)
        srv.listen(1)

        def serve():
            conn, _ = srv.accept()
            conn.recv(4096)
            conn.send(reply)
            conn.close()
            srv.close()
        threading.Thread(target=serve, daemon=True).start()
        return path

    def test_version_mismatch_from_lodged(self):
        path = self.fake_lodged(b"LODGECTL 2 OK\n{}")
        rc, out, err = self.ctl("status", socket_path=path)
        self.assertEqual(rc, 6)
        self.assertIn("control protocol 2 and this lodgectl speaks 1", err)
        # A newer lodged refusing an old lodgectl: its sentence is shown.
        path = self.fake_lodged(b"LODGECTL 2 ERR version lodged speaks 2; "
                                b"upgrade lodgectl\n")
        rc, out, err = self.ctl("--json", "status", socket_path=path)
        self.assertEqual(rc, 6)
        self.assertIn("lodged speaks 2; upgrade lodgectl", err)
        self.assertEqual(json.loads(out)["error"]["kind"], "version")
        # Not lodged at all, or lodged cut short.
        path = self.fake_lodged(b"HTTP/1.1 200 OK\r\n\r\n")
        rc, out, err = self.ctl("status", socket_path=path)
        self.assertEqual(rc, 3)
        self.assertIn("did not answer like lodged", err)
        path = self.fake_lodged(b'LODGECTL 1 OK\n{"lodged":{"pid"')
        rc, out, err = self.ctl("status", socket_path=path)
        self.assertEqual(rc, 1)
        self.assertIn("cut short", err)

    def test_unreachable(self):
        path = os.path.join(self.host.tmp, "nothing-here.sock")
        rc, out, err = self.ctl("status", socket_path=path)
        self.assertEqual(rc, 3)
        self.assertIn("no control socket at %s" % path, err)
        rc, out, err = self.ctl("--json", "status", socket_path=path)
        self.assertEqual(json.loads(out)["error"]["kind"], "unreachable")
        # A stream socket is not lodged's.
        spath = os.path.join(self.host.tmp, "stream.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(spath)
            s.listen(1)
            rc, out, err = self.ctl("status", socket_path=spath)
        os.unlink(spath)
        self.assertEqual(rc, 3)
        self.assertIn("not lodged's control socket", err)

    def test_usage_errors(self):
        rc, out, err = self.ctl("frobnicate")
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'frobnicate'", err)
        rc, out, err = self.ctl("stop")
        self.assertEqual(rc, 2)
        self.assertIn("write lodgectl stop USER", err)

    def test_busy(self):
        # Connections that never send take every place...
        idle = []
        try:
            for _ in range(16):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(self.sock)
                idle.append(s)
            self.assertTrue(wait_for(
                lambda: self.ctl("status")[0] == 1))
            rc, out, err = self.ctl("status")
            self.assertIn("try again in a moment", err)
            # ...until the oldest of them has idled 15 s: then it gives
            # way to a newcomer.
            self.assertTrue(wait_for(lambda: self.ctl("status")[0] == 0,
                                     timeout=40, interval=1))
            self.assertIn("dropping a lodgectl connection idle for",
                          self.host.read_log())
        finally:
            for s in idle:
                s.close()
        # ...and when they go, lodged answers again.
        self.assertTrue(wait_for(lambda: self.ctl("status")[0] == 0))

    def test_every_command_has_json(self):
        for args in (("status",), ("status", A), ("metrics",),
                     ("check-config",), ("version",), ("logs", A)):
            self.ensure_running(A)
            body = self.ctl_json(*args)
            self.assertIsInstance(body, dict)
        self.assertEqual(self.ctl_json("version")["protocol"], 1)


if __name__ == "__main__":
    unittest.main()
