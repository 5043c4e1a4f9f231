"""lodgetest: helpers for lodge-worker's integration tests.

Standard library only (Debian's /usr/bin/python3).  What is here:

  Worker       starts lodge-worker on a fresh temp apps dir (copies of
               selected folders of apps/), a free TCP port, optionally a
               Unix socket; waits until it answers; stops it and removes
               the temp dir.  Reads the apps' log files.
  Conn         one raw client connection (TCP or Unix): send bytes, read
               whole responses (Content-Length, chunked, until close),
               notice when the worker closes the connection.
  Response     a parsed response: status, headers, body, whether it was
               complete, the chunk sizes of a chunked body.
  build_request  the bytes of a request, header by header as given.

Every worker runs in a process group of its own (start_new_session): its
app processes and a successor that replaces it (a child that outlives
it) are in that group, and kill/stop/cleanup end the whole group.

The environment variable LODGE_WORKER names the binary under test.
LODGE_TEST_KEEP=1 keeps the temp dirs (their paths go to stderr).
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS_SRC = os.path.join(HERE, "apps")
PYTHON = "/usr/bin/python3"

# Generous: the suite runs on a noisy 2-core machine, maybe under ASan.
TIMEOUT = float(os.environ.get("LODGE_TEST_TIMEOUT", "30"))
START_TIMEOUT = float(os.environ.get("LODGE_TEST_START_TIMEOUT", "60"))

# "2025-11-25T15:35:01.123Z " at the start of every app log line.
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")

# The app name used by the readiness probe: no app has this name, so the
# probe gets a 404 from the worker itself and never touches an app.
PROBE_APP = "lodgetest/__lodgetest_no_such_app__"


class WorkerError(Exception):
    """The worker could not be started or died."""


def worker_binary():
    path = os.environ.get("LODGE_WORKER")
    if not path:
        raise WorkerError("set LODGE_WORKER to the lodge-worker binary")
    # (a concurrent rebuild may be relinking it right now: wait a little)
    if not wait_for(lambda: os.access(path, os.X_OK), 30, 0.2):
        raise WorkerError("LODGE_WORKER=%s is not an executable file" % path)
    return path


def free_port():
    """A TCP port that was free a moment ago (the worker binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=TIMEOUT, interval=0.05):
    """Polls predicate() until it returns a true value (returned) or the
    timeout passes (returns the last false value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------
# Requests and responses


def build_request(method="GET", target="/", headers=(), body=b"",
                  version="HTTP/1.1", host="127.0.0.1", app=None,
                  content_length=None):
    """The bytes of a request.  headers: (name, value) pairs sent as given
    (str or bytes).  host=None sends no Host header; app adds X-Lodge-App.
    content_length: True adds Content-Length for the body (the default when
    there is a body and headers have no Content-Length/Transfer-Encoding)."""
    def b(x):
        return x if isinstance(x, bytes) else x.encode("latin-1")

    lines = [b(method) + b" " + b(target) + b" " + b(version)]
    if host is not None:
        lines.append(b"Host: " + b(host))
    if app is not None:
        lines.append(b"X-Lodge-App: " + b(app))
    names = set()
    for name, value in headers:
        names.add(b(name).lower())
        lines.append(b(name) + b": " + b(value))
    if content_length is None:
        content_length = bool(body) and not (
            names & {b"content-length", b"transfer-encoding"})
    if content_length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + b(body)


def chunked(parts, trailers=(), ext=None):
    """A chunked body from byte strings (empty ones are skipped: an empty
    chunk would end the body)."""
    out = []
    for p in parts:
        if p:
            size = b"%x" % len(p)
            if ext:
                size += b";" + ext
            out.append(size + b"\r\n" + p + b"\r\n")
    out.append(b"0\r\n")
    for name, value in trailers:
        out.append(name.encode() + b": " + value.encode() + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []       # [(name, value)] as received (str, latin-1)
        self.head_raw = b""     # the head as received, final CRLF CRLF included
        self.body = b""
        self.complete = False   # body framing fully received
        self.chunked = False
        self.chunk_sizes = []   # sizes of the data chunks, then the final 0
        self.trailers = []
        self.framing_error = None  # a malformed chunked stream: why

    def header(self, name, default=None):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return default

    def header_list(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_token(self, name, token):
        """True if a comma-separated header (Connection, ...) has token."""
        token = token.lower()
        for v in self.header_list(name):
            if token in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        body = self.body if len(self.body) <= 300 else (
            self.body[:300] + b"...(%d bytes)" % len(self.body))
        return "<Response %s %s %r complete=%s body=%r>" % (
            self.status, self.reason, self.headers, self.complete, body)


class ConnectionClosed(Exception):
    """The peer closed the connection before a (complete) response head."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg + (": got %r" % partial[:500] if partial else ""))
        self.partial = partial


class Conn:
    """One client connection.  target: (host, port) or a Unix socket path."""

    def __init__(self, target, timeout=TIMEOUT):
        if isinstance(target, str):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        try:
            self.sock.connect(target)
        except BaseException:
            self.sock.close()
            raise
        self.buf = b""
        self.eof = False
        self.reset = False
        self.received = b""  # every byte received, for "never on the wire"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_quietly(self, data):
        """Sends what the peer takes; returns False if it closed/reset."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def _fill(self):
        """Receives more bytes into buf; returns False at EOF."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b""
            self.reset = True
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.received += data
        return True

    def _take(self, n):
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_line(self, limit=65536):
        """A CRLF-terminated line without its CRLF, or None at EOF."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = self._take(i + 1)
                return line[:-2] if line.endswith(b"\r\n") else line[:-1]
            if len(self.buf) > limit or not self._fill():
                return None

    def read_response(self, method="GET"):
        """Reads one whole response (a 1xx one too: it has no body).
        Raises ConnectionClosed if the head does not arrive completely,
        socket.timeout if nothing comes in time."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(self.buf) > 1 << 20:
                raise ConnectionClosed("response head too long", self.buf)
            if not self._fill():
                raise ConnectionClosed("connection closed before a complete "
                                       "response head", self.buf)
        resp = Response()
        resp.head_raw = self._take(i + 4)
        lines = resp.head_raw[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("bad status line %r" % lines[0])
        resp.version = parts[0]
        resp.status = int(parts[1])
        resp.reason = parts[2] if len(parts) > 2 else ""
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise AssertionError("bad response header line %r" % line)
            resp.headers.append((name, value.strip(" \t")))
        self._read_body(resp, method)
        return resp

    def _read_body(self, resp, method):
        if method == "HEAD" or 100 <= resp.status < 200 or resp.status in (204, 304):
            resp.complete = True
            return
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te is not None and te.split(",")[-1].strip().lower() == "chunked":
            resp.chunked = True
            self._read_chunked(resp)
        elif te is None and cl is not None:
            n = int(cl)
            while len(self.buf) < n and self._fill():
                pass
            resp.body = self._take(n)
            resp.complete = len(resp.body) == n
        else:
            while self._fill():
                pass
            resp.body = self._take(len(self.buf))
            resp.complete = True

    def _read_chunked(self, resp):
        body = []
        while True:
            line = self._read_line(4096)
            if line is None:
                break  # truncated: complete stays False
            size_s = line.split(b";", 1)[0].strip()
            try:
                size = int(size_s, 16)
                if not re.fullmatch(rb"[0-9a-fA-F]+", size_s):
                    raise ValueError
            except ValueError:
                resp.framing_error = "bad chunk size line %r" % line
                break
            resp.chunk_sizes.append(size)
            if size == 0:
                while True:
                    t = self._read_line(8192)
                    if t is None:
                        resp.framing_error = "EOF in the trailers"
                        break
                    if t == b"":
                        resp.complete = True
                        break
                    name, _, value = t.decode("latin-1").partition(":")
                    resp.trailers.append((name, value.strip()))
                break
            while len(self.buf) < size + 2 and self._fill():
                pass
            if len(self.buf) < size + 2:
                body.append(self._take(size))
                break  # truncated inside a chunk
            data = self._take(size + 2)
            if data[-2:] != b"\r\n":
                resp.framing_error = "chunk of %d bytes not followed by CRLF" % size
                body.append(data[:size])
                break
            body.append(data[:size])
        resp.body = b"".join(body)

    def request(self, method="GET", target="/", **kw):
        """Sends build_request(method, target, **kw); reads the response."""
        self.send(build_request(method, target, **kw))
        return self.read_response(method)

    def wait_closed(self, timeout=10):
        """True if the peer closes (EOF or reset) within timeout with no
        further byte; False if bytes arrive (left in self.buf) or time
        runs out with the connection still open."""
        if self.buf:
            return False
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            return not self._fill()
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def read_until_close(self, timeout=None):
        """Everything until EOF (buffered bytes included)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while self._fill():
            pass
        return self._take(len(self.buf))


# --------------------------------------------------------------------------
# The worker


class Worker:
    """A lodge-worker process on a temp apps dir.

    apps: names of folders under apps/ to copy.  prepare(worker) runs after
    the copy and before the start (to create a venv, write a lodge.ini...).
    """

    def __init__(self, apps, threads=None, max_body=None, max_head=None,
                 unix=False, extra_args=(), prepare=None, control=False):
        self.apps = list(apps)
        self.control = control  # True: --control TMP/control.sock
        self.threads = threads
        self.max_body = max_body
        self.max_head = max_head
        self.unix = unix
        self.extra_args = list(extra_args)
        self.prepare = prepare
        self.tmp = None
        self.proc = None
        self.port = None
        self.unix_path = None
        self.launches = 0
        self.pgid = None

    # -- paths

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    @property
    def apps_dir(self):
        return self.path("apps")

    @property
    def log_dir(self):
        return self.path("logs")

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    @property
    def control_path(self):
        return self.path("control.sock") if self.control else None

    def write_file(self, relpath, text):
        """Writes a file under the temp dir (apps/NAME/lodge.ini ...)."""
        p = self.path(relpath)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        return p

    # -- life cycle

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="lodgetest-")
        if os.environ.get("LODGE_TEST_KEEP"):
            sys.stderr.write("lodgetest: temp dir %s\n" % self.tmp)
        try:
            os.mkdir(self.apps_dir)
            os.mkdir(self.log_dir)
            for name in self.apps:
                shutil.copytree(os.path.join(APPS_SRC, name),
                                os.path.join(self.apps_dir, name),
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            if self.prepare:
                self.prepare(self)
            self.launch()
        except BaseException:
            self.cleanup()
            raise
        return self

    def launch(self):
        """Starts the process (again) on the same dirs and waits until it
        answers.  Retries with another port if the port was taken."""
        binary = worker_binary()
        last = None
        for attempt in range(3):
            self.launches += 1
            self.port = free_port()
            args = [binary, "--apps", self.apps_dir,
                    "--listen", "tcp:127.0.0.1:%d" % self.port,
                    "--log-dir", self.log_dir]
            if self.unix:
                self.unix_path = self.path("worker-%d.sock" % self.launches)
                args += ["--listen", "unix:" + self.unix_path]
            if self.threads is not None:
                args += ["--threads", str(self.threads)]
            if self.max_body is not None:
                args += ["--max-body", str(self.max_body)]
            if self.max_head is not None:
                args += ["--max-head", str(self.max_head)]
            if self.control:
                args += ["--control", self.control_path]
            args += self.extra_args
            env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            self.stderr_path = self.path("worker-stderr-%d.txt" % self.launches)
            with open(self.stderr_path, "wb") as err:
                # A group of its own: its app processes and successors
                # (which outlive it) end with it (kill_group).
                self.proc = subprocess.Popen(
                    args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                    env=env, cwd=self.tmp, start_new_session=True)
            self.pgid = self.proc.pid
            self.args = args
            try:
                self._wait_ready()
                return
            except WorkerError as e:
                last = e
                self.kill()
                if "in use" not in self.stderr_text().lower():
                    raise
        raise last

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise WorkerError("lodge-worker exited at start-up with %s; "
                                  "command %s; stderr:\n%s" % (
                                      self.describe_exit(), self.args,
                                      self.stderr_text()[-4000:]))
            try:
                with Conn(self.addr, timeout=5) as c:
                    c.request("GET", "/", app=PROBE_APP,
                              headers=[("Connection", "close")])
                if self.unix_path:
                    with Conn(self.unix_path, timeout=5) as c:
                        c.request("GET", "/", app=PROBE_APP,
                                  headers=[("Connection", "close")])
                return
            except (OSError, ConnectionClosed):
                pass
            if time.monotonic() > deadline:
                raise WorkerError("lodge-worker did not answer within %ds; "
                                  "stderr:\n%s" % (START_TIMEOUT,
                                                   self.stderr_text()[-4000:]))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def describe_exit(self):
        rc = self.proc.returncode if self.proc else None
        if rc is None:
            return "still running"
        if rc < 0:
            try:
                return "signal %s" % signal.Signals(-rc).name
            except ValueError:
                return "signal %d" % -rc
        return "exit status %d" % rc

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def group_pids(self):
        """The live (not zombie) processes of the worker's process group:
        the worker, its app processes, a successor that replaced it."""
        out = []
        if self.pgid is None:
            return out
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name, "rb") as f:
                    stat = f.read().decode("latin-1")
            except OSError:
                continue
            # pid (comm) state ppid pgrp ...; comm may hold spaces
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 2 and fields[0] not in ("Z", "X") and \
                    int(fields[2]) == self.pgid:
                out.append(int(name))
        return sorted(out)

    def kill_group(self, sig=None):
        """Sends sig (default SIGKILL) to the whole process group."""
        if sig is None:
            sig = signal.SIGKILL
        if self.pgid is None:
            return
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _wait_group_gone(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None:
                self.proc.poll()  # reaps our own child
            if not self.group_pids() or time.monotonic() >= deadline:
                return not self.group_pids()
            time.sleep(0.02)

    def kill(self):
        """SIGKILL to the whole process group."""
        if self.proc is None:
            return
        self.kill_group(signal.SIGKILL)
        self.proc.wait()
        self._wait_group_gone(10)

    def stop(self, timeout=10):
        """SIGTERM (to the process we started, or to the group if that one
        is gone, replaced by a successor), then SIGKILL to the group after
        timeout; returns the exit code of the process we started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif self.group_pids():
            self.kill_group(signal.SIGTERM)
        # Whatever is left of the group (app processes, successors)
        # goes too.
        if not self._wait_group_gone(timeout):
            self.kill_group(signal.SIGKILL)
            self._wait_group_gone(10)
        return self.proc.returncode

    # -- the control socket (control=True)

    def control_command(self, line, timeout=TIMEOUT):
        """Sends one command line to the control socket; returns the
        answer (str).  Retries connecting for a few seconds (a successor
        takes the socket over by binding it anew)."""
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(self.control_path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() >= deadline:
                    raise WorkerError("control socket %s: %s"
                                      % (self.control_path, e))
                time.sleep(0.05)
        with s:
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                out += data
        return out.decode("utf-8", "replace")

    def status(self, timeout=TIMEOUT):
        """The control socket's status, parsed."""
        text = self.control_command("status", timeout)
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError("status is not JSON: %r" % text[:2000])

    def app_status(self, app, timeout=TIMEOUT):
        for a in self.status(timeout)["apps"]:
            if a["name"] == app:
                return a
        raise AssertionError("no app %r in the status" % app)

    def restart(self):
        self.kill()
        self.launch()

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self.tmp and not os.environ.get("LODGE_TEST_KEEP"):
                shutil.rmtree(self.tmp, ignore_errors=True)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    # -- requests

    def conn(self, timeout=TIMEOUT):
        return Conn(self.addr, timeout)

    def request(self, method="GET", target="/", app=None, headers=(),
                body=b"", **kw):
        """One request on a new connection (with Connection: close)."""
        with self.conn() as c:
            return c.request(method, target, app=app, body=body,
                             headers=list(headers) + [("Connection", "close")],
                             **kw)

    def http(self, timeout=TIMEOUT):
        return http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)

    # -- app logs

    def log_path(self, app):
        return os.path.join(self.log_dir, app + ".log")

    def log_size(self, app):
        try:
            return os.path.getsize(self.log_path(app))
        except OSError:
            return 0

    def read_log(self, app, since=0):
        try:
            with open(self.log_path(app), "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, app, pattern, since=0, timeout=TIMEOUT):
        """Waits until the app's log (from byte offset since) matches
        pattern (a regex, searched in MULTILINE mode); returns the match.
        Fails with the log's content if it doesn't happen in time."""
        rx = re.compile(pattern, re.M)
        m = wait_for(lambda: rx.search(self.read_log(app, since)), timeout)
        if not m:
            raise AssertionError(
                "%s.log never matched %r within %ds; it has:\n%s\n"
                "(worker stderr:\n%s)" % (app, pattern, timeout,
                                          self.read_log(app, since)[-3000:] or "(empty)",
                                          self.stderr_text()[-2000:]))
        return m

    def log_sizes(self):
        """{app: size in bytes} of the log files that exist now."""
        out = {}
        if self.tmp and os.path.isdir(self.log_dir):
            for name in os.listdir(self.log_dir):
                if name.endswith(".log"):
                    out[name[:-4]] = self.log_size(name[:-4])
        return out

    def all_logs(self):
        out = {}
        if self.tmp and os.path.isdir(self.log_dir):
            for name in os.listdir(self.log_dir):
                if name.endswith(".log"):
                    out[name[:-4]] = self.read_log(name[:-4])
        return out


def make_venv(path, modules):
    """Creates a venv (no pip) at path with modules {name: source} in its
    site-packages; returns the site-packages dir."""
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", path], check=True,
                   timeout=180, stdout=subprocess.DEVNULL)
    site = os.path.join(path, "lib", "python%d.%d" % sys.version_info[:2],
                        "site-packages")
    for name, source in modules.items():
        with open(os.path.join(site, name + ".py"), "w") as f:
            f.write(source)
    return site
