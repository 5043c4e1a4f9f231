"""stream: a slow, big streamed response whose close() leaves a trace.

GET /?tag=T&chunks=N streams N chunks of 64 KiB (default: about 300 MiB
over more than a minute, so the client leaves long before the end).
close() writes the file MARKER/T (MARKER comes from env.MARKER in the
lodge.ini the test writes) and logs a line.
"""
import os
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

CHUNK = b"x" * 65536


class SlowStream:
    def __init__(self, marker, count):
        self.marker = marker
        self.count = count
        self.sent = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.sent >= self.count:
            raise StopIteration
        if self.sent:
            time.sleep(0.02)
        self.sent += 1
        return CHUNK

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed after %d chunks\n" % self.sent)
        print("stream: close() called after %d chunks" % self.sent, flush=True)


def stream(environ, start_response):
    q = parse_qs(environ["QUERY_STRING"])
    marker = os.path.join(environ["MARKER"], q["tag"][0])
    count = int(q.get("chunks", ["5000"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return SlowStream(marker, count)


application = validator(stream)
