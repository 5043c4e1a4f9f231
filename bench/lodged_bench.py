"""bench/lodged_bench.py: the measuring half of bench/lodged.sh (run that;
its header says what is measured, how and how long it takes).

Run as root with Debian's /usr/bin/python3.  Settings come from the
environment (lodged.sh sets them all): LODGED, LODGE_WORKER, POLICY,
BLOG_APP, STARTS, USERS, WARM_REQUESTS, STATE_FILE (every user this script
creates is appended to it at once, so that lodged.sh can still remove them
if this process dies without its own cleanup).

Cleanup (lodged stopped, leftover processes of the bench users killed by
pid, userdel -r of every bench user, temp dirs removed) runs in a finally
block; SIGTERM and SIGHUP are turned into an exception so that it also runs
when the benchmark is interrupted.
"""

import calendar
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

LODGED = os.environ["LODGED"]
LODGE_WORKER = os.environ["LODGE_WORKER"]
POLICY = os.environ["POLICY"]
BLOG_APP = os.environ["BLOG_APP"]
STARTS = int(os.environ.get("STARTS", "20"))
USERS = int(os.environ.get("USERS", "200"))
WARM_REQUESTS = int(os.environ.get("WARM_REQUESTS", "200"))
STATE_FILE = os.environ.get("STATE_FILE", "")
TIMEOUT = 30.0

PREFIX = "lodgebench-"
HELLO_USER = PREFIX + "hello"
FLASK_USER = PREFIX + "flask"

# 3 lines, as the brief says: the smallest WSGI app.
HELLO_APP = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
    return [b"hello\\n"]
'''
HELLO_BODY = "hello\n"
FLASK_BODY = "Hello from Flask on lodge!\n"


class Interrupted(Exception):
    pass


def on_signal(signum, frame):
    # The first signal starts the clean-up; later ones (lodged.sh's trap
    # sends SIGTERM too) must not interrupt it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted("signal %d" % signum)


def out(*args):
    # The report must not stop the clean-up: a dead stdout (tee killed)
    # is ignored.
    try:
        print(*args, flush=True)
    except OSError:
        pass


def note_state(line):
    """Appends to lodged.sh's state file what it must undo if this process
    dies without its clean-up: 'user NAME', 'dir PATH', 'pid PID'."""
    if STATE_FILE:
        with open(STATE_FILE, "a") as f:
            f.write(line + "\n")


def run(*args, check=True):
    return subprocess.run(args, check=check, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, timeout=TIMEOUT, interval=0.005):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def request(path, timeout=TIMEOUT):
    """GET / on a new connection (Connection: close), read to EOF.
    Returns (seconds from before connect() to EOF, status, body)."""
    t0 = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    dt = time.perf_counter() - t0
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return dt, status, body.decode("latin-1")


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    k = max(1, -(-len(v) * p // 100))  # ceil
    return v[int(k) - 1]


def ms(x):
    return "%.1f" % (x * 1000)


def summary(values):
    return ("p50 %s ms, p95 %s ms, min %s, max %s (n=%d)"
            % (ms(pct(values, 50)), ms(pct(values, 95)), ms(min(values)),
               ms(max(values)), len(values)))


def procs_of_uid(uid):
    """Host pids of every process running as uid (real uid)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(d))
                        break
        except (FileNotFoundError, ProcessLookupError):
            pass
    return pids


def ppid_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def smaps_rollup(pid):
    """{'Pss': kB, 'Rss': kB, 'Uss': kB} of one process."""
    vals = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                vals[parts[0].rstrip(":")] = int(parts[1])
    return {"Pss": vals.get("Pss", 0), "Rss": vals.get("Rss", 0),
            "Uss": vals.get("Private_Clean", 0) + vals.get("Private_Dirty", 0)}


def mem_available_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def mib(kb):
    return "%.2f MiB" % (kb / 1024.0)


class Bench:
    def __init__(self):
        self.tmp = None
        self.bindir = None
        self.proc = None
        self.log = None
        self.users = []       # created by us: removed at the end
        self.lines = []       # report lines (stdout is the report)
        self.mem_users = ["%sm%03d" % (PREFIX, i + 1) for i in range(USERS)]

    # -- set-up -------------------------------------------------------
    def add_user(self, name):
        note_state("user " + name)
        try:
            pwd.getpwnam(name)
            # A leftover of a killed run: start clean.
            self.kill_user_procs(name)
            run("userdel", "-r", name, check=False)
        except KeyError:
            pass
        run("useradd", "-m", "-s", "/usr/sbin/nologin", name)
        self.users.append(name)

    def install_hello(self, name):
        pw = pwd.getpwnam(name)
        app = os.path.join(pw.pw_dir, "apps", "hello")
        os.makedirs(app)
        with open(os.path.join(app, "wsgi.py"), "w") as f:
            f.write(HELLO_APP)
        for p in (os.path.dirname(app), app, os.path.join(app, "wsgi.py")):
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def install_blog(self, name):
        pw = pwd.getpwnam(name)
        apps = os.path.join(pw.pw_dir, "apps")
        os.makedirs(apps)
        dst = os.path.join(apps, "blog")
        shutil.copytree(BLOG_APP, dst,
                        ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(apps):
            for p in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def write_config(self):
        names = [HELLO_USER, FLASK_USER] + self.mem_users
        lines = []
        for i in range(0, len(names), 8):
            lines.append(" ".join(names[i:i + 8]))
        self.socket_dir = os.path.join(self.tmp, "sockets")
        self.conf = os.path.join(self.tmp, "lodge.conf")
        with open(self.conf, "w") as f:
            f.write(
                "; written by bench/lodged_bench.py\n"
                "[lodge]\n"
                "users = %s\n"
                "min_uid = 1000\n"
                "socket_dir = %s\n"
                "socket_group = www-data\n"
                "worker = %s\n"
                "policy = %s\n"
                "; workers are stopped by the benchmark (SIGTERM), never\n"
                "; by the idle timer: the N-user phase keeps all running\n"
                "idle_timeout = 0\n"
                "processes = 1\n"
                "threads = 4\n"
                "memory_max = 1G\n"
                % ("\n  ".join(lines), self.socket_dir, self.worker_path,
                   POLICY))

    def start_lodged(self):
        self.log_path = os.path.join(self.tmp, "lodged.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [LODGED, "--foreground", "--config", self.conf],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            # Its own session: a Ctrl-C meant for the benchmark must not
            # stop lodged under it (the clean-up stops it).
            start_new_session=True)
        note_state("pid %d" % self.proc.pid)
        if not wait_for(lambda: "ready:" in self.read_log()
                        or self.proc.poll() is not None, interval=0.05):
            raise RuntimeError("lodged did not start:\n" + self.read_log())
        if self.proc.poll() is not None:
            raise RuntimeError("lodged exited %d:\n%s"
                               % (self.proc.returncode, self.read_log()))

    def set_up(self):
        self.tmp = tempfile.mkdtemp(prefix="lodgebench-")
        note_state("dir " + self.tmp)
        os.chmod(self.tmp, 0o755)
        # Root-owned, 0755, outside /tmp (workers get a private /tmp) and
        # outside the homes (hidden in the sandbox).
        self.bindir = tempfile.mkdtemp(prefix="lodgebench-bin-",
                                       dir="/var/lib")
        note_state("dir " + self.bindir)
        os.chmod(self.bindir, 0o755)
        self.worker_path = os.path.join(self.bindir, "lodge-worker")
        shutil.copy2(LODGE_WORKER, self.worker_path)
        os.chmod(self.worker_path, 0o755)

        t0 = time.monotonic()
        for name in [HELLO_USER, FLASK_USER] + self.mem_users:
            self.add_user(name)
        self.install_hello(HELLO_USER)
        self.install_blog(FLASK_USER)
        for name in self.mem_users:
            self.install_hello(name)
        out("set-up: %d users created (useradd -m) in %.1f s"
            % (len(self.users), time.monotonic() - t0))
        self.write_config()
        t0 = time.monotonic()
        self.start_lodged()
        out("set-up: lodged ready in %.2f s (%d sockets)"
            % (time.monotonic() - t0, len(os.listdir(self.socket_dir))))
        m = re.search(r"cgroup limits are off: (.*)", self.read_log())
        if m:
            out("note: lodged says 'cgroup limits are off: %s' (memory_max "
                "is an address-space limit only)" % m.group(1).strip())

    # -- clean-up -----------------------------------------------------
    def kill_user_procs(self, name):
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            return
        for _ in range(50):
            pids = procs_of_uid(uid)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def tear_down(self):
        # Signals during clean-up would leave users behind: ignore them.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.returncode not in (0, None):
            out("warning: lodged exited with status %d" % self.proc.returncode)
        errors = self.log_problems()
        if errors:
            out("lodged logged %d error/warning line(s); the first ones:"
                % len(errors))
            for line in errors[:10]:
                out("  " + line)
        t0 = time.monotonic()
        n = len(self.users)
        failed = []
        for name in self.users:
            self.kill_user_procs(name)
            r = run("userdel", "-r", name, check=False)
            # userdel -r exits 12 when the mail spool is missing: the user
            # and the home are gone all the same.
            try:
                pwd.getpwnam(name)
                failed.append("%s (%s)" % (name, r.stdout.strip()))
            except KeyError:
                pass
        self.users = []
        if n:
            out("clean-up: %d users removed (userdel -r) in %.1f s"
                % (n - len(failed), time.monotonic() - t0))
        if failed:
            out("clean-up: could NOT remove: " + ", ".join(failed))
        if self.bindir:
            shutil.rmtree(self.bindir, ignore_errors=True)
        if self.log:
            self.log.close()
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- lodged's log and the workers -------------------------------------
    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def log_problems(self):
        if not self.log or not self.log_path or not os.path.exists(
                self.log_path):
            return []
        return [l for l in self.read_log().splitlines()
                if re.search(r": (error|warning):", l, re.I)
                and "cgroup limits are off" not in l]

    def sock(self, name):
        return os.path.join(self.socket_dir, name + ".sock")

    def started_pids(self, name):
        return [int(p) for p in re.findall(
            r"worker %s: started \(pid (\d+)" % re.escape(name),
            self.read_log())]

    def worker_procs(self, name):
        """(init pid, worker pid) of the user's running worker.  lodged
        logs the host pid of the pid namespace's init ('started (pid P');
        the worker proper is the init's child; both run as the user."""
        uid = pwd.getpwnam(name).pw_uid
        pids = procs_of_uid(uid)
        started = self.started_pids(name)
        init = started[-1] if started else None
        if init not in pids:
            raise RuntimeError("%s: no running worker init (started %s, "
                               "processes %s)" % (name, started, pids))
        workers = [p for p in pids if ppid_of(p) == init]
        others = [p for p in pids if p != init and p not in workers]
        if len(workers) != 1 or others:
            raise RuntimeError("%s: unexpected processes: init %d, "
                               "children %s, others %s"
                               % (name, init, workers, others))
        return init, workers[0]

    def stop_worker(self, name):
        """SIGTERM to the worker proper (the user's process whose parent
        is the namespace init); wait for lodged's 'exited (idle or
        drained)' line and for no process of the user to be left."""
        init, worker = self.worker_procs(name)
        uid = pwd.getpwnam(name).pw_uid
        line = r"worker %s \(pid %d\): (exited|stopped|killed|ended)" % (
            re.escape(name), init)
        os.kill(worker, signal.SIGTERM)
        if not wait_for(lambda: re.search(line, self.read_log())):
            raise RuntimeError("%s: lodged did not log the exit of pid %d"
                               % (name, init))
        m = re.search(line + r".*", self.read_log())
        if "exited (idle or drained)" not in m.group(0):
            raise RuntimeError("%s: worker did not exit cleanly: %s"
                               % (name, m.group(0)))
        if not wait_for(lambda: not procs_of_uid(uid)):
            raise RuntimeError("%s: processes left after exit: %s"
                               % (name, procs_of_uid(uid)))

    def check(self, name, status, body, expect):
        if status != 200 or body != expect:
            raise RuntimeError("%s: unexpected response %d %r\n"
                               "--- lodged log (tail) ---\n%s"
                               % (name, status, body[:300],
                                  "\n".join(self.read_log().splitlines()[-20:])))

    # -- measurements ---------------------------------------------------
    def log_times(self, name, since):
        """Wall-clock times (s) of this start's marks, from the logs'
        millisecond timestamps: lodged's 'worker NAME: started' (spawn_worker
        returned: the worker has exec'd), the worker's 'sandbox self-check
        passed' (its first line) and 'app ...: serving version' (app
        imported; the worker serves from then on).  None when not found
        (the worker writes its lines itself, maybe after the response)."""
        def stamp(line):
            m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z",
                         line)
            if not m:
                return None
            return (calendar.timegm(time.strptime(m.group(1),
                                                  "%Y-%m-%dT%H:%M:%S"))
                    + int(m.group(2)) / 1000.0)

        def last(lines, text):
            t = None
            for line in lines:
                if text in line:
                    t = stamp(line)
            return t if t is not None and t >= since else None

        wlog = os.path.join(pwd.getpwnam(name).pw_dir, "logs", "lodge",
                            "worker.log")

        def marks():
            try:
                with open(wlog, errors="replace") as f:
                    wl = f.read().splitlines()
            except OSError:
                wl = []
            m = (last(self.read_log().splitlines(),
                      "worker %s: started" % name),
                 last(wl, ": sandbox self-check passed"),
                 last(wl, ": serving version"))
            return m if None not in m else None
        return wait_for(marks, timeout=1.0, interval=0.01)

    def cold_starts(self, name, expect, label):
        uid = pwd.getpwnam(name).pw_uid
        # One untimed start first: writes the app's __pycache__ and warms
        # the page cache, as any start after the first on a real host.
        if procs_of_uid(uid):
            raise RuntimeError("%s: processes before the first start" % name)
        _, status, body = request(self.sock(name))
        self.check(name, status, body, expect)
        self.stop_worker(name)
        times = []
        phases = []  # (connect->started, ->self-check, ->serving, ->end)
        for i in range(STARTS):
            if procs_of_uid(uid):
                raise RuntimeError("%s: a process runs before start %d"
                                   % (name, i + 1))
            time.sleep(0.2)
            before = len(self.started_pids(name))
            w0 = time.time()
            dt, status, body = request(self.sock(name))
            w1 = time.time()
            self.check(name, status, body, expect)
            if len(self.started_pids(name)) != before + 1:
                raise RuntimeError("%s: start %d did not start a worker"
                                   % (name, i + 1))
            times.append(dt)
            # ms timestamps are truncated: allow 1 ms before connect().
            m = self.log_times(name, w0 - 0.001)
            if m:
                phases.append((m[0] - w0, m[1] - m[0], m[2] - m[1],
                               w1 - m[2]))
            self.stop_worker(name)
        out("cold start, %-6s %s" % (label + ":", summary(times)))
        if phases:
            med = [pct([p[k] for p in phases], 50) for k in range(4)]
            out("  where it goes (medians, from the logs' ms timestamps, "
                "n=%d): connect -> lodged 'started' (sandboxed spawn up to "
                "exec) %s; -> worker's 'self-check passed' %s; -> 'app: "
                "serving version' (Python start-up, app import) %s; -> end "
                "of response %s ms"
                % (len(phases), ms(med[0]), ms(med[1]), ms(med[2]),
                   ms(med[3])))
        return times

    def warm(self, name, expect, label):
        self.check(name, *request(self.sock(name))[1:], expect)
        for _ in range(20):
            request(self.sock(name))
        times = []
        for _ in range(WARM_REQUESTS):
            dt, status, body = request(self.sock(name))
            self.check(name, status, body, expect)
            times.append(dt)
        out("warm,       %-6s %s" % (label + ":", summary(times)))
        return times

    def single_pss(self):
        name = HELLO_USER
        self.check(name, *request(self.sock(name))[1:], HELLO_BODY)
        for _ in range(20):
            request(self.sock(name))
        time.sleep(1.0)
        init, worker = self.worker_procs(name)
        a, b = smaps_rollup(init), smaps_rollup(worker)
        total = a["Pss"] + b["Pss"]
        out("idle worker, hello app, running alone (after 21 requests, 1 s "
            "idle):")
        out("  namespace init (pid %d): PSS %s, USS %s, RSS %s"
            % (init, mib(a["Pss"]), mib(a["Uss"]), mib(a["Rss"])))
        out("  lodge-worker   (pid %d): PSS %s, USS %s, RSS %s"
            % (worker, mib(b["Pss"]), mib(b["Uss"]), mib(b["Rss"])))
        out("  total PSS %s   target <= 12 MB: %s"
            % (mib(total), "PASS" if total <= 12 * 1024 else "MISS"))
        self.stop_worker(name)
        return total

    def many_users(self):
        n = len(self.mem_users)
        if n == 0:
            return
        time.sleep(1.0)
        avail_before = mem_available_kb()
        t0 = time.monotonic()
        # First connection to every socket: N cold starts, 4 at a time.

        def first(name):
            _, status, body = request(self.sock(name), timeout=120)
            self.check(name, status, body, HELLO_BODY)

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(first, self.mem_users))
        t_start = time.monotonic() - t0
        # A few more requests each: every app warm.
        for name in self.mem_users:
            for _ in range(3):
                self.check(name, *request(self.sock(name))[1:], HELLO_BODY)
        time.sleep(2.0)
        pss = uss = nproc = 0
        per_user = []
        for name in self.mem_users:
            init, worker = self.worker_procs(name)
            a, b = smaps_rollup(init), smaps_rollup(worker)
            pss += a["Pss"] + b["Pss"]
            uss += a["Uss"] + b["Uss"]
            per_user.append(a["Pss"] + b["Pss"])
            nproc += 2
        avail_after = mem_available_kb()
        out("%d users, each with a warm hello app, all running at once:" % n)
        out("  started %d workers (4 connections at a time) in %.1f s; "
            "%d processes measured" % (n, t_start, nproc))
        out("  total PSS %s, per user %s (min %s, max %s)"
            % (mib(pss), mib(pss / n), mib(min(per_user)),
               mib(max(per_user))))
        out("  total USS %s, per user %s (private pages only)"
            % (mib(uss), mib(uss / n)))
        out("  MemAvailable before %s, after %s: %s less, %s per user"
            % (mib(avail_before), mib(avail_after),
               mib(avail_before - avail_after),
               mib((avail_before - avail_after) / n)))

    def main(self):
        # SIGINT too: lodged.sh runs this in the background, where it
        # starts with SIGINT ignored.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, on_signal)
        try:
            self.set_up()
            out("cold-start method: SIGTERM to the worker process (the "
                "user's process whose parent is the namespace init), then "
                "wait for lodged's 'exited (idle or drained)' line and for "
                "no process of the user in /proc; 1 untimed start first; "
                "time = connect() to EOF of the response (Connection: "
                "close)")
            out("")
            hello = self.cold_starts(HELLO_USER, HELLO_BODY, "hello")
            self.cold_starts(FLASK_USER, FLASK_BODY, "Flask")
            out("cold start target for hello: p50 <= 60 ms: %s, p95 <= 60 "
                "ms: %s" % ("PASS" if pct(hello, 50) <= 0.060 else "MISS",
                            "PASS" if pct(hello, 95) <= 0.060 else "MISS"))
            out("")
            out("warm requests (worker running; new connection per request, "
                "connect() to EOF, %d requests after 20 untimed):"
                % WARM_REQUESTS)
            self.warm(HELLO_USER, HELLO_BODY, "hello")
            self.warm(FLASK_USER, FLASK_BODY, "Flask")
            self.stop_worker(FLASK_USER)
            out("")
            self.single_pss()
            out("")
            self.many_users()
            out("")
            return 0
        except (Interrupted, KeyboardInterrupt) as e:
            out("interrupted (%s); cleaning up" % e)
            return 130
        except Exception as e:
            out("FAILED: %s" % e)
            return 1
        finally:
            self.tear_down()


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("lodged_bench.py: run as root (useradd, lodged)")
    sys.exit(Bench().main())
