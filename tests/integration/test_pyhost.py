"""Integration tests of lodge-worker's embedded Python (src/worker/pyhost.c):
the leak guard, which has the main interpreter import the single-phase-init
extensions that leak on reload (_decimal, markupsafe._speedups) just before
a sub-interpreter would, instead of at start-up for every app.

Run:  LODGE_WORKER=/path/to/lodge-worker /usr/bin/python3 -m unittest -v test_pyhost

What the tests look at, from inside an app: the guard's finder first in
sys.meta_path of every generation (the first one, one built from scratch
and one built from a spare interpreter); and who ran markupsafe._speedups'
init.  Its escape() returns the Markup class of the interpreter that ran
the init (EMBEDDING.md §3): a Markup of another interpreter than the app's
own (type(escape(...)) is not markupsafe.Markup) shows that main imported
it first, so that reloads load it from main's copy instead of leaking a
new init each time.  Without the guard the app's own interpreter runs the
init and the two classes are the same.

And main's skipping of site (3.11): an app's interpreter must see exactly
what Debian's python3.11 -I sees of site's work.  No test asserts a
duration.
"""

import json
import os
import subprocess
import textwrap
import time
import unittest

from lodgetest import TIMEOUT, Conn, Worker, wait_for

# A reload on a loaded box, maybe under ASan.
RELOAD_TIMEOUT = float(os.environ.get("LODGE_TEST_RELOAD_TIMEOUT", "20"))

GUARD_APP = textwrap.dedent('''
    import sys
    import decimal
    import markupsafe

    VERSION = %d

    def application(environ, start_response):
        first = sys.meta_path[0]
        body = "v%%d %%s %%s %%s" %% (
            VERSION,
            getattr(first, "__name__", type(first).__name__),
            "main-init" if type(markupsafe.escape("<")) is not
            markupsafe.Markup else "own-init",
            decimal.Decimal("1.5") + 1)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]
''').lstrip()

# An app that imports none of the guarded modules, and then one of them
# during a request: the guard must work from a serving thread too.
LAZY_APP = textwrap.dedent('''
    import sys

    def application(environ, start_response):
        import markupsafe
        body = "lazy %s" % ("main-init" if type(markupsafe.escape("<"))
                            is not markupsafe.Markup else "own-init")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body.encode()]
''').lstrip()


# What an app's interpreter reports about site's work, as JSON; the same
# code run by Debian's python3.11 -I gives the expected values.
SITE_VIEW = textwrap.dedent('''
    import builtins, json, os, sys
    def site_view(skip_path=0):
        return json.dumps({
            "no_site": sys.flags.no_site,
            "isolated": sys.flags.isolated,
            "site_imported": "site" in sys.modules,
            "path": sys.path[skip_path:],
            "builtins": [n for n in ("exit", "quit", "help", "copyright",
                                     "credits", "license")
                         if hasattr(builtins, n)],
            "stdlib_dir": getattr(sys, "_stdlib_dir", None),
            "os_file": getattr(os, "__file__", None),
            "finders": [getattr(f, "__name__", type(f).__name__)
                        for f in sys.meta_path],
            "executable": sys.executable,
        }, sort_keys=True)
''').lstrip()

SITE_APP = SITE_VIEW + textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [site_view(skip_path=1).encode()]
''')


# The same from a thread the app starts (a thread with no main-interpreter
# state of its own), joined before the app is ready.
THREAD_APP = textwrap.dedent('''
    import threading

    seen = []

    def load():
        import markupsafe
        seen.append("main-init" if type(markupsafe.escape("<"))
                    is not markupsafe.Markup else "own-init")

    t = threading.Thread(target=load)
    t.start()
    t.join()

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("thread %s" % seen).encode()]
''').lstrip()


def has_markupsafe():
    try:
        import markupsafe  # noqa: F401 (Debian's python3-markupsafe)
        return True
    except ImportError:
        return False


@unittest.skipUnless(has_markupsafe(), "needs python3-markupsafe")
class LeakGuardTest(unittest.TestCase):

    def start_worker(self, apps):
        def prepare(w):
            for name, source in apps.items():
                w.write_file(os.path.join("apps", name, "wsgi.py"), source)

        w = Worker([], prepare=prepare, control=True,
                   extra_args=["--settle-ms", "0"])
        self.addCleanup(w.cleanup)
        w.start()
        self.w = w
        return w

    def body(self, app):
        with Conn(self.w.addr, TIMEOUT) as c:
            r = c.request("GET", "/", app=app,
                          headers=[("Connection", "close")])
        self.assertEqual(r.status, 200, "%r\n%s" % (
            r, self.w.stderr_text()[-3000:]))
        return r.body.decode()

    def reload(self, app, version):
        """Rewrites the app with VERSION = version; waits until served."""
        # Written aside and renamed in place, as an editor or a deploy
        # does: a reload must never see a half-written file here (this
        # test counts failed reloads).
        path = self.w.write_file(os.path.join("apps", app, "wsgi.py.new"),
                                 GUARD_APP % version)
        os.rename(path, path[:-4])
        seen = []

        def served():
            seen.append(self.body(app))
            return seen[-1].startswith("v%d " % version)

        if not wait_for(served, RELOAD_TIMEOUT, 0.1):
            self.fail("version %d never served; last bodies %r\n%s" % (
                version, seen[-3:], self.w.stderr_text()[-3000:]))
        return seen[-1]

    def test_guard_in_every_generation(self):
        """The first generation, a reload built from scratch and the next
        one (built from the spare interpreter made after a reload) all
        have the guard first in sys.meta_path, and their markupsafe was
        initialised by main; decimal works."""
        self.start_worker({"guarded": GUARD_APP % 1})
        self.assertEqual(self.body("guarded"),
                         "v1 _lodge_leak_guard main-init 2.5")
        self.assertEqual(self.reload("guarded", 2),
                         "v2 _lodge_leak_guard main-init 2.5")
        # The spare is made once the reload is over and nothing is
        # pending: wait until the old generation is gone.
        wait_for(lambda: self.w.app_status("guarded").get("retiring") == 0,
                 RELOAD_TIMEOUT, 0.1)
        time.sleep(0.5)
        self.assertEqual(self.reload("guarded", 3),
                         "v3 _lodge_leak_guard main-init 2.5")
        # (a write may be seen as two changes: more reloads are fine)
        a = self.w.app_status("guarded")
        self.assertEqual(a["reloads_failed"], 0, a)

    def test_guard_on_a_serving_thread(self):
        """An import of a guarded module during a request (not at the
        app's import) also goes to main first, and the worker keeps
        serving afterwards."""
        self.start_worker({"lazy": LAZY_APP})
        for _ in range(3):
            self.assertEqual(self.body("lazy"), "lazy main-init")

    def test_guard_on_an_app_thread(self):
        """An import of a guarded module in a thread the app started also
        goes to main first."""
        self.start_worker({"threaded": THREAD_APP})
        self.assertEqual(self.body("threaded"), "thread ['main-init']")


class SiteTest(unittest.TestCase):
    """A worker's main interpreter may skip site (pyhost.c,
    PYHOST_MAIN_SKIPS_SITE); an app's interpreter must not see any of it:
    what it reports about site's work equals what Debian's python3.11 -I
    reports, its own folder first on sys.path aside, and the leak guard's
    finder first in sys.meta_path aside."""

    def test_app_sees_what_python_sees(self):
        w = Worker([], prepare=lambda w: w.write_file(
            os.path.join("apps", "siteview", "wsgi.py"), SITE_APP))
        self.addCleanup(w.cleanup)
        w.start()
        with Conn(w.addr, TIMEOUT) as c:
            r = c.request("GET", "/", app="siteview",
                          headers=[("Connection", "close")])
        self.assertEqual(r.status, 200, "%r\n%s" % (
            r, w.stderr_text()[-3000:]))
        seen = json.loads(r.body.decode())
        out = subprocess.run(
            ["/usr/bin/python3.11", "-I", "-c",
             SITE_VIEW + "print(site_view())"],
            stdout=subprocess.PIPE, check=True, timeout=TIMEOUT, text=True)
        expected = json.loads(out.stdout)
        self.assertEqual(seen["finders"][:1], ["_lodge_leak_guard"])
        seen["finders"] = seen["finders"][1:]
        self.assertEqual(seen, expected)
        self.assertEqual(seen["no_site"], 0)
        self.assertIn("/usr/lib/python3/dist-packages", seen["path"])


if __name__ == "__main__":
    unittest.main()
