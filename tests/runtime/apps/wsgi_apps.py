"""WSGI test applications for warren-python. `application` dispatches on the
first segment of PATH_INFO ("/env/anything" -> env; "" -> env), so one worker can run
many of them in a row. Results the test cannot see in one response (close()
calls) are kept in CLOSED and read back with /closed.
"""

import gc
import hashlib
import io
import json
import sys

CLOSED = []
NOT_CALLABLE = "a string"
JSON = [("Content-Type", "application/json")]


def reply_json(start_response, obj, status="200 OK"):
    start_response(status, list(JSON))
    return [json.dumps(obj).encode()]


def env(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["wsgi.version"] = list(environ["wsgi.version"])
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.input_terminated"):
        out[key] = environ[key]
    out["input_type"] = type(environ["wsgi.input"]).__name__
    out["errors_type"] = type(environ["wsgi.errors"]).__name__
    out["file_wrapper_callable"] = callable(environ["wsgi.file_wrapper"])
    out["keys_are_str"] = all(type(k) is str for k in environ)
    return reply_json(start_response, out)


# ---------------------------------------------------------------- body

READ_SIZE = 100000      # not a multiple of any chunk the router sends


def summary(data, sizes):
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "sizes": sizes}


def body(environ, start_response):
    inp = environ["wsgi.input"]
    mode = environ["QUERY_STRING"]
    parts = []
    if mode == "read":
        while True:
            piece = inp.read(READ_SIZE)
            if not piece:
                break
            parts.append(piece)
    elif mode == "readall":
        parts.append(inp.read())
        parts.append(inp.read())        # b"" at the end, again
    elif mode == "readline":
        while True:
            line = inp.readline()
            if not line:
                break
            parts.append(line)
    elif mode == "readline_size":
        while True:
            line = inp.readline(1000)
            if not line:
                break
            parts.append(line)
    elif mode == "iter":
        parts.extend(inp)
    elif mode == "readlines":
        parts.extend(inp.readlines())
    elif mode == "readlines_hint":
        parts.extend(inp.readlines(10))
        parts.append(inp.read())
    elif mode == "partial":
        parts.append(inp.read(10))
    data = b"".join(parts)
    sizes = sorted(set(len(p) for p in parts))
    return reply_json(start_response, summary(data, sizes[:5] + sizes[-5:]))


def progress(environ, start_response):
    """Answers while the body still arrives: one line per 256 KiB read."""
    inp = environ["wsgi.input"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    total = 0
    while True:
        piece = inp.read(256 * 1024)
        if not piece:
            break
        total += len(piece)
        yield b"%d\n" % total


# ------------------------------------------------------------ response

def write(environ, start_response):
    w = start_response("200 OK", [("Content-Type", "text/plain")])
    w(b"one ")
    w(bytearray(b"two "))
    w(b"")
    return [b"three"]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Stream", "yes")])
    yield b""
    for i in range(5):
        yield b"chunk %d\n" % i


def big(environ, start_response):
    """1 MiB in 64 KiB pieces: more than one response window."""
    start_response("200 OK", [])
    for i in range(16):
        yield bytes([65 + i]) * 65536


class Tracked:
    """An iterable with close(), recording its calls in CLOSED."""

    def __init__(self, name, items, fail_at=None):
        self.name, self.items, self.fail_at = name, items, fail_at

    def __iter__(self):
        for i, item in enumerate(self.items):
            if i == self.fail_at:
                raise ValueError("failed in iteration at %d" % i)
            yield item

    def close(self):
        CLOSED.append(self.name)


def closing(environ, start_response):
    kind = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if kind == "ok":
        return Tracked("ok", [b"a", b"b"])
    if kind == "before_body":
        return Tracked("before_body", [b"a"], fail_at=0)
    return Tracked("after_body", [b"a", b"b"], fail_at=1)


def closed(environ, start_response):
    out = list(CLOSED)
    del CLOSED[:]
    return reply_json(start_response, out)


# ------------------------------------------------------------ exc_info

def exc_replace(environ, start_response):
    start_response("200 OK", [("X-Before", "1")])
    try:
        1 / 0
    except ZeroDivisionError:
        start_response("503 Service Unavailable",
                       [("Content-Type", "text/plain")], sys.exc_info())
    return [b"handled"]


def exc_empty_chunk(environ, start_response):
    """An empty chunk does not send the head: exc_info may still
    replace it."""
    start_response("200 OK", [])
    yield b""
    try:
        raise KeyError("late")
    except KeyError:
        start_response("502 Bad Gateway", [], sys.exc_info())
    yield b"replaced"


def exc_after_head(environ, start_response):
    start_response("200 OK", [])
    yield b"part1 "
    try:
        1 / 0
    except ZeroDivisionError:
        try:
            start_response("500 Oops", [], sys.exc_info())
        except ZeroDivisionError:
            yield b"reraised"
            return
    yield b"not reraised"


def exc_after_head_uncaught(environ, start_response):
    start_response("200 OK", [])
    yield b"part1 "
    try:
        1 / 0
    except ZeroDivisionError:
        start_response("500 Oops", [], sys.exc_info())


def start_twice(environ, start_response):
    start_response("200 OK", [])
    try:
        start_response("201 Created", [])
    except RuntimeError as e:
        return [b"RuntimeError: " + str(e).encode()]
    return [b"no error"]


def bad_heads(environ, start_response):
    """Each bad start_response raises; the error types come back."""
    cases = {
        "short status": ("20 OK", []),
        "status no space": ("200OK", []),
        "status letters": ("abc OK", []),
        "status CRLF": ("200 OK\r\nX-Evil: 1", []),
        "status bytes": (b"200 OK", []),
        "status 099": ("099 Low", []),
        "header CRLF": ("200 OK", [("X-A", "a\r\nX-Evil: 1")]),
        "header LF": ("200 OK", [("X-A", "a\nb")]),
        "header name space": ("200 OK", [("Bad Name", "x")]),
        "header name colon": ("200 OK", [("Bad:", "x")]),
        "header bytes": ("200 OK", [(b"X-A", b"x")]),
        "header not pair": ("200 OK", [("X-A", "x", "y")]),
        "header not latin-1": ("200 OK", [("X-A", "\u20ac")]),
        "headers not list": ("200 OK", 42),
    }
    out = {}
    for name, (status, headers) in cases.items():
        try:
            start_response(status, headers)
            out[name] = "accepted"
        except Exception as e:          # noqa: BLE001 - we report them all
            out[name] = type(e).__name__
    return reply_json(start_response, out)


def reason(environ, start_response):
    start_response("299 Whatever You Like", [("X-Only", "status code")])
    return [b""]


# ------------------------------------------------------------ errors

def raise_(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    raise ValueError("boom in the app")


def no_start(environ, start_response):
    return [b"body without start_response"]


def str_body(environ, start_response):
    start_response("200 OK", [])
    return ["a str, not bytes"]


def none(environ, start_response):
    start_response("200 OK", [])
    return None


def errors(environ, start_response):
    err = environ["wsgi.errors"]
    err.write("line one\nhalf ")
    err.write("done\n")
    err.writelines(["from writelines\n", "tail without newline"])
    start_response("200 OK", [])
    return [b"logged"]


def stale(environ, start_response):
    """Keeps start_response and wsgi.input for the next request."""
    write_cb = start_response("200 OK", [])
    STALE[:] = [start_response, write_cb, environ["wsgi.input"]]
    return [b"kept"]


STALE = []


def use_stale(environ, start_response):
    out = {}
    old_start, old_write, old_input = STALE
    for name, call in (("start_response", lambda: old_start("200 OK", [])),
                       ("write", lambda: old_write(b"x")),
                       ("read", lambda: old_input.read())):
        try:
            out[name] = repr(call())
        except Exception as e:          # noqa: BLE001
            out[name] = type(e).__name__
    return reply_json(start_response, out)


# ------------------------------------------------------------ file_wrapper

class TrackedFile(io.FileIO):
    def close(self):
        if not self.closed:
            CLOSED.append("file")
        super().close()


class TrackedBytes(io.BytesIO):
    def close(self):
        CLOSED.append("bytesio")
        super().close()


def file(environ, start_response):
    kind, _, path = environ["QUERY_STRING"].partition(":")
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    wrapper = environ["wsgi.file_wrapper"]
    if kind == "fd":
        return wrapper(TrackedFile(path, "rb"), 32768)
    if kind == "buffered":
        # A buffered reader reads ahead: sending starts at tell(), 10.
        f = open(path, "rb")
        f.read(10)
        return wrapper(f)
    with open(path, "rb") as f:
        data = f.read()
    return wrapper(TrackedBytes(data), block_size=7000)


# ------------------------------------------------------------ housekeeping

def alloc(environ, start_response):
    gc.collect()
    return reply_json(start_response, {"blocks": sys.getallocatedblocks(),
                                       "objects": len(gc.get_objects())})


ROUTES = {
    "env": env, "body": body, "progress": progress, "write": write,
    "stream": stream, "big": big, "closing": closing, "closed": closed,
    "exc_replace": exc_replace, "exc_empty_chunk": exc_empty_chunk,
    "exc_after_head": exc_after_head,
    "exc_after_head_uncaught": exc_after_head_uncaught,
    "start_twice": start_twice, "bad_heads": bad_heads, "reason": reason,
    "raise": raise_, "no_start": no_start, "str_body": str_body,
    "none": none, "errors": errors, "stale": stale, "use_stale": use_stale,
    "file": file, "alloc": alloc,
}


class Namespace:
    """For a dotted WARREN_PYTHON_CALLABLE: "Namespace.write"."""
    write = staticmethod(write)


def application(environ, start_response):
    parts = environ["PATH_INFO"].split("/")
    name = parts[1] if len(parts) > 1 else "env"    # "": the mount point
    return ROUTES[name](environ, start_response)


# ------------------------------------------------------------ factories

def create_app():
    def factory_made(environ, start_response):
        start_response("200 OK", [])
        return [b"made by the factory"]
    return factory_made


def failing_factory():
    raise RuntimeError("no database")


def none_factory():
    return None
