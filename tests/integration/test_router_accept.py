"""lodge-router reads a new connection at once: a head already complete
when the connection is accepted is routed without the connection ever
being watched, and one that is not complete yet (nothing sent, or part
of it) is watched until it is.  These check the second case, which the
usual tests (a head sent right after connecting) rarely reach: the
client waits before sending, so the router finds nothing at accept.

Uses test_router's fake lodged and workers.  Run with Debian's python3:
  cd tests/integration && LODGE_ROUTER=../../build/lodge-router \\
      /usr/bin/python3 -m unittest -v test_router_accept
"""

import json
import time
import unittest

from lodgetest import build_request
from test_router import RouterTest

# Long enough that the router has accepted the connection (and found
# nothing to read) before the bytes arrive.
PAUSE = 0.3


class TestHeadAfterAccept(RouterTest):
    def test_head_sent_after_a_pause_is_routed(self):
        r = self.router()
        req = build_request("GET", "/late", app="alice/blog")
        with r.conn() as c:
            time.sleep(PAUSE)
            c.send(req)
            resp = c.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["data"].encode("latin-1"),
                         req)

    def test_head_in_two_parts_is_routed_whole(self):
        r = self.router()
        req = build_request("GET", "/split", app="alice/blog",
                            headers=[("X-Other", "1")])
        with r.conn() as c:
            c.send(req[:20])
            time.sleep(PAUSE)
            c.send(req[20:])
            resp = c.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(json.loads(resp.body)["data"].encode("latin-1"),
                         req)

    def test_bad_head_after_a_pause_is_400(self):
        r = self.router()
        with r.conn() as c:
            time.sleep(PAUSE)
            c.send(b"NOT HTTP\r\n\r\n")
            self.assert_page(c.read_response(), 400)

    def test_close_before_a_head_leaves_the_router_serving(self):
        r = self.router()
        with r.conn():
            time.sleep(PAUSE)
        # A connection closed at once, before the router even looked.
        r.conn().close()
        self.assertEqual(r.request("alice/blog").status, 200)


if __name__ == "__main__":
    unittest.main()
