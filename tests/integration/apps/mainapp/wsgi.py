"""mainapp: interpreter = main; says which interpreter it runs in."""
import json
from wsgiref.validate import validator

try:
    import _xxsubinterpreters as _interp
except ImportError:
    _interp = None


def mainapp(environ, start_response):
    main = None if _interp is None else _interp.get_current() == _interp.get_main()
    body = json.dumps({"app": "mainapp", "main_interpreter": main}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(mainapp)
