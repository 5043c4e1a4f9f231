"""venvapp: imports a module that only its venv has."""
import json
from wsgiref.validate import validator

import lodge_venv_probe


def venvapp(environ, start_response):
    body = json.dumps({"value": lodge_venv_probe.VALUE,
                       "file": lodge_venv_probe.__file__}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(venvapp)
