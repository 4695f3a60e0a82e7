"""The demo application of `make run`: a WSGI app in Warren's Python
runtime, loaded once by its zygote and served by forked workers."""
import os


def application(environ, start_response):
    body = ("Hello from a Warren Python worker (pid %d, app %s).\n"
            "You asked for %s %s\n" % (os.getpid(), os.environ.get("WARREN_APP_NAME"),
                                       environ["REQUEST_METHOD"],
                                       environ["SCRIPT_NAME"] + environ["PATH_INFO"]))
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(data)))])
    return [data]
