#!/usr/bin/python3
"""Fairness of a keep-alive HTTP server: N client threads, each with one
keep-alive connection, send requests back to back for a few seconds; the
script prints how many responses each connection got.

A server that serves every connection in turn gives each about the same
count; one that gives a thread to a connection until it closes serves a
few and starves the rest, which a latency percentile from wrk (counting
only the requests that were served) does not show.

    /usr/bin/python3 bench/fairness.py PORT [CONNECTIONS [SECONDS [ROUTE]]]
    /usr/bin/python3 bench/fairness.py 8080 16 3 demo/hello   # lodge-worker
"""
import socket
import sys
import threading
import time


def main():
    port = int(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    route = sys.argv[4] if len(sys.argv) > 4 else None
    head = "GET / HTTP/1.1\r\nHost: bench\r\n"
    if route:
        head += "X-Lodge-App: %s\r\n" % route
    req = (head + "\r\n").encode()
    counts = [0] * n
    stop = time.monotonic() + seconds

    def client(i):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(seconds + 5)
        buf = b""
        try:
            while time.monotonic() < stop:
                s.sendall(req)
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                hdr, _, rest = buf.partition(b"\r\n\r\n")
                length = 0
                for line in hdr.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    chunk = s.recv(65536)
                    if not chunk:
                        return
                    rest += chunk
                buf = rest[length:]
                counts[i] += 1
        except OSError:
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts.sort()
    total = sum(counts)
    print("port %d, %d connections, %.0f s: %d responses; per connection "
          "min %d, median %d, max %d; connections with at most 1 response: "
          "%d" % (port, n, seconds, total, counts[0], counts[n // 2],
                  counts[-1], sum(1 for c in counts if c <= 1)))


if __name__ == "__main__":
    main()
