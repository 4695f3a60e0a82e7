"""settings.telemetry and W3C trace context: the request's own span reaches
applications and upstreams as traceparent, and the span the collector gets
is the one they saw as their parent."""

import http.server
import json
import shutil
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

WSGI = '''
def application(environ, start_response):
    body = environ.get("HTTP_TRACEPARENT", "none").encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP collector: every span it is sent, by span id."""

    def __init__(self):
        self.spans = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), CollectorHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def span(self, span_id):
        def found():
            with self.lock:
                return self.spans.get(span_id)
        assert wh.wait_for(found, timeout=5), "span %s never came" % span_id
        return found()


class CollectorHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            for rs in doc["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    for s in ss["spans"]:
                        self.server.spans[s["spanId"]] = s
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


class Echo(http.server.BaseHTTPRequestHandler):
    """An upstream answering the traceparent it got."""

    def do_GET(self):
        body = (self.headers.get("traceparent") or "none").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def world(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-tel-")
    hh.write(appdir, "tp_wsgi.py", WSGI)
    collector = Collector()
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    w = warren_factory(extra_args=["--modulesdir", rt])
    port = hh.setup(w, [
        {"match": {"uri": "/app/*"}, "action": {"pass": "applications/tp"}},
        {"action": {"proxy": "http://127.0.0.1:%d" % upstream.server_address[1]}}],
        settings={"telemetry": {
            "endpoint": "http://127.0.0.1:%d/v1/traces" % collector.server_address[1],
            "protocol": "http", "batch_size": 1, "sampling_ratio": 1}},
        extra={"applications": {"tp": {"type": "python", "path": appdir,
                                       "module": "tp_wsgi", "processes": 1}}})
    yield port, collector
    collector.shutdown()
    upstream.shutdown()
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def parts(tp):
    version, trace, span, flags = tp.split("-")
    assert version == "00" and len(trace) == 32 and len(span) == 16, tp
    return trace, span, flags


@pytest.mark.parametrize("path", ["/app/x", "/proxied"])
def test_caller_trace_continues_through_warren(world, path):
    port, collector = world
    r = hh.get(port, path, {"traceparent": CALLER})
    assert r.status == 200, r
    trace, span, flags = parts(r.body.decode())
    assert trace == CALLER.split("-")[1] and flags == "01"
    assert span != CALLER.split("-")[2]            # Warren's own span, not the caller's
    s = collector.span(span)
    assert s["traceId"] == trace and s["parentSpanId"] == CALLER.split("-")[2], s


@pytest.mark.parametrize("path", ["/app/x", "/proxied"])
def test_new_trace_reaches_the_upstream(world, path):
    port, collector = world
    r = hh.get(port, path)
    trace, span, flags = parts(r.body.decode())
    assert flags == "01"
    s = collector.span(span)
    assert s["traceId"] == trace and not s.get("parentSpanId"), s


def test_unsampled_caller_is_passed_on_unsampled(world):
    port, collector = world
    caller = CALLER[:-2] + "00"
    r = hh.get(port, "/app/x", {"traceparent": caller})
    trace, span, flags = parts(r.body.decode())
    assert trace == CALLER.split("-")[1] and flags == "00"
    # A sampled request after it: once its span is in, the first one would be.
    collector.span(parts(hh.get(port, "/app/marker").body.decode())[1])
    with collector.lock:
        assert span not in collector.spans
