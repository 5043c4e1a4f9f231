#!/usr/bin/python3
# bench/reload_probe.py: the clock and the client of bench/reload.sh.
# Run it with Debian's /usr/bin/python3 (standard library only).
#
#   spawn   start a server in its own session, time its first good response
#   write   write version V of an app (as a reload does, but untimed)
#   get     one request; print the status and the body (a curl stand-in)
#   series  N reloads of a served app while polling it every 1 ms
#   rss     N reloads of a lodge-worker app without load; VmRSS at checkpoints
#
# The probe's requests: one new TCP connection per poll, "GET / HTTP/1.1"
# with "Connection: close", read to the end of the body (Content-Length; to
# EOF if there is none), then closed (uWSGI's --http11-socket ignores the
# client's "Connection: close").  A poll starts every 1 ms, or at once if
# the previous one took longer.  (Loopback TIME_WAIT sockets are reused by
# Linux's default net.ipv4.tcp_tw_reuse=2, so 1000 connections/s is fine.)
#
# A reload = the app's wsgi.py is replaced by a new version (written in a
# staging file outside the app folder, closed, then renamed over wsgi.py, so
# that no server can ever read a half-written file), whose response body
# carries "[v=N]"; then, for servers that need it, the reload file is
# touched or SIGHUP is sent.  The clock starts when the rename returns
# (so the touch/HUP is inside the measured time) and stops when the first
# response carrying [v=N] has been read completely.  Every version also
# grows the file by one byte, so that no server can run a stale .pyc (whose
# check is the source's size plus its mtime in whole seconds).
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

MARK = re.compile(rb"\[v=(\d+)\]")
POLL_S = 0.001


def now():
    return time.monotonic()


class Target:
    def __init__(self, url, timeout):
        u = urlsplit(url)
        self.addr = (u.hostname, u.port or 80)
        self.path = u.path or "/"
        self.req = (f"GET {self.path} HTTP/1.1\r\nHost: {u.hostname}:{self.addr[1]}\r\n"
                    "User-Agent: lodge-reload-probe\r\nConnection: close\r\n\r\n").encode()
        self.timeout = timeout

    @staticmethod
    def _length(raw):
        """Head + Content-Length, when the head is complete and has one."""
        end = raw.find(b"\r\n\r\n")
        if end < 0:
            return None
        m = re.search(rb"\r\ncontent-length:[ \t]*(\d+)", raw[:end + 2], re.I)
        return end + 4 + int(m.group(1)) if m else float("inf")

    def get(self):
        """One request.  Returns (error or None, status, body, seconds)."""
        t = now()
        s = None
        try:
            s = socket.create_connection(self.addr, timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(self.req)
            raw = b""
            need = None  # the whole response's length, once the head is in
            while need is None or len(raw) < need:
                b = s.recv(65536)
                if not b:
                    break
                raw += b
                if need is None:
                    need = self._length(raw)
        except ConnectionRefusedError:
            return "connect-refused", 0, b"", now() - t
        except (ConnectionResetError, BrokenPipeError):
            return "reset", 0, b"", now() - t
        except socket.timeout:
            return "timeout", 0, b"", now() - t
        except OSError as e:
            return "oserror-" + (os.strerror(e.errno) if e.errno else str(e)), 0, b"", now() - t
        finally:
            if s is not None:
                s.close()
        dt = now() - t
        if not raw:
            return "empty-reply", 0, b"", dt
        head, sep, body = raw.partition(b"\r\n\r\n")
        if not sep:
            return "truncated-head", 0, b"", dt
        lines = head.split(b"\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            return "bad-status-line", 0, b"", dt
        for h in lines[1:]:
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                try:
                    if len(body) < int(v.strip()):
                        return "truncated-body", status, body, dt
                except ValueError:
                    pass
        return None, status, body, dt


def version_of(body):
    m = MARK.search(body)
    return int(m.group(1)) if m else None


def render(template, v):
    # The marker, plus one byte per version (see the header).
    return template.replace("@V@", str(v)) + "#" * v + "\n"


def write_version(app_file, stage, template, v):
    """Writes version v beside the app (stage), then renames it over app_file."""
    with open(stage, "w") as f:
        f.write(render(template, v))
    os.chmod(stage, 0o644)
    os.rename(stage, app_file)


def parse_trigger(spec):
    if spec == "none":
        return "none", None
    kind, _, arg = spec.partition(":")
    if kind == "touch" and arg:
        return "touch", arg
    if kind == "hup" and arg.isdigit():
        return "hup", int(arg)
    raise SystemExit(f"reload_probe: bad --trigger '{spec}'")


def fire(trigger):
    kind, arg = trigger
    if kind == "touch":
        # A distinct mtime in whole seconds every time: uWSGI compares
        # st_mtime (seconds) with the one it saw last.
        try:
            st = os.stat(arg)
            sec = max(int(time.time()), int(st.st_mtime) + 1)
        except FileNotFoundError:
            sec = int(time.time())
            open(arg, "a").close()
        os.utime(arg, (sec, sec))
    elif kind == "hup":
        os.kill(arg, signal.SIGHUP)


def pct(vals, p):
    if not vals:
        return None
    s = sorted(vals)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Poller:
    """Polls every POLL_S; keeps the counts of the whole run."""

    def __init__(self, target):
        self.t = target
        self.next = now()
        self.requests = 0
        self.failures = {}
        self.fail_examples = []
        self.max_lat = 0.0
        self.flips = 0          # an older version answered after the newer one
        self.seen = -1          # newest version seen so far

    def poll(self):
        d = self.next - now()
        if d > 0:
            time.sleep(d)
        self.next = now() + POLL_S
        err, status, body, dt = self.t.get()
        t_done = now()
        self.requests += 1
        self.max_lat = max(self.max_lat, dt)
        v = None
        if err is None and status != 200:
            err = f"http-{status}"
        if err is None:
            v = version_of(body)
            if v is None:
                err = "unexpected-body"
        if err is not None:
            self.failures[err] = self.failures.get(err, 0) + 1
            if len(self.fail_examples) < 10:
                self.fail_examples.append({"error": err, "status": status,
                                           "body": body[:120].decode("utf-8", "replace"),
                                           "ms": round(dt * 1000, 3)})
            return None, t_done
        if v < self.seen:
            self.flips += 1
        self.seen = max(self.seen, v)
        return v, t_done

    def run_for(self, seconds):
        end = now() + seconds
        while now() < end:
            self.poll()

    def summary(self):
        return {"probe_requests": self.requests,
                "probe_failures": sum(self.failures.values()),
                "probe_failure_kinds": self.failures,
                "probe_failure_examples": self.fail_examples,
                "probe_max_ms": round(self.max_lat * 1000, 3),
                "flips": self.flips}


def wait_version(poller, v, t0, limit):
    """Polls until version v answers; returns ms since t0, or None."""
    while True:
        got, t_done = poller.poll()
        if got is not None and got >= v:
            return (t_done - t0) * 1000
        if t_done - t0 > limit:
            return None


def wait_ready_polling(poller, ctl, app, limit):
    """lodge: keeps probing until the old generation of app has ended and
    its spare interpreter for the next reload is ready (at most limit s),
    as they are when a person saves a file again."""
    end = now() + limit
    while now() < end:
        try:
            st = ctl_status(ctl)
        except (OSError, ValueError):
            return
        a = next((x for x in st["apps"] if x["name"] == app), None)
        if a is None or (a.get("retiring", 0) == 0 and a.get("spare", "ready") == "ready"):
            return
        poller.run_for(0.02)


def do_reload(args, trigger, v):
    write_version(args.file, args.stage, args.template_text, v)
    t0 = now()
    fire(trigger)
    return t0


def start_now(poller):
    poller.next = now()


def load_template(args):
    with open(args.template) as f:
        args.template_text = f.read()
    if "@V@" not in args.template_text:
        raise SystemExit("reload_probe: the template has no @V@ marker")


# ---------------------------------------------------------------- series --
def cmd_series(args):
    load_template(args)
    trigger = parse_trigger(args.trigger)
    p = Poller(Target(args.url, args.request_timeout))
    v, _ = p.poll()
    if v != args.start:
        raise SystemExit(f"reload_probe: the server answers version {v}, not {args.start} "
                         f"(failures: {p.failures})")
    lat, missed, in_row, aborted = [], 0, 0, None
    progress = []
    for i in range(1, args.count + 1):
        p.run_for(args.gap)
        if args.ctl:
            wait_ready_polling(p, args.ctl, args.app, args.ready_limit)
        ver = args.start + i
        t0 = do_reload(args, trigger, ver)
        start_now(p)
        ms = wait_version(p, ver, t0, args.reload_timeout)
        if ms is None:
            missed += 1
            in_row += 1
            progress.append("MISSED")
            if in_row >= args.max_missed_in_row and i < args.count:
                aborted = i
                missed += args.count - i
                progress.append(f"(stopped: {in_row} reloads in a row not seen within "
                                f"{args.reload_timeout:.0f} s; {args.count - i} more not tried)")
                break
        else:
            in_row = 0
            lat.append(ms)
            progress.append(f"{ms:.0f}")
        if args.verbose:
            print(f"    reload {i}/{args.count}: {progress[-1]} ms", file=sys.stderr, flush=True)
    p.run_for(args.gap)
    out = {"reloads": args.count, "ok": len(lat), "missed": missed, "aborted_after": aborted,
           "reload_timeout_s": args.reload_timeout, "latencies_ms": [round(x, 3) for x in lat],
           "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95),
           "min_ms": min(lat) if lat else None, "max_ms": max(lat) if lat else None,
           "final_version": p.seen}
    out.update(p.summary())
    with open(args.out, "w") as f:
        json.dump(out, f)
    print("  reload ms: " + " ".join(progress))


# ------------------------------------------------------------------- rss --
def ctl_status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(b"status\n")
        buf = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    finally:
        s.close()
    return json.loads(buf.decode())


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def settled_status(ctl, app, limit=15.0, spare_limit=3.0):
    """Waits until no old generation of the app is left, and (for up to
    spare_limit s more) until its spare interpreter for the next reload
    is ready, as it is when a person saves again; returns (status, the
    app's entry, problem or None)."""
    end = now() + limit
    spare_end = None
    st = a = None
    while True:
        try:
            st = ctl_status(ctl)
        except (OSError, ValueError) as e:
            return st, a, f"the control socket did not answer 'status' ({e})"
        a = next((x for x in st["apps"] if x["name"] == app), None)
        if a is not None and a.get("retiring", 0) == 0 and a.get("inflight", 0) == 0:
            if spare_end is None:
                spare_end = now() + spare_limit
            if a.get("spare", "ready") == "ready" or now() > spare_end:
                return st, a, None
        if now() > end:
            return st, a, f"an old version still retiring after {limit:.0f} s"
        time.sleep(0.005)


def cmd_rss(args):
    load_template(args)
    checkpoints = sorted({int(x) for x in args.checkpoints.split(",") if x} | {args.count})
    p = Poller(Target(args.url, args.request_timeout))
    v, _ = p.poll()
    if v != args.start:
        raise SystemExit(f"reload_probe: the server answers version {v}, not {args.start}")
    st, a, problem = settled_status(args.ctl, args.app)
    if st is None:
        raise SystemExit(f"reload_probe: {problem}")
    pid = st["pid"]
    pids = [pid]
    rss = {"0": vmrss_kb(pid)}
    problems = []
    lat = []
    missed = in_row = 0
    aborted = None
    last_app = a
    for i in range(1, args.count + 1):
        ver = args.start + i
        t0 = do_reload(args, ("none", None), ver)
        start_now(p)
        ms = wait_version(p, ver, t0, args.reload_timeout)
        if ms is None:
            missed += 1
            in_row += 1
        else:
            lat.append(ms)
            in_row = 0
        if i in checkpoints:
            time.sleep(0.05)
        # Let the old generation end before the next change (and before a
        # measurement), as a person saving a file would.
        st, a, problem = settled_status(args.ctl, args.app,
                                        limit=15.0 if not problems else 2.0)
        if problem and (not problems or problems[-1][1] != problem):
            problems.append((i, problem))
        if st is not None and problem is None:
            if st["pid"] != pids[-1]:
                pids.append(st["pid"])
            pid = st["pid"]
            last_app = a
        if i in checkpoints:
            try:
                rss[str(i)] = vmrss_kb(pid)
            except OSError:
                problems.append((i, f"process {pid} is gone"))
        if in_row >= args.max_missed_in_row and i < args.count:
            aborted = i
            missed += args.count - i
            break
    out = {"reloads": args.count, "ok": len(lat), "missed": missed, "aborted_after": aborted,
           "reload_timeout_s": args.reload_timeout, "rss_kb": rss, "pids": pids, "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95),
           "latencies_ms": [round(x, 3) for x in lat], "app_status": last_app,
           "problems": [f"after reload {i}: {m}" for i, m in problems]}
    out.update(p.summary())
    with open(args.out, "w") as f:
        json.dump(out, f)


# ----------------------------------------------------------------- spawn --
def cmd_spawn(args):
    cmd = args.cmd
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise SystemExit("reload_probe spawn: no command")
    target = Target(args.url, 2.0)
    log = open(args.log, "ab")
    t0 = now()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, cwd=args.cwd, close_fds=True)
    with open(args.pidfile + ".tmp", "w") as f:
        f.write(f"{proc.pid}\n")
    os.rename(args.pidfile + ".tmp", args.pidfile)
    expect = args.expect.encode()
    last = "no answer"
    while True:
        err, status, body, _ = target.get()
        t = now()
        if err is None and status == 200 and expect in body:
            print(json.dumps({"ready_ms": round((t - t0) * 1000, 3), "pid": proc.pid}))
            return 0
        last = err or f"HTTP {status}: {body[:200]!r}"
        if proc.poll() is not None:
            print(f"reload_probe spawn: the server exited (status {proc.returncode}) "
                  f"before it served; last answer: {last}", file=sys.stderr)
            return 1
        if t - t0 > args.timeout:
            print(f"reload_probe spawn: no good answer in {args.timeout} s; "
                  f"last answer: {last}", file=sys.stderr)
            return 1
        time.sleep(POLL_S)


def cmd_write(args):
    load_template(args)
    write_version(args.file, args.stage, args.template_text, args.version)
    return 0


def cmd_get(args):
    err, status, body, _ = Target(args.url, args.request_timeout).get()
    if err is not None:
        print(f"ERROR {err}")
        return 1
    sys.stdout.write(f"{status}\n")
    sys.stdout.write(body.decode("utf-8", "replace"))
    return 0


def main():
    ap = argparse.ArgumentParser(prog="reload_probe.py")
    sub = ap.add_subparsers(dest="cmd_name", required=True)

    def common_reload(sp):
        sp.add_argument("--url", required=True)
        sp.add_argument("--file", required=True, help="the app's wsgi.py")
        sp.add_argument("--stage", required=True, help="staging file, same filesystem, outside the app")
        sp.add_argument("--template", required=True, help="wsgi.py with @V@ where the version goes")
        sp.add_argument("--start", type=int, default=0, help="version served now")
        sp.add_argument("--count", type=int, required=True)
        sp.add_argument("--reload-timeout", type=float, default=15.0)
        sp.add_argument("--max-missed-in-row", type=int, default=2,
                        help="give up after this many reloads in a row not seen")
        sp.add_argument("--request-timeout", type=float, default=10.0)
        sp.add_argument("--out", required=True)

    sp = sub.add_parser("series")
    common_reload(sp)
    sp.add_argument("--trigger", default="none", help="none | touch:FILE | hup:PID")
    sp.add_argument("--ctl", default=None, help="lodge: the control socket; each reload waits "
                    "(probing) for the app's spare interpreter")
    sp.add_argument("--app", default=None, help="lodge: the app's name (with --ctl)")
    sp.add_argument("--ready-limit", type=float, default=5.0)
    sp.add_argument("--gap", type=float, default=1.0, help="s of polling between reloads")
    sp.add_argument("--verbose", action="store_true")
    sp.set_defaults(func=cmd_series)

    sp = sub.add_parser("rss")
    common_reload(sp)
    sp.add_argument("--ctl", required=True)
    sp.add_argument("--app", required=True)
    sp.add_argument("--checkpoints", default="1,10,50")
    sp.set_defaults(func=cmd_rss)

    sp = sub.add_parser("spawn")
    sp.add_argument("--url", required=True)
    sp.add_argument("--expect", required=True)
    sp.add_argument("--log", required=True)
    sp.add_argument("--pidfile", required=True)
    sp.add_argument("--cwd", default=None)
    sp.add_argument("--timeout", type=float, default=60.0)
    sp.add_argument("cmd", nargs=argparse.REMAINDER)
    sp.set_defaults(func=cmd_spawn)

    sp = sub.add_parser("write")
    sp.add_argument("--file", required=True)
    sp.add_argument("--stage", required=True)
    sp.add_argument("--template", required=True)
    sp.add_argument("--version", type=int, default=0)
    sp.set_defaults(func=cmd_write)

    sp = sub.add_parser("get")
    sp.add_argument("--url", required=True)
    sp.add_argument("--request-timeout", type=float, default=5.0)
    sp.set_defaults(func=cmd_get)

    args = ap.parse_args()
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
