"""A Starlette application (Debian's python3-starlette), for the optional
test in test_python_asgi.py: routing, lifespan handlers, request bodies,
a streaming response, background work after the response."""

import contextlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

DONE = []


@contextlib.asynccontextmanager
async def lifespan(app):
    app.state.ready = "yes"
    yield
    DONE.append("shutdown")


async def home(request):
    return JSONResponse({"path": request.url.path, "root_path": request.scope["root_path"],
                         "ready": request.app.state.ready,
                         "query": dict(request.query_params)})


async def upload(request):
    body = await request.body()
    return PlainTextResponse("%d bytes" % len(body))


async def numbers(request):
    async def gen():
        for i in range(5):
            yield ("%d\n" % i).encode()
    return StreamingResponse(gen(), media_type="text/plain")


async def fail(request):
    raise RuntimeError("starlette route failed")


app = Starlette(lifespan=lifespan, routes=[
    Route("/", home), Route("/upload", upload, methods=["POST"]),
    Route("/numbers", numbers), Route("/fail", fail)])
