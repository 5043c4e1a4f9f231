"""logapp: print(), logging, sys.stdout/stderr and wsgi.errors output.

GET /?TAG writes lines that all carry TAG.
"""
import logging
import sys
from wsgiref.validate import validator

logging.basicConfig(level=logging.INFO,
                    format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("logapp")
print("logapp: imported")


def logapp(environ, start_response):
    tag = environ["QUERY_STRING"]
    print("print-" + tag)
    log.warning("logging-warning-" + tag)
    log.info("logging-info-" + tag)
    sys.stdout.write("part-")          # a partial line waits for its end
    sys.stdout.write(tag + "-joined\n")
    print("multi-1-%s\nmulti-2-%s" % (tag, tag))
    print("stderr-" + tag, file=sys.stderr)
    environ["wsgi.errors"].write("errors-" + tag + "\n")
    environ["wsgi.errors"].writelines(["errors-lines-" + tag + "\n"])
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", "7")])
    return [b"logged\n"]


application = validator(logapp)
