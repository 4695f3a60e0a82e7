"""WSGI test applications for warren-python with "threads". One callable,
`application`, dispatches on the first segment of PATH_INFO.

/wait/NAME       waits for the event NAME (set by /set/NAME) and answers
                 "met", or "alone" when it was never set within WAIT_S (or
                 the seconds of the query "s=..."): only a worker serving
                 both requests at once can answer "met"
/set/NAME        sets the event NAME
/raise_set/NAME  sets the event NAME, then raises (an error answered 500)
/hold/NAME       streams "a1", waits for the event NAME, then "a2"
/info            wsgi.multithread, the thread serving it, its stack size
"""

import ctypes
import json
import os
import threading

WAIT_S = 10.0       # bounds a wait that should end at once
EVENTS = {}
LOCK = threading.Lock()


def event(name):
    with LOCK:
        return EVENTS.setdefault(name, threading.Event())


class PthreadAttr(ctypes.Structure):
    _fields_ = [("opaque", ctypes.c_byte * 64)]    # pthread_attr_t: 56 bytes


def stack_size():
    """The stack size of the calling thread, as glibc knows it."""
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    attr = PthreadAttr()
    size = ctypes.c_size_t()
    if libc.pthread_getattr_np(ctypes.c_ulong(libc.pthread_self()),
                               ctypes.byref(attr)) != 0:
        return -1
    libc.pthread_attr_getstacksize(ctypes.byref(attr), ctypes.byref(size))
    libc.pthread_attr_destroy(ctypes.byref(attr))
    return size.value


def application(environ, start_response):
    parts = environ["PATH_INFO"].split("/")
    what, name = parts[1], "/".join(parts[2:])
    if what == "wait":
        query = environ["QUERY_STRING"]
        wait = float(query[2:]) if query.startswith("s=") else WAIT_S
        body = b"met" if event(name).wait(wait) else b"alone"
    elif what == "set":
        event(name).set()
        body = b"set"
    elif what == "raise_set":
        event(name).set()
        raise RuntimeError("raised on purpose in " + name)
    elif what == "hold":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return hold(name)
    elif what == "info":
        body = json.dumps({
            "multithread": environ["wsgi.multithread"],
            "thread": threading.get_ident(),
            "main": threading.get_ident() == threading.main_thread().ident,
            "stack": stack_size(),
            "pid": os.getpid(),
        }).encode()
    else:
        start_response("404 Not Found", [])
        return [b""]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def hold(name):
    yield b"a1"
    yield b"a2" if event(name).wait(WAIT_S) else b"alone"
