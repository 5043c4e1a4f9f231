# "whoami": the demo's app of the second user.  It tells who runs it and
# what it can see of the machine: its own user, the PID namespace its
# worker lives in, and only its own home under /home (lodge hides every
# other hosted user's home from a worker).  Plain WSGI, no dependency.
import os
import pwd


def application(environ, start_response):
    me = pwd.getpwuid(os.getuid())
    homes = sorted(os.listdir(os.path.dirname(me.pw_dir)))
    lines = [
        "Hello from whoami on lodge.",
        "user: %s (uid %d)" % (me.pw_name, me.pw_uid),
        "worker pid: %d (its own PID namespace)" % os.getpid(),
        "homes visible in %s: %s" % (os.path.dirname(me.pw_dir),
                                     " ".join(homes)),
        "request: %s %s%s from %s, scheme %s, for %s:%s" % (
            environ["REQUEST_METHOD"], environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""), environ.get("REMOTE_ADDR", "?"),
            environ["wsgi.url_scheme"], environ.get("SERVER_NAME", "?"),
            environ.get("SERVER_PORT", "?")),
    ]
    body = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
