"""Real frameworks from Debian (python3-flask, python3-django,
python3-starlette, installed by scripts/deps.sh) under `type: "python"`:
what a Unit user moving a Flask, Django or Starlette app over runs first.
Each test drives the framework's own request and response machinery
(routing under a prefix, forms and uploads, cookies, streaming, files
through wsgi.file_wrapper, error pages, lifespan, a WebSocket)."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

import http_helpers as hh
import warren_helpers as wh
from test_python_websocket import WS, TEXT

PYTHON = "/usr/bin/python3"


def have(module):
    """Is module importable by Debian's interpreter (not the test's)?"""
    return subprocess.run([PYTHON, "-c", "import " + module],
                          capture_output=True).returncode == 0


FLASK_APP = '''
from flask import Flask, Response, jsonify, redirect, request, send_file, url_for

app = Flask(__name__)

@app.get("/")
def index():
    return "hello from flask"

@app.get("/info")
def info():
    return jsonify(path=request.path, script_root=request.script_root,
                   args=request.args.to_dict(), host=request.host,
                   scheme=request.scheme, remote=request.remote_addr,
                   url_for=url_for("info", x=1))

@app.post("/form")
def form():
    return jsonify(form=request.form.to_dict(),
                   files={k: [f.filename, len(f.read())] for k, f in request.files.items()})

@app.get("/stream")
def stream():
    def parts():
        for i in range(5):
            yield "part %d\\n" % i
    return Response(parts(), mimetype="text/plain")

@app.get("/go")
def go():
    return redirect(url_for("info"))

@app.get("/cookies")
def cookies():
    r = jsonify(got=request.cookies.get("a"))
    r.set_cookie("b", "2")
    r.set_cookie("c", "3")
    return r

@app.get("/file")
def file():
    return send_file(__file__, mimetype="text/x-python")

@app.get("/boom")
def boom():
    raise RuntimeError("boom")
'''

DJANGO_APP = '''
from django.conf import settings

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   SECRET_KEY="warren-test-" + "x" * 40, MIDDLEWARE=[], USE_TZ=True)

import django
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path, reverse

def index(r):
    return HttpResponse("hello from django")

def info(r):
    return JsonResponse({"path": r.path, "path_info": r.path_info,
                         "script_name": r.META.get("SCRIPT_NAME"), "get": r.GET.dict(),
                         "host": r.get_host(), "secure": r.is_secure(),
                         "method": r.method, "reverse": reverse("info"),
                         "remote": r.META.get("REMOTE_ADDR")})

def post(r):
    return JsonResponse({"post": r.POST.dict(),
                         "files": {k: [f.name, f.size] for k, f in r.FILES.items()}})

def raw(r):
    return HttpResponse(str(len(r.body)))

def stream(r):
    return StreamingHttpResponse("line %d\\n" % i for i in range(5))

def file(r):
    return FileResponse(open(__file__, "rb"))

urlpatterns = [path("", index), path("info", info, name="info"), path("post", post),
               path("raw", raw), path("stream", stream), path("file", file)]

application = get_wsgi_application()

from django.core.asgi import get_asgi_application   # noqa: E402
asgi_application = get_asgi_application()
'''

STARLETTE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute

started = []

async def startup():
    started.append(1)

async def index(request):
    return PlainTextResponse("hello from starlette")

async def info(request):
    return JSONResponse({"path": request.url.path, "root_path": request.scope.get("root_path"),
                         "query": dict(request.query_params), "started": len(started),
                         "client": request.client.host if request.client else None,
                         "http_version": request.scope["http_version"]})

async def echo(request):
    body = await request.body()
    return PlainTextResponse(body[::-1])

async def stream(request):
    async def parts():
        for i in range(5):
            yield "chunk %d\\n" % i
    return StreamingResponse(parts(), media_type="text/plain")

async def shout(websocket):
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(text.upper())
    await websocket.close(code=1000)

# Starlette 0.26 (Debian 12) routes on the path under its own Mount, not on
# the ASGI root_path: mounted at /fw here, with no "prefix" in the config
# (docs/applications.md, prefix).
app = Starlette(routes=[Mount("/fw", routes=[
                    Route("/", index), Route("/info", info),
                    Route("/echo", echo, methods=["POST"]), Route("/stream", stream),
                    WebSocketRoute("/ws", shout)])],
                on_startup=[startup])
'''


@pytest.fixture
def pyw(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-fw-")
    hh.write(appdir, "flask_app.py", FLASK_APP)
    hh.write(appdir, "django_app.py", DJANGO_APP)
    hh.write(appdir, "starlette_app.py", STARLETTE_APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def start(w, app):
    return hh.setup(w, [{"match": {"uri": "/fw/*"}, "action": {"pass": "applications/fw"}}],
                    extra={"applications": {"fw": app}})


def multipart(fields, files):
    """A multipart/form-data body and its Content-Type."""
    b = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (b, k, v)).encode()
    for k, (name, data) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, k, name)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b


def get(port, path, **kw):
    return hh.get(port, path, **kw)


@pytest.mark.skipif(not have("flask"), reason="python3-flask is not installed (scripts/deps.sh installs it)")
def test_flask(pyw):
    w, appdir = pyw
    port = start(w, {"type": "python", "path": appdir, "module": "flask_app",
                     "callable": "app", "prefix": "/fw"})
    r = get(port, "/fw/")
    assert (r.status, r.body) == (200, b"hello from flask")
    info = json.loads(get(port, "/fw/info?a=1&b=two", host="example.test").body)
    assert info == {"path": "/info", "script_root": "/fw", "args": {"a": "1", "b": "two"},
                    "host": "example.test", "scheme": "http", "remote": "127.0.0.1",
                    "url_for": "/fw/info?x=1"}
    upload = os.urandom(300000)
    body, ctype = multipart({"name": "Ada", "city": "Zürich"}, {"doc": ("a.bin", upload)})
    r = get(port, "/fw/form", method="POST", body=body, headers={"Content-Type": ctype})
    assert r.status == 200, r
    assert json.loads(r.body) == {"form": {"name": "Ada", "city": "Zürich"},
                                  "files": {"doc": ["a.bin", 300000]}}
    r = get(port, "/fw/stream")
    assert (r.status, r.body) == (200, b"".join(b"part %d\n" % i for i in range(5)))
    r = get(port, "/fw/go")
    assert r.status == 302 and r.header("Location").endswith("/fw/info"), r
    r = get(port, "/fw/cookies", headers={"Cookie": "a=1"})
    assert json.loads(r.body) == {"got": "1"}
    assert sorted(v.split(";")[0] for v in r.all("Set-Cookie")) == ["b=2", "c=3"]
    r = get(port, "/fw/file")
    assert r.status == 200 and r.body == FLASK_APP.encode()
    assert r.header("Content-Type").startswith("text/x-python")
    assert get(port, "/fw/boom").status == 500
    assert get(port, "/fw/nothing-here").status == 404


@pytest.mark.skipif(not have("django"), reason="python3-django is not installed (scripts/deps.sh installs it)")
def test_django(pyw):
    w, appdir = pyw
    check_django(start(w, {"type": "python", "path": appdir, "module": "django_app",
                           "prefix": "/fw"}))


def check_django(port):
    """The Django project's pages, through WSGI or ASGI alike."""
    r = get(port, "/fw/")
    assert (r.status, r.body) == (200, b"hello from django")
    info = json.loads(get(port, "/fw/info?q=x", host="example.test:8080").body)
    assert info == {"path": "/fw/info", "path_info": "/info", "script_name": "/fw",
                    "get": {"q": "x"}, "host": "example.test:8080", "secure": False,
                    "method": "GET", "reverse": "/fw/info", "remote": "127.0.0.1"}
    body, ctype = multipart({"name": "Grace"}, {"doc": ("b.txt", b"z" * 70000)})
    r = get(port, "/fw/post", method="POST", body=body, headers={"Content-Type": ctype})
    assert json.loads(r.body) == {"post": {"name": "Grace"}, "files": {"doc": ["b.txt", 70000]}}
    r = get(port, "/fw/raw", method="POST", body=b"q" * 1000000,
            headers={"Content-Type": "application/octet-stream"})
    assert (r.status, r.body) == (200, b"1000000")
    r = get(port, "/fw/stream")
    assert (r.status, r.body) == (200, b"".join(b"line %d\n" % i for i in range(5)))
    r = get(port, "/fw/file")
    assert r.status == 200 and r.body == DJANGO_APP.encode()
    assert get(port, "/fw/nothing-here").status == 404


@pytest.mark.skipif(not have("starlette"),
                    reason="python3-starlette is not installed (scripts/deps.sh installs it)")
def test_starlette_asgi(pyw):
    w, appdir = pyw
    port = start(w, {"type": "python", "path": appdir, "module": "starlette_app",
                     "callable": "app", "protocol": "asgi"})
    r = get(port, "/fw/")
    assert (r.status, r.body) == (200, b"hello from starlette")
    info = json.loads(get(port, "/fw/info?k=v").body)
    # The lifespan's startup ran before the first request.
    assert info == {"path": "/fw/info", "root_path": "/fw", "query": {"k": "v"},
                    "started": 1, "client": "127.0.0.1", "http_version": "1.1"}
    data = os.urandom(200000)
    r = get(port, "/fw/echo", method="POST", body=data)
    assert r.status == 200 and r.body == data[::-1]
    r = get(port, "/fw/stream")
    assert (r.status, r.body) == (200, b"".join(b"chunk %d\n" % i for i in range(5)))
    ws = WS(port, "/fw/ws")
    try:
        assert ws.r.status == 101, ws.r
        ws.send(TEXT, "quiet")
        assert ws.recv() == (True, TEXT, b"QUIET")
        assert ws.close_code() == (1000, b"")
    finally:
        ws.close()


@pytest.mark.skipif(not have("django"), reason="python3-django is not installed (scripts/deps.sh installs it)")
def test_django_asgi(pyw):
    """The same Django project through django.core.asgi."""
    w, appdir = pyw
    check_django(start(w, {"type": "python", "path": appdir, "module": "django_app",
                           "callable": "asgi_application", "protocol": "asgi",
                           "prefix": "/fw"}))
