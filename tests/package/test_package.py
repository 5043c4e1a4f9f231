"""The Debian package, end to end, on this machine (root only).

Builds lodge_VERSION_ARCH.deb with scripts/package.sh (lintian errors fail
the build), installs it with apt-get, checks what it installed, runs a
smoke test against the installed binaries, units and configuration, then
purges it and checks that nothing of it is left.

The smoke test: two test users, lodgepkg-a and lodgepkg-b, each with a
"hello" app in ~/apps/hello, made members of the group lodge-users the way
README.Debian tells a provider to; lodged on the installed, unchanged
/etc/lodge/lodge.conf; requests through the installed front socket
/run/lodge/http.sock with X-Lodge-App (and as www-data, Apache's user;
not as nobody); a reload of a broken lodge.conf (refused, the old one
serves on) and one that adds lodgepkg-b; lodgectl status; a stop; then
the purge, after the Apache snippet was enabled with a2enconf.

- Where systemd is PID 1, the package's own postinst has started
  lodge.socket and lodge.service, and the test drives them with systemctl.
- Elsewhere (containers, this project's VMs) the test runs lodged the way
  lodge.service would: the ExecStart= command line, CapabilityBoundingSet=
  (setpriv --bounding-set), NoNewPrivileges=, ProtectSystem=full and
  PrivateTmp= (read-only binds and tmpfs in a mount namespace of its own),
  LimitNOFILE=, and a NOTIFY_SOCKET of its own that plays systemd's side
  of Type=notify (READY=1 once the front socket exists, RELOADING=1 then
  READY=1 around SIGHUP, STOPPING=1 on SIGTERM, each from lodged's own
  pid, as NotifyAccess=main requires).  ProtectKernelModules= and
  ProtectKernelLogs= are not reproduced.

Run:  cd tests/package && /usr/bin/python3 -m unittest -v test_package
Environment: LODGE_DEB=path/to/lodge_*.deb skips the build and uses that
file; LODGE_DEB_DIR is where scripts/package.sh puts the build.
The lodge package must not be in use on this machine: a lodge that is
already installed is purged first.
"""

import grp
import json
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TIMEOUT = float(os.environ.get("LODGE_TEST_TIMEOUT", "60"))
USERS = ("lodgepkg-a", "lodgepkg-b")
GROUP = "lodge-users"
FRONT = "/run/lodge/http.sock"
UNIT_DIR = "/lib/systemd/system"
# What the snapshot covers (the /lib of Debian 12 is /usr/lib), and a name
# that is lodge's own ("lodge", "lodge.conf", "lodge-router"), checked on
# the first new folder of a new path: other tests' fixtures (such as
# /var/lib/lodgetest-x-bin-*/lodge-worker) may come and go meanwhile.
SNAPSHOT_ROOTS = ("/etc", "/usr", "/var/lib", "/run", "/opt", "/srv")
LODGE_NAME = re.compile(r"(^|[/._-])lodge($|[/._-])")

HELLO_APP = '''\
import os


def application(environ, start_response):
    body = ("hello from uid %d\\n" % os.getuid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def run(*args, check=True, env=None, timeout=600):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env,
                          timeout=timeout)


def wait_for(predicate, timeout=TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def has_systemd():
    """True where systemd is the running init (sd_booted's test)."""
    return os.path.isdir("/run/systemd/system")


def is_installed(pkg):
    r = run("dpkg-query", "-W", "-f=${Status}", pkg, check=False)
    return r.returncode == 0 and "install ok installed" in r.stdout


def snapshot():
    """Every path below SNAPSHOT_ROOTS (no symlinks followed)."""
    paths = set()
    for root in SNAPSHOT_ROOTS:
        for dirpath, dirs, files in os.walk(root):
            if dirpath == "/run" and "user" in dirs:
                dirs.remove("user")
            for n in dirs + files:
                paths.add(os.path.join(dirpath, n))
    return paths


def unit_settings(path):
    """The [Service] (or [Socket]) settings of a unit file: name -> list
    of values, in order."""
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[":
                continue
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def http_get(app, as_user=None, sock=FRONT):
    """GET / through the front socket with X-Lodge-App: app, with curl
    (as as_user if given).  Returns (curl's exit code, status, body)."""
    cmd = ["curl", "-sS", "--max-time", str(int(TIMEOUT)),
           "--unix-socket", sock, "-H", "X-Lodge-App: " + app,
           "-w", "\n%{http_code}", "http://lodge-front/"]
    if as_user is not None:
        cmd = ["setpriv", "--reuid", as_user, "--regid", as_user,
               "--init-groups", "--"] + cmd
    r = run(*cmd, check=False, timeout=TIMEOUT + 30)
    body, _, code = r.stdout.rpartition("\n")
    return r.returncode, code, body


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket that records each
    message with the pid that sent it (SCM_CREDENTIALS)."""

    def __init__(self, path):
        self.path = path
        if os.path.lexists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []  # (pid, {KEY: value})

    def wait(self, key, value=None, timeout=TIMEOUT):
        """The first message not yet returned with key (= value)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (pid, fields) in enumerate(self.messages):
                if key in fields and (value is None or fields[key] == value):
                    del self.messages[:i + 1]
                    return pid, fields
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, anc, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(struct.calcsize("3i")))
            except socket.timeout:
                return None
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and \
                        kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            fields = dict(line.split("=", 1)
                          for line in data.decode().split("\n") if "=" in line)
            self.messages.append((pid, fields))

    def close(self):
        self.sock.close()
        if os.path.lexists(self.path):
            os.unlink(self.path)


class ForegroundLodged:
    """lodged run the way lodge.service runs it, without systemd."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.notify = NotifySocket(os.path.join(workdir, "notify.sock"))
        self.log_path = os.path.join(workdir, "lodged.log")
        self.proc = None

    def command(self):
        svc = unit_settings(os.path.join(UNIT_DIR, "lodge.service"))
        argv = shlex.split(svc["ExecStart"][0])
        caps = " ".join(svc["CapabilityBoundingSet"]).split()
        bounding = "-all," + ",".join(
            "+" + c.lower().removeprefix("cap_") for c in caps)
        setpriv = ["setpriv", "--bounding-set", bounding]
        if svc.get("NoNewPrivileges") == ["yes"]:
            setpriv.append("--no-new-privs")
        ro = {"yes": "/usr /boot /efi", "full": "/usr /boot /efi /etc",
              "strict": None}.get(svc.get("ProtectSystem", ["no"])[0], "")
        if ro is None:
            raise AssertionError("ProtectSystem=strict is not emulated")
        script = "set -e\n"
        for d in ro.split():
            script += ('if [ -d %s ]; then mount --rbind %s %s; '
                       'mount -o remount,bind,ro %s; fi\n' % ((d,) * 4))
        if svc.get("PrivateTmp") == ["yes"]:
            script += ("mount -t tmpfs -o mode=1777 tmpfs /tmp\n"
                       "mount -t tmpfs -o mode=1777 tmpfs /var/tmp\n")
        script += 'exec "$@"\n'
        soft, _, hard = svc.get("LimitNOFILE", ["1024:524288"])[0] \
            .partition(":")
        nofile = (int(soft), int(hard or soft))
        return (["unshare", "--mount", "--propagation", "slave", "sh",
                 "-c", script, "lodged-unit"] + setpriv + ["--"] + argv,
                nofile)

    def start(self):
        argv, nofile = self.command()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "NOTIFY_SOCKET": self.notify.path}
        # Raising the hard limit takes CAP_SYS_RESOURCE, which some
        # containers withhold even from root: then stay below the hard
        # limit this test has.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        with open("/proc/self/status") as f:
            eff = int(re.search(r"^CapEff:\s+(\w+)", f.read(), re.M)
                      .group(1), 16)
        if not eff & (1 << 24):  # CAP_SYS_RESOURCE
            nofile = (min(nofile[0], hard), min(nofile[1], hard))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log, env=env,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                  nofile))

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        self.notify.close()


class TestPackage(unittest.TestCase):
    """One package's life on this machine; the steps run in name order
    (test_1_... to test_6_...), each on what the one before left."""

    workdir = "/run/lodgepkg-test"
    lodged = None  # a ForegroundLodged, without systemd
    created_group = False

    @classmethod
    def setUpClass(cls):
        try:
            cls.set_up()
        except unittest.SkipTest:
            raise
        except BaseException:
            # unittest runs no tearDownClass after a failed setUpClass:
            # leave no package installed behind.
            cls.tearDownClass()
            raise

    @classmethod
    def set_up(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root (apt-get, useradd)")
        for tool in ("apt-get", "dpkg-query", "setpriv", "unshare", "curl",
                     "useradd", "addgroup", "systemd-analyze"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s is missing" % tool)
        shutil.rmtree(cls.workdir, ignore_errors=True)
        os.makedirs(cls.workdir, mode=0o700)
        cls.is_systemd = has_systemd()
        cls.deb = os.environ.get("LODGE_DEB") or cls.build()
        if is_installed("lodge"):
            run("apt-get", "purge", "-y", "-q", "lodge")
        for name in USERS:
            cls.remove_user(name)
        cls.before = snapshot()
        # The paths of the package that were there before it (/usr/sbin,
        # /etc/apache2/conf-available ...): the purge must leave those.
        listing = subprocess.run(
            ["sh", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -t', "sh",
             cls.deb], check=True, stdout=subprocess.PIPE, text=True).stdout
        cls.deb_paths = [os.path.normpath("/" + p.lstrip("./"))
                         for p in listing.split("\n") if p.strip(" ./")]
        cls.existed = {p for p in cls.deb_paths if os.path.lexists(p)}
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        r = run("apt-get", "install", "-y", "-q", "--no-install-recommends",
                os.path.abspath(cls.deb), env=env, check=False)
        if r.returncode != 0:
            raise AssertionError("apt-get install %s:\n%s" % (cls.deb,
                                                              r.stdout))
        cls.installed = run("dpkg", "-L", "lodge").stdout.split("\n")
        cls.installed = [p for p in cls.installed if p and p != "/."]

    @classmethod
    def build(cls):
        r = run(os.path.join(REPO, "scripts", "package.sh"), check=False,
                timeout=1800)
        if r.returncode != 0:
            raise AssertionError("scripts/package.sh failed:\n" + r.stdout)
        m = re.search(r"^package: (\S+\.deb)$", r.stdout, re.M)
        if m is None:
            raise AssertionError("scripts/package.sh named no .deb:\n" +
                                 r.stdout)
        return m.group(1)

    @classmethod
    def remove_user(cls, name):
        try:
            pwd.getpwnam(name)
        except KeyError:
            return
        run("pkill", "-KILL", "-u", name, check=False)
        run("userdel", "-r", name, check=False)

    @classmethod
    def tearDownClass(cls):
        if cls.lodged is not None:
            cls.lodged.stop()
        for name in USERS:
            cls.remove_user(name)
        if cls.created_group:
            run("delgroup", "--quiet", GROUP, check=False)
        if is_installed("lodge"):
            run("apt-get", "purge", "-y", "-q", "lodge", check=False)
        shutil.rmtree(cls.workdir, ignore_errors=True)

    # ---- helpers ----

    def add_hosted_user(self, name):
        """A user with ~/apps/hello (home 0700, as adduser makes them on
        Debian 12), member of lodge-users; returns its uid."""
        run("useradd", "-m", "-s", "/usr/sbin/nologin", name)
        pw = pwd.getpwnam(name)
        os.chmod(pw.pw_dir, 0o700)
        app = os.path.join(pw.pw_dir, "apps", "hello")
        os.makedirs(app)
        with open(os.path.join(app, "wsgi.py"), "w") as f:
            f.write(HELLO_APP)
        for path in (os.path.join(pw.pw_dir, "apps"), app,
                     os.path.join(app, "wsgi.py")):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        run("adduser", "--quiet", name, GROUP)
        return pw.pw_uid

    def assert_hello(self, user, as_user=None, is_new=False):
        """GET USER/hello answers with the user's uid.  is_new: the
        router may still answer 404 for a moment, from before the user
        was added (it asks lodged about a user at most once a second)."""
        rc, code, body = http_get(user + "/hello", as_user=as_user)
        if is_new:
            deadline = time.monotonic() + TIMEOUT
            while code == "404" and time.monotonic() < deadline:
                time.sleep(0.2)
                rc, code, body = http_get(user + "/hello", as_user=as_user)
        self.assertEqual((rc, code), (0, "200"), body)
        self.assertEqual(body, "hello from uid %d\n"
                         % pwd.getpwnam(user).pw_uid)

    def log_text(self):
        if self.is_systemd:
            return run("journalctl", "-u", "lodge", "--no-pager", "-n",
                       "300", check=False).stdout
        return self.lodged.read_log()

    # ---- 1: what the package installed ----

    def test_1_files(self):
        for name in ("lodged", "lodge-worker", "lodge-router"):
            path = "/usr/sbin/" + name
            self.assertTrue(os.access(path, os.X_OK), path)
        for path in ("/etc/lodge/lodge.conf",
                     "/etc/lodge/policy/default.policy",
                     "/etc/lodge/policy/router.policy",
                     "/etc/apache2/conf-available/lodge.conf",
                     UNIT_DIR + "/lodge.service", UNIT_DIR + "/lodge.socket",
                     "/usr/lib/tmpfiles.d/lodge.conf",
                     "/usr/share/man/man8/lodged.8.gz",
                     "/usr/share/man/man8/lodge-worker.8.gz",
                     "/usr/share/man/man8/lodge-router.8.gz",
                     "/usr/share/man/man5/lodge.conf.5.gz",
                     "/usr/share/doc/lodge/copyright"):
            self.assertIn(path, self.installed)
        # lodged refuses a config that is not root's, or writable by others.
        st = os.stat("/etc/lodge/lodge.conf")
        self.assertEqual((st.st_uid, st.st_mode & 0o022), (0, 0))
        with open("/var/lib/dpkg/info/lodge.conffiles") as f:
            conffiles = f.read().split()
        self.assertIn("/etc/lodge/lodge.conf", conffiles)
        self.assertIn("/etc/lodge/policy/default.policy", conffiles)
        self.assertIn("/etc/apache2/conf-available/lodge.conf", conffiles)
        # The router's system user, and /run/lodge from tmpfiles.d.
        pw = pwd.getpwnam("lodge")
        self.assertLess(pw.pw_uid, 1000)
        self.assertEqual(pw.pw_dir, "/nonexistent")
        self.assertEqual(grp.getgrgid(pw.pw_gid).gr_name, "lodge")
        if shutil.which("systemd-tmpfiles"):
            st = os.stat("/run/lodge")
            self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o755))
        # Enabled the Debian way, with or without a running systemd.
        self.assertTrue(os.path.lexists(
            "/etc/systemd/system/multi-user.target.wants/lodge.service"))
        self.assertTrue(os.path.lexists(
            "/etc/systemd/system/sockets.target.wants/lodge.socket"))

    def test_1_units_verify(self):
        # Offline: every key known, every value parsed, ExecStart's binary
        # and the Documentation= man pages present.  Warnings fail too.
        r = subprocess.run(["systemd-analyze", "verify",
                            UNIT_DIR + "/lodge.socket",
                            UNIT_DIR + "/lodge.service"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "")
        svc = unit_settings(UNIT_DIR + "/lodge.service")
        self.assertEqual(svc["Type"], ["notify"])
        self.assertEqual(svc["Delegate"], ["yes"])
        self.assertIn("--foreground", svc["ExecStart"][0])
        # The socket unit listens where the default lodge.conf's front is.
        sock = unit_settings(UNIT_DIR + "/lodge.socket")
        with open("/etc/lodge/lodge.conf") as f:
            front = re.search(r"^front\s*=\s*(.*)$", f.read(), re.M).group(1)
        paths = [s.split(":", 2)[2] for s in re.split(r"[\s,]+", front)
                 if s.split(":")[1] == "unix"]
        self.assertEqual(sorted(sock["ListenStream"]), sorted(paths))
        self.assertEqual(sock["SocketGroup"], ["www-data"])
        self.assertEqual(sock["SocketMode"], ["0660"])

    def test_1_config_check(self):
        r = run("/usr/sbin/lodged", "--check-config", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIn("/etc/lodge/lodge.conf: ok", r.stdout)
        # Every setting lodged knows is shown in the default file (lodged
        # names them all when it meets an unknown one).
        path = os.path.join(self.workdir, "unknown.conf")
        with open(path, "w") as f:
            f.write("[lodge]\nno_such_setting = 1\n")
        r = run("/usr/sbin/lodged", "--check-config", path, check=False)
        m = re.search(r"the known ones are (.*)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        known = [k.strip() for k in m.group(1).split(",")]
        self.assertIn("front", known)
        with open("/etc/lodge/lodge.conf") as f:
            shown = set(re.findall(r"^;?([a-z_]+) =", f.read(), re.M))
        self.assertEqual(sorted(set(known) - shown), [],
                         "settings missing from the default lodge.conf")
        # Every commented default is a valid setting: uncomment them all.
        with open("/etc/lodge/lodge.conf") as f:
            text = f.read()
        lines = []
        for line in text.split("\n"):
            m = re.match(r"^;([a-z_]+ = .*|\[user \w+\])$", line)
            if m and m.group(1).startswith("[user"):
                line = "[user root]"  # exists everywhere; not hosted
            elif m:
                line = m.group(1)
            lines.append(line)
        path = os.path.join(self.workdir, "uncommented.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        self.assertGreater(sum(1 for a, b in zip(text.split("\n"), lines)
                               if a != b), 25)
        r = run("/usr/sbin/lodged", "--check-config", path, check=False)
        self.assertEqual(r.returncode, 0, r.stdout)

    # ---- 2-5: the smoke test ----

    def test_2_start_and_serve(self):
        cls = type(self)
        # What README.Debian tells the provider to do.
        if not grp_exists(GROUP):
            run("addgroup", "--system", "--quiet", GROUP)
            cls.created_group = True
        self.add_hosted_user(USERS[0])
        if self.is_systemd:
            # postinst started them, unless a policy-rc.d said no.
            run("systemctl", "start", "lodge.socket", "lodge.service")
            self.assertTrue(wait_for(lambda: run(
                "systemctl", "is-active", "lodge.service",
                check=False).stdout.strip() == "active"), self.log_text())
            run("systemctl", "reload", "lodge.service")
            self.assertTrue(wait_for(lambda: "1 user(s) hosted" in run(
                "systemctl", "show", "-p", "StatusText", "--value",
                "lodge.service").stdout), self.log_text())
        else:
            cls.lodged = ForegroundLodged(self.workdir)
            self.lodged.start()
            got = self.lodged.notify.wait("READY", "1")
            self.assertIsNotNone(got, "no READY=1:\n" + self.log_text())
            pid, fields = got
            # From lodged itself (NotifyAccess=main), with the front
            # socket already there and the router started.
            self.assertEqual(pid, self.lodged.proc.pid)
            self.assertIn("router", fields.get("STATUS", ""))
            self.assertIn("1 user(s) hosted", fields.get("STATUS", ""))
            self.assertTrue(os.path.exists(FRONT))
            lodge_uid = pwd.getpwnam("lodge").pw_uid
            self.assertIn(("lodge-router", lodge_uid),
                          descendants(pid).values(), self.log_text())
        st = os.stat(FRONT)
        self.assertEqual((st.st_uid, grp.getgrgid(st.st_gid).gr_name,
                          st.st_mode & 0o777), (0, "www-data", 0o660))
        self.assert_hello(USERS[0])
        # Apache's user may connect; another user may not.
        self.assert_hello(USERS[0], as_user="www-data")
        rc, code, body = http_get(USERS[0] + "/hello", as_user="nobody")
        self.assertNotEqual(rc, 0, "nobody reached the front socket")
        # A user who is not hosted (yet): 404 from the router.
        rc, code, body = http_get(USERS[1] + "/hello")
        self.assertEqual((rc, code), (0, "404"), body)

    def test_3_reload(self):
        # A bad lodge.conf: refused, and the running configuration stays.
        conf = "/etc/lodge/lodge.conf"
        with open(conf) as f:
            original = f.read()
        try:
            with open(conf, "a") as f:
                f.write("threads = lots\n")
            if self.is_systemd:
                # ExecReload checks first: the reload itself fails.
                r = run("systemctl", "reload", "lodge.service", check=False)
                self.assertNotEqual(r.returncode, 0, r.stdout)
            else:
                self.assertIsNotNone(self.lodged, "test_2 did not start "
                                     "lodged")
                self.lodged.proc.send_signal(signal.SIGHUP)
                self.assertIsNotNone(self.lodged.notify.wait(
                    "RELOADING", "1"), self.log_text())
                got = self.lodged.notify.wait("READY", "1")
                self.assertIsNotNone(got, self.log_text())
                self.assertIn("reload failed", got[1].get("STATUS", ""))
                self.assertIn("threads: expected a number",
                              self.log_text())
        finally:
            with open(conf, "w") as f:
                f.write(original)
        self.assert_hello(USERS[0])

        self.add_hosted_user(USERS[1])
        if self.is_systemd:
            run("systemctl", "reload", "lodge.service")
            self.assertTrue(wait_for(lambda: "2 user(s) hosted" in run(
                "systemctl", "show", "-p", "StatusText", "--value",
                "lodge.service").stdout), self.log_text())
        else:
            self.lodged.proc.send_signal(signal.SIGHUP)
            got = self.lodged.notify.wait("RELOADING", "1")
            self.assertIsNotNone(got, "no RELOADING=1:\n" + self.log_text())
            self.assertEqual(got[0], self.lodged.proc.pid)
            got = self.lodged.notify.wait("READY", "1")
            self.assertIsNotNone(got, "no READY=1 after the reload:\n" +
                                 self.log_text())
            self.assertIn("2 user(s) hosted", got[1].get("STATUS", ""))
        self.assert_hello(USERS[1], is_new=True)
        self.assert_hello(USERS[0])
        if self.lodged is not None:
            # Each user's worker runs as that user, below lodged.
            procs = descendants(self.lodged.proc.pid)
            for user in USERS:
                self.assertIn(("lodge-worker", pwd.getpwnam(user).pw_uid),
                              procs.values())
            type(self).children = procs

    def test_4_lodgectl(self):
        # The installed lodgectl, through the installed control socket.
        if "/usr/sbin/lodgectl" not in self.installed:
            self.skipTest("this package has no lodgectl")
        r = run("/usr/sbin/lodgectl", "status", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        for user in USERS:
            self.assertIn(user, r.stdout)
        r = run("/usr/sbin/lodgectl", "--json", "status", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertIsInstance(json.loads(r.stdout), dict)

    def test_5_stop(self):
        if self.is_systemd:
            run("systemctl", "stop", "lodge.service", "lodge.socket")
            self.assertNotEqual(run("systemctl", "is-active",
                                    "lodge.service", check=False)
                                .stdout.strip(), "active")
        else:
            self.assertIsNotNone(self.lodged, "test_2 did not start lodged")
            self.lodged.proc.send_signal(signal.SIGTERM)
            got = self.lodged.notify.wait("STOPPING", "1")
            self.assertIsNotNone(got, "no STOPPING=1:\n" + self.log_text())
            self.assertEqual(self.lodged.proc.wait(60), 0, self.log_text())
            # Every worker and the router went with it.
            alive = [p for p in getattr(self, "children", {})
                     if os.path.exists("/proc/%d" % p)]
            self.assertEqual(alive, [], "outlived lodged")
        self.assertFalse(os.path.exists(FRONT))

    # ---- 6: purge ----

    def test_6_purge(self):
        if self.lodged is not None:
            self.lodged.stop()
        for name in USERS:
            self.remove_user(name)
        # The provider enabled the Apache snippet: purge must disable it,
        # or Apache would not start with a dangling conf-enabled link.
        if shutil.which("a2enconf"):
            run("a2enconf", "-q", "lodge")
            self.assertTrue(os.path.lexists(
                "/etc/apache2/conf-enabled/lodge.conf"))
        r = run("apt-get", "purge", "-y", "-q", "lodge", check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertFalse(is_installed("lodge"))
        after = snapshot()
        left = sorted(p for p in after - self.before
                      if LODGE_NAME.search(os.path.basename(
                          first_new(p, self.before))))
        self.assertEqual(left, [], "left behind by the purge")
        self.assertIn("/usr/sbin/lodged", self.deb_paths)
        for path in self.deb_paths:
            if path not in self.existed:
                self.assertFalse(os.path.lexists(path), path)
        self.assertFalse(os.path.lexists(
            "/etc/apache2/conf-enabled/lodge.conf"))


def first_new(path, before):
    """The shortest ancestor of path (or path) that is not in before."""
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix not in before and prefix not in SNAPSHOT_ROOTS:
            return prefix
    return path


def descendants(pid):
    """{pid: (comm, uid)} of every process below pid."""
    children, info = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
            # Not the owner of /proc/PID: that is root for a process
            # that is not dumpable (workers and the router).
            with open("/proc/%s/status" % entry) as f:
                uid = int(re.search(r"^Uid:\s+(\d+)", f.read(),
                                    re.M).group(1))
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
        info[int(entry)] = (comm, uid)
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = info[child]
            todo.append(child)
    return found


def grp_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


if __name__ == "__main__":
    unittest.main()
