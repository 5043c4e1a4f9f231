"""slow: requests that take their time.

  /wait?release=PATH&tag=T  logs "slow: waiting T", then waits until the
                            file PATH exists (at most 60 s)
  /sleep?s=SECONDS          sleeps
  /fast                     answers at once
"""
import os
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator


def slow(environ, start_response):
    q = parse_qs(environ["QUERY_STRING"])
    path = environ["PATH_INFO"]
    if path == "/wait":
        tag = q["tag"][0]
        print("slow: waiting " + tag, flush=True)
        deadline = time.monotonic() + 60
        while not os.path.exists(q["release"][0]):
            if time.monotonic() > deadline:
                body = b"timed out " + tag.encode()
                break
            time.sleep(0.02)
        else:
            body = b"released " + tag.encode()
    elif path == "/sleep":
        print("slow: sleeping", flush=True)
        time.sleep(float(q["s"][0]))
        body = b"slept"
    else:
        body = b"fast"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(slow)
