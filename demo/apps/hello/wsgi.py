# The smallest WSGI app: what lodge's benchmarks call "hello".
def application(environ, start_response):
    body = b"Hello from lodge!\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
