"""echo: request bodies and the wsgi.input API.

?mode=echo (default)  the body back, with X-Body-Length and X-Body-Sha256
?mode=ignore          never reads the body
?mode=whoami          "whoami PATH_INFO"
?mode=disconnect&tag=T  reads the body in read(4096) calls and logs how the
                      reading ended (the client goes away mid-body)
?mode=readn|readline|readlines|iter|readall|pastend|mixed
                      the wsgi.input API; JSON of what each call returned
                      (bytes as latin-1 strings)
validator's InputWrapper forbids read() without a size and iterates with
readline() itself, so readall and iter use the server's object (.input).
"""
import hashlib
import json
from urllib.parse import parse_qs
from wsgiref.validate import validator


def s(b):
    return b.decode("latin-1")


def input_api(mode, inp, raw):
    if mode == "readn":
        chunks = []
        while True:
            c = inp.read(7)
            if not c:
                break
            chunks.append(c)
        return {"chunks": [s(c) for c in chunks], "after": s(inp.read(7))}
    if mode == "readline":
        lines = []
        while True:
            line = inp.readline()
            if not line:
                break
            lines.append(line)
        return {"lines": [s(x) for x in lines], "after": s(inp.readline())}
    if mode == "readlines":
        return {"lines": [s(x) for x in inp.readlines()],
                "after": [s(x) for x in inp.readlines()]}
    if mode == "iter":
        return {"lines": [s(x) for x in raw], "after": s(raw.read(10))}
    if mode == "readall":
        return {"all": s(raw.read()), "after": s(raw.read())}
    if mode == "pastend":
        return {"big": s(inp.read(1 << 20)), "read": s(inp.read(10)),
                "readline": s(inp.readline()),
                "readlines": [s(x) for x in inp.readlines()]}
    if mode == "mixed":
        return {"readline": s(inp.readline()), "read5": s(inp.read(5)),
                "readline2": s(inp.readline()),
                "readlines": [s(x) for x in inp.readlines()]}
    raise ValueError("unknown mode %r" % mode)


def echo(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    mode = q.get("mode", ["echo"])[0]
    inp = environ["wsgi.input"]
    headers = [("Content-Type", "application/octet-stream")]
    if mode == "echo":
        parts = []
        while True:
            c = inp.read(65536)
            if not c:
                break
            parts.append(c)
        body = b"".join(parts)
        headers += [("X-Body-Length", str(len(body))),
                    ("X-Body-Sha256", hashlib.sha256(body).hexdigest()),
                    ("X-Content-Length", environ.get("CONTENT_LENGTH", "-"))]
    elif mode == "ignore":
        body = b"ignored"
    elif mode == "whoami":
        body = ("whoami " + environ["PATH_INFO"]).encode("latin-1")
    elif mode == "disconnect":
        tag = q["tag"][0]
        got = 0
        try:
            while True:
                c = inp.read(4096)
                if not c:
                    break
                got += len(c)
            outcome = "eof"
        except Exception as e:  # what a dropped client looks like
            outcome = "error %s" % type(e).__name__
        print("echo: disconnect %s: read %d bytes, ended with %s"
              % (tag, got, outcome), flush=True)
        body = b"done"
    else:
        body = json.dumps(input_api(mode, inp, inp.input)).encode()
        headers[0] = ("Content-Type", "application/json")
    headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body]


application = validator(echo)
