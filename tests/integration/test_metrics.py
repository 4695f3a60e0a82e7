"""Metrics: GET /metrics on the control API (Prometheus text exposition,
format 0.0.4) and the route action {"metrics": "prometheus" | "json"}.

The exposition is parsed by a small strict parser below (HELP and TYPE
before each family's samples, one group per family, valid TYPE values, no
duplicate series, escaped label values, a final newline); histograms are
checked on every parse (cumulative buckets, +Inf == _count). Counters are
compared as deltas around what a test does, on a quiet server."""

import http.server
import json
import math
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading
import time

import pytest

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

PROM_CT = "text/plain; version=0.0.4; charset=utf-8"
INF = float("inf")
BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, INF]
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
STATES = ("running", "starting", "idle")

FAMILIES = {
    "warren_build_info": "gauge",
    "warren_connections_accepted_total": "counter",
    "warren_connections_closed_total": "counter",
    "warren_connections_active": "gauge",
    "warren_connections_idle": "gauge",
    "warren_requests_total": "counter",
    "warren_responses_total": "counter",
    "warren_response_body_bytes_total": "counter",
    "warren_request_duration_seconds": "histogram",
    "warren_tls_handshake_failures_total": "counter",
    "warren_config_loads_total": "counter",
    "warren_access_log_dropped_lines_total": "counter",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
APP_FAMILIES = {
    "warren_application_processes": "gauge",
    "warren_application_requests_active": "gauge",
    "warren_application_requests_queued": "gauge",
    "warren_application_worker_failures_total": "counter",
    "warren_application_responses_total": "counter",
    "warren_application_request_duration_seconds": "histogram",
}
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
INVALID_CONFIG = "Invalid configuration."


# ====================================================================== the parser

class ExpositionError(AssertionError):
    pass


NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN")
TS_RE = re.compile(r"-?\d+")
HELP_ESC = {"\\": "\\", "n": "\n"}
LABEL_ESC = {"\\": "\\", "n": "\n", '"': '"'}


class Metrics(dict):
    """{(name, frozenset(labels.items())): float}, with .types {family: type}
    and .helps {family: text}."""

    def __init__(self):
        super().__init__()
        self.types = {}
        self.helps = {}

    def __repr__(self):
        return "<Metrics: %d series>" % len(self)

    def families(self):
        return set(self.types)

    def series(self, name):
        """[(labels dict, value)] of the samples called name."""
        return [(dict(k[1]), v) for k, v in self.items() if k[0] == name]


def unescape(s, table, where):
    out, i = [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            if i + 1 >= len(s) or s[i + 1] not in table:
                raise ExpositionError("bad escape in %r" % where)
            out.append(table[s[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_labels(line, i):
    """Labels from line[i] == '{' on: (dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_RE.match(line, i)
        if not m:
            raise ExpositionError("bad label name in %r" % line)
        name = m.group(0)
        i = m.end()
        if line[i:i + 2] != '="':
            raise ExpositionError("label %s without =\"value\" in %r" % (name, line))
        i += 2
        j, raw = i, []
        while True:
            if j >= len(line):
                raise ExpositionError("unterminated label value in %r" % line)
            if line[j] == "\\":
                raw.append(line[j:j + 2])
                j += 2
                continue
            if line[j] == '"':
                break
            raw.append(line[j])
            j += 1
        if name in labels:
            raise ExpositionError("label %s twice in %r" % (name, line))
        labels[name] = unescape("".join(raw), LABEL_ESC, line)
        i = j + 1
        if i < len(line) and line[i] == ",":
            i += 1
        elif i < len(line) and line[i] == "}":
            continue
        else:
            raise ExpositionError("expected , or } in %r" % line)


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[:-len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                if suffix == "_bucket" and types[base] != "histogram":
                    break
                return base
    return None


def parse(text):
    """Parse (and check) a text exposition; raises ExpositionError."""
    if not text.endswith("\n"):
        raise ExpositionError("the exposition does not end with a newline: %r" % text[-80:])
    m = Metrics()
    current, closed = None, set()
    for line in text.split("\n")[:-1]:
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                kind, name = parts[1], parts[2]
                rest = parts[3] if len(parts) > 3 else ""
                if not NAME_RE.fullmatch(name):
                    raise ExpositionError("bad metric name in %r" % line)
                if name in closed or (name == current):
                    raise ExpositionError("%s after the samples of %s: %r" % (kind, name, line))
                if kind == "HELP":
                    if name in m.helps:
                        raise ExpositionError("two HELP lines for %s" % name)
                    m.helps[name] = unescape(rest, HELP_ESC, line)
                else:
                    if rest not in TYPES:
                        raise ExpositionError("bad TYPE %r for %s" % (rest, name))
                    if name in m.types:
                        raise ExpositionError("two TYPE lines for %s" % name)
                    m.types[name] = rest
            continue          # another comment
        nm = NAME_RE.match(line)
        if not nm:
            raise ExpositionError("bad sample line %r" % line)
        name, i = nm.group(0), nm.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i)
        if i >= len(line) or line[i] not in " \t":
            raise ExpositionError("no blank before the value in %r" % line)
        toks = line[i:].split()
        if not 1 <= len(toks) <= 2 or not VALUE_RE.fullmatch(toks[0]) or \
                (len(toks) == 2 and not TS_RE.fullmatch(toks[1])):
            raise ExpositionError("bad value in %r" % line)
        fam = family_of(name, m.types)
        if fam is None:
            raise ExpositionError("sample %s has no TYPE line before it" % name)
        if fam not in m.helps:
            raise ExpositionError("sample %s has no HELP line before it" % name)
        if fam != current:
            if fam in closed:
                raise ExpositionError("the samples of %s are not one group (%r)" % (fam, line))
            if current is not None:
                closed.add(current)
            current = fam
        key = (name, frozenset(labels.items()))
        if key in m:
            raise ExpositionError("duplicate series %r" % line)
        m[key] = float(toks[0])
    check_histograms(m)
    return m


def le_value(s):
    return INF if s == "+Inf" else float(s)


def check_histograms(m):
    """Every histogram series: buckets cumulative, an +Inf bucket equal to
    _count, a _sum."""
    for fam, typ in m.types.items():
        if typ != "histogram":
            continue
        groups = {}
        for (name, lab), v in m.items():
            if name == fam + "_bucket":
                d = dict(lab)
                if "le" not in d:
                    raise ExpositionError("%s_bucket without le" % fam)
                rest = frozenset((k, x) for k, x in lab if k != "le")
                groups.setdefault(rest, []).append((le_value(d["le"]), v))
        counts = {lab for (name, lab) in m if name == fam + "_count"}
        if set(groups) != counts:
            raise ExpositionError("%s: bucket groups %r vs _count %r" % (fam, groups, counts))
        for lab, bs in groups.items():
            bs.sort()
            vals = [v for _, v in bs]
            if vals != sorted(vals):
                raise ExpositionError("%s%r: buckets not cumulative: %r" % (fam, dict(lab), bs))
            if bs[-1][0] != INF:
                raise ExpositionError("%s%r: no +Inf bucket" % (fam, dict(lab)))
            if bs[-1][1] != m[(fam + "_count", lab)]:
                raise ExpositionError("%s%r: +Inf %r != _count %r" % (
                    fam, dict(lab), bs[-1][1], m[(fam + "_count", lab)]))
            if (fam + "_sum", lab) not in m:
                raise ExpositionError("%s%r: no _sum" % (fam, dict(lab)))


# ---------------------------------------------------------------- reading it

def scrape(w):
    r = w.request("GET", "/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type") == PROM_CT, r.headers
    return parse(r.body.decode("utf-8"))


def val(m, name, **labels):
    key = (name, frozenset(labels.items()))
    if key not in m:
        raise AssertionError("no series %s%r; have %r" % (
            name, labels, sorted(dict(k[1]) for k in m if k[0] == name)))
    return m[key]


def bucket(m, fam, le, **labels):
    """The _bucket sample whose le is the number le (however it is written:
    "1" or "1.0")."""
    for lab, v in m.series(fam + "_bucket"):
        if le_value(lab.pop("le")) == le and lab == labels:
            return v
    raise AssertionError("no bucket le=%r of %s%r" % (le, fam, labels))


def le_set(m, fam, **labels):
    out = []
    for lab, _ in m.series(fam + "_bucket"):
        le = lab.pop("le")
        if lab == labels:
            out.append(le_value(le))
    return sorted(out)


def delta(after, before, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


def classes(m, name="warren_responses_total", **labels):
    return {c: val(m, name, code=c, **labels) for c in CLASSES}


def class_delta(after, before, name="warren_responses_total", **labels):
    a, b = classes(after, name, **labels), classes(before, name, **labels)
    return {c: a[c] - b[c] for c in CLASSES}


def app_series(m, app):
    return sorted((k[0], sorted(k[1])) for k in m if ("application", app) in k[1])


quiet = hh.quiet


def stable(w, fn, timeout=5.0):
    """(status, metrics) read with /status unchanged around the scrape, and
    fn(status, metrics) true; or the last pair after the timeout."""
    last = [None]

    def f():
        s1 = hh.status(w)
        m = scrape(w)
        s2 = hh.status(w)
        last[0] = (s2, m)
        return s1 == s2 and fn(s2, m)
    wh.wait_for(f, timeout, 0.05)
    return last[0]


def version():
    out = subprocess.run([wh.BINARY, "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=10).stdout.decode()
    mo = re.search(r"^warren version: (\S+)$", out, re.M)
    assert mo, out
    return mo.group(1)


# ====================================================================== fixtures

APP = '''
import os, time

def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":
        time.sleep(0.3)
    elif path == "/block":
        gate, end = os.environ.get("GATE", "/nonexistent"), time.time() + 20
        while not os.path.exists(gate) and time.time() < end:
            time.sleep(0.01)
    if path == "/fail":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"failed"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok " + os.environ.get("GEN", "").encode()]
'''


@pytest.fixture
def pyw(warren_factory):
    """A warrend whose --modulesdir holds a copy of warren-python, and an app
    directory (module "mapp") that user nobody can read."""
    rt = wh.make_tmpdir("warren-rt-")
    shutil.copy(os.path.join(wh.REPO, "build", "warren-python"),
                os.path.join(rt, "warren-python"))
    os.chmod(os.path.join(rt, "warren-python"), 0o755)
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "mapp.py", APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def pyapp(appdir, **kw):
    a = {"type": "python", "path": appdir, "module": "mapp", "processes": 1}
    a.update(kw)
    return a


def app_setup(w, apps, routes=None, port=None):
    """A listener passing to routes (default: everything to the first app)."""
    first = next(iter(apps))
    routes = routes if routes is not None else \
        [{"action": {"pass": "applications/" + first}}]
    return hh.setup(w, routes, extra={"applications": apps}, port=port)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return th.PKI(str(tmp_path_factory.mktemp("warren-metrics-pki")))


# ====================================================================== the endpoint

def test_format_on_fresh_server(warren):
    w = warren
    r = w.request("GET", "/metrics")
    assert r.status == 200, r
    assert r.header("Content-Type") == PROM_CT, r.headers
    text = r.body.decode("utf-8")
    m = parse(text)
    for fam, typ in FAMILIES.items():
        assert m.types.get(fam) == typ, (fam, m.types.get(fam))
        assert m.helps.get(fam), fam
    # no application yet: no per-application family has a sample
    for fam in APP_FAMILIES:
        assert not [k for k in m if family_of(k[0], m.types) == fam], fam

    assert m.series("warren_build_info") == [({"version": version()}, 1.0)]
    for name in ("warren_requests_total", "warren_response_body_bytes_total",
                 "warren_tls_handshake_failures_total", "warren_connections_accepted_total",
                 "warren_connections_closed_total", "warren_connections_active",
                 "warren_connections_idle"):
        assert m.series(name) == [({}, 0.0)], (name, m.series(name))
    assert sorted(lab["code"] for lab, _ in m.series("warren_responses_total")) == list(CLASSES)
    assert classes(m) == {c: 0.0 for c in CLASSES}
    h = "warren_request_duration_seconds"
    assert le_set(m, h) == BUCKETS
    assert all(v == 0 for _, v in m.series(h + "_bucket"))
    assert val(m, h + "_count") == 0 and val(m, h + "_sum") == 0
    assert val(m, "warren_config_loads_total") >= 0

    st = hh.status(w)
    assert st["requests"]["total"] == 0 and st["connections"]["accepted"] == 0, st


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE"])
def test_metrics_is_read_only(warren, method):
    w = warren
    ref = w.request("PUT", "/status", "{}")
    assert ref.status == 405, ref
    r = w.request(method, "/metrics", "{}" if method != "DELETE" else None)
    assert r.status == 405, r
    assert "json" in (r.header("Content-Type") or ""), r.headers
    assert r.json() == ref.json(), r
    assert w.config() == {}
    scrape(w)


# ====================================================================== request counters

def test_requests_and_responses_by_class(warren):
    w = warren
    port = hh.setup(w, [
        {"match": {"uri": "/ok"}, "action": {"return": 200}},
        {"match": {"uri": "/moved"}, "action": {"return": 302, "location": "/ok"}},
        {"match": {"uri": "/err"}, "action": {"return": 503}},
    ])
    quiet(w)
    before, st0 = scrape(w), hh.status(w)
    with hh.Conn(port) as c:                       # keep-alive: 3 on one connection
        for _ in range(3):
            assert c.request("GET", "/ok").status == 200
    for _ in range(2):
        assert hh.get(port, "/ok").status == 200
    for _ in range(3):
        assert hh.get(port, "/nowhere").status == 404       # no route matches
    for _ in range(2):
        assert hh.get(port, "/moved").status == 302
    assert hh.get(port, "/err").status == 503
    r, _ = hh.raw(port, b"GARBAGE\r\n\r\n")
    assert r is not None and r.status == 400, r
    st1 = quiet(w)
    after = scrape(w)

    assert st1["requests"]["total"] - st0["requests"]["total"] == 12, (st0, st1)
    assert delta(after, before, "warren_requests_total") == 12
    assert val(after, "warren_requests_total") == st1["requests"]["total"]
    assert class_delta(after, before) == {"1xx": 0, "2xx": 5, "3xx": 2, "4xx": 4, "5xx": 1}
    h = "warren_request_duration_seconds"
    assert delta(after, before, h + "_count") == 12
    assert bucket(after, h, INF) - bucket(before, h, INF) == 12
    assert delta(after, before, h + "_sum") >= 0
    # 10 connections: the keep-alive one, 8 single requests, the malformed one
    assert delta(after, before, "warren_connections_accepted_total") == 10
    assert delta(after, before, "warren_connections_closed_total") == 10


def test_concurrent_requests_sum_exactly(warren):
    """Requests spread over the router's threads by concurrent clients: the
    sums are exact."""
    w = warren
    port = hh.setup(w, [{"match": {"uri": "/a"}, "action": {"return": 200}},
                        {"action": {"return": 404}}], settings={"listen_threads": 4})
    w.baseline("router")          # its threads' epoll and eventfd
    quiet(w)
    before = scrape(w)
    errors = []

    def client(n):
        try:
            for i in range(n):
                with hh.Conn(port) as c:
                    for path in ("/a", "/a", "/b"):
                        r = c.request("GET", path)
                        assert r.status == (200 if path == "/a" else 404), r
        except Exception as e:          # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(25,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    quiet(w)
    after = scrape(w)
    assert class_delta(after, before) == {"1xx": 0, "2xx": 200, "3xx": 0, "4xx": 100, "5xx": 0}
    assert delta(after, before, "warren_request_duration_seconds_count") == 300
    assert delta(after, before, "warren_requests_total") == 300
    assert delta(after, before, "warren_connections_accepted_total") == 100
    assert delta(after, before, "warren_connections_closed_total") == 100


def test_connections_match_status(warren):
    """On a quiet server the connection numbers are /status's; an idle
    keep-alive connection is idle in both."""
    w = warren
    port = hh.setup(w, [{"action": {"return": 200}}])
    for _ in range(3):
        assert hh.get(port, "/").status == 200
    quiet(w)
    with hh.Conn(port) as c:
        assert c.request("GET", "/").status == 200     # then idle, kept open
        st, m = stable(w, lambda s, m: s["connections"]["idle"] == 1)
        conns = st["connections"]
        assert conns["idle"] == 1 and conns["active"] == 0, st
        assert val(m, "warren_connections_accepted_total") == conns["accepted"] == 4
        assert val(m, "warren_connections_closed_total") == conns["closed"] == 3
        assert val(m, "warren_connections_active") == conns["active"]
        assert val(m, "warren_connections_idle") == conns["idle"]
        assert val(m, "warren_requests_total") == st["requests"]["total"] == 4
    st = quiet(w)
    m = scrape(w)
    assert val(m, "warren_connections_closed_total") == st["connections"]["closed"] == 4
    assert val(m, "warren_connections_idle") == 0


def test_proxy_answers_counted(warren):
    """Answers relayed from an upstream count by their class, and so does the
    router's own 502 when nothing listens."""
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            code = {"/up/a": 201, "/up/b": 404, "/up/c": 503}.get(self.path, 200)
            body = b"upstream %d" % code
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = S(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        w = warren
        port = hh.setup(w, [
            {"match": {"uri": "/up/*"},
             "action": {"proxy": "http://127.0.0.1:%d" % srv.server_address[1]}},
            {"match": {"uri": "/dead"},
             "action": {"proxy": "http://127.0.0.1:%d" % wh.free_port()}},
        ])
        quiet(w)
        before = scrape(w)
        rs = [hh.get(port, p) for p in ("/up/a", "/up/b", "/up/c", "/dead")]
        assert [r.status for r in rs] == [201, 404, 503, 502], rs
        quiet(w)
        after = scrape(w)
        assert class_delta(after, before) == {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 1, "5xx": 2}
        assert delta(after, before, "warren_request_duration_seconds_count") == 4
        assert delta(after, before, "warren_response_body_bytes_total") == \
            sum(len(r.body) for r in rs)
        assert delta(after, before, "warren_requests_total") == 4
    finally:
        srv.shutdown()
        srv.server_close()


def test_body_bytes_as_access_log(warren):
    """GETs add the file's size, a HEAD and a 304 add nothing, a range adds
    its length: the sum of the access log's $body_bytes_sent."""
    w = warren
    root = hh.make_root()
    try:
        size = 1234
        hh.write(root, "f.bin", os.urandom(size))
        log = os.path.join(w.dir, "bytes.log")
        port = hh.setup(w, [{"action": {"share": root + "$uri"}}], extra={
            "access_log": {"path": log, "format": "$status $body_bytes_sent"}})
        quiet(w)
        before = scrape(w)
        etag = None
        for _ in range(3):
            r = hh.get(port, "/f.bin")
            assert (r.status, len(r.body)) == (200, size), r
            etag = r.header("ETag")
        r = hh.get(port, "/f.bin", method="HEAD")
        assert r.status == 200 and r.body == b"", r
        assert etag, "no ETag on the share's answer"
        r = hh.get(port, "/f.bin", {"If-None-Match": etag})
        assert r.status == 304, r
        r = hh.get(port, "/f.bin", {"Range": "bytes=0-99"})
        assert (r.status, len(r.body)) == (206, 100), r
        quiet(w)
        after = scrape(w)
        d = delta(after, before, "warren_response_body_bytes_total")
        assert d == 3 * size + 100, d

        def lines():
            try:
                with open(log) as f:
                    return [ln.split() for ln in f.read().splitlines()]
            except FileNotFoundError:
                return []
        assert wh.wait_for(lambda: len(lines()) == 6, 5.0), lines()
        assert sum(int(b) for _, b in lines()) == d
        assert class_delta(after, before) == {"1xx": 0, "2xx": 5, "3xx": 1, "4xx": 0, "5xx": 0}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ====================================================================== histograms

def test_duration_histogram_slow_app(pyw):
    """A request the app answers after 0.3 s lands in le=0.5, not in
    le=0.25, of both the global and the application's histogram."""
    w, appdir = pyw
    port = app_setup(w, {"py": pyapp(appdir)})
    assert hh.get(port, "/").status == 200       # the worker is up
    quiet(w)
    before = scrape(w)
    t0 = time.monotonic()
    assert hh.get(port, "/slow").status == 200
    took = time.monotonic() - t0
    quiet(w)
    after = scrape(w)
    for fam, lab in (("warren_request_duration_seconds", {}),
                     ("warren_application_request_duration_seconds", {"application": "py"})):
        assert le_set(after, fam, **lab) == BUCKETS, fam
        d = {le: bucket(after, fam, le, **lab) - bucket(before, fam, le, **lab)
             for le in BUCKETS}
        assert d[0.25] == 0, (fam, d)
        if took < 0.5:          # the answer came back within 0.5 s as the client saw it
            assert d[0.5] == 1, (fam, d)
        assert d[INF] == 1, (fam, d)
        assert delta(after, before, fam + "_count", **lab) == 1
        s = delta(after, before, fam + "_sum", **lab)
        assert s >= 0.3, (fam, s)


def test_duration_counts_from_the_first_byte(warren):
    """A request whose head arrives in two halves 0.6 s apart took at least
    0.6 s (from its first byte, as nginx's $request_time): it is above
    le=0.5. (A lower bound: a slow machine cannot make this fail.)"""
    w = warren
    port = hh.setup(w, [{"action": {"return": 200}}])
    quiet(w)
    before = scrape(w)
    with hh.Conn(port) as c:
        c.send(b"GET / HTTP/1.1\r\n")
        time.sleep(0.6)
        c.send(b"Host: localhost\r\n\r\n")
        assert c.read_response().status == 200
    quiet(w)
    after = scrape(w)
    fam = "warren_request_duration_seconds"
    d = {le: bucket(after, fam, le) - bucket(before, fam, le) for le in BUCKETS}
    assert d[0.5] == 0 and d[INF] == 1, d
    assert delta(after, before, fam + "_sum") >= 0.6


# ====================================================================== per application

def test_app_responses_and_gauges(pyw):
    w, appdir = pyw
    port = app_setup(w, {"py": pyapp(appdir, processes=2),
                         "other": pyapp(appdir)},
                     routes=[{"match": {"uri": "/other/*"},
                              "action": {"pass": "applications/other"}},
                             {"action": {"pass": "applications/py"}}])
    m = scrape(w)
    for app in ("py", "other"):
        for fam, typ in APP_FAMILIES.items():
            assert m.types.get(fam) == typ, fam
        assert classes(m, "warren_application_responses_total", application=app) == \
            {c: 0 for c in CLASSES}
        assert sorted(lab["state"] for lab, _ in m.series("warren_application_processes")
                      if lab["application"] == app) == sorted(STATES)
        assert le_set(m, "warren_application_request_duration_seconds",
                      application=app) == BUCKETS
    quiet(w)
    before = scrape(w)
    sent = 0
    for p, code in (("/", 200), ("/a", 200), ("/b", 200), ("/fail", 500), ("/fail", 500),
                    ("/missing", 404), ("/other/x", 200)):
        r = hh.get(port, p)
        assert r.status == code, (p, r)
        sent += len(r.body)
    quiet(w)
    after = scrape(w)
    assert delta(after, before, "warren_response_body_bytes_total") == sent
    assert class_delta(after, before, "warren_application_responses_total",
                       application="py") == {"1xx": 0, "2xx": 3, "3xx": 0, "4xx": 1, "5xx": 2}
    assert class_delta(after, before, "warren_application_responses_total",
                       application="other") == {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 0,
                                                "5xx": 0}
    assert class_delta(after, before) == {"1xx": 0, "2xx": 4, "3xx": 0, "4xx": 1, "5xx": 2}
    assert delta(after, before, "warren_application_request_duration_seconds_count",
                 application="py") == 6
    assert delta(after, before, "warren_application_request_duration_seconds_count",
                 application="other") == 1
    assert delta(after, before, "warren_request_duration_seconds_count") == 7

    # the gauges are /status's numbers (on a quiet server)
    def same(s, m):
        for app in ("py", "other"):
            a = s["applications"][app]
            for state in STATES:
                if val(m, "warren_application_processes", application=app, state=state) \
                        != a["processes"][state]:
                    return False
            if val(m, "warren_application_requests_active", application=app) \
                    != a["requests"]["active"]:
                return False
        return True
    # (the second worker may still be starting: wait for both to run)
    st, m = stable(w, lambda s, m: same(s, m)
                   and s["applications"]["py"]["processes"]["running"] == 2)
    assert same(st, m), (st["applications"], sorted(
        (k[0], sorted(k[1]), v) for k, v in m.items() if k[0].startswith("warren_application_")
        and not k[0].startswith("warren_application_request_duration")))
    assert st["applications"]["py"]["processes"]["running"] == 2, st
    for app in ("py", "other"):
        assert val(m, "warren_application_requests_queued", application=app) == 0
        assert val(m, "warren_application_requests_active", application=app) == 0


def test_app_queue_and_active(pyw):
    """One worker busy with a request, a second request waiting for it:
    active and queued show them; both go back to 0."""
    w, appdir = pyw
    gate = os.path.join(appdir, "gate")
    port = app_setup(w, {"py": pyapp(appdir, environment={"GATE": gate})})
    assert hh.get(port, "/").status == 200
    quiet(w)
    results = {}

    def call(path):
        try:
            with hh.Conn(port, timeout=15) as c:
                results[path] = c.request("GET", path).status
        except Exception as e:          # noqa: BLE001 -- reported below
            results[path] = e

    threads = [threading.Thread(target=call, args=("/block",))]
    threads[0].start()
    try:
        assert wh.wait_for(lambda: val(scrape(w), "warren_application_requests_active",
                                       application="py") >= 1, 5.0), scrape(w)
        threads.append(threading.Thread(target=call, args=("/queued",)))
        threads[1].start()
        # both requests are in (one served, one waiting for the only worker)
        hh.wait_status(w, lambda s: s["applications"]["py"]["requests"]["active"] == 2)
        st, m = stable(w, lambda s, m: True)
        assert st["applications"]["py"]["processes"]["running"] == 1, st
        assert st["applications"]["py"]["requests"]["active"] == 2, st
        assert val(m, "warren_application_requests_active", application="py") == 2
        assert val(m, "warren_connections_active") == st["connections"]["active"] == 2, st
        # of those, one waits for a worker
        assert val(m, "warren_application_requests_queued", application="py") == 1, \
            sorted((k[0], sorted(k[1]), v) for k, v in m.items()
                   if k[0].startswith("warren_application_requests"))
    finally:
        hh.write(appdir, "gate", b"")
        for t in threads:
            t.join(20)
    assert results == {"/block": 200, "/queued": 200}, results
    quiet(w)
    m = scrape(w)
    assert val(m, "warren_application_requests_queued", application="py") == 0
    assert val(m, "warren_application_requests_active", application="py") == 0


def test_app_counters_survive_generations_and_removal(pyw):
    w, appdir = pyw
    port = wh.free_port()
    routes = [{"match": {"uri": "/other/*"}, "action": {"pass": "applications/other"}},
              {"action": {"pass": "applications/py"}}]

    def put(env):
        app_setup(w, {"py": pyapp(appdir, environment={"GEN": env}),
                      "other": pyapp(appdir)}, routes=routes, port=port)

    def py_2xx():
        return val(scrape(w), "warren_application_responses_total",
                   application="py", code="2xx")

    put("one")
    for _ in range(2):
        assert hh.get(port, "/").body == b"ok one"
    assert hh.get(port, "/fail").status == 500
    assert hh.get(port, "/other/").status == 200
    quiet(w)
    assert py_2xx() == 2

    put("two")                        # a new generation of "py"
    r = hh.get(port, "/")
    assert (r.status, r.body) == (200, b"ok two"), r
    quiet(w)
    assert py_2xx() == 3

    probes = []

    def probe():
        r = hh.get(port, "/")
        probes.append(r.status)
        return r.header("X-Pid")

    pid = probe()
    s, j = w.get("/control/applications/py/restart")
    assert (s, j) == (200, {"success": "Ok"})
    assert wh.wait_for(lambda: probe() != pid, 10.0)
    assert set(probes) == {200}, probes
    quiet(w)
    m = scrape(w)
    n = val(m, "warren_application_responses_total", application="py", code="2xx")
    assert n == 3 + len(probes), (n, len(probes))
    assert val(m, "warren_application_responses_total", application="py", code="5xx") == 1
    assert val(m, "warren_application_request_duration_seconds_count",
               application="py") == n + 1
    assert val(m, "warren_application_responses_total", application="other",
               code="2xx") == 1

    # "py" removed: its series are gone, "other" keeps its own
    hh.setup(w, [{"action": {"pass": "applications/other"}}],
             extra={"applications": {"other": pyapp(appdir)}}, port=port)
    m = scrape(w)
    assert app_series(m, "py") == [], app_series(m, "py")
    assert val(m, "warren_application_responses_total", application="other",
               code="2xx") == 1
    for state in STATES:
        val(m, "warren_application_processes", application="other", state=state)
    # the global counters are not the applications'
    assert val(m, "warren_responses_total", code="2xx") >= n + 1


def test_app_readded_counts_from_zero(pyw):
    """Removed, then configured again under the same name: its series come
    back from zero (docs/control-api.md: "an application removed from the
    configuration leaves the output (and starts from zero if it comes
    back)")."""
    w, appdir = pyw
    port = wh.free_port()
    for _ in range(2):
        app_setup(w, {"py": pyapp(appdir)}, port=port)
        for p, code in (("/", 200), ("/fail", 500)):
            assert hh.get(port, p).status == code
        quiet(w)
        m = scrape(w)
        assert classes(m, "warren_application_responses_total", application="py") == \
            {"1xx": 0, "2xx": 1, "3xx": 0, "4xx": 0, "5xx": 1}
        assert val(m, "warren_application_request_duration_seconds_count",
                   application="py") == 2
        hh.setup(w, [{"action": {"return": 200}}], port=port)
        assert app_series(scrape(w), "py") == []


def test_router_answers_for_app_count_once(pyw):
    """The router's own 503 for an application with no process, and its 502
    for a proxy that nothing answers: one request each, one answer each,
    in the application's counters too."""
    w, appdir = pyw
    port = app_setup(w, {"zero": pyapp(appdir, processes=0)}, routes=[
        {"match": {"uri": "/dead"},
         "action": {"proxy": "http://127.0.0.1:%d" % wh.free_port()}},
        {"action": {"pass": "applications/zero"}}])
    st0 = quiet(w)
    before = scrape(w)
    assert hh.get(port, "/").status == 503
    assert hh.get(port, "/dead").status == 502
    st1 = quiet(w)
    after = scrape(w)
    assert class_delta(after, before) == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 2}
    assert class_delta(after, before, "warren_application_responses_total",
                       application="zero") == {"1xx": 0, "2xx": 0, "3xx": 0, "4xx": 0,
                                               "5xx": 1}
    assert delta(after, before, "warren_request_duration_seconds_count") == 2
    assert delta(after, before, "warren_application_request_duration_seconds_count",
                 application="zero") == 1
    assert st1["requests"]["total"] - st0["requests"]["total"] == 2, (st0, st1)
    assert delta(after, before, "warren_requests_total") == 2


ASGI_WS = r'''
async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    await send({"type": "websocket.close", "code": 1000})
'''


def test_websocket_101_is_1xx(pyw):
    """The 101 of a WebSocket handshake is an answer of class 1xx, for the
    router and for the application."""
    import test_python_websocket as pws
    w, appdir = pyw
    hh.write(appdir, "ws_asgi.py", ASGI_WS)
    port = app_setup(w, {"ws": {"type": "python", "path": appdir, "module": "ws_asgi",
                                "processes": 1}})
    assert hh.get(port, "/").status == 200
    quiet(w)
    before = scrape(w)
    ws = pws.WS(port, "/chat")
    try:
        assert ws.r.status == 101, ws.r
        assert ws.recv() == (True, pws.TEXT, b"hello")
        assert ws.close_code()[0] == 1000
        assert ws.c.closed()
    finally:
        ws.close()
    quiet(w)
    after = scrape(w)
    assert class_delta(after, before) == {"1xx": 1, "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
    assert class_delta(after, before, "warren_application_responses_total",
                       application="ws") == {"1xx": 1, "2xx": 0, "3xx": 0, "4xx": 0,
                                             "5xx": 0}
    assert delta(after, before, "warren_requests_total") == 1


def test_app_name_escaped(pyw):
    w, appdir = pyw
    names = ['we"ird\\app', "two\nlines"]
    port = app_setup(w, {names[0]: pyapp(appdir), names[1]: pyapp(appdir)},
                     routes=[{"match": {"uri": "/2"},
                              "action": {"pass": "applications/" + names[1]}},
                             {"action": {"pass": "applications/" + names[0]}}])
    assert hh.get(port, "/").status == 200
    assert hh.get(port, "/2").status == 200
    quiet(w)
    r = w.request("GET", "/metrics")
    text = r.body.decode("utf-8")
    assert 'application="we\\"ird\\\\app"' in text, text
    assert 'application="two\\nlines"' in text, text
    m = parse(text)
    for n in names:
        assert val(m, "warren_application_responses_total", application=n, code="2xx") == 1
        assert val(m, "warren_application_requests_active", application=n) == 0
    st = hh.status(w)
    for n in names:
        for state in STATES:
            assert val(m, "warren_application_processes", application=n, state=state) == \
                st["applications"][n]["processes"][state]
    # nothing else of the name leaked unescaped
    for line in text.split("\n"):
        assert not line.startswith("lines"), line


def test_failed_app_put_adds_no_load(pyw):
    """An app that cannot start fails the PUT (500): nothing was applied."""
    w, appdir = pyw
    port = app_setup(w, {"py": pyapp(appdir)})
    before = scrape(w)
    conf = w.config_bytes()
    s, j = w.put("/config", {
        "listeners": {"127.0.0.1:%d" % port: {"pass": "applications/bad"}},
        "applications": {"bad": {"type": "python", "path": appdir,
                                 "module": "no_such_module"}}})
    assert s == 500, j
    assert w.config_bytes() == conf
    after = scrape(w)
    assert delta(after, before, "warren_config_loads_total") == 0
    assert app_series(after, "bad") == []
    assert app_series(after, "py") != []


# ====================================================================== the action

def test_metrics_action(warren):
    w = warren
    port = hh.setup(w, [
        {"match": {"uri": "/metrics"},
         "action": {"metrics": "prometheus",
                    "response_headers": {"X-Metrics": "prom", "Cache-Control": "no-store"}}},
        {"match": {"uri": "/status"},
         "action": {"metrics": "json", "response_headers": {"X-Metrics": "json"}}},
        {"match": {"uri": "/ok"}, "action": {"return": 200}},
    ])
    for _ in range(2):
        assert hh.get(port, "/ok").status == 200
    st0 = quiet(w)
    ctl = scrape(w)

    bodies = []
    r = hh.get(port, "/metrics")
    bodies.append(r.body)
    assert r.status == 200, r
    assert r.header("Content-Type") == PROM_CT, r.headers
    assert r.header("X-Metrics") == "prom" and r.header("Cache-Control") == "no-store", r
    m = parse(r.body.decode("utf-8"))
    assert m.types == ctl.types
    assert {k for k in m if not k[0].startswith("process_")} == \
        {k for k in ctl if not k[0].startswith("process_")}
    c0 = st0["connections"]
    # the asking connection counts itself
    assert val(m, "warren_connections_accepted_total") == c0["accepted"] + 1
    assert val(m, "warren_connections_closed_total") == c0["closed"]
    assert val(m, "warren_connections_active") == 1
    assert val(m, "warren_connections_idle") == 0
    assert val(m, "warren_requests_total") in (st0["requests"]["total"],
                                               st0["requests"]["total"] + 1)
    assert val(m, "warren_responses_total", code="2xx") in (
        val(ctl, "warren_responses_total", code="2xx"),
        val(ctl, "warren_responses_total", code="2xx") + 1)

    st1 = quiet(w)
    r = hh.get(port, "/status")
    bodies.append(r.body)
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").startswith("application/json"), r.headers
    assert r.header("X-Metrics") == "json", r
    j = json.loads(r.body)
    assert set(j) == {"connections", "requests", "applications"}, j
    assert set(j["connections"]) == {"accepted", "active", "idle", "closed"}, j
    assert j["connections"]["accepted"] == st1["connections"]["accepted"] + 1, (j, st1)
    assert j["connections"]["closed"] == st1["connections"]["closed"], (j, st1)
    assert j["connections"]["active"] == 1, j
    assert j["requests"]["total"] in (st1["requests"]["total"], st1["requests"]["total"] + 1)
    assert j["applications"] == {}

    # HEAD: the head only (the next answer on the connection reads cleanly)
    with hh.Conn(port) as c:
        for path, ct in (("/metrics", PROM_CT), ("/status", "application/json")):
            r = c.request("HEAD", path)
            assert r.status == 200, r
            assert (r.header("Content-Type") or "").startswith(ct), r.headers
            r = c.request("GET", "/ok")
            bodies.append(r.body)
            assert r.status == 200, r
        r = c.request("GET", "/metrics")
        bodies.append(r.body)
        assert r.status == 200 and r.body.endswith(b"\n"), r
        parse(r.body.decode("utf-8"))
        assert c.still_open(0.1)

    # what the action answered is counted like any answer
    quiet(w)
    after = scrape(w)
    assert delta(after, ctl, "warren_responses_total", code="2xx") == 7
    assert delta(after, ctl, "warren_requests_total") == 7
    # the HEADs add no body bytes
    assert delta(after, ctl, "warren_response_body_bytes_total") == sum(map(len, bodies))


def test_metrics_action_config_round_trip(warren):
    w = warren
    routes = {"main": [{"match": {"uri": "/m"}, "action": {"metrics": "prometheus"}},
                       {"action": {"metrics": "json",
                                   "response_headers": {"X-A": "1"}}}]}
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes/main"}}, "routes": routes}
    assert w.put("/config", cfg) == (200, wh.SUCCESS)
    assert w.config() == cfg
    assert w.get("/config/routes/main/0/action/metrics") == (200, "prometheus")
    assert hh.get(port, "/m").header("Content-Type") == PROM_CT
    r = hh.get(port, "/j")
    assert r.status == 200 and r.header("X-A") == "1", r
    # switched in place by a sub-path PUT
    assert w.put("/config/routes/main/0/action/metrics", "json") == (200, wh.SUCCESS)
    r = hh.get(port, "/m")
    assert (r.header("Content-Type") or "").startswith("application/json"), r


def _routes_list(action):
    return [{"match": {"uri": "/a"}, "action": {"return": 200}},
            {"action": action}]


BAD = [
    ("unknown-format", _routes_list({"metrics": "xml"}), "/routes/1/action/metrics", None),
    ("capitalized", _routes_list({"metrics": "Prometheus"}), "/routes/1/action/metrics",
     None),
    ("empty", _routes_list({"metrics": ""}), "/routes/1/action/metrics", None),
    ("number", _routes_list({"metrics": 1}), "/routes/1/action/metrics", None),
    ("bool", _routes_list({"metrics": True}), "/routes/1/action/metrics", None),
    ("null", _routes_list({"metrics": None}), "/routes/1/action/metrics", None),
    ("array", _routes_list({"metrics": ["prometheus"]}), "/routes/1/action/metrics", None),
    ("object", _routes_list({"metrics": {"format": "json"}}), "/routes/1/action/metrics",
     None),
    ("named-routes", {"main": [{"action": {"return": 204}},
                               {"action": {"metrics": "yaml"}}]},
     "/routes/main/1/action/metrics", None),
    ("with-return", _routes_list({"metrics": "json", "return": 200}), "/routes/1/action",
     "only one of"),
    ("with-share", _routes_list({"metrics": "prometheus", "share": "/srv$uri"}),
     "/routes/1/action", "only one of"),
    ("with-proxy", _routes_list({"metrics": "prometheus", "proxy": "http://127.0.0.1:9"}),
     "/routes/1/action", "only one of"),
    ("with-pass", {"main": [{"action": {"metrics": "json", "pass": "routes/other"}}],
                   "other": [{"action": {"return": 200}}]},
     "/routes/main/0/action", "only one of"),
]


@pytest.mark.parametrize("routes,pointer,detail", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_metrics_action_invalid(warren, routes, pointer, detail):
    w = warren
    port = hh.setup(w, [{"action": {"metrics": "prometheus"}}])
    before = w.config_bytes()
    loads = val(scrape(w), "warren_config_loads_total")
    lpass = "routes/main" if isinstance(routes, dict) else "routes"
    s, j = w.put("/config", {"listeners": {"127.0.0.1:%d" % port: {"pass": lpass}},
                             "routes": routes})
    assert s == 400, (s, j)
    assert j.get("error") == INVALID_CONFIG, j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    assert j.get("location") == {"path": pointer}, j
    if detail:
        assert detail in j["detail"], j
    assert w.config_bytes() == before
    assert val(scrape(w), "warren_config_loads_total") == loads
    assert hh.get(port, "/").header("Content-Type") == PROM_CT


@pytest.mark.parametrize("path,value,pointer", [
    ("/config/routes/0/action/metrics", "text", "/routes/0/action/metrics"),
    ("/config/routes/0/action/metrics", 0, "/routes/0/action/metrics"),
    ("/config/routes/0/action", {"metrics": "csv"}, "/routes/0/action/metrics"),
    ("/config/routes/0/action/return", 200, "/routes/0/action"),
    ("/config/routes/0/action/share", "/srv$uri", "/routes/0/action"),
])
def test_metrics_action_invalid_subpath(warren, path, value, pointer):
    w = warren
    port = hh.setup(w, [{"action": {"metrics": "json"}}])
    before = w.config_bytes()
    s, j = w.put(path, value)
    assert s == 400, (s, j)
    assert j.get("error") == INVALID_CONFIG, j
    assert j.get("location") == {"path": pointer}, j
    assert w.config_bytes() == before
    assert (hh.get(port, "/").header("Content-Type") or "").startswith("application/json")


# ====================================================================== TLS, config loads

def test_tls_handshake_failures(warren, pki):
    w = warren
    th.store(w, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(w, port, {"certificate": "localhost"})
    ctx = th.client_ctx(pki.cafile)
    r, _ = th.tls_get(port, ctx)
    assert r.status == 200
    quiet(w)
    before = scrape(w)
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = th.read_until_closed(s, 5.0)
        finally:
            s.close()
        assert b"HTTP/1.1 200" not in data, data[:200]
    quiet(w)
    mid = scrape(w)
    assert delta(mid, before, "warren_tls_handshake_failures_total") == 2
    # a good handshake adds nothing
    r, _ = th.tls_get(port, ctx)
    assert r.status == 200
    quiet(w)
    after = scrape(w)
    assert delta(after, mid, "warren_tls_handshake_failures_total") == 0
    assert class_delta(after, mid)["2xx"] == 1


def test_config_loads(warren):
    w = warren
    m0 = scrape(w)

    def loads():
        return val(scrape(w), "warren_config_loads_total") - \
            val(m0, "warren_config_loads_total")

    port = hh.setup(w, [{"match": {"uri": "/a"}, "action": {"return": 200}},
                        {"action": {"return": 404}}])
    assert loads() == 1
    assert w.put("/config/routes/0/action/return", 201) == (200, wh.SUCCESS)
    assert loads() == 2
    assert hh.get(port, "/a").status == 201
    # refused: invalid (400), missing parent (404), bad JSON (400)
    s, j = w.put("/config/routes/0/action/return", "x")
    assert s == 400, j
    s, j = w.put("/config/nope/deeper", 1)
    assert s == 404, j
    r = w.request("PUT", "/config", b"{nope")
    assert r.status == 400, r
    s, j = w.put("/config", {"listenrs": {}})
    assert s == 400, j
    assert loads() == 2
    s, j = w.post("/config/routes", {"match": {"uri": "/b"}, "action": {"return": 202}})
    assert (s, j) == (200, wh.SUCCESS)
    assert loads() == 3
    assert w.delete("/config/routes/2") == (200, wh.SUCCESS)
    assert loads() == 4
    assert w.put("/config", {}) == (200, wh.SUCCESS)
    assert loads() == 5


# ====================================================================== the process

def boot_time():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def test_process_metrics(warren):
    w = warren
    m = scrape(w)
    now = time.time()
    router = w.pid("router")
    fds = val(m, "process_open_fds")
    assert fds > 0
    assert abs(fds - len(wh.proc_fds(router))) <= 2, (fds, wh.proc_fds(router))
    rss = val(m, "process_resident_memory_bytes")
    assert rss > 0
    vmrss = int(wh.proc_status(router)["VmRSS"].split()[0]) * 1024
    assert vmrss / 2 <= rss <= vmrss * 2, (rss, vmrss)
    start = val(m, "process_start_time_seconds")
    assert now - 3600 <= start <= now + 1, (start, now)
    ticks = os.sysconf(os.sysconf_names["SC_CLK_TCK"])
    router_start = boot_time() + wh.proc_stat(router)[2] / ticks
    assert abs(start - router_start) <= 2, (start, router_start)
    cpu = val(m, "process_cpu_seconds_total")
    assert cpu >= 0 and math.isfinite(cpu)


# ====================================================================== the parser itself

def test_parser_checks_the_format():
    good = ('# HELP a_total An a.\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 3\n'
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            'h_sum 0.5\nh_count 2\n')
    m = parse(good)
    assert m[("a_total", frozenset({("x", 'q"\\\n')}))] == 3
    bad = [
        good[:-1],                                                  # no final newline
        "a 1\n",                                                    # no TYPE/HELP
        "# TYPE a counter\na 1\n",                                  # no HELP
        "# HELP a x\n# TYPE a countr\na 1\n",                       # bad TYPE
        "# HELP a x\n# TYPE a gauge\na 1\na 2\n",                   # duplicate
        "# HELP a x\n# TYPE a gauge\na{x=\"\\q\"} 1\n",             # bad escape
        "# HELP a x\n# TYPE a gauge\n# HELP b y\n# TYPE b gauge\na 1\nb 1\na{z=\"1\"} 1\n",
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 2\n",                                     # not cumulative
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP a x\n# TYPE a gauge\na one\n",                       # bad value
    ]
    for text in bad:
        with pytest.raises(ExpositionError):
            parse(text)


def test_counters_survive_router_threads_coming_and_going(warren):
    """settings.listen_threads changes while clients are served and the
    metrics action is scraped from the serving threads themselves: every
    scrape parses, and counters never go back (a thread let go hands its
    totals over; the sum is read under the same lock)."""
    w = warren
    routes = [{"match": {"uri": "/metrics"}, "action": {"metrics": "prometheus"}},
              {"action": {"return": 204}}]
    port = hh.setup(w, routes, settings={"listen_threads": 1})
    stop = threading.Event()
    errors, seen = [], []

    def client():
        while not stop.is_set():
            try:
                with hh.Conn(port) as c:
                    for _ in range(20):
                        c.send(hh.build("GET", "/x"))
                        if c.read_response().status != 204:
                            errors.append("not 204")
            except Exception as e:            # a let-go thread closes idle ones
                if not isinstance(e, (hh.HTTPError, OSError)):
                    errors.append(repr(e))

    def scraper():
        while not stop.is_set():
            r = hh.get(port, "/metrics")
            try:
                m = parse(r.body.decode())
            except ExpositionError as e:
                errors.append(str(e))
                continue
            seen.append((val(m, "warren_requests_total"),
                         val(m, "warren_request_duration_seconds_count"),
                         val(m, "warren_connections_accepted_total")))

    threads = [threading.Thread(target=client) for _ in range(2)]
    threads.append(threading.Thread(target=scraper))
    for t in threads:
        t.start()
    try:
        for n in [4, 1, 3, 2, 1, 4, 2, 1] * 2:
            s, j = w.put("/config/settings/listen_threads", n)
            assert (s, j) == (200, wh.SUCCESS), j
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert not errors, errors[:5]
    assert len(seen) > 10, seen
    for a, b in zip(seen, seen[1:]):
        assert all(y >= x for x, y in zip(a, b)), (a, b)
    quiet(w)
    m = scrape(w)
    st = hh.status(w)
    assert val(m, "warren_requests_total") == st["requests"]["total"]
    assert val(m, "warren_connections_accepted_total") == st["connections"]["accepted"]
