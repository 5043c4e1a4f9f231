"""hello: the smallest app, a fixed text with its own Content-Length."""
from wsgiref.validate import validator

BODY = b"Hello, world!\n"


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


application = validator(hello)
