"""entry: found through lodge.ini's entry = webpkg.web:wsgi_app."""
from wsgiref.validate import validator


def site(environ, start_response):
    body = b"entry point webpkg.web:wsgi_app\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


wsgi_app = validator(site)
