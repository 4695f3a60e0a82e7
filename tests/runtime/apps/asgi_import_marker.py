"""The ASGI twin of import_marker: appends the importing process's pid to
$MARKER, and each lifespan startup as "startup PID" to the same file."""

import asyncio
import os

with open(os.environ["MARKER"], "a") as f:
    f.write("import %d\n" % os.getpid())


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        with open(os.environ["MARKER"], "a") as f:
            f.write("startup %d\n" % os.getpid())
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    asyncio.get_running_loop()          # the worker's own
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"x-pid", str(os.getpid()).encode()),
        (b"x-worker", os.environ.get("WARREN_WORKER_ID", "").encode())]})
    await send({"type": "http.response.body", "body": b"forked"})
