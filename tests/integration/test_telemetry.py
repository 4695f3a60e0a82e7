"""settings.telemetry (Unit 1.34): one span per request the router answers,
exported as OTLP/HTTP JSON to a collector. The collector here is a small
http.server in a thread that records every POST (path, headers, JSON body)
and answers 200 {}.

The collector closes each connection after its answer: whatever socket the
exporter opened for a POST is transient, and each test that received spans
waits until the exports have been quiet for a moment (settle()) before the
post-test fd check runs."""

import http.server
import json
import re
import shutil
import socketserver
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

TEL = "/config/settings/telemetry"
TID = "4bf92f3577b34da6a3ce929d0e0e4736"
PID = "00f067aa0ba902b7"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


# --------------------------------------------------------------------------
# the collector

class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Collector:
    """Records every request: dicts with method, path, headers (lower-case
    names), raw body, body (parsed JSON or None), t (monotonic)."""

    def __init__(self, port=0):
        self.posts = []
        self.lock = threading.Lock()
        col = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self):
                te = (self.headers.get("Transfer-Encoding") or "").lower()
                if "chunked" in te:
                    out = b""
                    while True:
                        n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if n == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(n)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self):
                raw = self._body()
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                rec = {"method": self.command, "path": self.path,
                       "headers": {k.lower(): v for k, v in self.headers.items()},
                       "raw": raw, "body": body, "t": time.monotonic()}
                with col.lock:
                    col.posts.append(rec)
                out = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(out)
                self.close_connection = True

            do_POST = do_PUT = do_GET = _handle

        self.srv = _Server(("127.0.0.1", port), H)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.closed = False

    def endpoint(self, path="/v1/traces"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def records(self):
        with self.lock:
            return list(self.posts)

    def spans(self):
        out = []
        for rec in self.records():
            out.extend(spans_of(rec["body"]))
        return out

    def paths(self):
        """url.path of every span received."""
        return [sattr(s, "url.path") for s in self.spans()]

    def wait_spans(self, n, timeout=5.0):
        got = wh.wait_for(lambda: len(self.spans()) >= n, timeout, 0.02)
        assert got, "expected %d spans within %.1fs, got %d: %r" % (
            n, timeout, len(self.spans()), self.records()[-5:])
        return self.spans()

    def wait_path(self, path, timeout=5.0):
        def f():
            for s in self.spans():
                if attrs(s).get("url.path") == ("stringValue", path):
                    return s
            return None
        s = wh.wait_for(f, timeout, 0.02)
        assert s, "no span for %s within %.1fs; got %r" % (path, timeout, self.paths())
        return s

    def close(self):
        if not self.closed:
            self.closed = True
            self.srv.shutdown()
            self.srv.server_close()


@pytest.fixture
def collectors():
    made = []

    def make(port=0):
        c = Collector(port)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


@pytest.fixture
def col(collectors):
    return collectors()


def settle(*cols, quiet=0.5, timeout=5.0):
    """Wait until no collector received anything for `quiet` seconds: the
    exporter's transient connections are closed before the fd check."""
    def f():
        last = [r["t"] for c in cols for r in c.records()]
        return not last or time.monotonic() - max(last) >= quiet
    time.sleep(0.05)
    wh.wait_for(f, timeout, 0.05)


# --------------------------------------------------------------------------
# OTLP JSON

def spans_of(body):
    """The spans of one export body, checking its envelope."""
    assert isinstance(body, dict), "export body is not a JSON object: %r" % (body,)
    rs = body.get("resourceSpans")
    assert isinstance(rs, list) and rs, body
    out = []
    for r in rs:
        for ss in r.get("scopeSpans", []):
            out.extend(ss.get("spans", []))
    return out


def attrs(span):
    """{key: (value type, value)}; each key once."""
    out = {}
    for a in span.get("attributes", []):
        assert a["key"] not in out, "attribute %s twice: %r" % (a["key"], span)
        (typ, val), = a["value"].items()
        out[a["key"]] = (typ, val)
    return out


def sattr(span, key):
    a = attrs(span).get(key)
    assert a is not None, "no %s in %r" % (key, span)
    assert a[0] == "stringValue", (key, a)
    return a[1]


def status_code_attr(span):
    a = attrs(span).get("http.response.status_code")
    assert a is not None, span
    assert a[0] == "intValue" and isinstance(a[1], str), a
    return a[1]


def no_parent(span):
    return span.get("parentSpanId") in (None, "")


def is_error(span):
    return (span.get("status") or {}).get("code", 0) == 2


def by_path(spans):
    out = {}
    for s in spans:
        out.setdefault(sattr(s, "url.path"), []).append(s)
    return out


# --------------------------------------------------------------------------
# config

def tel(endpoint, batch_size=1, sampling_ratio=1, **kw):
    t = {"endpoint": endpoint, "protocol": "http"}
    if batch_size is not None:
        t["batch_size"] = batch_size
    if sampling_ratio is not None:
        t["sampling_ratio"] = sampling_ratio
    t.update(kw)
    return t


RETURN_ROUTES = [{"match": {"uri": "/err*"}, "action": {"return": 503}},
                 {"match": {"uri": "/boom*"}, "action": {"return": 500}},
                 {"match": {"uri": "/r*"}, "action": {"return": 200}},
                 {"action": {"return": 404}}]


def serve(w, telemetry, routes=RETURN_ROUTES, extra=None):
    return hh.setup(w, routes, settings={"telemetry": telemetry}, extra=extra)


def tp(tid=TID, pid=PID, flags="01"):
    return "00-%s-%s-%s" % (tid, pid, flags)


# --------------------------------------------------------------------------
# configuration

def put_tel(w, value):
    cfg = wh.deep(w.base)
    cfg.setdefault("settings", {})["telemetry"] = value
    return w.put("/config", cfg)


def assert_refused(w, value, pointer, words=None):
    """A valid telemetry object is in place first (without the feature even
    that is refused); the invalid one is refused and changes nothing."""
    s, j = put_tel(w, tel(EP))
    assert (s, j) == (200, wh.SUCCESS), j
    before = w.config_bytes()
    s, j = put_tel(w, value)
    assert s == 400, (value, s, j)
    assert j.get("error") == "Invalid configuration.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    want = pointer if isinstance(pointer, (list, tuple)) else [pointer]
    assert j.get("location") in [{"path": p} for p in want], (value, j)
    if words:
        assert words in j["detail"], j
    assert w.config_bytes() == before


EP = "http://127.0.0.1:4318/v1/traces"


def test_grpc_accepted(vwarren):
    """"grpc" is the other protocol (test_telemetry_grpc.py exports with it)."""
    w = vwarren
    s, j = w.put("/config/settings", {"telemetry": tel(EP)})
    assert (s, j) == (200, wh.SUCCESS), j
    r = w.request("PUT", TEL + "/protocol", json.dumps("grpc"))
    assert r.status == 200, r
    assert w.get(TEL + "/protocol") == (200, "grpc")


GONE = object()     # the key is left out

BAD = [
    ("protocol-other", {"protocol": "https"}, "/settings/telemetry/protocol"),
    ("protocol-number", {"protocol": 1}, "/settings/telemetry/protocol"),
    ("protocol-missing", {"protocol": GONE},
     ["/settings/telemetry", "/settings/telemetry/protocol"]),
    ("endpoint-missing", {"endpoint": GONE},
     ["/settings/telemetry", "/settings/telemetry/endpoint"]),
    ("endpoint-not-string", {"endpoint": 4318}, "/settings/telemetry/endpoint"),
    ("endpoint-no-scheme", {"endpoint": "127.0.0.1:4318/v1/traces"},
     "/settings/telemetry/endpoint"),
    ("endpoint-ftp", {"endpoint": "ftp://127.0.0.1/v1/traces"},
     "/settings/telemetry/endpoint"),
    ("endpoint-empty", {"endpoint": ""}, "/settings/telemetry/endpoint"),
    ("endpoint-no-host", {"endpoint": "http://"}, "/settings/telemetry/endpoint"),
    ("endpoint-v6-unclosed", {"endpoint": "http://[::1:4318"}, "/settings/telemetry/endpoint"),
    ("endpoint-port-text", {"endpoint": "http://h:abc/x"}, "/settings/telemetry/endpoint"),
    ("endpoint-port-big", {"endpoint": "http://h:70000"}, "/settings/telemetry/endpoint"),
    ("batch-zero", {"batch_size": 0}, "/settings/telemetry/batch_size"),
    ("batch-negative", {"batch_size": -3}, "/settings/telemetry/batch_size"),
    ("batch-fraction", {"batch_size": 1.5}, "/settings/telemetry/batch_size"),
    ("batch-string", {"batch_size": "10"}, "/settings/telemetry/batch_size"),
    ("batch-bool", {"batch_size": True}, "/settings/telemetry/batch_size"),
    ("ratio-negative", {"sampling_ratio": -0.1}, "/settings/telemetry/sampling_ratio"),
    ("ratio-above-one", {"sampling_ratio": 1.01}, "/settings/telemetry/sampling_ratio"),
    ("ratio-string", {"sampling_ratio": "1"}, "/settings/telemetry/sampling_ratio"),
    ("ratio-bool", {"sampling_ratio": True}, "/settings/telemetry/sampling_ratio"),
    ("ratio-null", {"sampling_ratio": None}, "/settings/telemetry/sampling_ratio"),
    ("batch-null", {"batch_size": None}, "/settings/telemetry/batch_size"),
    ("unknown-key", {"service_name": "x"}, "/settings/telemetry/service_name"),
]


@pytest.mark.parametrize("change,pointer", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid(vwarren, change, pointer):
    t = tel(EP)
    for k, v in change.items():
        if v is GONE:
            del t[k]
        else:
            t[k] = v
    assert_refused(vwarren, t, pointer)


def test_not_an_object(vwarren):
    assert_refused(vwarren, "http://127.0.0.1:4318", "/settings/telemetry")
    assert_refused(vwarren, [tel(EP)], "/settings/telemetry")


GOOD = [
    ("minimal", {"endpoint": EP, "protocol": "http"}),
    ("https", tel("https://collector.example:4318/v1/traces")),
    ("no-path", tel("http://127.0.0.1:4318")),
    ("ratio-zero", tel(EP, sampling_ratio=0)),
    ("ratio-half", tel(EP, sampling_ratio=0.5)),
    ("ratio-one-float", tel(EP, sampling_ratio=1.0)),
    ("batch-large", tel(EP, batch_size=1000)),
]


@pytest.mark.parametrize("value", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_valid(vwarren, value):
    s, j = put_tel(vwarren, value)
    assert (s, j) == (200, wh.SUCCESS), (value, j)
    assert vwarren.get(TEL) == (200, value)


# --------------------------------------------------------------------------
# spans

def test_span_shape(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint()))
    t0 = time.time_ns()
    r = hh.get(port, "/r/a.b?x=1&y=%20z", {"User-Agent": "tel-test/1.0"},
               host="svc.example:8123")
    assert r.status == 200
    col.wait_spans(1)
    time.sleep(0.3)
    t1 = time.time_ns()
    recs = col.records()
    assert len(recs) == 1, recs
    rec = recs[0]
    assert rec["method"] == "POST" and rec["path"] == "/v1/traces", rec
    ctype = rec["headers"].get("content-type", "")
    assert ctype.split(";")[0].strip().lower() == "application/json", rec["headers"]
    body = rec["body"]
    assert isinstance(body, dict), rec["raw"][:500]
    assert len(body["resourceSpans"]) == 1, body
    res = body["resourceSpans"][0]
    rattrs = {a["key"]: a["value"] for a in res["resource"]["attributes"]}
    assert rattrs.get("service.name") == {"stringValue": "warren"}, res["resource"]
    assert len(res["scopeSpans"]) == 1, res
    ss = res["scopeSpans"][0]
    assert ss["scope"]["name"] == "warren", ss["scope"]
    assert len(ss["spans"]) == 1, ss
    span = ss["spans"][0]

    assert HEX32.fullmatch(span["traceId"]) and span["traceId"] != "0" * 32, span
    assert HEX16.fullmatch(span["spanId"]) and span["spanId"] != "0" * 16, span
    assert span["name"] == "GET", span
    assert span["kind"] == 2, span
    st, en = span["startTimeUnixNano"], span["endTimeUnixNano"]
    assert isinstance(st, str) and st.isdigit(), span
    assert isinstance(en, str) and en.isdigit(), span
    assert int(en) >= int(st), span
    assert t0 - 5 * 10**9 <= int(st) <= t1 and t0 - 5 * 10**9 <= int(en) <= t1, (t0, t1, span)
    assert no_parent(span), span
    assert span.get("status") in (None, {}, {"code": 0}), span

    a = attrs(span)
    assert a["http.request.method"] == ("stringValue", "GET"), a
    assert a["url.path"] == ("stringValue", "/r/a.b"), a
    assert a["url.query"] == ("stringValue", "x=1&y=%20z"), a
    assert a["url.scheme"] == ("stringValue", "http"), a
    assert a["server.address"] == ("stringValue", "svc.example"), a
    assert a["client.address"] == ("stringValue", "127.0.0.1"), a
    assert a["user_agent.original"] == ("stringValue", "tel-test/1.0"), a
    assert a["http.response.status_code"] == ("intValue", "200"), a
    settle(col)


def test_span_without_query_and_user_agent(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint()))
    assert hh.get(port, "/nowhere/p%41th", method="POST", body=b"abc").status == 404
    assert hh.get(port, "/r", method="HEAD").status == 200
    spans = col.wait_spans(2)
    got = by_path(spans)
    post = got["/nowhere/p%41th"][0]          # the path as sent
    head = got["/r"][0]
    assert post["name"] == "POST" and sattr(post, "http.request.method") == "POST"
    assert status_code_attr(post) == "404"
    assert not is_error(post), post
    for s in (post, head):
        assert "url.query" not in attrs(s), s
        assert "user_agent.original" not in attrs(s), s
        assert sattr(s, "server.address") == "localhost"
    assert head["name"] == "HEAD" and status_code_attr(head) == "200"
    settle(col)


def test_5xx_is_an_error(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint()))
    assert hh.get(port, "/err").status == 503
    assert hh.get(port, "/boom").status == 500
    assert hh.get(port, "/r").status == 200
    got = by_path(col.wait_spans(3))
    assert got["/err"][0]["status"] == {"code": 2}, got["/err"]
    assert status_code_attr(got["/err"][0]) == "503"
    assert got["/boom"][0]["status"] == {"code": 2}, got["/boom"]
    assert not is_error(got["/r"][0])
    settle(col)


@pytest.fixture
def upstream():
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = b"from upstream"
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = _Server(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_every_kind_of_answer(warren, col, upstream):
    """return, redirect, share, app, proxy, no route (404), missing file
    (404): one span each, with the status answered."""
    w = warren
    root = hh.make_root()
    try:
        hh.write(root, "st/file.txt", "static body\n")
        routes = [{"match": {"uri": "/ret"}, "action": {"return": 204}},
                  {"match": {"uri": "/mv"}, "action": {"return": 301, "location": "/ret"}},
                  {"match": {"uri": "/st/*"}, "action": {"share": root + "$uri"}},
                  {"match": {"uri": "/api/*"}, "action": {"pass": "applications/app"}},
                  {"match": {"uri": "/px/*"},
                   "action": {"proxy": "http://127.0.0.1:%d" % upstream}}]
        port = serve(w, tel(col.endpoint()), routes,
                     extra={"applications": wh.base_config(w.dir)["applications"]})
        want = {"/ret": 204, "/mv": 301, "/st/file.txt": 200, "/st/missing.txt": 404,
                "/api/hello": 200, "/px/a": 201, "/nomatch": 404}
        with hh.Conn(port) as c:
            for p, code in want.items():
                r = c.request("GET", p)
                assert r.status == code, (p, r)
        spans = col.wait_spans(len(want))
        time.sleep(0.5)
        got = by_path(col.spans())
        assert {p: len(v) for p, v in got.items()} == {p: 1 for p in want}, col.paths()
        for p, code in want.items():
            s = got[p][0]
            assert status_code_attr(s) == str(code), (p, s)
            assert s["name"] == "GET" and sattr(s, "http.request.method") == "GET", s
            assert not is_error(s), (p, s)
        assert len({s["traceId"] for s in spans}) == len(want)
        assert all(len(spans_of(r["body"])) == 1 for r in col.records())
        settle(col)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_unreachable_upstream_502(warren, col):
    """The router's own 502 (nothing listens at the proxy's address) makes a
    span of that request like any other answer, marked as an error."""
    w = warren
    routes = [{"match": {"uri": "/dead/*"},
               "action": {"proxy": "http://127.0.0.1:%d" % wh.free_port()}}]
    port = serve(w, tel(col.endpoint()), routes)
    r = hh.get(port, "/dead/x?q=1", {"User-Agent": "ua-502"}, host="dead.example")
    assert r.status == 502, r
    span = col.wait_spans(1)[0]
    a = attrs(span)
    assert status_code_attr(span) == "502", span
    assert span.get("status") == {"code": 2}, span
    assert span["name"] == "GET", span
    assert a.get("http.request.method") == ("stringValue", "GET"), a
    assert a.get("url.path") == ("stringValue", "/dead/x"), a
    assert a.get("url.query") == ("stringValue", "q=1"), a
    assert a.get("server.address") == ("stringValue", "dead.example"), a
    assert a.get("user_agent.original") == ("stringValue", "ua-502"), a
    assert w.pid("router")
    settle(col)


def test_body_too_large_413(warren, col):
    """A well-formed request whose body is over max_body_size is answered
    413 by the router: its span still names the request."""
    w = warren
    port = hh.setup(w, RETURN_ROUTES, settings={"telemetry": tel(col.endpoint()),
                                                "http": {"max_body_size": 10}})
    r = hh.get(port, "/r/big?q=2", method="POST", body=b"x" * 100)
    assert r.status == 413, r
    span = col.wait_spans(1)[0]
    a = attrs(span)
    assert status_code_attr(span) == "413", span
    assert not is_error(span), span
    assert span["name"] == "POST", span
    assert a.get("http.request.method") == ("stringValue", "POST"), a
    assert a.get("url.path") == ("stringValue", "/r/big"), a
    assert a.get("url.query") == ("stringValue", "q=2"), a
    settle(col)


def test_malformed_request_400(warren, col):
    """A request the router refuses as malformed is answered too: one span
    with status code 400."""
    w = warren
    port = serve(w, tel(col.endpoint()))
    r, closed = hh.raw(port, b"GET /bad HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n")
    assert r is not None, "no answer at all (router gone?)"
    assert r.status == 400 and closed, r
    span = col.wait_spans(1)[0]
    assert status_code_attr(span) == "400", span
    time.sleep(0.5)
    assert len(col.spans()) == 1, col.spans()
    settle(col)


def test_absolute_form_target(warren, col):
    """url.path is the path of the request target, also when the target is
    in absolute form; url.query its query."""
    w = warren
    port = serve(w, tel(col.endpoint()))
    assert hh.get(port, "http://abs.example:99/r/abs?z=9").status == 200
    span = col.wait_spans(1)[0]
    assert sattr(span, "url.path") == "/r/abs", span
    assert sattr(span, "url.query") == "z=9", span
    settle(col)


def test_endpoint_path_as_written(warren, collectors):
    w = warren
    c1, c2 = collectors(), collectors()
    port = serve(w, tel(c1.endpoint("/otel/custom/traces")))
    hh.get(port, "/r1")
    c1.wait_spans(1)
    assert c1.records()[0]["path"] == "/otel/custom/traces"
    port = serve(w, tel("http://127.0.0.1:%d" % c2.port))
    hh.get(port, "/r2")
    c2.wait_spans(1)
    assert c2.records()[0]["path"] == "/v1/traces"
    settle(c1, c2)


# --------------------------------------------------------------------------
# sampling, traceparent

def test_ratio_one_exports_every_request(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint(), batch_size=1, sampling_ratio=1))
    n = 12
    with hh.Conn(port) as c:
        for i in range(n):
            assert c.request("GET", "/r/%d" % i).status == 200
    spans = col.wait_spans(n)
    time.sleep(0.5)
    spans = col.spans()
    assert sorted(sattr(s, "url.path") for s in spans) == sorted("/r/%d" % i for i in range(n))
    assert len({s["traceId"] for s in spans}) == n, [s["traceId"] for s in spans]
    assert len({s["spanId"] for s in spans}) == n
    assert all(no_parent(s) for s in spans)
    assert all(len(spans_of(r["body"])) == 1 for r in col.records())
    settle(col)


def test_ratio_zero_exports_nothing(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint(), sampling_ratio=0))
    for i in range(8):
        assert hh.get(port, "/r/%d" % i).status == 200
    # a sampled traceparent is exported whatever the ratio: it shows the
    # exporter works, and the others were not merely late
    assert hh.get(port, "/r/sampled", {"traceparent": tp()}).status == 200
    col.wait_path("/r/sampled")
    time.sleep(1.2)
    assert col.paths() == ["/r/sampled"], col.paths()
    settle(col)


def test_ratio_half_samples_some(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint(), batch_size=20, sampling_ratio=0.5))
    n = 120
    with hh.Conn(port) as c:
        for i in range(n):
            assert c.request("GET", "/r/%d" % i).status == 200
    time.sleep(2.5)
    got = len(col.spans())
    assert 25 <= got <= 95, got
    settle(col)


@pytest.mark.parametrize("flags", ["01", "03"])
def test_traceparent_sampled(warren, col, flags):
    w = warren
    port = serve(w, tel(col.endpoint(), sampling_ratio=0))
    assert hh.get(port, "/r/tp", {"traceparent": tp(flags=flags)}).status == 200
    span = col.wait_path("/r/tp")
    assert span["traceId"] == TID, span
    assert span["parentSpanId"] == PID, span
    assert HEX16.fullmatch(span["spanId"]) and span["spanId"] != PID, span
    settle(col)


@pytest.mark.parametrize("flags", ["00", "02"])
def test_traceparent_not_sampled(warren, col, flags):
    w = warren
    port = serve(w, tel(col.endpoint(), sampling_ratio=1))
    assert hh.get(port, "/r/unsampled", {"traceparent": tp(flags=flags)}).status == 200
    assert hh.get(port, "/r/plain").status == 200
    col.wait_path("/r/plain")
    time.sleep(1.2)
    assert col.paths() == ["/r/plain"], col.paths()
    assert all(s["traceId"] != TID for s in col.spans())
    settle(col)


MALFORMED = [
    ("garbage", "not-a-traceparent"),
    ("no-flags", "00-%s-%s" % (TID, PID)),
    ("short-trace-id", "00-%s-%s-01" % (TID[:31], PID)),
    ("long-parent-id", "00-%s-%s0-01" % (TID, PID)),
    ("non-hex", "00-%s-%s-01" % (TID[:31] + "g", PID)),
    ("bad-separators", "00_%s_%s_01" % (TID, PID)),
    ("empty", ""),
]


@pytest.mark.parametrize("value", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_traceparent_ignored(warren, col, value):
    w = warren
    port = serve(w, tel(col.endpoint(), sampling_ratio=1))
    assert hh.get(port, "/r/bad", {"traceparent": value}).status == 200
    span = col.wait_path("/r/bad")
    assert HEX32.fullmatch(span["traceId"]), span
    assert not span["traceId"].startswith(TID[:31]), span
    assert no_parent(span), span
    settle(col)


def test_malformed_traceparent_does_not_force_sampling(warren, col):
    """With ratio 0, a malformed traceparent whose "flags" say sampled is
    ignored like the rest of it: nothing is exported."""
    w = warren
    port = serve(w, tel(col.endpoint(), sampling_ratio=0))
    for i, (_, value) in enumerate(MALFORMED[1:6]):
        assert hh.get(port, "/r/bad%d" % i, {"traceparent": value}).status == 200
    assert hh.get(port, "/r/good", {"traceparent": tp()}).status == 200
    col.wait_path("/r/good")
    time.sleep(1.2)
    assert col.paths() == ["/r/good"], col.paths()
    settle(col)


# --------------------------------------------------------------------------
# batching

def test_batch_of_n_in_one_post(warren, col):
    w = warren
    n = 5
    port = serve(w, tel(col.endpoint(), batch_size=n))
    with hh.Conn(port) as c:
        for i in range(n):
            assert c.request("GET", "/r/%d" % i).status == 200
    col.wait_spans(n, timeout=4)
    time.sleep(0.5)
    recs = col.records()
    assert len(recs) == 1, [len(spans_of(r["body"])) for r in recs]
    assert sorted(col.paths()) == sorted("/r/%d" % i for i in range(n))
    settle(col)


def test_partial_batch_still_arrives(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint(), batch_size=50))
    t0 = time.monotonic()
    with hh.Conn(port) as c:
        for i in range(3):
            assert c.request("GET", "/r/%d" % i).status == 200
    col.wait_spans(3, timeout=3.5)
    took = time.monotonic() - t0
    assert took <= 3.0, took
    assert len(col.records()) == 1, col.records()
    # and later spans are timed from their own first one
    hh.get(port, "/r/late")
    col.wait_path("/r/late", timeout=3.5)
    assert len(col.spans()) == 4
    settle(col)


def test_defaults(warren, col):
    """batch_size 128 and sampling_ratio 1 by default: a few requests all
    arrive, within a few seconds, together."""
    w = warren
    port = serve(w, {"endpoint": col.endpoint(), "protocol": "http"})
    with hh.Conn(port) as c:
        for i in range(4):
            assert c.request("GET", "/r/%d" % i).status == 200
    col.wait_spans(4, timeout=3.5)
    time.sleep(0.3)
    assert len(col.records()) == 1, [len(spans_of(r["body"])) for r in col.records()]
    assert sorted(col.paths()) == ["/r/0", "/r/1", "/r/2", "/r/3"]
    settle(col)


# --------------------------------------------------------------------------
# the collector down, reconfiguration

def test_collector_down(warren, collectors):
    w = warren
    dead = wh.free_port()
    port = serve(w, tel("http://127.0.0.1:%d/v1/traces" % dead))
    with hh.Conn(port) as c:
        for i in range(15):
            t = time.monotonic()
            assert c.request("GET", "/r/%d" % i).status == 200
            assert time.monotonic() - t < 0.5
    for i in range(5):
        t = time.monotonic()
        assert hh.get(port, "/nothing").status == 404
        assert time.monotonic() - t < 0.5

    def failing():
        with open(w.log_path, "rb") as f:
            f.seek(w.log_mark)
            new = f.read().decode("utf-8", "replace")
        return [ln for ln in new.splitlines()
                if re.search(r"telemetry|export|otlp|span", ln, re.I)
                and re.search(r"\[(error|warn|notice|info|crit)\]", ln)]
    lines = wh.wait_for(failing, 4.0, 0.05)
    assert lines, w.log()[-2000:]
    router = w.pid("router")
    assert w.alive()

    col = collectors(dead)
    deadline = time.monotonic() + 6

    def arrived():
        return any(p == "/r/after" for p in col.paths())
    while not arrived() and time.monotonic() < deadline:
        assert hh.get(port, "/r/after").status == 200
        wh.wait_for(arrived, 0.5, 0.05)
    assert arrived(), col.paths()
    assert w.pid("router") == router
    settle(col)


def test_change_endpoint(warren, collectors):
    w = warren
    c1, c2 = collectors(), collectors()
    port = serve(w, tel(c1.endpoint()))
    hh.get(port, "/r/before")
    c1.wait_path("/r/before")
    s, j = w.put(TEL + "/endpoint", c2.endpoint())
    assert (s, j) == (200, wh.SUCCESS), j
    hh.get(port, "/r/after")
    c2.wait_path("/r/after")
    time.sleep(1.2)
    assert c1.paths() == ["/r/before"], c1.paths()
    assert c2.paths() == ["/r/after"], c2.paths()
    settle(c1, c2)


def test_remove_telemetry(warren, col):
    w = warren
    port = serve(w, tel(col.endpoint()))
    hh.get(port, "/r/before")
    col.wait_path("/r/before")
    assert w.delete(TEL) == (200, wh.SUCCESS)
    for i in range(5):
        assert hh.get(port, "/r/after%d" % i).status == 200
    time.sleep(1.2)
    assert col.paths() == ["/r/before"], col.paths()
    # and it can come back
    s, j = w.put(TEL, tel(col.endpoint()))
    assert (s, j) == (200, wh.SUCCESS), j
    hh.get(port, "/r/again")
    col.wait_path("/r/again")
    settle(col)
