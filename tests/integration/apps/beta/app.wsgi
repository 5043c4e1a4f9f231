"""beta: like alpha, but its entry file is app.wsgi."""
import json
import os
from wsgiref.validate import validator

import settings


def beta(environ, start_response):
    body = json.dumps({
        "app": "beta",
        "settings": settings.VALUE,
        "settings_dir": os.path.basename(os.path.dirname(settings.__file__)),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(beta)
