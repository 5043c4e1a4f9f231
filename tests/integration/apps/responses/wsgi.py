"""responses: the ways an app hands its response to the server.

  /gen          generator, no Content-Length (chunked), with an empty item
  /list         [b"abc", b"defg"], no Content-Length (unvalidated: validator
                wraps the list, hiding it from the server)
  /empty        [] without Content-Length
  /write        the write() callable, then an iterable
  /twice        start_response twice without exc_info: must raise
  /excinfo      start_response again with exc_info before any body byte
  /filewrapper  wsgi.file_wrapper over data.txt
"""
import os
import sys
from wsgiref.validate import validator

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = [("Content-Type", "text/plain")]
GEN_PARTS = [b"a" * 10, b"", b"b" * 5000, b"c"]


def gen(start_response):
    start_response("200 OK", list(TEXT))
    for part in GEN_PARTS:
        yield part


def responses(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/gen":
        return gen(start_response)
    if path == "/empty":
        start_response("200 OK", list(TEXT))
        return []
    if path == "/write":
        write = start_response("200 OK", list(TEXT))
        write(b"part1 ")
        write(b"part2 ")
        return [b"part3"]
    if path == "/twice":
        start_response("200 OK", TEXT + [("X-First", "1")])
        try:
            start_response("201 Created", list(TEXT))
        except Exception as e:
            return [("raised %s" % type(e).__name__).encode()]
        return [b"did not raise"]
    if path == "/excinfo":
        start_response("200 OK", TEXT + [("X-First", "1")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("500 Changed My Mind", TEXT + [("X-Second", "1")],
                           sys.exc_info())
        return [b"replaced"]
    if path == "/filewrapper":
        start_response("200 OK", list(TEXT))
        return environ["wsgi.file_wrapper"](
            open(os.path.join(HERE, "data.txt"), "rb"), 8)
    start_response("404 Not Found", list(TEXT))
    return [b"no such path\n"]


validated = validator(responses)


def application(environ, start_response):
    if environ["PATH_INFO"] == "/list":
        start_response("200 OK", list(TEXT))
        return [b"abc", b"defg"]
    return validated(environ, start_response)
