"""alpha: imports its own settings.py (beta has one too)."""
import json
import os
from wsgiref.validate import validator

import settings


def alpha(environ, start_response):
    body = json.dumps({
        "app": "alpha",
        "settings": settings.VALUE,
        "settings_dir": os.path.basename(os.path.dirname(settings.__file__)),
        "os_environ_greeting": os.environ.get("LODGE_GREETING"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(alpha)
