"""frontenv: what an app behind lodge-router sees (test_front.py).

Every answer is JSON: {"pid", "environ": the str values of environ, "body":
{"length", "sha256"} of the request body (read whole)}.

  ?sleep=S            sleeps S seconds before answering (logs "frontenv:
                      sleeping" first)
  ?wait=PATH          the same, until the file PATH exists (at most 60 s)
  ?stream=1&sleep=S   sends the head and a first chunk, sleeps S seconds
                      (or waits for PATH), then sends the JSON (chunked: no
                      Content-Length)
"""
import hashlib
import json
import os
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator


def frontenv(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    body = environ["wsgi.input"].input.read()
    out = json.dumps({
        "pid": os.getpid(),
        "environ": {k: v for k, v in environ.items() if type(v) is str},
        "body": {"length": len(body),
                 "sha256": hashlib.sha256(body).hexdigest()},
    }, sort_keys=True).encode()
    sleep = float(q.get("sleep", ["0"])[0])
    wait = q.get("wait", [None])[0]
    if q.get("stream"):
        start_response("200 OK", [("Content-Type", "application/json")])
        return streamed(out, sleep, wait)
    if sleep or wait:
        print("frontenv: sleeping", flush=True)
        pause(sleep, wait)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


def pause(sleep, wait):
    if wait is None:
        time.sleep(sleep)
        return
    deadline = time.monotonic() + 60
    while not os.path.exists(wait) and time.monotonic() < deadline:
        time.sleep(0.02)


def streamed(out, sleep, wait):
    yield b" "
    print("frontenv: streaming, sleeping", flush=True)
    pause(sleep, wait)
    yield out


application = validator(frontenv)
