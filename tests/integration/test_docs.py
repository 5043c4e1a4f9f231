"""Every command in the docs runs, so the docs cannot drift from the code.

The convention, in README.md and every docs/*.md (code blocks, fenced or
indented by four spaces):

  ```sh         Commands, one per line (a trailing `\\` joins the next
                line).  `# ...` after a command is a comment; a comment
                holding `exit N` says the command exits with status N
                (default 0).  When some lines start with `$ `, only those
                are commands and the other lines are their output.
  other blocks  (indented, ``` alone, ```text ...) A line starting with
                `$ ` is a command; so is a line that invokes a lodge binary
                (lodgectl, lodged, lodge-worker, lodge-router, maybe with a
                path such as ./build/lodgectl) followed by an option, a
                lodgectl command, or nothing.  Anything else is output.
  ```ini        A lodge.conf or a piece of one: it must pass `lodged
                --check-config`, without a warning.  A piece without a
                [lodge] section goes under one that hosts alice, bob and
                carol (keys before any section are that section's).
  ```ini lodge.ini
                An app's lodge.ini: lodge-worker must accept every line.
  ```apache, ```python, ```json, ```c
                File contents: never commands.

Each command is one of:

  a synopsis    a lodge binary with [OPTIONS] or PLACEHOLDERS: every
                --option it names must be in the binary's --help;
  run           a lodge binary, or only programs of RUNNABLE: it is run
                (below) and must exit with the status the doc says; a
                lodgectl command is run again with --json, whose output
                must parse;
  not run       its exact text is in NOT_RUN, with the reason;

and anything else fails the test: a new command must be run or listed.

How the commands run: as root from the top of the checkout, except those
of docs/user-guide.md, which run as the hosted user in her home.  A real
lodged (lodgehost.LodgeHost: real users, the real sandbox, the router) has
three users, whose names replace the docs' alice, bob and carol
(DOC_USERS),
and apps blog and hello (alice), hello (bob); before each command both
users have a worker running that reported its apps (a command that
stopped or restarted one does not disturb the next).  The docs' paths
become the test's (paths()); the lodge binaries are the ones under test, on
PATH; lodged gets --config with the test's lodge.conf unless the command
names one.  A lodge-worker of its own (standalone, for worker.md's control
socket and the lodge.ini snippets) runs beside it.

Runs as root only (users, lodged).  Environment: LODGED, LODGE_WORKER,
LODGE_ROUTER and LODGECTL name the binaries under test.
"""

import json
import os
import pwd
import re
import shlex
import socket
import subprocess
import unittest

import lodgehost
from lodgehost import TIMEOUT, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

LODGE_BINARIES = ("lodgectl", "lodged", "lodge-worker", "lodge-router")
LODGECTL_COMMANDS = ("status", "reload", "restart", "stop", "start",
                     "check-config", "reload-config", "logs", "metrics",
                     "version")
SHELL_LANGS = ("sh", "shell", "console")
FILE_LANGS = ("apache", "python", "json", "c")

# Programs a doc's command may use besides the lodge binaries, and why the
# test may run them (on the test's paths, after PATHS).
RUNNABLE = {
    "curl": "asks lodge's sockets, as a front end would",
    "echo": "feeds socat",
    "socat": "talks to a worker's control socket",
    "python3": "Debian's Python: a venv, the control protocol, libseccomp",
    "/usr/bin/python3": "the same",
    "grep": "reads a file",
    "tail": "reads a log",
    "touch": "asks for a reload",
}

# Commands the test does not run: the exact text (without its comment),
# under the reason.  Each must still be in a doc (a stale entry fails).
NOT_RUN = {
    "builds or installs the Debian package (tests/package/test_package.py "
    "builds it, installs it and runs the installed service)": [
        "./scripts/package.sh",
        "apt install ./build-deb/lodge_*.deb python3-venv",
    ],
    "systemd is not PID 1 here: the fixture runs lodged --foreground as "
    "lodge.service would (tests/package/test_package.py runs the units)": [
        "systemctl status lodge.socket lodge.service",
        "systemctl restart lodge",
    ],
    "reads the journal or the kernel's log, which hold what this host "
    "did, not what the test did; the test reads lodged's log itself": [
        "journalctl -u lodge --since -10min",
        "dmesg | grep 'type=1326'",
    ],
    "changes the host's accounts (the fixture makes its own users)": [
        "addgroup --system lodge-users",
        "adduser alice lodge-users",
    ],
    "changes the host's Apache (test_apache_conf.py runs the shipped "
    "snippets in Debian's Apache, test_apache.py a whole site)": [
        "a2enmod proxy proxy_http proxy_uwsgi headers",
        "cp packaging/apache/lodge.conf /etc/apache2/conf-available/",
        "a2enconf lodge",
        "cp packaging/apache/lodge-site-http.conf "
        "/etc/apache2/sites-available/blog.example.com.conf",
        "a2ensite blog.example.com",
        "apachectl configtest && systemctl reload apache2",
    ],
    "needs the network (PyPI)": [
        "~/apps/blog/.venv/bin/pip install flask",
    ],
}

# The docs' example users (and groups) and the test's.
DOC_USERS = {
    "alice": "lodgedocs-alice",
    "bob": "lodgedocs-bob",
    "carol": "lodgedocs-carol",
    "lodgedemo-alice": "lodgedocs-alice",   # README's demo lines
    "lodgedemo-bob": "lodgedocs-bob",
}
DOC_GROUPS = {"webusers": "lodgedocs-grp", "lodge-users": "lodgedocs-grp",
              "lodgeadm": "lodgedocs-grp"}
USERS = ("lodgedocs-alice", "lodgedocs-bob", "lodgedocs-carol")
GROUP = "lodgedocs-grp"
# The apps each user has (a worker of each of these users runs before
# every command).
APPS = {"lodgedocs-alice": ("blog", "hello"), "lodgedocs-bob": ("hello",)}
HOSTED_USER = "lodgedocs-alice"       # who runs docs/user-guide.md
AS_HOSTED_USER = ("docs/user-guide.md",)

APP_TEXT = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello from %s!\\n"]
'''

# What every lodge.ini snippet's app defines: the callables a snippet may
# name (entry = wsgi:app, the default application).
INI_APP_TEXT = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]

app = application
'''


def paths(t):
    """The docs' paths and the test's (t: the test class, set up)."""
    return {
        "/etc/lodge/lodge.conf": t.host.conf,
        "/etc/lodge/policy/": os.path.join(REPO, "policy") + "/",
        "/etc/lodge/hosts.map": os.path.join(t.host.tmp, "hosts.map"),
        "/run/lodge/control.sock": t.control,
        "/var/lib/lodge-demo/control.sock": t.control,
        "/run/lodge/users": t.host.socket_dir,
        "/run/lodge/http.sock": t.front_http,
        "/run/lodge/uwsgi.sock": t.front_uwsgi,
        "/usr/sbin/lodge-worker": t.host.bin["lodge-worker"],
        "/usr/sbin/lodge-router": t.host.bin["lodge-router"],
        "/var/lib/prometheus/node-exporter/lodge.prom":
            os.path.join(t.host.tmp, "lodge.prom"),
        "/tmp/lodge.ctl": t.worker_ctl,
    }


# -- reading the docs ------------------------------------------------------


def doc_files():
    """README.md and docs/*.md, relative to the top of the checkout."""
    docs = sorted(f for f in os.listdir(os.path.join(REPO, "docs"))
                  if f.endswith(".md"))
    return ["README.md"] + ["docs/" + f for f in docs]


class Block:
    def __init__(self, path, line, lang, info):
        self.path, self.line, self.lang, self.info = path, line, lang, info
        self.lines = []          # (line number, text)

    def text(self):
        return "".join(t + "\n" for _, t in self.lines)


def code_blocks(path, text=None):
    """The code blocks of a Markdown file: fenced (```LANG [WORDS]) and
    indented by four spaces after a blank line."""
    if text is None:
        with open(os.path.join(REPO, path)) as f:
            text = f.read()
    blocks, fence, indented = [], None, None
    prev_blank = True
    for n, line in enumerate(text.split("\n"), 1):
        if fence is not None:
            if line.strip().startswith("```"):
                blocks.append(fence)
                fence = None
            else:
                fence.lines.append((n, line))
            continue
        if line.lstrip().startswith("```"):
            if indented is not None:
                blocks.append(indented)
                indented = None
            words = line.strip()[3:].split()
            fence = Block(path, n, words[0] if words else "",
                          words[1:])
            continue
        if line.startswith("    ") and (indented is not None or prev_blank):
            if indented is None:
                indented = Block(path, n, "indented", [])
            indented.lines.append((n, line[4:]))
        elif indented is not None and line.strip() == "":
            indented.lines.append((n, ""))
        elif indented is not None:
            blocks.append(indented)
            indented = None
        prev_blank = line.strip() == ""
    if indented is not None:
        blocks.append(indented)
    return blocks


def split_comment(line):
    """(command, comment): a '#' after a blank, outside quotes, starts the
    comment."""
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def segments(command):
    """The simple commands of a shell line: split at |, ||, &&, ; and >
    (outside quotes); the text of each."""
    out, cur, quote, i = [], "", None, 0
    while i < len(command):
        c = command[i]
        if quote:
            if c == quote:
                quote = None
            cur += c
        elif c in "'\"":
            quote = c
            cur += c
        elif c in "|&;>":
            out.append(cur)
            cur = ""
            while i + 1 < len(command) and command[i + 1] in "|&;>":
                i += 1
            if c == ">":
                # The redirection's target is no command: skip the word.
                rest = command[i + 1:].lstrip()
                word = re.match(r"\S*", rest).group(0)
                i = len(command) - len(rest) + len(word) - 1
        else:
            cur += c
        i += 1
    out.append(cur)
    return [s.strip() for s in out if s.strip()]


def program(segment):
    """The program a simple command runs (after VAR=value words)."""
    for word in segment.split():
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            return word
    return ""


def lodge_binary(word):
    """'lodgectl' for lodgectl, ./build/lodgectl, /usr/sbin/lodgectl ...;
    None for any other program."""
    base = word.rsplit("/", 1)[-1]
    return base if base in LODGE_BINARIES else None


def invokes_lodge(line):
    """True if line (in a block that is not a shell block) is a lodge
    binary's invocation rather than output naming one."""
    words = line.split()
    if not words or lodge_binary(words[0]) is None:
        return False
    if len(words) == 1:
        return True
    nxt = words[1]
    return (nxt.startswith(("-", "[")) or
            (lodge_binary(words[0]) == "lodgectl"
             and nxt in LODGECTL_COMMANDS))


class Command:
    def __init__(self, path, line, text, comment):
        self.path, self.line, self.text = path, line, text
        self.comment = comment
        m = re.search(r"\bexit (\d+)\b", comment)
        self.expect = int(m.group(1)) if m else 0

    def __repr__(self):
        return "%s:%d: %s" % (self.path, self.line, self.text)

    def programs(self):
        return [program(s) for s in segments(self.text)]

    def kind(self):
        """'synopsis', 'run', 'not run' or 'unknown'."""
        progs = self.programs()
        first = lodge_binary(progs[0]) if progs else None
        if first is not None and is_synopsis(self.text):
            return "synopsis"
        if any(self.text in lines for lines in NOT_RUN.values()):
            return "not run"
        if progs and all(lodge_binary(p) or p in RUNNABLE for p in progs):
            return "run"
        return "unknown"


def is_synopsis(text):
    return "[" in text or any(re.match(r"^[A-Z][A-Z_]*(\.\.\.)?$", w)
                              for w in text.split()[1:])


def block_commands(block):
    """The commands of one code block, by the convention above."""
    if block.lang in FILE_LANGS or block.lang == "ini":
        return []
    lines, joined, first = [], "", None
    for n, text in block.lines:
        if joined == "":
            first = n
        if text.rstrip().endswith("\\"):
            joined += text.rstrip()[:-1].rstrip() + " "
            continue
        lines.append((first, joined + (text.lstrip() if joined else text)))
        joined = ""
    has_prompt = any(t.strip().startswith("$ ") for _, t in lines)
    out = []
    for n, text in lines:
        s = text.strip()
        if has_prompt:
            if not s.startswith("$ "):
                continue
            s = s[2:]
        elif block.lang in SHELL_LANGS:
            if not s or s.startswith("#"):
                continue
        elif not invokes_lodge(s):
            continue
        command, comment = split_comment(s)
        if command:
            out.append(Command(block.path, n, command, comment))
    return out


def doc_commands(files=None):
    return [c for f in (files or doc_files()) for b in code_blocks(f)
            for c in block_commands(b)]


def ini_blocks(kind):
    """The ```ini blocks: kind 'lodge.conf' (no second word) or
    'lodge.ini'."""
    out = []
    for f in doc_files():
        for b in code_blocks(f):
            if b.lang != "ini":
                continue
            if (b.info[:1] or ["lodge.conf"])[0] == kind:
                out.append(b)
    return out


def substitute(text, table):
    """Replaces each key of table by its value, longest first, in one pass
    (a replaced text is never replaced again).  A key that is a name is
    replaced only as a whole word ('alice' in '~alice/' and 'alice/blog',
    never in 'alice-the-admin' or 'lodgedemo-alice')."""
    keys = sorted(table, key=len, reverse=True)
    pattern = "|".join(
        r"(?<![\w-])%s(?![\w-])" % re.escape(k)
        if re.match(r"^[\w-]+$", k) else re.escape(k) for k in keys)
    return re.sub(pattern, lambda m: table[m.group(0)], text)


def lodge_conf_frame(text):
    """A lodge.conf snippet as a whole file: one without a [lodge] section
    goes under one that hosts alice, bob and carol (unless it names the
    users itself)."""
    if re.search(r"^\s*\[lodge\]", text, re.M):
        return text
    head = "[lodge]\n"
    if not re.search(r"^\s*users\s*=", text, re.M):
        head += "users = alice bob carol\n"
    return head + text


def names_table():
    table = dict(DOC_USERS)
    table.update(DOC_GROUPS)
    return table


# -- tests without a lodged --------------------------------------------------


class ConventionTest(unittest.TestCase):
    """What the docs hold, checked without running anything."""

    def test_every_command_is_run_or_listed(self):
        unknown = [c for c in doc_commands() if c.kind() == "unknown"]
        self.assertEqual(unknown, [], "commands in the docs that the test "
                         "neither runs nor lists in NOT_RUN (see the "
                         "convention at the top of test_docs.py)")

    def test_each_not_run_entry_is_in_a_doc(self):
        shown = {c.text for c in doc_commands()}
        for reason, lines in NOT_RUN.items():
            for line in lines:
                self.assertIn(line, shown, "NOT_RUN lists a command no "
                              "doc shows any more: remove it")

    def test_the_docs_have_commands_of_each_kind(self):
        kinds = [c.kind() for c in doc_commands()]
        self.assertGreaterEqual(kinds.count("run"), 20, kinds)
        self.assertGreaterEqual(kinds.count("synopsis"), 3, kinds)
        self.assertGreaterEqual(len(ini_blocks("lodge.conf")), 3)
        self.assertGreaterEqual(len(ini_blocks("lodge.ini")), 2)

    def test_convention_finds_a_new_command(self):
        # A doc that gains commands: each is found and classified, and
        # one the test does not know is "unknown" (which fails the test
        # above); output lines are not commands.
        md = ("Text.\n\n"
              "```sh\n"
              "lodgectl frobnicate alice   # exit 2\n"
              "rm -rf ~/apps/blog\n"
              "# a comment\n"
              "```\n\n"
              "    lodgectl status bob\n"
              "    lodged 0.1.0 (pid 812), up 3h05m\n\n"
              "Then:\n\n"
              "    $ curl --unix-socket /run/lodge/http.sock \\\n"
              "        http://localhost/\n"
              "    HTTP/1.1 200 OK\n\n"
              "```\n"
              "lodgectl [--json] COMMAND\n"
              "lodge-worker --apps DIR --listen SPEC\n"
              "USER  STATE\n"
              "```\n\n"
              "```ini\nthreads = 4\n```\n")
        cmds = [c for b in code_blocks("x.md", md)
                for c in block_commands(b)]
        self.assertEqual(
            [(c.line, c.text, c.expect, c.kind()) for c in cmds],
            [(4, "lodgectl frobnicate alice", 2, "run"),
             (5, "rm -rf ~/apps/blog", 0, "unknown"),
             (9, "lodgectl status bob", 0, "run"),
             (14, "curl --unix-socket /run/lodge/http.sock "
              "http://localhost/", 0, "run"),
             (19, "lodgectl [--json] COMMAND", 0, "synopsis"),
             (20, "lodge-worker --apps DIR --listen SPEC", 0, "synopsis")])

    def test_substitution_is_by_whole_names(self):
        table = {"alice": "A", "lodgedemo-alice": "A",
                 "/run/lodge/users": "/t/u", "/run/lodge/http.sock": "/t/h"}
        self.assertEqual(
            substitute("lodgectl logs alice/blog ~alice/x alice-the-admin "
                       "lodgedemo-alice /run/lodge/users/alice.sock "
                       "/run/lodge/http.sock", table),
            "lodgectl logs A/blog ~A/x alice-the-admin A /t/u/A.sock /t/h")

    def test_security_model_names_real_tests(self):
        # Each test the security model cites as a proof exists: a Python
        # test method or class in tests/integration, a cmocka test or a
        # fuzz harness.
        with open(os.path.join(REPO, "docs", "security-model.md")) as f:
            text = f.read()
        names = set(re.findall(r"`((?:test_|Test|fuzz_)\w+)`", text))
        self.assertGreaterEqual(len(names), 40, names)
        defined = set()
        for top in ("tests", "fuzz"):
            for dirpath, _, files in os.walk(os.path.join(REPO, top)):
                for name in files:
                    if not name.endswith((".py", ".c")):
                        continue
                    defined.add(name[:-len(".py")] if name.endswith(".py")
                                else name[:-2])
                    with open(os.path.join(dirpath, name),
                              errors="replace") as f:
                        src = f.read()
                    defined |= set(re.findall(
                        r"(?:def|class) ((?:test_|Test)\w*)", src))
                    defined |= set(re.findall(
                        r"cmocka_unit_test\((test_\w+)\)", src))
        missing = sorted(n for n in names if n not in defined)
        self.assertEqual(missing, [], "docs/security-model.md cites tests "
                         "that do not exist")

    def test_relative_links_resolve(self):
        # Files and, for Markdown targets, the heading an anchor names.
        for path in doc_files():
            with open(os.path.join(REPO, path)) as f:
                text = f.read()
            for link, anchor in re.findall(
                    r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", text):
                if "://" in link or link.startswith("mailto:"):
                    continue
                target = os.path.normpath(os.path.join(
                    REPO, os.path.dirname(path), link or
                    os.path.basename(path)))
                with self.subTest(link="%s: %s#%s" % (path, link, anchor)):
                    self.assertTrue(os.path.exists(target),
                                    "%s links to %s, which does not exist"
                                    % (path, link))
                    if anchor and target.endswith(".md"):
                        self.assertIn(anchor, heading_anchors(target),
                                      "%s links to %s#%s: no such heading"
                                      % (path, link, anchor))


def heading_anchors(path):
    """The anchors GitHub gives the headings of a Markdown file."""
    with open(path) as f:
        text = f.read()
    fenced = False
    out = set()
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"^#{1,6} ", line):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


# -- tests with a real lodged ------------------------------------------------


def http_status(path, app):
    """The status of GET / on a Unix socket with X-Lodge-App: app."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Lodge-App: %s\r\n"
                  b"Connection: close\r\n\r\n" % app.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]) if data else None


@unittest.skipUnless(os.geteuid() == 0, "needs root (users, lodged)")
class DocsCommandsTest(unittest.TestCase):
    host = None
    worker = None
    group_made = False

    @classmethod
    def setUpClass(cls):
        lodgehost.set_up_class(cls, needs=("LODGED", "LODGE_WORKER",
                                           "LODGE_ROUTER", "LODGECTL"))

    @classmethod
    def _set_up(cls):
        try:
            pwd.getpwnam("lodge")
        except KeyError:
            raise AssertionError("no system user 'lodge' (router_user): "
                                 "run scripts/install-deps.sh")
        cls.host = h = lodgehost.LodgeHost("lodgedocs",
                                           ["-alice", "-bob", "-carol"])
        assert tuple(h.users) == USERS, h.users
        lodgehost.run("groupdel", GROUP, check=False)
        lodgehost.run("groupadd", GROUP)
        cls.group_made = True
        for user in USERS:
            lodgehost.run("usermod", "-aG", GROUP, user)
        for user, apps in APPS.items():
            for app in apps:
                h.install_app(user, app, APP_TEXT % ("%s/%s" % (user, app)))
        cls.control = os.path.join(h.tmp, "control.sock")
        cls.front_http = os.path.join(h.tmp, "http.sock")
        cls.front_uwsgi = os.path.join(h.tmp, "uwsgi.sock")
        # The lodge binaries under test, first on PATH.
        cls.bindir = os.path.join(h.tmp, "bin")
        os.mkdir(cls.bindir)
        for var, name in (("LODGECTL", "lodgectl"), ("LODGED", "lodged"),
                          ("LODGE_WORKER", "lodge-worker"),
                          ("LODGE_ROUTER", "lodge-router")):
            os.symlink(os.path.abspath(os.environ[var]),
                       os.path.join(cls.bindir, name))
        cls._start_worker()
        h.start(extra=(
            "front = http:unix:%s, uwsgi:unix:%s\n"
            "front_group = www-data\n"
            "front_trusted = http:unix:%s\n"
            % (cls.front_http, cls.front_uwsgi, cls.front_http)))
        cls.table = names_table()
        cls.table.update(paths(cls))

    @classmethod
    def _start_worker(cls):
        """A standalone lodge-worker: worker.md's control socket, and an
        app per lodge.ini snippet of the docs (plus one that is wrong, to
        show the check can fail)."""
        h = cls.host
        cls.worker_dir = os.path.join(h.tmp, "worker")
        apps = os.path.join(cls.worker_dir, "apps")
        os.makedirs(os.path.join(apps, "hello"))
        with open(os.path.join(apps, "hello", "wsgi.py"), "w") as f:
            f.write(APP_TEXT % "hello")
        cls.ini_apps = {}
        snippets = [(b, b.text()) for b in ini_blocks("lodge.ini")]
        snippets.append((None, "thread = 4\n"))
        for i, (block, text) in enumerate(snippets):
            name = "ini-%d" % i if block is not None else "ini-wrong"
            os.makedirs(os.path.join(apps, name))
            with open(os.path.join(apps, name, "wsgi.py"), "w") as f:
                f.write(INI_APP_TEXT)
            with open(os.path.join(apps, name, "lodge.ini"), "w") as f:
                f.write(text)
            cls.ini_apps[name] = block
        cls.worker_ctl = os.path.join(cls.worker_dir, "worker.ctl")
        cls.worker_log = open(os.path.join(cls.worker_dir, "stderr"), "w")
        cls.worker = subprocess.Popen(
            [os.environ["LODGE_WORKER"], "--apps", apps,
             "--listen", "unix:" + os.path.join(cls.worker_dir, "w.sock"),
             "--control", cls.worker_ctl,
             "--log-dir", os.path.join(cls.worker_dir, "logs")],
            stdin=subprocess.DEVNULL, stdout=cls.worker_log,
            stderr=subprocess.STDOUT)
        if not wait_for(lambda: cls.worker_status() is not None):
            raise RuntimeError("the standalone worker did not start")

    @classmethod
    def worker_status(cls):
        try:
            return json.loads(lodgehost.unix_exchange(cls.worker_ctl,
                                                      b"status\n"))
        except (OSError, ValueError):
            return None

    @classmethod
    def tearDownClass(cls):
        cls._tear_down()

    @classmethod
    def _tear_down(cls):
        if cls.worker is not None:
            cls.worker.terminate()
            try:
                cls.worker.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                cls.worker.kill()
                cls.worker.wait()
            cls.worker_log.close()
            cls.worker = None
        if cls.host is not None:
            cls.host.stop()
            cls.host = None
        if cls.group_made:
            lodgehost.run("groupdel", GROUP, check=False)
            cls.group_made = False

    # -- helpers -------------------------------------------------------------

    def ctl(self, *args):
        p = subprocess.run([os.environ["LODGECTL"], "--socket", self.control]
                           + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=TIMEOUT * 2)
        return p.returncode, p.stdout, p.stderr

    def user_status(self, user):
        rc, out, err = self.ctl("--json", "status", user)
        self.assertEqual(rc, 0, out + err)
        return json.loads(out)["users"][0]

    def ensure_ready(self):
        """Each user of APPS has all its workers running, and they
        reported the user's apps; a stopped or idle user is started."""
        for user, apps in APPS.items():
            def ready():
                u = self.user_status(user)
                if u["state"] in ("stopped", "idle", "backoff"):
                    self.ctl("start", user)
                    return False
                return (u["state"] == "running"
                        and u["running"] == u["processes"]
                        and all(w["pid"] is not None
                                and w["requests_served"] is not None
                                for w in u["workers"])
                        and u["apps"] is not None
                        and set(apps) <= {a["name"] for a in u["apps"]})
            self.assertTrue(wait_for(ready, interval=0.1),
                            "%s is not ready: %r\n%s" % (
                                user, self.user_status(user),
                                self.host.read_log()[-3000:]))

    def prepared(self, cmd):
        """The command's text as the test runs it."""
        text = substitute(cmd.text, self.table)
        # The lodge binaries under test, from PATH.
        text = re.sub(r"(?<![\w/.-])(?:\./build/|/usr/sbin/|/usr/bin/)"
                      r"(%s)\b" % "|".join(map(re.escape, LODGE_BINARIES)),
                      r"\1", text)
        if program(segments(text)[0]) == "lodged" and \
                "--config" not in text:
            text = re.sub(r"^lodged\b", "lodged --config "
                          + shlex.quote(self.host.conf), text)
        return text

    def run_shell(self, text, as_user=None):
        env = {"PATH": self.bindir + ":/usr/local/sbin:/usr/local/bin:"
               "/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8",
               "LODGE_CONTROL_SOCKET": self.control}
        argv = ["/bin/sh", "-c", text]
        cwd = REPO
        if as_user is not None:
            pw = pwd.getpwnam(as_user)
            env.update(HOME=pw.pw_dir, USER=as_user, LOGNAME=as_user)
            argv = ["setpriv", "--reuid=%d" % pw.pw_uid,
                    "--regid=%d" % pw.pw_gid, "--init-groups", "--"] + argv
            cwd = pw.pw_dir
        else:
            env["HOME"] = "/root"
        return subprocess.run(argv, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=TIMEOUT * 4)

    def check_run(self, cmd):
        """Runs cmd (as the doc's reader would, on the test's names and
        paths) and checks its status; a lodgectl command again with
        --json, whose output must parse."""
        as_user = HOSTED_USER if cmd.path in AS_HOSTED_USER else None
        text = self.prepared(cmd)
        self.ensure_ready()
        r = self.run_shell(text, as_user)
        self.assertEqual(r.returncode, cmd.expect,
                         "%r\nran: %s\nexit %d, not %d\n--- stdout\n%s"
                         "--- stderr\n%s--- lodged's log\n%s" % (
                             cmd, text, r.returncode, cmd.expect,
                             r.stdout[-2000:], r.stderr[-2000:],
                             self.host.read_log()[-2000:]))
        first = segments(text)[0]
        words = shlex.split(first)
        if (program(first) != "lodgectl" or
                {"-h", "--help", "--version"} & set(words)):
            return
        if "--json" not in words:
            words.insert(1, "--json")
            self.ensure_ready()
        r = self.run_shell(" ".join(map(shlex.quote, words)), as_user)
        self.assertEqual(r.returncode, cmd.expect,
                         "%r with --json: exit %d\n%s%s"
                         % (cmd, r.returncode, r.stdout, r.stderr))
        try:
            json.loads(r.stdout)
        except ValueError as e:
            self.fail("%r with --json: not JSON (%s): %r"
                      % (cmd, e, r.stdout[:500]))

    # -- the tests ---------------------------------------------------------

    def test_commands_run(self):
        ran = 0
        for cmd in doc_commands():
            if cmd.kind() != "run":
                continue
            with self.subTest(cmd=repr(cmd)):
                self.check_run(cmd)
                ran += 1
        self.assertGreaterEqual(ran, 20)

    def test_a_wrong_command_fails(self):
        # The check above can fail: an unknown lodgectl command, a user
        # who is not hosted, an option lodged does not have.
        for text in ("lodgectl frobnicate", "lodgectl status nobody",
                     "lodged --check-config --frobnicate"):
            cmd = Command("x.md", 1, text, "")
            with self.subTest(text):
                with self.assertRaises(AssertionError):
                    self.check_run(cmd)
        self.check_run(Command("x.md", 1, "lodgectl status nobody",
                               "exit 5"))

    def test_synopses_name_real_options(self):
        for cmd in doc_commands():
            if cmd.kind() != "synopsis":
                continue
            with self.subTest(cmd=repr(cmd)):
                binary = lodge_binary(program(cmd.text))
                r = subprocess.run([os.path.join(self.bindir, binary),
                                    "--help"], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                self.assertEqual(r.returncode, 0, r.stdout)
                options = re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", cmd.text)
                for opt in options:
                    self.assertRegex(r.stdout, r"(?<![\w-])%s(?![\w-])"
                                     % re.escape(opt),
                                     "%r: %s --help does not name %s"
                                     % (cmd, binary, opt))

    def test_lodge_conf_snippets_pass_check_config(self):
        blocks = ini_blocks("lodge.conf")
        # And one that is wrong: the check can fail.
        wrong = Block("x.md", 1, "ini", [])
        wrong.lines = [(1, "[lodge]"), (2, "thread = 4")]
        for i, block in enumerate(blocks + [wrong]):
            with self.subTest(block="%s:%d" % (block.path, block.line)):
                text = substitute(lodge_conf_frame(block.text()),
                                  self.table)
                path = os.path.join(self.host.tmp, "snippet-%d.conf" % i)
                with open(path, "w") as f:
                    f.write(text)
                r = subprocess.run([os.environ["LODGED"], "--check-config",
                                    path], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
                ok = (r.returncode == 0 and "warning" not in r.stdout)
                if block is wrong:
                    self.assertFalse(ok, r.stdout)
                    self.assertIn("thread", r.stdout)
                    continue
                self.assertTrue(ok, "%s:%d: lodged --check-config (exit "
                                "%d):\n%s\n--- the file:\n%s" % (
                                    block.path, block.line, r.returncode,
                                    r.stdout, text))

    def test_lodge_ini_snippets_are_accepted(self):
        status = self.worker_status()
        self.assertIsNotNone(status)
        apps = {a["name"]: a for a in status["apps"]}
        for name, block in sorted(self.ini_apps.items()):
            where = ("%s:%d" % (block.path, block.line) if block
                     else "the wrong one")
            with self.subTest(block=where):
                a = apps[name]
                ini = os.path.join(self.worker_dir, "apps", name,
                                   "lodge.ini")
                refused = (a.get("reason") or "").startswith(ini)
                if block is None:
                    self.assertTrue(refused, a)
                    self.assertIn("unknown setting", a["reason"])
                    continue
                self.assertFalse(refused, "%s: the worker refuses this "
                                 "lodge.ini: %s" % (where, a["reason"]))

    def test_front_answers_for_the_docs_users(self):
        # The fixture the commands ran against: the router routes to the
        # users' apps (so a curl in the docs reaches a real app).
        self.ensure_ready()
        for user, apps in APPS.items():
            for app in apps:
                self.assertEqual(http_status(self.front_http,
                                             "%s/%s" % (user, app)), 200)


if __name__ == "__main__":
    unittest.main()
