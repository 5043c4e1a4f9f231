# gunicorn settings of bench/worker.sh (Debian's gunicorn, /usr/bin/python3).
# worker.sh adds the per-instance options on the command line:
#   --bind 127.0.0.1:PORT --threads N --chdir APPDIR wsgi:ENTRY
worker_class = "gthread"   # threads in one worker, keep-alive connections
workers = 1
threads = 4                # overridden by worker.sh's --threads (THREADS)
accesslog = None           # access log off
loglevel = "warning"
