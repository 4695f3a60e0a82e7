"""Appends the importing process's pid to $MARKER: the zygote tests count
imports with it."""

import os

with open(os.environ["MARKER"], "a") as f:
    f.write("%d\n" % os.getpid())


def application(environ, start_response):
    start_response("200 OK", [("X-Pid", str(os.getpid())),
                              ("X-Worker", os.environ.get("WARREN_WORKER_ID", "")),
                              ("X-Zygote-Fd", os.environ.get("WARREN_ZYGOTE_FD", "")),
                              ("X-PPid", str(os.getppid()))])
    return [b"forked"]
