"""The README's front door: its first two commands, and the demo.

The README promises that its commands work on a fresh Debian 12 machine
and that the demo prints commands to try.  This suite keeps both honest:

  ReadmeTest   the first two commands of README.md are ./scripts/demo.sh
               and ./scripts/test.sh; every command of its code blocks is
               one that a test or the CI runs; every line of the demo
               output it shows is one the demo prints.
  DemoTest     (root, apache2) runs scripts/demo.sh --background on the
               binaries already built (--no-build), then every command it
               printed, in order: each curl line must answer 200 with the
               text written after its "#", each lodgectl line must exit 0
               with that text in its output, the sed line (a live reload)
               must change what the next curl gets.  Then
               scripts/demo.sh --stop must leave no demo user, process,
               socket or folder behind.

Environment: LODGE_BUILD_DIR (the build folder holding lodged,
lodge-worker, lodge-router and lodgectl), or else LODGED (its folder is
used).  LODGE_TEST_TIMEOUT as in lodgehost.py.
"""

import os
import pwd
import re
import socket
import subprocess
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
README = os.path.join(REPO, "README.md")
DEMO_SH = os.path.join(REPO, "scripts", "demo.sh")
DEMO_DIR = "/var/lib/lodge-demo"
USERS = ("lodgedemo-alice", "lodgedemo-bob")
TIMEOUT = float(os.environ.get("LODGE_TEST_TIMEOUT", "30"))

# A command line of the demo's output: two spaces, then curl, sed or a
# lodgectl binary; the text after "  # " is what its answer contains.
COMMAND_RE = re.compile(
    r"^  (?P<cmd>(?P<word>curl|sed|\S*/lodgectl) .*?)(?:\s+# (?P<want>.*))?$")

# Commands the README may show, and the file that runs each of them (so a
# command added to the README without a test fails here).
README_COMMANDS = {
    "./scripts/demo.sh": ("tests/integration/test_demo.py", "demo.sh"),
    "./scripts/test.sh": (".ci/run", "./scripts/test.sh"),
    "./scripts/package.sh": ("tests/package/test_package.py", "package.sh"),
}


def wait_for(predicate, timeout=TIMEOUT, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def readme_code_blocks():
    """The code blocks of README.md, in order, each a list of lines: fenced
    (```) blocks, and indented (4 spaces) blocks after a blank line."""
    with open(README) as f:
        lines = f.read().split("\n")
    blocks = []
    fence = None
    current = None
    prev_blank = True
    for line in lines:
        if fence is not None:
            if line.startswith("```"):
                blocks.append((fence, current))
                fence = current = None
            else:
                current.append(line)
            continue
        if line.startswith("```"):
            fence = line[3:].strip() or "text"
            current = []
            continue
        if line.startswith("    ") and (current is not None or prev_blank):
            if current is None:
                current = []
            current.append(line[4:])
        elif current is not None and line.strip() == "":
            current.append("")
        elif current is not None:
            blocks.append(("indented", current))
            current = None
        prev_blank = line.strip() == ""
    if current is not None and fence is None:
        blocks.append(("indented", current))
    return blocks


def readme_commands():
    """The shell commands the README tells the reader to run, in order:
    every line of its code blocks, except the picture of the processes
    (box-drawing characters) and the sample of the demo's output (the
    block holding lines the demo prints, checked separately)."""
    out = []
    for kind, block in readme_code_blocks():
        if any("\u2500" in l or COMMAND_RE.match(l) for l in block):
            continue
        out.extend(l.strip() for l in block if l.strip())
    return out


class ReadmeTest(unittest.TestCase):
    def test_first_two_commands_are_demo_and_tests(self):
        cmds = readme_commands()
        self.assertGreaterEqual(len(cmds), 2, cmds)
        self.assertEqual(cmds[:2], ["./scripts/demo.sh", "./scripts/test.sh"])

    def test_each_readme_command_is_run_by_a_test(self):
        for cmd in readme_commands():
            script = cmd.split()[0]
            self.assertIn(script, README_COMMANDS,
                          "README.md shows %r, which no test runs: add a "
                          "test and list it in README_COMMANDS" % cmd)
            runner, needle = README_COMMANDS[script]
            with open(os.path.join(REPO, runner)) as f:
                self.assertIn(needle, f.read(), runner)
            self.assertTrue(os.access(os.path.join(REPO, script), os.X_OK),
                            script)

    def test_ci_runs_the_readme_test_command(self):
        with open(os.path.join(REPO, ".ci", "run")) as f:
            ci = [l.strip() for l in f if l.strip() and
                  not l.lstrip().startswith("#")]
        self.assertIn("exec ./scripts/test.sh", ci)

    def test_readme_links_point_to_files(self):
        with open(README) as f:
            text = f.read()
        links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
        self.assertTrue(links)
        for link in links:
            if "://" in link:
                continue
            self.assertTrue(os.path.exists(os.path.join(REPO, link)),
                            "README.md links to %s, which does not exist"
                            % link)

    def test_demo_output_shown_in_readme_is_what_the_demo_prints(self):
        # The README's sample of the demo's output, every "  curl ..." and
        # "  ./build/lodgectl ..." line of it, must be a line of the demo
        # script's own text (with $port, $ctl and $alice/$bob as in the
        # script), so the sample cannot drift from the script.
        sample = [l for kind, b in readme_code_blocks() for l in b
                  if COMMAND_RE.match(l)]
        self.assertGreaterEqual(len(sample), 5, sample)
        with open(DEMO_SH) as f:
            script = f.read()
        printed = [l for l in script.split("\n") if l.startswith("  ")]

        def as_script(line):
            line = line.replace("./build/lodgectl --socket "
                                "/var/lib/lodge-demo/control.sock", "$ctl")
            line = line.replace(":8080/", ":$port/")
            for u in USERS:
                line = line.replace(u, "$" + u.split("-")[1])
            return line
        for line in sample:
            self.assertTrue(as_script(line) in printed,
                            "README.md shows a demo line the demo does not "
                            "print: %r" % line)


def build_dir():
    d = os.environ.get("LODGE_BUILD_DIR")
    if not d and os.environ.get("LODGED"):
        d = os.path.dirname(os.environ["LODGED"])
    return d


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(pid):
    """The command line of pid, "" if it is gone (or a zombie)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def uid_processes(uids):
    """pid -> command line of every live (not zombie) process whose real
    uid is in uids."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/status" % pid) as f:
                fields = dict(l.split(":", 1) for l in f if ":" in l)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if (fields.get("State", "").split()[:1] != ["Z"]
                and int(fields.get("Uid", "-1 ").split()[0]) in uids):
            found[int(pid)] = cmdline(int(pid))
    return found


@unittest.skipUnless(os.geteuid() == 0, "needs root (users, lodged)")
@unittest.skipUnless(os.path.exists("/usr/sbin/apache2"),
                     "apache2 is not installed (scripts/install-deps.sh)")
class DemoTest(unittest.TestCase):
    """The methods run in name order (unittest sorts them): the commands
    first, then the stop."""

    output = ""
    is_running = False

    @classmethod
    def setUpClass(cls):
        build = build_dir()
        if not build:
            raise unittest.SkipTest("set LODGE_BUILD_DIR (or LODGED)")
        router = os.path.join(build, "lodge-router")
        if os.path.exists(router):
            with open(router, "rb") as f:
                if b"__asan_init" in f.read():
                    # AddressSanitizer's runtime calls sigaltstack at
                    # start, which policy/router.policy does not allow:
                    # the router dies before it serves.  The normal
                    # build's pass runs this suite.
                    raise unittest.SkipTest(
                        "an AddressSanitizer lodge-router is stopped by "
                        "router.policy (sigaltstack)")
        cls.port = free_port()
        cls.env = dict(os.environ, LODGE_BUILD_DIR=build,
                       LODGE_DEMO_PORT=str(cls.port))
        cls.is_running = True
        r = subprocess.run([DEMO_SH, "--background", "--no-build"],
                           cwd=REPO, env=cls.env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=300)
        cls.output = r.stdout
        if r.returncode != 0:
            cls._stop()
            raise AssertionError("demo.sh --background failed (%d):\n%s"
                                 % (r.returncode, r.stdout))

    @classmethod
    def _stop(cls):
        r = subprocess.run([DEMO_SH, "--stop"], cwd=REPO, env=cls.env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=300)
        cls.is_running = False
        return r

    @classmethod
    def tearDownClass(cls):
        if cls.is_running:
            cls._stop()

    def commands(self):
        return [m.groupdict() for m in map(COMMAND_RE.match,
                                           self.output.split("\n")) if m]

    def run_sh(self, cmd):
        return subprocess.run(["/bin/sh", "-c", cmd], cwd=REPO,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=TIMEOUT + 30)

    def logs(self):
        text = ""
        for path in ("lodged.log", "apache/error.log"):
            try:
                with open(os.path.join(DEMO_DIR, path),
                          errors="replace") as f:
                    text += "--- %s\n%s" % (path, f.read()[-3000:])
            except FileNotFoundError:
                pass
        return text

    # ------------------------------------------------------------------

    def test_a_prints_commands_to_try(self):
        words = [c["word"].rsplit("/", 1)[-1] for c in self.commands()]
        self.assertGreaterEqual(words.count("curl"), 6, self.output)
        self.assertGreaterEqual(words.count("lodgectl"), 4, self.output)
        self.assertEqual(words.count("sed"), 1, self.output)
        for c in self.commands():
            if c["word"] != "sed":
                self.assertTrue(c["want"], "no expected answer: %r" % c)
            if c["word"] == "curl":
                self.assertIn(":%d/" % self.port, c["cmd"])
        self.assertIn("./scripts/demo.sh --stop", self.output)

    def test_b_every_printed_command_answers_as_described(self):
        # In the printed order: the sed line (a live reload) changes what
        # the curl line after it gets.
        for c in self.commands():
            cmd, word, want = c["cmd"], c["word"], c["want"]
            with self.subTest(cmd=cmd):
                if word == "sed":
                    r = self.run_sh(cmd)
                    self.assertEqual(r.returncode, 0, r.stderr)
                elif word == "curl":
                    self.check_curl(cmd, want)
                else:
                    r = self.run_sh(cmd)
                    self.assertEqual(r.returncode, 0,
                                     cmd + "\n" + r.stdout + r.stderr)
                    self.assertIn(want, r.stdout, cmd)

    def check_curl(self, cmd, want):
        # The line as printed (a reader's copy and paste), and the same
        # with curl's -w giving the status.  A reload takes effect a few
        # milliseconds after the file is saved: the new answer is waited
        # for, never assumed at once.
        status_cmd = re.sub(r"^curl ", "curl -sS -o /dev/null -w "
                            "'%{http_code}' ", cmd)
        last = {}

        def answers():
            r = self.run_sh(cmd)
            last["r"] = r
            return r.returncode == 0 and want in r.stdout
        self.assertTrue(wait_for(answers),
                        "%s\nwanted %r, got %r (exit %d)\n%s" % (
                            cmd, want, last["r"].stdout,
                            last["r"].returncode, self.logs()))
        r = self.run_sh(status_cmd)
        self.assertEqual((r.returncode, r.stdout), (0, "200"),
                         cmd + "\n" + r.stderr)

    def test_c_each_app_runs_as_its_user_and_sees_only_its_home(self):
        bob = pwd.getpwnam("lodgedemo-bob")
        r = self.run_sh("curl -sS http://bob.localhost:%d/" % self.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("user: lodgedemo-bob (uid %d)" % bob.pw_uid, lines)
        # Only bob's own home: alice's, and every other one, is hidden.
        self.assertIn("homes visible in /home: lodgedemo-bob", lines)
        # Over uwsgi, the request is Apache's: the site's name and port.
        self.assertIn("request: GET / from 127.0.0.1, scheme http, for "
                      "bob.localhost:%d" % self.port, lines)
        # Each user's worker runs as that user (and lodged as root, the
        # router as "lodge").
        for user in USERS:
            uid = pwd.getpwnam(user).pw_uid
            cmds = uid_processes({uid}).values()
            self.assertTrue([c for c in cmds if "lodge-worker" in c],
                            "%s: %s" % (user, list(cmds)))

    def test_d_apache_config_is_the_shipped_one(self):
        # The demo's Apache runs packaging/apache/lodge.conf as shipped,
        # and every line of its sites is a line of the shipped site
        # examples (up to the site's name and route): what the demo shows
        # working is what a provider installs.
        apache_dir = os.path.join(REPO, "packaging", "apache")
        with open(os.path.join(apache_dir, "lodge.conf")) as f:
            shipped = f.read()
        with open(os.path.join(DEMO_DIR, "apache", "lodge.conf")) as f:
            self.assertEqual(f.read(), shipped)
        with open(os.path.join(DEMO_DIR, "apache", "apache.conf")) as f:
            conf = f.read()
        self.assertIn('Include "%s/apache/lodge.conf"' % DEMO_DIR, conf)

        def norm(line):
            line = re.sub(r'"[\w.-]+/[\w.-]+"', '"USER/APP"', line.strip())
            return re.sub(r"(LODGE_APP) \S+", r"\1 USER/APP", line)
        examples = set()
        for name in ("lodge-site-http.conf", "lodge-site-uwsgi.conf"):
            with open(os.path.join(apache_dir, name)) as f:
                examples |= {norm(l) for l in f}
        sites = re.findall(r"<VirtualHost [^>]*>\n(.*?)</VirtualHost>", conf,
                           re.S)
        self.assertEqual(len(sites), 3, conf)
        for site in sites:
            for line in site.strip().split("\n"):
                if not line.strip().startswith("ServerName "):
                    self.assertIn(norm(line), examples, line)

    def test_z_stop_removes_everything(self):
        uids = {pwd.getpwnam(u).pw_uid for u in USERS}
        pids = {}
        for name in ("lodged.pid", "apache/apache.pid"):
            with open(os.path.join(DEMO_DIR, name)) as f:
                pids[name] = int(f.read())
        for pid in pids.values():
            os.kill(pid, 0)             # alive now
        r = type(self)._stop()
        self.assertEqual(r.returncode, 0, r.stdout)
        for u in USERS:
            self.assertRaises(KeyError, pwd.getpwnam, u)
            self.assertFalse(os.path.exists("/home/" + u), u)
        self.assertEqual(uid_processes(uids), {})
        for name, pid in pids.items():
            # Gone, or a zombie its new parent has not reaped yet (the
            # demo script that started it has exited): no command line.
            self.assertNotIn("lodge-demo", cmdline(pid), name)
        self.assertFalse(os.path.exists(DEMO_DIR))
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", self.port)), 0)
        # And a second --stop finds nothing to do and succeeds.
        r = type(self)._stop()
        self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == "__main__":
    unittest.main()
