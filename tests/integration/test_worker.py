"""Integration tests of lodge-worker (standalone mode): the real binary on
real sockets, hosting the small apps under apps/.

Run:  LODGE_WORKER=/path/to/lodge-worker /usr/bin/python3 -m unittest -v test_worker

Each TestCase class shares one worker (started in setUpClass on a fresh
temp dir, killed and removed afterwards).  If a test kills the worker, that
test fails and the worker is restarted for the next one.  Every test also
fails if wsgiref.validate reports an application iterator that the server
never closed.
"""

import calendar
import hashlib
import json
import os
import random
import signal
import threading
import time
import unittest
import urllib.parse

from lodgetest import (TIMEOUT, TIMESTAMP_RE, Conn, ConnectionClosed, Worker,
                       build_request, chunked, make_venv, wait_for)

MiB = 1 << 20
UNCLOSED = "Iterator garbage collected without being closed"


class Background(threading.Thread):
    """Runs fn() in a thread; outcome() returns its result or re-raises."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.result = self.error = None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:
            self.error = e

    def outcome(self, timeout=TIMEOUT):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("background request still running after %ds"
                                 % timeout)
        if self.error is not None:
            raise self.error
        return self.result


class WorkerCase(unittest.TestCase):
    APPS = ()
    OPTIONS = {}

    @classmethod
    def prepare(cls, worker):
        """Runs after the apps are copied, before the worker starts."""

    @classmethod
    def setUpClass(cls):
        cls.worker = Worker(cls.APPS, prepare=cls.prepare, **cls.OPTIONS)
        cls.addClassCleanup(cls.worker.cleanup)
        cls.worker.start()

    def setUp(self):
        if not self.worker.alive():
            self.worker.restart()
        self.log_start = self.worker.log_sizes()

    def tearDown(self):
        w = self.worker
        if not w.alive():
            exit_ = w.describe_exit()
            stderr = w.stderr_text()[-3000:]
            w.restart()
            self.fail("lodge-worker died during this test (%s); stderr:\n%s"
                      % (exit_, stderr))
        for app in w.log_sizes():
            new = w.read_log(app, self.log_start.get(app, 0))
            if UNCLOSED in new:
                self.fail("the server never called close() on %s's response "
                          "iterable (wsgiref.validate says %r); log:\n%s"
                          % (app, UNCLOSED, new[-2000:]))

    # -- helpers

    def get(self, target="/", app=None, method="GET", **kw):
        return self.worker.request(method, target, app=app, **kw)

    def assertStatus(self, resp, status, app=None):
        if resp.status != status:
            log = self.worker.read_log(app)[-3000:] if app else ""
            self.fail("expected %s, got %r%s" % (
                status, resp, "\n%s.log:\n%s" % (app, log) if app else ""))

    def assertOK(self, resp, body=None, app=None):
        self.assertStatus(resp, 200, app)
        self.assertTrue(resp.complete, "incomplete response %r" % resp)
        if body is not None:
            self.assertEqual(resp.body, body)

    def assertClosed(self, conn, what="the worker"):
        self.assertTrue(conn.wait_closed(10),
                        "%s did not close the connection (got %r)"
                        % (what, conn.buf[:300]))

    def assertRejected(self, raw, status=400, statuses=None):
        """Sends raw; expects one error response, then the connection
        closed without anything more (no smuggled second response)."""
        with self.worker.conn() as c:
            c.send_quietly(raw)
            try:
                resp = c.read_response()
            except ConnectionClosed as e:
                self.fail("no response to %r: %s" % (raw[:200], e))
            # first the safety property: nothing behind the bad head is
            # answered, the connection ends; then the status
            self.assertTrue(c.wait_closed(10),
                            "after %s to %r the connection stayed open or got "
                            "more bytes: %r" % (resp.status, raw[:200], c.buf[:300]))
            if statuses is None:
                statuses = (status,)
            self.assertIn(resp.status, statuses,
                          "request %r got %r (connection closed, nothing else "
                          "answered)" % (raw[:300], resp))
        return resp

    def log_since(self, app):
        return self.worker.read_log(app, self.log_start.get(app, 0))

    def wait_new_log(self, app, pattern, timeout=TIMEOUT):
        return self.worker.wait_log(app, pattern, since=self.log_start.get(app, 0),
                                    timeout=timeout)


# ==========================================================================


class TestHello(WorkerCase):
    """One app (so it is the default), TCP and Unix listeners: the basics
    of HTTP/1.x connection handling."""

    APPS = ["hello"]
    OPTIONS = {"unix": True}
    BODY = b"Hello, world!\n"

    def test_hello(self):
        r = self.get("/")
        self.assertOK(r, self.BODY, "hello")
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.header("Content-Length"), str(len(self.BODY)))
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertNotIn(b"\n", r.head_raw.replace(b"\r\n", b""),
                         "response head lines must end in CRLF")

    def test_keep_alive_three_requests(self):
        with self.worker.conn() as c:
            for i in range(3):
                r = c.request("GET", "/")
                self.assertOK(r, self.BODY)
                self.assertFalse(r.has_token("Connection", "close"),
                                 "request %d: %r" % (i + 1, r))
            self.assertFalse(c.wait_closed(0.5), "keep-alive connection closed")
            r = c.request("GET", "/", headers=[("Connection", "close")])
            self.assertOK(r, self.BODY)
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c)

    def test_connection_close_honoured(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/", headers=[("Connection", "close")])
            self.assertOK(r, self.BODY)
            self.assertTrue(r.has_token("Connection", "close"), r)
            self.assertClosed(c)

    def test_http10_closes_by_default(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/", version="HTTP/1.0")
            self.assertOK(r, self.BODY)
            self.assertClosed(c)

    def test_http10_keep_alive_when_asked(self):
        with self.worker.conn() as c:
            for _ in range(2):
                r = c.request("GET", "/", version="HTTP/1.0",
                              headers=[("Connection", "keep-alive")])
                self.assertOK(r, self.BODY)
                self.assertTrue(r.has_token("Connection", "keep-alive"),
                                "an HTTP/1.0 keep-alive response must say so: %r" % r)
            self.assertFalse(c.wait_closed(0.5))

    def test_http10_without_host_is_fine(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/", version="HTTP/1.0", host=None)
            self.assertOK(r, self.BODY)

    def test_http11_without_host_is_400(self):
        self.assertRejected(build_request("GET", "/", host=None))

    def test_pipelined_requests(self):
        with self.worker.conn() as c:
            c.send(build_request("GET", "/a") + build_request("GET", "/b") +
                   build_request("HEAD", "/c") + build_request("GET", "/d"))
            for method in ("GET", "GET", "HEAD", "GET"):
                r = c.read_response(method)
                self.assertOK(r, self.BODY if method == "GET" else b"")

    def test_request_sent_byte_by_byte(self):
        with self.worker.conn() as c:
            for byte in build_request("GET", "/slowly"):
                c.send(bytes([byte]))
                time.sleep(0.002)
            self.assertOK(c.read_response(), self.BODY)

    def test_head(self):
        with self.worker.conn() as c:
            r = c.request("HEAD", "/")
            self.assertOK(r, b"")
            self.assertEqual(r.header("Content-Length"), str(len(self.BODY)))
            # No body bytes may follow: the next response must parse cleanly.
            self.assertOK(c.request("GET", "/"), self.BODY)

    def test_single_app_is_default(self):
        self.assertOK(self.get("/", app=None), self.BODY)

    def test_route_header_with_single_app(self):
        self.assertOK(self.get("/", app="somebody/hello"), self.BODY)

    def test_unknown_app_is_404(self):
        r = self.get("/", app="somebody/nosuchapp")
        self.assertStatus(r, 404)
        self.assertNotIn(self.BODY, r.body)

    def test_unix_socket_listener(self):
        self.assertTrue(self.worker.unix_path)
        with Conn(self.worker.unix_path) as c:
            for _ in range(2):
                self.assertOK(c.request("GET", "/"), self.BODY)


# ==========================================================================


class TestRouting(WorkerCase):
    """Several apps: X-Lodge-App picks one; each has its own interpreter."""

    APPS = ["hello", "alpha", "beta", "environ"]

    def json(self, app, target="/", **kw):
        r = self.get(target, app=app, **kw)
        self.assertOK(r, app=app.split("/")[-1])
        return json.loads(r.body)

    def test_route_by_header(self):
        self.assertOK(self.get("/", app="u/hello"), b"Hello, world!\n")
        self.assertEqual(self.json("u/alpha")["app"], "alpha")
        self.assertEqual(self.json("u/beta")["app"], "beta")

    def test_user_part_is_ignored(self):
        for user in ("alice", "bob", "x"):
            self.assertEqual(self.json(user + "/alpha")["app"], "alpha")

    def test_no_header_with_several_apps_is_404(self):
        self.assertStatus(self.get("/"), 404)

    def test_unknown_app_is_404(self):
        self.assertStatus(self.get("/", app="u/gamma"), 404)

    def test_route_header_not_visible_to_app(self):
        env = self.json("u/environ", headers=[("X-Custom", "visible")])
        self.assertEqual(env.get("HTTP_X_CUSTOM"), "visible")
        self.assertNotIn("HTTP_X_LODGE_APP", env)

    def test_clashing_module_names(self):
        # alpha and beta both "import settings": each must get its own,
        # whichever was imported first, over one keep-alive connection.
        with self.worker.conn() as c:
            for app in ["alpha", "beta", "beta", "alpha", "beta", "alpha"]:
                r = c.request("GET", "/", app="u/" + app)
                self.assertOK(r, app=app)
                data = json.loads(r.body)
                self.assertEqual(data["app"], app)
                self.assertEqual(data["settings"], "%s's own settings" % app)
                self.assertEqual(data["settings_dir"], app)

    def test_app_wsgi_entry_file(self):
        # beta has app.wsgi instead of wsgi.py
        self.assertEqual(self.json("u/beta")["settings"], "beta's own settings")


# ==========================================================================


class TestEnviron(WorkerCase):
    """The WSGI environ (PEP 3333) as the environ app reports it."""

    APPS = ["environ", "alpha"]

    def environ(self, target="/", **kw):
        r = self.get(target, app="u/environ", **kw)
        self.assertOK(r, app="environ")
        return json.loads(r.body)

    def test_cgi_variables(self):
        port = self.worker.port
        env = self.environ("/some/path?a=1&b=two", host="127.0.0.1:%d" % port,
                           headers=[("X-Custom-Header", "custom value"),
                                    ("User-Agent", "lodgetest/1")])
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(env["PATH_INFO"], "/some/path")
        self.assertEqual(env["QUERY_STRING"], "a=1&b=two")
        self.assertEqual(env["SERVER_NAME"], "127.0.0.1")
        self.assertEqual(env["SERVER_PORT"], str(port))
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["HTTP_HOST"], "127.0.0.1:%d" % port)
        self.assertEqual(env["HTTP_X_CUSTOM_HEADER"], "custom value")
        self.assertEqual(env["HTTP_USER_AGENT"], "lodgetest/1")

    def test_cgi_values_are_str(self):
        env = self.environ("/", headers=[("X-A", "b")])
        for key, value in env.items():
            if "." not in key and key != "_process":
                self.assertIsInstance(value, str, key)

    def test_wsgi_variables(self):
        env = self.environ("/")
        self.assertEqual(env["wsgi.version"]["type"], "tuple")
        self.assertEqual(env["wsgi.version"]["repr"], "(1, 0)")
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertEqual(env["wsgi.multithread"]["repr"], "True")
        self.assertEqual(env["wsgi.multiprocess"]["type"], "bool")
        self.assertEqual(env["wsgi.run_once"]["repr"], "False")
        for m in ("read", "readline", "readlines", "__iter__"):
            self.assertIn(m, env["wsgi.input"]["attrs"])
        for m in ("write", "writelines", "flush"):
            self.assertIn(m, env["wsgi.errors"]["attrs"])
        self.assertIn("wsgi.file_wrapper", env)
        self.assertTrue(env["wsgi.file_wrapper"]["callable"])

    def test_content_type_and_length(self):
        env = self.environ("/form", method="POST", body=b"a=1",
                           headers=[("Content-Type",
                                     "application/x-www-form-urlencoded")])
        self.assertEqual(env["REQUEST_METHOD"], "POST")
        self.assertEqual(env["CONTENT_TYPE"], "application/x-www-form-urlencoded")
        self.assertEqual(env["CONTENT_LENGTH"], "3")
        self.assertNotIn("HTTP_CONTENT_TYPE", env)
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)

    def test_no_content_length_without_body(self):
        env = self.environ("/")
        self.assertIn(env.get("CONTENT_LENGTH", ""), ("", "0"))
        self.assertEqual(env.get("CONTENT_TYPE", ""), "")

    def test_path_info_percent_decoded(self):
        cases = {
            "/caf%C3%A9": "/caf\xc3\xa9",   # UTF-8 bytes as latin-1 chars
            "/a%20b": "/a b",
            "/x%2Fy": "/x/y",
            "/plain/path/": "/plain/path/",
            "/caf%c3%a9?q=1": "/caf\xc3\xa9",
        }
        for target, path_info in cases.items():
            with self.subTest(target=target):
                self.assertEqual(self.environ(target)["PATH_INFO"], path_info)

    def test_query_string(self):
        cases = {
            "/p?q=caf%C3%A9&x=1&empty=": "q=caf%C3%A9&x=1&empty=",
            "/p?a+b=c%20d": "a+b=c%20d",
            "/p": "",
            "/p?": "",
        }
        for target, qs in cases.items():
            with self.subTest(target=target):
                env = self.environ(target)
                self.assertEqual(env["QUERY_STRING"], qs)
                self.assertEqual(env["PATH_INFO"], "/p")

    def test_server_name_from_host(self):
        env = self.environ("/", host="example.test:8080")
        self.assertEqual(env["SERVER_NAME"], "example.test")
        self.assertEqual(env["HTTP_HOST"], "example.test:8080")

    def test_http10_server_protocol(self):
        env = self.environ("/", version="HTTP/1.0")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.0")

    def test_repeated_headers_joined(self):
        env = self.environ("/", headers=[("X-Multi", "one"), ("X-Multi", "two")])
        self.assertEqual(env["HTTP_X_MULTI"], "one, two")

    def test_lodge_ini_env_in_environ_and_os_environ(self):
        env = self.environ("/")
        self.assertEqual(env.get("LODGE_GREETING"), "hello from lodge.ini")
        self.assertEqual(env.get("LODGE_NUMBER"), "42")
        self.assertEqual(env["_process"]["os_environ"],
                         {"LODGE_GREETING": "hello from lodge.ini",
                          "LODGE_NUMBER": "42"})

    def test_lodge_ini_env_is_per_app(self):
        r = self.get("/", app="u/alpha")
        self.assertOK(r, app="alpha")
        self.assertIsNone(json.loads(r.body)["os_environ_greeting"],
                          "environ's env.LODGE_GREETING leaked into alpha's "
                          "os.environ")

    def test_sys_executable_is_debians_python(self):
        # Nothing may depend on whatever "python3" PATH finds (a pyenv
        # shim on these machines): the worker pins Debian's interpreter.
        exe = self.environ("/")["_process"]["sys_executable"]
        self.assertEqual(os.path.realpath(exe),
                         os.path.realpath("/usr/bin/python3.11"))

    def test_runs_in_sub_interpreter(self):
        main = self.environ("/")["_process"]["main_interpreter"]
        if main is None:
            self.skipTest("_xxsubinterpreters not available")
        self.assertFalse(main)


# ==========================================================================


class TestFlask(WorkerCase):
    """Debian's python3-flask, through http.client."""

    APPS = ["flaskapp"]

    def fetch(self, method, path, body=None, headers=None):
        conn = self.worker.http()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()

    def test_text_route(self):
        status, ctype, body = self.fetch("GET", "/")
        self.assertEqual(status, 200, body)
        self.assertTrue(ctype.startswith("text/html"), ctype)
        self.assertEqual(body, b"Hello from Flask\n")

    def test_json_route(self):
        status, ctype, body = self.fetch("GET", "/json")
        self.assertEqual(status, 200, body)
        self.assertEqual(ctype, "application/json")
        self.assertEqual(json.loads(body),
                         {"app": "flaskapp", "items": [1, 2, 3], "word": "caf\u00e9"})

    def test_flask_404(self):
        status, ctype, body = self.fetch("GET", "/no/such/route")
        self.assertEqual(status, 404, body)
        self.assertIn(b"Not Found", body)

    def test_post_form(self):
        form = urllib.parse.urlencode({"name": "Ada", "lang": "fr"})
        status, _, body = self.fetch(
            "POST", "/form", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body, b"Hello, Ada! (fr)\n")

    def test_keep_alive_with_http_client(self):
        conn = self.worker.http()
        try:
            for path in ("/", "/json", "/"):
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
        finally:
            conn.close()


# ==========================================================================


class TestBodies(WorkerCase):
    """Request bodies, limits and the wsgi.input API (the echo app)."""

    MAX_BODY = 2 * MiB
    MAX_HEAD = 16384
    APPS = ["echo"]
    OPTIONS = {"max_body": MAX_BODY, "max_head": MAX_HEAD}
    INPUT = b"first line\nsecond line\n\nlast line without newline"

    def echo(self, body, **kw):
        r = self.get("/?mode=echo", method="POST", body=body, **kw)
        self.assertOK(r, app="echo")
        return r

    def test_post_content_length_echo(self):
        r = self.echo(b"hello body")
        self.assertEqual(r.body, b"hello body")
        self.assertEqual(r.header("X-Content-Length"), "10")

    def test_post_1mib_sha256(self):
        body = random.Random(1234).randbytes(MiB)
        r = self.echo(body)
        digest = hashlib.sha256(body).hexdigest()
        self.assertEqual(r.header("X-Body-Length"), str(MiB))
        self.assertEqual(r.header("X-Body-Sha256"), digest)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), digest)

    def test_post_exactly_max_body(self):
        r = self.echo(b"m" * self.MAX_BODY)
        self.assertEqual(r.header("X-Body-Length"), str(self.MAX_BODY))

    def test_post_chunked_with_trailers(self):
        body = chunked([b"hello", b", ", b"chunked world"],
                       trailers=[("X-Trailer", "t1"), ("X-Other", "t2")])
        with self.worker.conn() as c:
            r = c.request("POST", "/?mode=echo", body=body,
                          headers=[("Transfer-Encoding", "chunked")])
            self.assertOK(r, b"hello, chunked world", "echo")
            # the trailers were consumed: the connection is still in step
            self.assertOK(c.request("GET", "/x?mode=whoami"), b"whoami /x")

    def test_post_chunked_extensions_and_case(self):
        raw = (b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n"
               b"a;x\r\nabcdefghij\r\n0\r\n\r\n")
        r = self.get("/?mode=echo", method="POST", body=raw,
                     headers=[("Transfer-Encoding", "chunked")])
        self.assertOK(r, b"hello0123456789abcdefghij", "echo")

    def test_post_chunked_1mib_sha256(self):
        body = random.Random(99).randbytes(MiB)
        sizes = [1, 100, 4096, 65536, 300000]
        parts, i, k = [], 0, 0
        while i < len(body):
            n = sizes[k % len(sizes)]
            parts.append(body[i:i + n])
            i, k = i + n, k + 1
        r = self.get("/?mode=echo", method="POST", body=chunked(parts),
                     headers=[("Transfer-Encoding", "chunked")])
        self.assertOK(r, app="echo")
        self.assertEqual(r.header("X-Body-Sha256"), hashlib.sha256(body).hexdigest())
        self.assertEqual(r.body, body)

    def test_expect_100_continue(self):
        body = b"sent after 100 Continue"
        with self.worker.conn() as c:
            c.send(build_request("POST", "/?mode=echo", body=b"",
                                 headers=[("Expect", "100-continue"),
                                          ("Content-Length", str(len(body)))]))
            interim = c.read_response()
            self.assertEqual(interim.status, 100, interim)
            self.assertTrue(interim.head_raw.startswith(b"HTTP/1.1 100 Continue\r\n"),
                            interim.head_raw)
            c.send(body)
            self.assertOK(c.read_response(), body, "echo")

    def test_expect_100_continue_too_big_is_413(self):
        with self.worker.conn() as c:
            c.send(build_request("POST", "/?mode=echo",
                                 headers=[("Expect", "100-continue"),
                                          ("Content-Length", str(self.MAX_BODY + 1))]))
            r = c.read_response()
            self.assertEqual(r.status, 413, "no 100 Continue for a body that is "
                             "too big; got %r" % r)
            self.assertClosed(c)

    def test_body_too_big_413(self):
        with self.worker.conn() as c:
            c.send(build_request("POST", "/?mode=echo",
                                 headers=[("Content-Length", str(self.MAX_BODY + 1))]))
            c.send_quietly(b"x" * 65536)
            r = c.read_response()
            self.assertStatus(r, 413)
            self.assertClosed(c)

    def test_chunked_body_too_big_413(self):
        with self.worker.conn() as c:
            c.send(build_request("POST", "/?mode=echo",
                                 headers=[("Transfer-Encoding", "chunked")]))
            part = b"%x\r\n" % 65536 + b"y" * 65536 + b"\r\n"
            for _ in range(self.MAX_BODY // 65536 + 4):
                if not c.send_quietly(part):
                    break
            c.send_quietly(b"0\r\n\r\n")
            r = c.read_response()
            self.assertStatus(r, 413)
            self.assertClosed(c)

    def test_head_too_large_431(self):
        self.assertRejected(build_request("GET", "/?mode=whoami",
                                          headers=[("X-Big", "a" * (self.MAX_HEAD + 100))]),
                            status=431)

    def test_head_below_limit_ok(self):
        r = self.get("/?mode=whoami", headers=[("X-Big", "a" * (self.MAX_HEAD // 2))])
        self.assertOK(r, b"whoami /", "echo")

    def test_unread_body_is_not_the_next_request(self):
        smuggled = build_request("GET", "/smuggled?mode=whoami")
        with self.worker.conn() as c:
            r = c.request("POST", "/?mode=ignore", body=smuggled)
            self.assertOK(r, b"ignored", "echo")
            if r.has_token("Connection", "close"):
                self.assertClosed(c)
                return
            self.assertOK(c.request("GET", "/real?mode=whoami"), b"whoami /real")
            self.assertFalse(c.buf, "extra bytes after the responses: %r" % c.buf)

    def test_unread_large_body_keep_alive(self):
        with self.worker.conn() as c:
            r = c.request("POST", "/?mode=ignore", body=b"z" * MiB)
            self.assertOK(r, b"ignored", "echo")
            if r.has_token("Connection", "close"):
                self.assertClosed(c)
                return
            self.assertOK(c.request("GET", "/next?mode=whoami"), b"whoami /next")

    def test_client_disconnect_mid_body(self):
        tag = "t%d" % random.randrange(10 ** 9)
        with self.worker.conn() as c:
            c.send(build_request("POST", "/?mode=disconnect&tag=" + tag,
                                 headers=[("Content-Length", "100000")]))
            c.send(b"d" * 10000)
            time.sleep(0.2)
        m = self.wait_new_log("echo", r"echo: disconnect %s: read (\d+) bytes, "
                              r"ended with (.*)$" % tag)
        self.assertLessEqual(int(m.group(1)), 10000)
        self.assertOK(self.get("/?mode=whoami"), b"whoami /")

    # -- wsgi.input

    def input_api(self, mode, body=None, **kw):
        r = self.get("/?mode=" + mode, method="POST",
                     body=self.INPUT if body is None else body, **kw)
        self.assertOK(r, app="echo")
        return json.loads(r.body)

    def lines(self):
        return [x.decode("latin-1") for x in self.INPUT.splitlines(True)]

    def test_input_read_n_loop(self):
        got = self.input_api("readn")
        chunks = [c.encode("latin-1") for c in got["chunks"]]
        self.assertEqual(b"".join(chunks), self.INPUT)
        self.assertTrue(all(len(c) == 7 for c in chunks[:-1]),
                        "read(7) returned short reads before the end: %r" % chunks)
        self.assertEqual(got["after"], "")

    def test_input_readline(self):
        got = self.input_api("readline")
        self.assertEqual(got["lines"], self.lines())
        self.assertEqual(got["after"], "")

    def test_input_readlines(self):
        got = self.input_api("readlines")
        self.assertEqual(got["lines"], self.lines())
        self.assertEqual(got["after"], [])

    def test_input_iteration(self):
        got = self.input_api("iter")
        self.assertEqual(got["lines"], self.lines())
        self.assertEqual(got["after"], "")

    def test_input_read_all(self):
        got = self.input_api("readall")
        self.assertEqual(got["all"], self.INPUT.decode("latin-1"))
        self.assertEqual(got["after"], "")

    def test_input_read_past_end_returns_empty(self):
        # On a keep-alive connection: reading past the body must not wait
        # for bytes that belong to the next request.
        with self.worker.conn() as c:
            r = c.request("POST", "/?mode=pastend", body=self.INPUT)
            self.assertOK(r, app="echo")
            got = json.loads(r.body)
            self.assertEqual(got, {"big": self.INPUT.decode("latin-1"), "read": "",
                                   "readline": "", "readlines": []})
            self.assertOK(c.request("GET", "/?mode=whoami"), b"whoami /")

    def test_input_mixed_calls(self):
        got = self.input_api("mixed")
        self.assertEqual(got, {"readline": "first line\n", "read5": "secon",
                               "readline2": "d line\n",
                               "readlines": ["\n", "last line without newline"]})

    def test_input_readline_chunked_body(self):
        # line ends fall inside and across chunks
        parts = [self.INPUT[i:i + 4] for i in range(0, len(self.INPUT), 4)]
        got = self.input_api("readline", body=chunked(parts),
                             headers=[("Transfer-Encoding", "chunked")])
        self.assertEqual(got["lines"], self.lines())


# ==========================================================================


class TestSmuggling(WorkerCase):
    """Heads two parsers could read differently: 400, connection closed,
    nothing behind them answered."""

    APPS = ["echo"]
    SMUGGLED = b"GET /smuggled?mode=whoami HTTP/1.1\r\nHost: x\r\n\r\n"

    def post(self, headers, body):
        return (b"POST /?mode=echo HTTP/1.1\r\nHost: x\r\n" + headers +
                b"\r\n" + body)

    def test_bare_lf_in_header(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n")

    def test_bare_lf_line_endings(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\nHost: x\n\n")

    def test_obs_fold(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\r\nHost: x\r\n"
                            b"X-Folded: a\r\n b\r\n\r\n")

    def test_content_length_and_transfer_encoding(self):
        self.assertRejected(self.post(b"Content-Length: 5\r\n"
                                      b"Transfer-Encoding: chunked\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED))

    def test_transfer_encoding_and_content_length(self):
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n"
                                      b"Content-Length: 40\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED))

    def test_two_differing_content_lengths(self):
        self.assertRejected(self.post(b"Content-Length: 5\r\nContent-Length: 6\r\n",
                                      b"hello!" + self.SMUGGLED))

    def test_space_before_colon(self):
        self.assertRejected(self.post(b"Transfer-Encoding : chunked\r\n"
                                      b"Content-Length: 5\r\n",
                                      b"0\r\n\r\n" + self.SMUGGLED))

    def test_space_before_colon_plain_header(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\r\nHost: x\r\n"
                            b"X-Test : a\r\n\r\n")

    def test_nul_in_header_value(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\r\nHost: x\r\n"
                            b"X-A: a\x00b\r\n\r\n")

    def test_nul_in_header_name(self):
        self.assertRejected(b"GET /?mode=whoami HTTP/1.1\r\nHost: x\r\n"
                            b"X-\x00A: b\r\n\r\n")

    def test_invalid_chunk_size(self):
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n",
                                      b"zz\r\nhello\r\n0\r\n\r\n"))

    def test_chunk_size_with_0x_prefix(self):
        # a lax parser reads "0" and takes "x5..." as the next request
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n",
                                      b"0x5\r\nhello\r\n0\r\n\r\n" + self.SMUGGLED))

    def test_negative_chunk_size(self):
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n",
                                      b"-5\r\nhello\r\n0\r\n\r\n"))

    def test_chunk_size_overflow(self):
        # 2**64 + 5: wrapping around would read a 5-byte chunk
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n",
                                      b"10000000000000005\r\nhello\r\n0\r\n\r\n"
                                      + self.SMUGGLED),
                            statuses=(400, 413))

    def test_chunk_data_longer_than_size(self):
        self.assertRejected(self.post(b"Transfer-Encoding: chunked\r\n",
                                      b"5\r\nhello world\r\n0\r\n\r\n"))

    def test_content_length_not_a_number(self):
        self.assertRejected(self.post(b"Content-Length: abc\r\n", b"hello"))

    def test_content_length_with_sign(self):
        self.assertRejected(self.post(b"Content-Length: +5\r\n", b"hello"))

    def test_negative_content_length(self):
        self.assertRejected(self.post(b"Content-Length: -1\r\n", b"hello"))

    def test_connection_usable_after_valid_request(self):
        # control: the same connection pattern with a valid head works
        with self.worker.conn() as c:
            self.assertOK(c.request("GET", "/?mode=whoami"), b"whoami /")


# ==========================================================================


class TestResponses(WorkerCase):
    """How the server frames what an app returns."""

    APPS = ["responses"]
    GEN_BODY = b"a" * 10 + b"b" * 5000 + b"c"

    def test_chunked_response_from_generator(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/gen")
            self.assertOK(r, self.GEN_BODY, "responses")
            self.assertTrue(r.chunked, "expected Transfer-Encoding: chunked: %r" % r)
            self.assertIsNone(r.header("Content-Length"))
            self.assertIsNone(r.framing_error, r.framing_error)
            self.assertEqual(r.chunk_sizes[-1], 0)
            self.assertNotIn(0, r.chunk_sizes[:-1],
                             "an empty yielded item ended the chunked body early")
            self.assertEqual(sum(r.chunk_sizes), len(self.GEN_BODY))
            # framing was right: the connection is still in step
            self.assertOK(c.request("GET", "/gen"), self.GEN_BODY)

    def test_http10_streaming_response_is_close_delimited(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/gen", version="HTTP/1.0")
            self.assertStatus(r, 200)
            self.assertIsNone(r.header("Transfer-Encoding"),
                              "chunked is not HTTP/1.0: %r" % r)
            self.assertEqual(r.body, self.GEN_BODY)

    def test_head_of_streamed_response(self):
        with self.worker.conn() as c:
            r = c.request("HEAD", "/gen")
            self.assertOK(r, b"")
            self.assertOK(c.request("GET", "/gen"), self.GEN_BODY)

    def test_list_gets_content_length(self):
        r = self.get("/list")
        self.assertOK(r, b"abcdefg", "responses")
        self.assertEqual(r.header("Content-Length"), "7")
        self.assertIsNone(r.header("Transfer-Encoding"))

    def test_empty_response(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/empty")
            self.assertOK(r, b"", "responses")
            self.assertOK(c.request("GET", "/list"), b"abcdefg")

    def test_write_callable(self):
        self.assertOK(self.get("/write"), b"part1 part2 part3", "responses")

    def test_start_response_twice_raises(self):
        r = self.get("/twice")
        self.assertOK(r, app="responses")
        self.assertTrue(r.body.startswith(b"raised "),
                        "a second start_response() without exc_info must "
                        "raise; the app got: %r" % r.body)
        self.assertEqual(r.header("X-First"), "1")

    def test_start_response_exc_info_replaces_status(self):
        r = self.get("/excinfo")
        self.assertStatus(r, 500, "responses")
        self.assertEqual(r.body, b"replaced")
        self.assertEqual(r.header("X-Second"), "1")
        self.assertIsNone(r.header("X-First"), "headers of the first "
                          "start_response must be replaced: %r" % r)

    def test_file_wrapper(self):
        with open(os.path.join(os.path.dirname(__file__), "apps", "responses",
                               "data.txt"), "rb") as f:
            expected = f.read()
        self.assertOK(self.get("/filewrapper"), expected, "responses")


# ==========================================================================


class TestErrors(WorkerCase):
    """Apps that raise, exit, fail to import, send bad headers or have a bad
    lodge.ini: 500s, log lines, and the worker and other apps carry on."""

    APPS = ["errors", "hello", "broken_syntax", "exit_at_import", "badkey",
            "badvalue"]

    def assertHelloStillWorks(self):
        self.assertOK(self.get("/", app="u/hello"), b"Hello, world!\n")

    def assertErrorPage(self, r, app, *secrets):
        self.assertStatus(r, 500, app)
        self.assertTrue(r.complete, r)
        self.assertTrue(r.header("Content-Type", "").startswith("text/html"), r)
        for s in (b"Traceback", b'File "') + secrets:
            self.assertNotIn(s, r.body, "the 500 page shows %r" % s)

    def test_exception_before_start_response(self):
        r = self.get("/before", app="u/errors")
        self.assertErrorPage(r, "errors", b"RuntimeError", b"boom")
        self.wait_new_log("errors", r"Traceback \(most recent call last\):$")
        m = self.wait_new_log("errors", r"^.*RuntimeError: boom-before$")
        self.assertRegex(m.group(0), TIMESTAMP_RE)
        self.assertHelloStillWorks()

    def test_exception_after_first_chunk_cuts_chunked_response(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/after", app="u/errors")
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.chunked, r)
            self.assertEqual(r.body, b"first chunk\n")
            self.assertFalse(r.complete, "the chunked stream must not end with a "
                             "0-chunk after an exception: %r" % r)
            self.assertTrue(c.eof)
        self.wait_new_log("errors", r"RuntimeError: boom-after")
        self.assertHelloStillWorks()

    def test_exception_after_first_chunk_cuts_content_length_response(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/after-cl", app="u/errors")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Content-Length"), "1000")
            self.assertEqual(r.body, b"first chunk\n")
            self.assertFalse(r.complete)
            self.assertTrue(c.eof)
        self.wait_new_log("errors", r"RuntimeError: boom-after")

    def test_exception_after_empty_item_is_500(self):
        # headers go out with the first non-empty body item only, so there
        # is still time for a clean 500
        r = self.get("/empty-then-raise", app="u/errors")
        self.assertErrorPage(r, "errors", b"boom")
        self.assertIsNone(r.header("X-Too-Early"))
        self.wait_new_log("errors", r"RuntimeError: boom-empty$")

    def test_exc_info_after_body_reraises(self):
        with self.worker.conn() as c:
            r = c.request("GET", "/excinfo-after-body", app="u/errors")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, b"some body\n")
            self.assertFalse(r.complete, r)
        self.wait_new_log("errors", r"ValueError: boom-excinfo$")

    def test_sys_exit_in_request(self):
        r = self.get("/exit", app="u/errors")
        self.assertErrorPage(r, "errors", b"SystemExit")
        self.wait_new_log("errors", r"SystemExit: 3$")
        self.assertTrue(self.worker.alive())
        self.assertHelloStillWorks()
        # again: the app itself keeps working too
        self.assertStatus(self.get("/exit", app="u/errors"), 500, "errors")
        self.assertStatus(self.get("/nothing-here", app="u/errors"), 404, "errors")

    def test_import_syntax_error(self):
        r = self.get("/", app="u/broken_syntax")
        self.assertErrorPage(r, "broken_syntax", b"SyntaxError", b"wsgi.py")
        self.worker.wait_log("broken_syntax", r"SyntaxError")
        self.assertHelloStillWorks()

    def test_sys_exit_at_import(self):
        r = self.get("/", app="u/exit_at_import")
        self.assertErrorPage(r, "exit_at_import", b"SystemExit")
        self.worker.wait_log("exit_at_import", r"calling sys\.exit\(2\)")
        # besides the app's own print(), lodge says what happened
        self.worker.wait_log("exit_at_import", r"SystemExit: 2$")
        self.assertTrue(self.worker.alive())
        self.assertStatus(self.get("/", app="u/exit_at_import"), 500)
        self.assertHelloStillWorks()

    def bad_header(self, path, logged):
        with self.worker.conn() as c:
            c.send(build_request("GET", path, app="u/errors",
                                 headers=[("Connection", "close")]))
            try:
                r = c.read_response()
            except ConnectionClosed as e:
                self.fail("%s: no response: %s" % (path, e))
            c.read_until_close(10)
            wire = c.received
        self.assertStatus(r, 500, "errors")
        self.assertNotIn(b"Injected", wire, "%s: a bad header reached the wire" % path)
        self.assertNotIn(b"must not be sent", wire)
        # the log says what was wrong, and the bad bytes can't forge a line
        self.wait_new_log("errors", logged)
        for line in self.log_since("errors").splitlines():
            self.assertRegex(line, TIMESTAMP_RE)
            self.assertNotRegex(line, TIMESTAMP_RE.pattern + "Injected")
        return r

    def test_header_value_with_crlf(self):
        self.bad_header("/bad-value-crlf", r"X-Bad")
        self.assertHelloStillWorks()

    def test_header_name_with_space(self):
        self.bad_header("/bad-name-space", r"X Bad")

    def test_other_forbidden_header_bytes(self):
        for path, logged in (("/bad-value-lf", "X-Bad"), ("/bad-value-cr", "X-Bad"),
                             ("/bad-value-nul", "X-Bad"), ("/bad-name-crlf", "X-Bad"),
                             ("/bad-status-crlf", "(?i)status")):
            with self.subTest(path=path):
                self.log_start = self.worker.log_sizes()
                self.bad_header(path, logged)

    def test_lodge_ini_unknown_key(self):
        r = self.get("/", app="u/badkey")
        self.assertStatus(r, 500, "badkey")
        m = self.worker.wait_log("badkey", r"^.*lodge\.ini:3\b.*$")
        self.assertIn("colour", m.group(0))
        self.assertHelloStillWorks()

    def test_lodge_ini_bad_value(self):
        r = self.get("/", app="u/badvalue")
        self.assertStatus(r, 500, "badvalue")
        m = self.worker.wait_log("badvalue", r"^.*lodge\.ini:2\b.*$")
        self.assertIn("threads", m.group(0))
        self.assertHelloStillWorks()


# ==========================================================================


class TestLogsAndClose(WorkerCase):
    """App output in LOGDIR/NAME.log; close() of the response iterable."""

    APPS = ["logapp", "stream"]

    @classmethod
    def prepare(cls, worker):
        os.mkdir(worker.path("markers"))
        worker.write_file("apps/stream/lodge.ini",
                          "; written by the test\nenv.MARKER = %s\n"
                          % worker.path("markers"))

    def tag(self):
        return "t%d" % random.randrange(10 ** 9)

    def log_request(self):
        tag = self.tag()
        self.assertOK(self.get("/?" + tag, app="u/logapp"), b"logged\n", "logapp")
        return tag

    def test_print_and_logging_in_app_log(self):
        tag = self.log_request()
        for pattern in ("print-%s", "WARNING logapp: logging-warning-%s",
                        "INFO logapp: logging-info-%s", "stderr-%s"):
            m = self.wait_new_log("logapp", r"^.*%s$" % (pattern % tag))
            self.assertRegex(m.group(0), TIMESTAMP_RE)

    def test_partial_and_multi_line_writes(self):
        tag = self.tag()
        self.assertOK(self.get("/?" + tag, app="u/logapp"))
        m = self.wait_new_log("logapp", r"^.*part-%s-joined$" % tag)
        self.assertRegex(m.group(0), TIMESTAMP_RE.pattern + r"part-%s-joined$" % tag)
        for n in (1, 2):
            m = self.wait_new_log("logapp", r"^.*multi-%d-%s$" % (n, tag))
            self.assertRegex(m.group(0), TIMESTAMP_RE.pattern + r"multi-%d-" % n)

    def test_wsgi_errors_in_app_log(self):
        tag = self.log_request()
        for pattern in (r"errors-%s$", r"errors-lines-%s$"):
            m = self.wait_new_log("logapp", r"^.*" + pattern % tag)
            self.assertRegex(m.group(0), TIMESTAMP_RE)

    def test_import_time_output_logged(self):
        self.log_request()  # in case the app is imported on first use
        m = self.worker.wait_log("logapp", r"^.*logapp: imported$")
        self.assertRegex(m.group(0), TIMESTAMP_RE)

    def test_every_log_line_has_a_timestamp(self):
        self.log_request()
        self.wait_new_log("logapp", r"errors-lines-")
        text = self.worker.read_log("logapp")
        self.assertTrue(text.endswith("\n"), "last line not terminated")
        for line in text.splitlines():
            self.assertRegex(line, TIMESTAMP_RE)
        stamp = TIMESTAMP_RE.match(text.splitlines()[-1]).group(0).strip()
        t = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        self.assertLess(abs(t - time.time()), 600, "timestamp %s is not UTC now" % stamp)

    def test_close_called_when_client_disconnects(self):
        tag = self.tag()
        marker = self.worker.path("markers", tag)
        with self.worker.conn() as c:
            c.send(build_request("GET", "/?tag=" + tag, app="u/stream"))
            got = b""
            while len(got) < 256 * 1024:
                data = c.sock.recv(65536)
                self.assertTrue(data, "stream ended early")
                got += data
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:200])
        # the client is gone; the server notices on its next writes
        self.assertTrue(wait_for(lambda: os.path.exists(marker), TIMEOUT),
                        "close() was not called after the client went away; "
                        "stream.log:\n%s" % self.worker.read_log("stream")[-2000:])
        m = self.wait_new_log("stream", r"stream: close\(\) called after (\d+) chunks")
        self.assertLess(int(m.group(1)), 5000)
        self.assertHelloFromStream()

    def assertHelloFromStream(self):
        tag = self.tag()
        r = self.get("/?chunks=2&tag=" + tag, app="u/stream")
        self.assertOK(r, b"x" * 131072, "stream")

    def test_close_called_after_normal_end(self):
        tag = self.tag()
        r = self.get("/?chunks=3&tag=" + tag, app="u/stream")
        self.assertOK(r, b"x" * 3 * 65536, "stream")
        marker = self.worker.path("markers", tag)
        self.assertTrue(wait_for(lambda: os.path.exists(marker), TIMEOUT))
        with open(marker) as f:
            self.assertEqual(f.read(), "closed after 3 chunks\n")


# ==========================================================================


class TestConfig(WorkerCase):
    """lodge.ini entry, venv and interpreter keys."""

    APPS = ["entry", "venvapp", "environ", "mainapp"]

    @classmethod
    def prepare(cls, worker):
        make_venv(worker.path("apps", "venvapp", ".venv"),
                  {"lodge_venv_probe": 'VALUE = "from-venv"\n'})

    def test_entry_point(self):
        self.assertOK(self.get("/", app="u/entry"),
                      b"entry point webpkg.web:wsgi_app\n", "entry")

    def test_venv_module_imported(self):
        r = self.get("/", app="u/venvapp")
        self.assertOK(r, app="venvapp")
        data = json.loads(r.body)
        self.assertEqual(data["value"], "from-venv")
        self.assertTrue(os.path.realpath(data["file"]).startswith(
            os.path.realpath(self.worker.path("apps", "venvapp", ".venv")) + "/"),
            data["file"])

    def test_venv_not_visible_to_other_apps(self):
        r = self.get("/", app="u/environ")
        self.assertOK(r, app="environ")
        self.assertFalse(json.loads(r.body)["_process"]["venv_probe_importable"])

    def test_interpreter_main(self):
        r = self.get("/", app="u/mainapp")
        self.assertOK(r, app="mainapp")
        main = json.loads(r.body)["main_interpreter"]
        if main is None:
            self.skipTest("_xxsubinterpreters not available")
        self.assertTrue(main)


# ==========================================================================


class TestConcurrency(WorkerCase):
    """--threads 4: a slow request holds one thread, not the worker."""

    APPS = ["slow", "hello"]
    OPTIONS = {"threads": 4}

    def start_blocked(self, tag):
        release = self.worker.path("release-" + tag)
        self.addCleanup(lambda: open(release, "w").close())
        since = self.worker.log_size("slow")
        bg = Background(lambda: self.get(
            "/wait?release=%s&tag=%s" % (urllib.parse.quote(release), tag),
            app="u/slow"))
        bg.start()
        self.worker.wait_log("slow", r"slow: waiting %s$" % tag, since=since)
        return bg, release

    def finish_blocked(self, bg, release, tag):
        open(release, "w").close()
        self.assertOK(bg.outcome(), b"released " + tag.encode(), "slow")

    def test_slow_request_does_not_block_fast_one_same_app(self):
        bg, release = self.start_blocked("same")
        for _ in range(3):
            self.assertOK(self.get("/fast", app="u/slow"), b"fast", "slow")
        self.assertTrue(bg.is_alive(), "the slow request ended early: %r"
                        % (bg.result or bg.error,))
        self.finish_blocked(bg, release, "same")

    def test_slow_request_does_not_block_other_app(self):
        bg, release = self.start_blocked("other")
        for _ in range(3):
            self.assertOK(self.get("/", app="u/hello"), b"Hello, world!\n")
        self.assertTrue(bg.is_alive())
        self.finish_blocked(bg, release, "other")

    def test_sleeping_request_does_not_block(self):
        # the literal case: the app sleeps 2 s
        since = self.worker.log_size("slow")
        bg = Background(lambda: self.get("/sleep?s=2", app="u/slow"))
        bg.start()
        self.worker.wait_log("slow", r"slow: sleeping", since=since)
        self.assertOK(self.get("/fast", app="u/slow"), b"fast")
        self.assertTrue(bg.is_alive(), "the fast request waited for the slow one")
        self.assertOK(bg.outcome(), b"slept")

    def test_parallel_requests(self):
        def client():
            with self.worker.conn() as c:
                return [c.request("GET", "/", app="u/hello") for _ in range(5)]
        threads = [Background(client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            for r in t.outcome():
                self.assertOK(r, b"Hello, world!\n")


# ==========================================================================


class TestShutdown(unittest.TestCase):
    """SIGTERM: stop accepting, finish what is in flight, exit 0.  Each test
    has its own worker."""

    def start_worker(self):
        w = Worker(["slow"], threads=4)
        self.addCleanup(w.cleanup)
        w.start()
        return w

    def served(self, w):
        """True if a new connection gets a 2xx answer."""
        try:
            with Conn(w.addr, timeout=3) as c:
                r = c.request("GET", "/fast", headers=[("Connection", "close")])
                return 200 <= r.status < 300
        except (OSError, ConnectionClosed):
            return False

    def test_sigterm_drains_in_flight_request(self):
        w = self.start_worker()
        release = w.path("release")
        self.addCleanup(lambda: open(release, "w").close())
        idle = w.conn()  # an idle keep-alive connection must not hold up exit
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/fast").status, 200)
        bg = Background(lambda: w.request(
            "GET", "/wait?release=%s&tag=drain" % urllib.parse.quote(release)))
        bg.start()
        w.wait_log("slow", r"slow: waiting drain$")
        w.signal(signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not self.served(w), 15),
                        "still serving new connections after SIGTERM")
        self.assertTrue(w.alive(), "exited before the in-flight request was "
                        "done (%s)" % w.describe_exit())
        open(release, "w").close()
        r = bg.outcome()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"released drain")
        try:
            rc = w.proc.wait(30)
        except Exception:
            self.fail("lodge-worker did not exit within 30 s after SIGTERM and "
                      "the end of the last request; stderr:\n%s"
                      % w.stderr_text()[-2000:])
        self.assertEqual(rc, 0, "exit: %s; stderr:\n%s" % (w.describe_exit(),
                                                          w.stderr_text()[-2000:]))

    def test_sigterm_keeps_idle_keepalive_connection_usable(self):
        # A front end that pools connections may send its next request on
        # an idle keep-alive connection just as the worker is told to
        # stop: that request is answered (Connection: close), not reset.
        w = self.start_worker()
        idle = w.conn()
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/fast").status, 200)
        w.signal(signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not self.served(w), 15),
                        "still serving new connections after SIGTERM")
        time.sleep(1.0)
        r = idle.request("GET", "/fast")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.has_token("Connection", "close"), r)
        idle.wait_closed()
        self.assertEqual(w.proc.wait(30), 0, w.stderr_text()[-2000:])

    def test_sigterm_when_idle_exits_zero(self):
        w = self.start_worker()
        self.assertTrue(self.served(w))
        w.signal(signal.SIGTERM)
        try:
            rc = w.proc.wait(30)
        except Exception:
            self.fail("lodge-worker did not exit within 30 s of SIGTERM")
        self.assertEqual(rc, 0, "exit: %s; stderr:\n%s" % (w.describe_exit(),
                                                          w.stderr_text()[-2000:]))


if __name__ == "__main__":
    unittest.main()
