"""ASGI test applications for warren-python (tests/runtime/test_python_asgi.py).

`application` dispatches on the first segment of the path, so one worker
runs many of them in a row, and supports lifespan: startup puts
{"greeting": "hello"} in the state, and startup and shutdown are written
to the file named by WARREN_TEST_MARKER (when set).
"""

import asyncio
import hashlib
import json
import os

EVENTS = []             # what /wait-disconnect saw, read back with /events
_flags = {}             # asyncio.Events, made in the worker's loop


def flag(name):
    if name not in _flags:
        _flags[name] = asyncio.Event()
    return _flags[name]


def marker(text):
    path = os.environ.get("WARREN_TEST_MARKER")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def jsonable(value):
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value


async def start(send, status=200, headers=((b"content-type", b"text/plain"),)):
    await send({"type": "http.response.start", "status": status,
                "headers": list(headers)})


async def reply(send, body, status=200):
    await start(send, status)
    await send({"type": "http.response.body", "body": body})


async def reply_json(send, obj):
    await start(send, 200, [(b"content-type", b"application/json")])
    await send({"type": "http.response.body", "body": json.dumps(obj).encode()})


def pattern(n):
    block = bytes(range(251))
    return (block * (n // len(block) + 1))[:n]


# ------------------------------------------------------------------ http

async def scope_(scope, receive, send):
    out = jsonable(scope)
    out["types"] = {k: type(v).__name__ for k, v in scope.items()}
    await reply_json(send, out)


async def body(scope, receive, send):
    """Reads the whole body: its size, hash, and the events it came in."""
    data, events = b"", []
    while True:
        msg = await receive()
        assert msg["type"] == "http.request", msg
        data += msg["body"]
        events.append([len(msg["body"]), msg["more_body"]])
        if not msg["more_body"]:
            break
    await reply_json(send, {"len": len(data), "events": events,
                            "sha256": hashlib.sha256(data).hexdigest()})


async def echo(scope, receive, send):
    """Sends each body chunk back as it comes."""
    await start(send, 200, [(b"content-type", b"application/octet-stream")])
    while True:
        msg = await receive()
        await send({"type": "http.response.body", "body": msg["body"],
                    "more_body": True})
        if not msg["more_body"]:
            break
    await send({"type": "http.response.body"})


async def big(scope, receive, send):
    """One send of N bytes (the query): the driver waits for credit."""
    await reply(send, pattern(int(scope["query_string"])))


async def stream(scope, receive, send):
    await start(send)
    for i in range(int(scope["query_string"])):
        await send({"type": "http.response.body", "body": b"chunk %d\n" % i,
                    "more_body": True})
    await send({"type": "http.response.body", "body": b"end\n"})


async def raise_before(scope, receive, send):
    raise ZeroDivisionError("before start")


async def raise_after(scope, receive, send):
    await start(send)
    await send({"type": "http.response.body", "body": b"partial",
                "more_body": True})
    raise RuntimeError("after start")


async def started_only(scope, receive, send):
    await start(send)
    raise RuntimeError("start, then nothing")


async def no_response(scope, receive, send):
    return None


async def half_response(scope, receive, send):
    await start(send)
    await send({"type": "http.response.body", "body": b"half",
                "more_body": True})


async def body_first(scope, receive, send):
    await send({"type": "http.response.body", "body": b"x"})


async def start_twice(scope, receive, send):
    await start(send)
    await start(send)


async def after_end(scope, receive, send):
    await reply(send, b"done")
    await send({"type": "http.response.body", "body": b"more"})


async def bad_header(scope, receive, send):
    await start(send, 200, [(b"x-bad", b"a\r\nb")])


async def str_body(scope, receive, send):
    await start(send)
    await send({"type": "http.response.body", "body": "text"})


async def unknown_message(scope, receive, send):
    await send({"type": "http.response.push", "path": "/"})


async def after_response(scope, receive, send):
    await reply(send, b"fine")
    raise KeyError("after the response")


async def wait_disconnect(scope, receive, send):
    """Takes the first body event, sends the head (the test aborts once it
    saw it), waits for http.disconnect, then tries to go on anyway."""
    EVENTS.append((await receive())["type"])
    await start(send)
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    while True:
        msg = await receive()
        EVENTS.append(msg["type"])
        if msg["type"] == "http.disconnect":
            break
    try:
        await send({"type": "http.response.body", "body": b"late"})
    except OSError as exc:
        EVENTS.append(type(exc).__name__ + ":OSError")
    flag("disconnected").set()


async def events(scope, receive, send):
    await flag("disconnected").wait()
    await reply_json(send, EVENTS)


async def list_events(scope, receive, send):
    await reply_json(send, EVENTS)


async def disconnect_after_response(scope, receive, send):
    await reply(send, b"answered")
    EVENTS.append("after-response:" + (await receive())["type"])


async def rendezvous(scope, receive, send):
    """/rendezvous/wait answers only once /rendezvous/open was served:
    both must be in progress at once on one worker."""
    if scope["path"].endswith("/open"):
        flag("gate").set()
        await reply(send, b"opened")
    else:
        await flag("gate").wait()
        await reply(send, b"waited")


async def slow_reader(scope, receive, send):
    """Answers at once, reads the body afterwards (a body left unread)."""
    await reply(send, b"early")


async def state(scope, receive, send):
    scope["state"]["mutated"] = True        # a copy: never seen again
    await reply_json(send, scope["state"])


ROUTES = {
    "scope": scope_, "body": body, "echo": echo, "big": big,
    "stream": stream, "raise-before": raise_before,
    "raise-after": raise_after, "started-only": started_only,
    "no-response": no_response, "half-response": half_response,
    "body-first": body_first, "start-twice": start_twice,
    "after-end": after_end, "bad-header": bad_header, "str-body": str_body,
    "unknown-message": unknown_message, "after-response": after_response,
    "wait-disconnect": wait_disconnect, "events": events,
    "list": list_events,
    "disconnect-after-response": disconnect_after_response,
    "rendezvous": rendezvous, "early": slow_reader, "state": state,
}


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello"
            marker("startup")
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            marker("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    parts = scope["path"].split("/")
    name = parts[1] if len(parts) > 1 and parts[1] else "scope"
    # Under a prefix ("/a/scope"), the route follows the root path.
    if scope["root_path"] and scope["path"].startswith(scope["root_path"]):
        rest = scope["path"][len(scope["root_path"]):].split("/")
        name = rest[1] if len(rest) > 1 and rest[1] else "scope"
    await ROUTES.get(name, scope_)(scope, receive, send)   # else: the scope


# --------------------------------------------------------------- lifespan

async def startup_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed",
                    "message": "database unreachable"})
        return
    await reply(send, b"never")


async def startup_fails_then_raises(scope, receive, send):
    """As Starlette does: failed, then the exception itself."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed",
                    "message": "config missing"})
        raise RuntimeError("config missing")
    await reply(send, b"never")


async def no_lifespan(scope, receive, send):
    """As Django's handler: anything but http is refused."""
    if scope["type"] != "http":
        raise ValueError("only http here, not %s" % scope["type"])
    await reply_json(send, {"state": scope.get("state")})


async def shutdown_fails(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        marker("shutdown")
        await send({"type": "lifespan.shutdown.failed",
                    "message": "flush failed"})
        return
    await reply(send, b"ok")


# -------------------------------------------------------------- detection

async def _hello(scope, receive, send):
    if scope["type"] == "lifespan":
        return                  # unsupported, the quiet way
    await reply(send, b"hello from %s" % scope["path"].encode())


def three_args(scope, receive, send):
    """Not async, but three arguments: ASGI 3 returning an awaitable."""
    return _hello(scope, receive, send)


class Instance:
    async def __call__(self, scope, receive, send):
        await _hello(scope, receive, send)


instance = Instance()


class Legacy:
    """ASGI 2: the class is called with the scope, the instance awaited
    with receive and send."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            raise ValueError("no lifespan in this one")
        await reply(send, b"legacy " + self.scope["path"].encode())


def make_app():
    """A factory: called once, returns the application."""
    return application


def wsgi_looking(environ, start_response):
    """Two arguments: WSGI to the detection, whatever "protocol" says."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi"]
