"""The Apache files lodge ships (packaging/apache/), in Debian's real Apache.

Apache gets a config of its own in a temp dir that Includes
packaging/apache/lodge.conf (with LODGE_RUN_DIR defined first) and the
three site examples, rewritten only where a test must differ from a real
host: ports (*:80, *:443), the user socket's folder, the certificate.
Stand-in backends (Python threads on Unix sockets) take lodge's place and
record what Apache sends them: the request head (HTTP) or the vars (uwsgi),
and how many connections were opened.  What is checked is what
docs/apache.md promises: the route header is Apache's and never the
visitor's, X-Forwarded-Proto is Apache's, the shared fronts get a new
connection per request, the user socket a pooled one, uwsgi carries the
route and the mount point, and a site of the same Apache with the common
"|http://localhost/" target is not sent to lodge.

Needs /usr/sbin/apache2 (scripts/install-deps.sh --bench); the TLS case
also needs openssl and mod_ssl.  Runs as root or not (as root Apache
serves as www-data, and the temp dir is made reachable for it).
No lodge binary is needed.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PKG = os.path.join(REPO, "packaging", "apache")
APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
TIMEOUT = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend:
    """A stand-in for a lodge socket: accepts on a Unix socket, answers each
    request, and records what it got.  kind "http": answers with the
    request head as body; keeps the connection open when keep_alive (a
    user's worker) or closes it (the shared front).  kind "uwsgi": answers
    with the vars as JSON and closes."""

    def __init__(self, path, kind, keep_alive=False):
        self.path, self.kind, self.keep_alive = path, kind, keep_alive
        self.accepts = 0
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepts += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(TIMEOUT)
        buf = b""
        try:
            while True:
                got = self._one(c, buf)
                if got is None:
                    return
                buf, reply, close = got
                c.sendall(reply)
                if close:
                    return
        except OSError:
            return
        finally:
            c.close()

    def _read_until(self, c, buf, done):
        while not done(buf):
            data = c.recv(65536)
            if not data:
                return None
            buf += data
        return buf

    def _one(self, c, buf):
        if self.kind == "uwsgi":
            buf = self._read_until(c, buf, lambda b: len(b) >= 4 and
                                   len(b) >= 4 + int.from_bytes(b[1:3], "little"))
            if buf is None:
                return None
            size = int.from_bytes(buf[1:3], "little")
            data, i, env = buf[4:4 + size], 0, {}
            while i < len(data):
                kl = int.from_bytes(data[i:i + 2], "little")
                key = data[i + 2:i + 2 + kl].decode("latin-1")
                i += 2 + kl
                vl = int.from_bytes(data[i:i + 2], "little")
                env[key] = data[i + 2:i + 2 + vl].decode("latin-1")
                i += 2 + vl
            with self.lock:
                self.requests.append(env)
            body = json.dumps(env).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            return b"", head + b"Content-Length: %d\r\n\r\n" % len(body) + body, True
        buf = self._read_until(c, buf, lambda b: b"\r\n\r\n" in b)
        if buf is None:
            return None
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        with self.lock:
            self.requests.append({"line": lines[0], "headers": headers})
        body = head + b"\r\n"
        conn = b"keep-alive" if self.keep_alive else b"close"
        reply = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                 b"Connection: " + conn + b"\r\nContent-Length: %d\r\n\r\n"
                 % len(body) + body)
        return rest, reply, not self.keep_alive

    def last(self):
        with self.lock:
            return self.requests[-1]


def header_values(req, name):
    return [v for n, v in req["headers"] if n == name.lower()]


@unittest.skipUnless(os.path.exists(APACHE), "apache2 is not installed "
                     "(scripts/install-deps.sh --bench)")
class PackagedApacheConfTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="lodge-apache-conf-")
        cls.apache = None
        cls.backends = {}
        try:
            cls._set_up()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _set_up(cls):
        t = cls.tmp
        # Apache's children (www-data when we are root) reach the sockets.
        os.chmod(t, 0o755)
        for d in ("front", "users", "run"):
            os.makedirs(os.path.join(t, d))
        cls.backends = {
            "http": Backend(os.path.join(t, "front", "http.sock"), "http"),
            "uwsgi": Backend(os.path.join(t, "front", "uwsgi.sock"), "uwsgi"),
            "alice": Backend(os.path.join(t, "users", "alice.sock"), "http",
                             keep_alive=True),
            "other": Backend(os.path.join(t, "run", "other.sock"), "http"),
        }
        cls.port = free_port()
        cls.has_tls = (shutil.which("openssl") is not None and
                       os.path.exists(os.path.join(MODULES, "mod_ssl.so")))
        cls.tls_port = free_port() if cls.has_tls else None
        if cls.has_tls:
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-days", "2", "-subj", "/CN=blog.example.com",
                 "-keyout", os.path.join(t, "key.pem"),
                 "-out", os.path.join(t, "cert.pem")],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sites = []
        for name in ("lodge-site-http.conf", "lodge-site-uwsgi.conf",
                     "lodge-site-user.conf"):
            with open(os.path.join(PKG, name)) as f:
                text = f.read()
            text = text.replace("*:80", "127.0.0.1:%d" % cls.port)
            text = text.replace("*:443", "127.0.0.1:%d" % (cls.tls_port or 1))
            text = text.replace("/run/lodge/users/", os.path.join(t, "users") + "/")
            text = text.replace("/etc/ssl/certs/blog.example.com.pem",
                                os.path.join(t, "cert.pem"))
            text = text.replace("/etc/ssl/private/blog.example.com.key",
                                os.path.join(t, "key.pem"))
            path = os.path.join(t, name)
            with open(path, "w") as f:
                f.write(text)
            sites.append(path)
        mods = ["mpm_event", "authz_core", "proxy", "proxy_http",
                "proxy_uwsgi", "headers", "env"]
        if cls.has_tls:
            mods.append("ssl")
        conf = [
            'ServerRoot "%s"' % t,
            "ServerName localhost",
            'PidFile "%s/httpd.pid"' % t,
            'DefaultRuntimeDir "%s"' % t,
            'Mutex file:%s default' % t,
            'ErrorLog "%s/error.log"' % t,
            "LogLevel warn",
        ] + ["LoadModule %s_module %s/mod_%s.so" % (m, MODULES, m) for m in mods]
        conf += [
            "User www-data", "Group www-data",
            "StartServers 1", "ServerLimit 1", "ThreadsPerChild 16",
            "MaxRequestWorkers 16",
            "Listen 127.0.0.1:%d" % cls.port,
        ]
        if cls.has_tls:
            conf += ["Listen 127.0.0.1:%d https" % cls.tls_port]
        conf += [
            "Define LODGE_RUN_DIR %s/front" % t,
            'Include "%s/lodge.conf"' % PKG,
        ] + ['Include "%s"' % s for s in sites] + [
            # Another site of the same Apache, as many are written: its own
            # Unix socket behind the usual "localhost" name.
            "<VirtualHost 127.0.0.1:%d>" % cls.port,
            "    ServerName other.example.com",
            '    ProxyPass / "unix:%s/run/other.sock|http://localhost/"' % t,
            "</VirtualHost>",
            # A lodge site that forgot its RequestHeader line.
            "<VirtualHost 127.0.0.1:%d>" % cls.port,
            "    ServerName forgot.example.com",
            '    ProxyPass / "${LODGE_HTTP}"',
            "</VirtualHost>",
        ]
        cls.conf = os.path.join(t, "httpd.conf")
        with open(cls.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        check = subprocess.run([APACHE, "-f", cls.conf, "-t"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
        if check.returncode != 0:
            raise AssertionError("apache2 -t: " + check.stdout)
        cls.apache = subprocess.Popen(
            [APACHE, "-f", cls.conf, "-DFOREGROUND"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.port), 1).close()
                break
            except OSError:
                if cls.apache.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("Apache did not start:\n" + cls.error_log())
                time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        if cls.apache is not None and cls.apache.poll() is None:
            os.killpg(cls.apache.pid, signal.SIGTERM)
            try:
                cls.apache.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(cls.apache.pid, signal.SIGKILL)
                cls.apache.wait()
        for b in cls.backends.values():
            b.close()
        if not os.environ.get("LODGE_TEST_KEEP"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def error_log(cls):
        try:
            with open(os.path.join(cls.tmp, "error.log")) as f:
                return f.read()
        except OSError:
            return ""

    def get(self, host, path="/", headers=None, conn=None, tls=False):
        own = conn is None
        if own:
            if tls:
                import ssl
                ctx = ssl._create_unverified_context()
                conn = http.client.HTTPSConnection("127.0.0.1", self.tls_port,
                                                   timeout=TIMEOUT, context=ctx)
            else:
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=TIMEOUT)
        h = {"Host": host}
        h.update(headers or {})
        conn.request("GET", path, headers=h)
        resp = conn.getresponse()
        body = resp.read()
        if own:
            conn.close()
        self.assertEqual(resp.status, 200, "%s %s: %d %r\n%s" % (
            host, path, resp.status, body[:300], self.error_log()[-2000:]))
        return body

    # -- the shared HTTP front ------------------------------------------
    def test_http_route_is_apaches_not_the_visitors(self):
        b = self.backends["http"]
        self.get("blog.example.com", "/post/1?x=1",
                 {"X-Lodge-App": "mallory/steal",
                  "X-Forwarded-Proto": "https"})
        req = b.last()
        self.assertEqual(req["line"], "GET /post/1?x=1 HTTP/1.1")
        self.assertEqual(header_values(req, "X-Lodge-App"), ["alice/blog"])
        # The visitor claimed https over plain HTTP: replaced, not appended.
        self.assertEqual(header_values(req, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header_values(req, "Host"), ["blog.example.com"])
        # mod_proxy_http appends the visitor's address: the last one is it.
        xff = header_values(req, "X-Forwarded-For")
        self.assertEqual(len(xff), 1)
        self.assertEqual(xff[0].split(",")[-1].strip(), "127.0.0.1")

    def test_http_front_gets_a_new_connection_per_request(self):
        b = self.backends["http"]
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=TIMEOUT)
        before = (b.accepts, len(b.requests))
        for _ in range(5):
            self.get("blog.example.com", conn=conn)
        conn.close()
        self.assertEqual(len(b.requests) - before[1], 5)
        self.assertEqual(b.accepts - before[0], 5)
        # disablereuse=On: Apache itself asks for the close.
        self.assertEqual(header_values(b.last(), "Connection"), ["close"])

    def test_site_without_route_line_sends_no_route(self):
        b = self.backends["http"]
        self.get("forgot.example.com", headers={"X-Lodge-App": "mallory/steal"})
        self.assertEqual(header_values(b.last(), "X-Lodge-App"), [])

    def test_other_sites_localhost_socket_is_not_lodges(self):
        other, front = self.backends["other"], self.backends["http"]
        n_other, n_front = len(other.requests), len(front.requests)
        self.get("other.example.com", "/mine")
        self.assertEqual(len(other.requests), n_other + 1)
        self.assertEqual(len(front.requests), n_front)
        self.assertEqual(other.last()["line"], "GET /mine HTTP/1.1")

    def test_https_site_says_https(self):
        if not self.has_tls:
            self.skipTest("no openssl or mod_ssl")
        b = self.backends["http"]
        self.get("blog.example.com", "/", {"X-Forwarded-Proto": "http"},
                 tls=True)
        req = b.last()
        self.assertEqual(header_values(req, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header_values(req, "X-Lodge-App"), ["alice/blog"])

    # -- the shared uwsgi front -----------------------------------------
    def test_uwsgi_carries_route_and_request(self):
        b = self.backends["uwsgi"]
        before = b.accepts
        env = json.loads(self.get("shop.example.com", "/cart/a%20b?q=1",
                                  {"X-Lodge-App": "mallory/steal"}))
        self.assertEqual(env["HTTP_X_LODGE_APP"], "bob/shop")
        self.assertEqual(env["LODGE_APP"], "bob/shop")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["PATH_INFO"], "/cart/a b")
        self.assertEqual(env["QUERY_STRING"], "q=1")
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["SERVER_NAME"], "shop.example.com")
        self.assertNotIn("HTTPS", env)
        self.assertEqual(b.accepts, before + 1)

    # -- a user's own socket ----------------------------------------------
    def test_user_socket_is_pooled(self):
        b = self.backends["alice"]
        before = (b.accepts, len(b.requests))
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=TIMEOUT)
        for _ in range(10):
            self.get("alice.example.com", conn=conn)
        conn.close()
        self.assertEqual(len(b.requests) - before[1], 10)
        # One client connection, requests one after another: Apache keeps
        # reusing its backend connection (enablereuse=On).
        self.assertLessEqual(b.accepts - before[0], 2)
        req = b.last()
        self.assertEqual(header_values(req, "X-Lodge-App"), ["alice/blog"])
        self.assertEqual(header_values(req, "Host"), ["alice.example.com"])
        self.assertNotIn("close", header_values(req, "Connection"))


if __name__ == "__main__":
    unittest.main()
