"""errors: apps that fail in every way lodge must survive.

Validated paths:
  /before      raises before start_response
  /after       chunked: yields a first chunk, then raises
  /after-cl    the same with Content-Length: 1000
  /exit        sys.exit(3) in the request
  /empty-then-raise  generator: start_response, yields b"", then raises
                     (no body byte yet, so the headers were not sent)
  /excinfo-after-body  start_response with exc_info after a body byte:
                     must re-raise; the app lets it propagate
Unvalidated paths (validator would itself reject these headers, and the
point is what the server does with them):
  /bad-value-crlf /bad-value-lf /bad-value-cr /bad-value-nul
  /bad-name-space /bad-name-crlf /bad-status-crlf
"""
import sys
from wsgiref.validate import validator

TEXT = [("Content-Type", "text/plain")]

BAD = {
    "/bad-value-crlf": ("200 OK", [("X-Bad", "a\r\nInjected: yes")]),
    "/bad-value-lf": ("200 OK", [("X-Bad", "a\nInjected: yes")]),
    "/bad-value-cr": ("200 OK", [("X-Bad", "a\rInjected: yes")]),
    "/bad-value-nul": ("200 OK", [("X-Bad", "a\x00Injected: yes")]),
    "/bad-name-space": ("200 OK", [("X Bad", "Injected")]),
    "/bad-name-crlf": ("200 OK", [("X-Bad\r\nInjected", "yes")]),
    "/bad-status-crlf": ("200 OK\r\nInjected: yes", []),
}


def failing(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/before":
        raise RuntimeError("boom-before")
    if path == "/exit":
        sys.exit(3)
    if path in ("/after", "/after-cl"):
        return after(start_response, path == "/after-cl")
    if path == "/empty-then-raise":
        return empty_then_raise(start_response)
    if path == "/excinfo-after-body":
        return excinfo_after_body(start_response)
    start_response("404 Not Found", TEXT)
    return [b"no such path\n"]


def after(start_response, with_length):
    headers = TEXT + ([("Content-Length", "1000")] if with_length else [])
    start_response("200 OK", headers)
    yield b"first chunk\n"
    raise RuntimeError("boom-after")


def empty_then_raise(start_response):
    start_response("200 OK", TEXT + [("X-Too-Early", "1")])
    yield b""
    raise RuntimeError("boom-empty")


def excinfo_after_body(start_response):
    start_response("200 OK", TEXT)
    yield b"some body\n"
    try:
        raise ValueError("boom-excinfo")
    except ValueError:
        start_response("500 Oops", TEXT, sys.exc_info())
    yield b"start_response did not re-raise\n"


validated = validator(failing)


def application(environ, start_response):
    bad = BAD.get(environ["PATH_INFO"])
    if bad is None:
        return validated(environ, start_response)
    status, headers = bad
    start_response(status, TEXT + headers)
    return [b"this body must not be sent with a bad header\n"]
