"""environ: answers with its WSGI environ as JSON.

str values as they are (PATH_INFO's latin-1 "bytes-in-str" survives JSON's
\\u00XX escapes); other values as {"type", "repr", "callable", "attrs"}.
"_process" adds what the app sees outside environ (os.environ, sys.path).
The server's own wsgi.input/wsgi.errors are described, not validator's
wrappers around them.
"""
import importlib.util
import json
import os
import sys
from wsgiref.validate import validator

try:
    import _xxsubinterpreters as _interp
except ImportError:
    _interp = None

METHODS = ["read", "readline", "readlines", "__iter__", "write", "writelines",
           "flush"]


def describe(value):
    value = getattr(value, "input", getattr(value, "errors", value))
    return {"type": type(value).__name__, "repr": repr(value),
            "callable": callable(value),
            "attrs": [m for m in METHODS if hasattr(value, m)]}


def show_environ(environ, start_response):
    out = {}
    for key, value in environ.items():
        out[key] = value if type(value) is str else describe(value)
    out["_process"] = {
        "os_environ": {k: os.environ.get(k)
                       for k in ("LODGE_GREETING", "LODGE_NUMBER")},
        "venv_probe_importable":
            importlib.util.find_spec("lodge_venv_probe") is not None,
        "main_interpreter": (None if _interp is None else
                             _interp.get_current() == _interp.get_main()),
        "sys_executable": sys.executable,
    }
    body = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(show_environ)
