"""End to end through Debian's real Apache: two hosted users, one front
socket per protocol, lodged + lodge-router + sandboxed lodge-workers.

Runs as root only (skipped otherwise, or when apache2 is not installed).
lodgehost.LodgeHost creates the users lodgeweb-a and lodgeweb-b with an
app "site" each and starts lodged with

    front = http:unix:TMP/http.sock, uwsgi:unix:TMP/uwsgi.sock
    front_trusted = http:unix:TMP/http.sock

Apache (its own config in TMP, mpm_event, mod_proxy, mod_proxy_http,
mod_proxy_uwsgi, mod_headers) listens on a loopback port with one name-based
vhost per site and protocol; each sets `RequestHeader set X-Lodge-App`.

Environment: LODGED, LODGE_WORKER, LODGE_ROUTER; LODGECTL (lodgectl,
for the metrics the router reports; those checks are skipped without it).
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import lodgehost
from lodgehost import TIMEOUT, wait_for

A = "lodgeweb-a"
B = "lodgeweb-b"

SITE_APP = r'''
import json, os, time

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT",
        "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "HTTPS", "HTTP_HOST",
        "REQUEST_METHOD", "HTTP_X_LODGE_APP", "CONTENT_LENGTH")

def application(environ, start_response):
    qs = environ.get("QUERY_STRING", "")
    if qs.startswith("sleep="):
        time.sleep(float(qs[6:]))
    n = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(n) if n else b""
    out = {k: environ.get(k) for k in KEYS}
    out["scheme"] = environ["wsgi.url_scheme"]
    out["uid"] = os.getuid()
    out["body_len"] = len(body)
    out["body_sum"] = sum(body) % 65521
    data = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
'''

APACHE_CONF = r'''
ServerRoot "{tmp}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{tmp}/apache.pid"
DefaultRuntimeDir "{tmp}"
ErrorLog "{tmp}/apache-error.log"
LogLevel warn proxy:info
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule proxy_uwsgi_module /usr/lib/apache2/modules/mod_proxy_uwsgi.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
User www-data
Group www-data
StartServers 1
ServerLimit 2
ThreadsPerChild 64
MaxRequestWorkers 128
ProxyTimeout 30

# The front sockets are shared by every hosted user: lodge closes each
# connection after its response, so Apache must not try to reuse them.
<Proxy "unix:{http_sock}|http://lodge/">
    ProxySet disablereuse=On retry=0
</Proxy>
<Proxy "unix:{uwsgi_sock}|uwsgi://lodge/">
    ProxySet disablereuse=On retry=0
</Proxy>

{vhosts}
'''

VHOST = r'''
<VirtualHost 127.0.0.1:{port}>
    ServerName {name}
    ProxyPreserveHost On
    {route}
    {extra}
    ProxyPass "/" "unix:{sock}|{proto}://lodge/"
</VirtualHost>
'''


@unittest.skipUnless(os.geteuid() == 0, "needs root (users, lodged)")
@unittest.skipUnless(os.path.exists("/usr/sbin/apache2"),
                     "apache2 is not installed (scripts/install-deps.sh)")
class ApacheTest(unittest.TestCase):
    host = None
    apache = None

    @classmethod
    def setUpClass(cls):
        lodgehost.set_up_class(cls, needs=("LODGED", "LODGE_WORKER", "LODGE_ROUTER"))

    @classmethod
    def _set_up(cls):
        cls.host = h = lodgehost.LodgeHost("lodgeweb", ["-a", "-b"])
        for u in (A, B):
            h.install_app(u, "site", SITE_APP)
        cls.http_sock = os.path.join(h.tmp, "http.sock")
        cls.uwsgi_sock = os.path.join(h.tmp, "uwsgi.sock")
        h.start(extra=(
            "front = http:unix:{0}, uwsgi:unix:{1}\n"
            "front_trusted = http:unix:{0}\n"
            "front_group = www-data\n"
            "inflight_max = 4\n"
            "queue_max = 4\n"
            "queue_timeout = 20\n"
            "request_timeout = 30\n").format(cls.http_sock, cls.uwsgi_sock),
            ready="router: started")
        cls.port = cls._free_port()
        vhosts = []

        def vhost(name, user, proto, extra=""):
            sock = cls.http_sock if proto == "http" else cls.uwsgi_sock
            route = ('RequestHeader set X-Lodge-App "%s/site"' % user
                     if user else "")
            vhosts.append(VHOST.format(port=cls.port, name=name, route=route,
                                       extra=extra, sock=sock, proto=proto))

        vhost("a.http.test", A, "http")
        vhost("b.http.test", B, "http")
        vhost("a.uwsgi.test", A, "uwsgi")
        vhost("b.uwsgi.test", B, "uwsgi")
        vhost("a.https.test", A, "http",
              'RequestHeader set X-Forwarded-Proto "https"')
        vhost("nobody.test", "lodgeweb-nobody", "http")
        vhost("noroute.test", None, "http")
        conf = os.path.join(h.tmp, "apache.conf")
        with open(conf, "w") as f:
            f.write(APACHE_CONF.format(
                tmp=h.tmp, port=cls.port, http_sock=cls.http_sock,
                uwsgi_sock=cls.uwsgi_sock, vhosts="".join(vhosts)))
        os.makedirs(os.path.join(h.tmp, "logs"), exist_ok=True)
        check = subprocess.run(["/usr/sbin/apache2", "-t", "-f", conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        if check.returncode != 0:
            raise RuntimeError("apache2 -t: " + check.stdout)
        cls.apache = subprocess.Popen(
            ["/usr/sbin/apache2", "-f", conf, "-DFOREGROUND"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

        def up():
            try:
                socket.create_connection(("127.0.0.1", cls.port), 1).close()
                return True
            except OSError:
                return False
        if not wait_for(up):
            raise RuntimeError("apache did not start")

    @staticmethod
    def _free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @classmethod
    def _tear_down(cls):
        if cls.apache is not None:
            cls.apache.terminate()
            try:
                cls.apache.wait(20)
            except subprocess.TimeoutExpired:
                cls.apache.kill()
                cls.apache.wait()
        if cls.host is not None:
            cls.host.stop()

    @classmethod
    def tearDownClass(cls):
        cls._tear_down()

    # ------------------------------------------------------------------

    def get(self, site, path="/", method="GET", body=None, headers=None,
            timeout=TIMEOUT):
        c = http.client.HTTPConnection("127.0.0.1", self.port,
                                       timeout=timeout)
        try:
            hdrs = {"Host": site}
            hdrs.update(headers or {})
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def get_json(self, site, path="/", **kw):
        status, headers, body = self.get(site, path, **kw)
        self.assertEqual(status, 200, "%s%s: %r\n%s" % (
            site, path, body, self.host.read_log()[-3000:]))
        return json.loads(body)

    def metrics(self):
        """lodgectl metrics, as {(name, labels...): value}."""
        r = lodgehost.run(os.environ["LODGECTL"], "--socket",
                          os.path.join(self.host.tmp, "control.sock"),
                          "metrics")
        out = {}
        for line in r.stdout.splitlines():
            m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
            if m:
                labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"',
                                                 m.group(2) or "")))
                out[(m.group(1),) + labels] = float(m.group(3))
        return out

    def uid(self, user):
        import pwd
        return pwd.getpwnam(user).pw_uid

    def worker_pids(self, user):
        out = lodgehost.run("pgrep", "-u", user, "-f", "lodge-worker",
                            check=False).stdout
        return [int(p) for p in out.split()]

    # ------------------------------------------------------------------

    def test_each_user_reaches_own_app_over_http_and_uwsgi(self):
        for proto in ("http", "uwsgi"):
            for user, letter in ((A, "a"), (B, "b")):
                env = self.get_json("%s.%s.test" % (letter, proto))
                self.assertEqual(env["uid"], self.uid(user), proto)

    def test_environ_over_http(self):
        env = self.get_json("a.http.test", "/x/y?q=1")
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["HTTP_HOST"], "a.http.test")
        self.assertEqual(env["SERVER_NAME"], "a.http.test")
        self.assertEqual(env["scheme"], "http")
        self.assertEqual(env["PATH_INFO"], "/x/y")
        self.assertEqual(env["QUERY_STRING"], "q=1")
        # The route header never reaches the app.
        self.assertIsNone(env["HTTP_X_LODGE_APP"])

    def test_scheme_from_trusted_forwarded_proto(self):
        env = self.get_json("a.https.test")
        self.assertEqual(env["scheme"], "https")
        self.assertEqual(env["HTTPS"], "on")

    def test_client_cannot_forge_route_or_address_over_uwsgi(self):
        # Apache's `set` replaces the client's X-Lodge-App; a forged
        # X-Forwarded-For on the untrusted uwsgi socket changes nothing.
        env = self.get_json("a.uwsgi.test", headers={
            "X-Lodge-App": B + "/site", "X-Forwarded-For": "6.6.6.6"})
        self.assertEqual(env["uid"], self.uid(A))
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")

    def test_environ_over_uwsgi(self):
        env = self.get_json("b.uwsgi.test", "/p?z=2")
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["SERVER_NAME"], "b.uwsgi.test")
        self.assertEqual(env["scheme"], "http")
        self.assertEqual(env["PATH_INFO"], "/p")
        self.assertEqual(env["QUERY_STRING"], "z=2")
        self.assertIsNone(env["HTTP_X_LODGE_APP"])

    def test_post_body_arrives_intact(self):
        body = os.urandom(300 * 1024)
        for site in ("a.http.test", "a.uwsgi.test"):
            env = self.get_json(site, "/upload", method="POST", body=body,
                                headers={"Content-Type":
                                         "application/octet-stream"})
            self.assertEqual(env["body_len"], len(body), site)
            self.assertEqual(env["body_sum"], sum(body) % 65521, site)

    def test_unknown_site_is_404_from_lodge(self):
        for site in ("nobody.test", "noroute.test"):
            status, headers, body = self.get(site)
            self.assertEqual(status, 404, site)
            self.assertIn(b"<html", body.lower())

    def test_worker_killed_mid_request_is_502_then_recovers(self):
        self.get_json("b.http.test")           # a worker runs
        pids = self.worker_pids(B)
        self.assertTrue(pids)
        result = {}

        def slow():
            result["r"] = self.get("b.http.test", "/?sleep=10")
        t = threading.Thread(target=slow)
        t.start()
        time.sleep(1.0)                          # the request is in the app
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        t.join(TIMEOUT)
        self.assertFalse(t.is_alive())
        self.assertEqual(result["r"][0], 502, result["r"])
        # The next request works: lodged starts a new worker.
        env = self.get_json("b.http.test")
        self.assertEqual(env["uid"], self.uid(B))

    def test_flood_gets_503_while_other_user_answers(self):
        self.get_json("b.http.test")
        has_ctl = bool(os.environ.get("LODGECTL"))
        q_key = ("lodge_queue_depth", ("user", B))
        s_key = ("lodge_router_responses_total", ("status", "503"),
                 ("user", B))
        if has_ctl:
            before = self.metrics().get(s_key, 0)
        results = []
        lock = threading.Lock()

        def one():
            r = self.get("b.http.test", "/?sleep=4")
            with lock:
                results.append(r)
        # inflight_max 4 + queue_max 4: the rest get 503 at once.
        threads = [threading.Thread(target=one) for _ in range(14)]
        for t in threads:
            t.start()
        # While B is saturated, A answers, and quickly.
        time.sleep(1.0)
        t0 = time.monotonic()
        env = self.get_json("a.http.test")
        self.assertEqual(env["uid"], self.uid(A))
        self.assertLess(time.monotonic() - t0, 3.0)
        if has_ctl:
            # The router reports B's full queue to lodged (once a
            # second): lodgectl metrics shows it while B is saturated.
            self.assertTrue(wait_for(
                lambda: self.metrics().get(q_key) == 4, timeout=2.5),
                self.metrics().get(q_key))
        for t in threads:
            t.join(TIMEOUT)
        statuses = sorted(r[0] for r in results)
        if has_ctl:
            # Each 503 the router gave counted once, as B's; the queue
            # is empty again.
            self.assertTrue(wait_for(
                lambda: self.metrics().get(s_key, 0) - before
                == statuses.count(503) and self.metrics().get(q_key) == 0),
                (self.metrics().get(s_key), before, statuses))
        self.assertIn(503, statuses, statuses)
        self.assertIn(200, statuses, statuses)
        for status, headers, body in results:
            if status == 503:
                self.assertIn("Retry-After", headers)
        self.assertEqual(set(statuses), {200, 503}, statuses)

    def test_router_and_workers_run_sched_batch(self):
        # scheduling = batch (the default): the router and every thread
        # of the workers serving through it.
        for site in ("a.http.test", "b.http.test"):
            self.assertEqual(self.get(site)[0], 200)
        m = re.findall(r"router: started \(pid (\d+)\)", self.host.read_log())
        self.assertTrue(m)
        pids = [int(m[-1])] + self.worker_pids(A) + self.worker_pids(B)
        self.assertGreaterEqual(len(pids), 3)
        for pid in pids:
            for tid in os.listdir("/proc/%d/task" % pid):
                self.assertEqual(os.sched_getscheduler(int(tid)),
                                 os.SCHED_BATCH, "pid %d task %s" % (pid, tid))

    def test_router_restarts_on_the_same_socket(self):
        # A connection that arrives while the router is down waits in the
        # kernel's backlog of the socket lodged keeps, and the new router
        # serves it.
        m = re.findall(r"router: started \(pid (\d+)\)", self.host.read_log())
        self.assertTrue(m)
        pid = int(m[-1])
        mark = len(self.host.read_log())
        os.kill(pid, signal.SIGSTOP)            # accepts nothing from now
        waiting = socket.socket(socket.AF_UNIX)
        self.addCleanup(waiting.close)
        waiting.settimeout(TIMEOUT)
        waiting.connect(self.http_sock)
        waiting.sendall(b"GET /backlog HTTP/1.1\r\nHost: x\r\n"
                        b"X-Lodge-App: " + A.encode() + b"/site\r\n\r\n")
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(self.host.wait_log(r"router: started \(pid \d+\)",
                                           start=mark),
                        self.host.read_log()[mark:])
        data = b""
        while True:
            chunk = waiting.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:300])
        self.assertEqual(json.loads(data.split(b"\r\n\r\n", 1)[1])["uid"],
                         self.uid(A))
        env = self.get_json("a.http.test")
        self.assertEqual(env["uid"], self.uid(A))

    def test_front_connection_is_closed_after_one_response(self):
        # Straight to the shared socket: a keep-alive request still gets
        # Connection: close, and the connection ends.
        data = lodgehost.unix_exchange(
            self.http_sock, b"GET / HTTP/1.1\r\nHost: x\r\n"
            b"X-Lodge-App: " + A.encode() + b"/site\r\n\r\n")
        head = data.split(b"\r\n\r\n", 1)[0].lower()
        self.assertTrue(head.startswith(b"http/1.1 200"), data[:200])
        self.assertIn(b"connection: close", head)


if __name__ == "__main__":
    unittest.main()
