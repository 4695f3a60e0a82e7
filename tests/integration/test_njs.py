"""Data plane: JavaScript template literals (Unit's njs templates), see
spec njs.md. A string that starts and ends with a backtick is one JS
template literal evaluated per request in every option that takes Unit
variables; the globals uri, host, remoteAddr, args, headers, cookies, vars
describe the current request."""

import json
import os
import re
import shutil
import time

import pytest

import http_helpers as hh
import warren_helpers as wh


def js(s):
    return "`" + s + "`"


def hdr_route(headers, match=None, code=200):
    r = {"action": {"return": code, "response_headers": headers}}
    if match:
        r["match"] = match
    return r


def log_since(w):
    with open(w.log_path, "rb") as f:
        f.seek(w.log_mark)
        return f.read().decode("utf-8", "replace")


def error_lines(w, pattern, timeout=5.0):
    """Wait for [error] lines (written since the test began) matching
    pattern; return them (empty list if none came)."""
    rx = re.compile(pattern)

    def f():
        return [l for l in log_since(w).splitlines() if "[error]" in l and rx.search(l)]
    return wh.wait_for(f, timeout, 0.05)


@pytest.fixture
def root():
    d = hh.make_root()
    hh.write(d, "pub/a.txt", b"file a")
    hh.write(d, "pub/b.txt", b"file b")
    hh.write(d, "other/x.txt", b"other x")
    yield d
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- 1. where

def test_listener_pass(vwarren):
    port = wh.free_port()
    hh.setup(vwarren, {"a": [{"action": {"return": 201}}],
                       "b": [{"action": {"return": 202}}]},
             listeners={"127.0.0.1:%d" % port: {"pass": js("routes/${host.split('.')[0]}")}})
    assert hh.get(port, "/", host="a.example").status == 201
    assert hh.get(port, "/", host="b.example").status == 202
    assert hh.get(port, "/", host="A.example:99").status == 201


def test_action_pass(vwarren):
    port = wh.free_port()
    routes = {"main": [{"action": {"pass": js("routes/${args.to || 'x'}")}}],
              "x": [{"action": {"return": 203}}],
              "y": [{"action": {"return": 204}}]}
    hh.setup(vwarren, routes, listeners={"127.0.0.1:%d" % port: {"pass": "routes/main"}})
    assert hh.get(port, "/?to=y").status == 204
    assert hh.get(port, "/").status == 203


def test_share_string_and_array(vwarren, root):
    routes = [{"match": {"uri": "/s/*"},
               "action": {"share": js(root + "/pub/${uri.split('/')[2]}.txt")}},
              {"action": {"share": [js(root + "/nope${uri}"),
                                    js(root + "/pub/${args.f}")]}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/s/b")
    assert r.status == 200 and r.body == b"file b", r
    r = hh.get(port, "/any?f=a.txt")
    assert r.status == 200 and r.body == b"file a", r


def test_chroot(vwarren, root):
    routes = [{"action": {"share": root + "$uri",
                          "chroot": js(root + "/${args.j}")}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/pub/a.txt?j=pub")
    assert r.status == 200 and r.body == b"file a", r
    r = hh.get(port, "/pub/a.txt?j=other")
    assert r.status == 403, r
    assert hh.get(port, "/other/x.txt?j=other").body == b"other x"


def test_location(vwarren):
    port = hh.setup(vwarren, [{"action": {
        "return": 301, "location": js("https://${host}${uri}?n=${Object.keys(args).length}")}}])
    r = hh.get(port, "/p/q?a=1&b=2", host="H.example:8080")
    assert r.status == 301, r
    assert r.header("Location") == "https://h.example/p/q?n=2", r


def test_rewrite(vwarren):
    port = hh.setup(vwarren, [{"action": {
        "rewrite": js("/rw${uri.toUpperCase()}"), "return": 200,
        "response_headers": {"X-U": "$uri"}}}])
    r = hh.get(port, "/abc")
    assert r.header("X-U") == "/rw/ABC", r


def test_response_headers(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-Len": js("${uri.length}"),
        "X-Lit": js("$uri:${uri}"),
        "X-Plain": "$uri",
        "X-Text": js("just text")})])
    r = hh.get(port, "/abcd")
    assert r.header("X-Len") == "5", r
    assert r.header("X-Lit") == "$uri:/abcd", r       # $ without { is text in JS
    assert r.header("X-Plain") == "/abcd", r
    assert r.header("X-Text") == "just text", r


def test_match_if(vwarren):
    routes = [hdr_route({}, {"if": js("${args.v}")}, 201),
              hdr_route({}, {"if": "!" + js("${headers['X-N'] || ''}")}, 202),
              {"action": {"return": 404}}]
    port = hh.setup(vwarren, routes)
    got = [hh.get(port, p, h).status for p, h in [
        ("/?v=1", None), ("/?v=false", None), ("/?v=yes", None),
        ("/?v=0", None), ("/?v=", None), ("/?v=0", {"X-N": "1"}), ("/?v=", {"X-N": "0"})]]
    # "false" is a non-empty string, not "0": true
    assert got == [201, 201, 201, 202, 202, 404, 202], got


def test_access_log_format_string(vwarren):
    path = os.path.join(vwarren.dir, "njs-str.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path, "format": js("${vars.method} ${uri.toUpperCase()} ${vars.status} $x")}})
    hh.get(port, "/ab")
    hh.get(port, "/cd", method="POST")
    assert hh.wait_lines(path, 2) == ["GET /AB 200 $x", "POST /CD 200 $x"]


def test_access_log_format_object(vwarren):
    path = os.path.join(vwarren.dir, "njs-obj.log")
    fmt = {"len": js("${uri.length}"), "m": "$method", "s": js("${vars.status}"),
           "a": js("${JSON.stringify(args)}")}
    port = hh.setup(vwarren, [{"match": {"uri": "/a*"}, "action": {"return": 200}},
                              {"action": {"return": 404}}],
                    extra={"access_log": {"path": path, "format": fmt}})
    hh.get(port, "/abc?k=v")
    hh.get(port, "/zz")
    objs = [json.loads(l) for l in hh.wait_lines(path, 2)]
    assert objs[0] == {"len": "4", "m": "GET", "s": "200", "a": '{"k":"v"}'}, objs
    assert objs[1] == {"len": "3", "m": "GET", "s": "404", "a": "{}"}, objs


def test_access_log_if(vwarren):
    path = os.path.join(vwarren.dir, "njs-if.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path, "format": "$uri", "if": js("${args.log === 'y' ? 1 : 0}")}})
    for p in ("/1?log=y", "/2?log=n", "/3", "/4?log=y"):
        hh.get(port, p)
    assert hh.wait_lines(path, 2) == ["/1", "/4"]
    path2 = os.path.join(vwarren.dir, "njs-ifnot.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path2, "format": "$uri", "if": "!" + js("${cookies.nolog || ''}")}})
    hh.get(port, "/a", {"Cookie": "nolog=1"})
    hh.get(port, "/b")
    assert hh.wait_lines(path2, 1) == ["/b"]
    path3 = os.path.join(vwarren.dir, "njs-ifstatus.log")
    port = hh.setup(vwarren, [{"match": {"uri": "/a*"}, "action": {"return": 200}},
                              {"action": {"return": 404}}], extra={"access_log": {
        "path": path3, "format": "$uri", "if": js("${vars.status == 404 ? 1 : ''}")}})
    for p in ("/a1", "/b1", "/a2", "/b2"):
        hh.get(port, p)
    assert hh.wait_lines(path3, 2) == ["/b1", "/b2"]


# -------------------------------------------------------------- 2. globals

def test_globals_uri_host_remote_addr(vwarren):
    routes = [{"match": {"uri": "/old"}, "action": {
        "rewrite": "/new", "return": 200,
        "response_headers": {"X-U": js("${uri}"), "X-H": js("${host}"),
                             "X-R": js("${remoteAddr}")}}},
              hdr_route({"X-U": js("${uri}"), "X-H": js("${host}")})]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/old", host="Mixed.Example:8080")
    assert (r.header("X-U"), r.header("X-H"), r.header("X-R")) == \
        ("/new", "mixed.example", "127.0.0.1"), r
    r = hh.get(port, "/p/%41b%20c?x=1")
    assert r.header("X-U") == "/p/Ab c", r


def test_globals_args(vwarren):
    port = hh.setup(vwarren, [hdr_route({"X-A": js("${JSON.stringify(args)}")})])
    r = hh.get(port, "/?a=1&b=x%20y&c=p+q&a=2&d&e=%26%3D")
    assert json.loads(r.header("X-A")) == {"a": ["1", "2"], "b": "x y", "c": "p q",
                                           "d": "", "e": "&="}, r
    assert hh.get(port, "/").header("X-A") == "{}"
    assert hh.get(port, "/?").header("X-A") == "{}"


def test_globals_headers(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-UA": js("${headers['User-Agent']}"),
        "X-Mixed": js("${headers['X-MiXed']}"),
        "X-Rep": js("${headers['X-Rep']}"),
        "X-None": js("${typeof headers['X-Absent']}")})])
    r = hh.get(port, "/", [("User-Agent", "tester/1"), ("X-MiXed", "mv"),
                           ("X-Rep", "a"), ("X-Rep", "b c")])
    assert r.header("X-UA") == "tester/1", r
    assert r.header("X-Mixed") == "mv", r
    assert r.header("X-Rep") == "a, b c", r
    assert r.header("X-None") == "undefined", r


def test_globals_cookies(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-C": js("${cookies.a}|${cookies.b}|${typeof cookies.zz}")})])
    r = hh.get(port, "/", {"Cookie": "a=1; b=two; a=3"})
    assert r.header("X-C") == "1|two|undefined", r
    assert hh.get(port, "/").header("X-C") == "undefined|undefined|undefined"


def test_globals_vars(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-V": js("${vars.method}|${vars.request_uri}|${vars.header_user_agent}|"
                  "${vars.arg_x}|${vars.cookie_y}|${typeof vars.nosuch}"),
        "X-Id": js("${vars.request_id}")})])
    r = hh.get(port, "/v/%41?x=42&z", {"User-Agent": "ua/2", "Cookie": "y=cv"},
               method="PUT")
    assert r.header("X-V") == "PUT|/v/%41?x=42&z|ua/2|42|cv|undefined", r
    assert re.fullmatch(r"[0-9a-f]{32}", r.header("X-Id") or ""), r
    assert hh.get(port, "/").header("X-Id") != r.header("X-Id")


def test_javascript_features(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-Map": js("${[1, 2, 3].map(x => x * 2).join('-')}"),
        "X-Tern": js("${uri.startsWith('/a') ? 'A' : 'other'}"),
        "X-Json": js("${JSON.stringify({u: uri, n: Number(args.n) + 1})}"),
        "X-Nest": js("<${`in-${uri.slice(1)}`}>")})])
    r = hh.get(port, "/abc?n=41")
    assert r.header("X-Map") == "2-4-6", r
    assert r.header("X-Tern") == "A", r
    assert json.loads(r.header("X-Json")) == {"u": "/abc", "n": 42}, r
    assert r.header("X-Nest") == "<in-abc>", r
    assert hh.get(port, "/zz").header("X-Tern") == "other"


# ------------------------------------------------------- 4. syntax errors

def _set_hdr(bad):
    def f(cfg, key):
        cfg["routes"].insert(0, hdr_route({"X-Bad": bad}))
    return f


def _set_location(bad):
    def f(cfg, key):
        cfg["routes"].insert(0, {"action": {"return": 301, "location": bad}})
    return f


def _set_listener_pass(bad):
    def f(cfg, key):
        cfg["listeners"][key]["pass"] = bad
    return f


def _set_if(bad):
    def f(cfg, key):
        cfg["routes"].insert(0, {"match": {"if": bad}, "action": {"return": 204}})
    return f


def _set_log_format(bad):
    def f(cfg, key):
        cfg["access_log"] = {"path": cfg["access_log"], "format": bad}
    return f


def _set_share(bad):
    def f(cfg, key):
        cfg["routes"].insert(0, {"action": {"share": ["/tmp/x$uri", bad]}})
    return f


@pytest.mark.parametrize("change,names", [
    (_set_hdr(js("${(}")), ["response_headers", "X-Bad"]),
    (_set_location(js("x${1 +}")), ["location"]),
    (_set_listener_pass(js("routes/${'a}")), ["pass"]),
    (_set_if("!" + js("${)}")), ["if"]),
    (_set_log_format(js("${uri.}")), ["format"]),
    (_set_share(js("/tmp/${[}")), ["share"]),
], ids=["response_headers", "location", "listener-pass", "if", "log-format", "share"])
def test_syntax_error_refused(vwarren, change, names):
    w = vwarren
    before = w.config_bytes()
    key = next(iter(w.base["listeners"]))
    port = int(key.rsplit(":", 1)[1])
    cfg = wh.deep(w.base)
    change(cfg, key)
    s, j = w.put("/config", cfg)
    assert s == 400, (s, j)
    detail = j.get("detail", "")
    assert "SyntaxError" in detail, j
    assert any(re.search(r"\b%s\b" % re.escape(n), detail) for n in names), j
    assert w.config_bytes() == before
    assert hh.get(port, "/health").status == 200


@pytest.mark.parametrize("bad", ["`abc", "`${uri}"])
def test_unterminated_backtick_refused(vwarren, bad):
    before = vwarren.config_bytes()
    cfg = wh.deep(vwarren.base)
    cfg["routes"].insert(0, hdr_route({"X-Bad": bad}))
    s, j = vwarren.put("/config", cfg)
    assert s == 400, (s, j)
    assert vwarren.config_bytes() == before


# ------------------------------------------------------ 5. runtime errors

ERRORS = [
    ("${nosuch}", "nosuch is not defined"),
    ("${null.x}", "TypeError"),
    ("${(() => { throw new Error('boom') })()}", "boom"),
]
ERROR_IDS = ["ReferenceError", "TypeError", "throw"]


@pytest.mark.parametrize("expr,msg", ERRORS, ids=ERROR_IDS)
def test_runtime_error_500(vwarren, expr, msg):
    routes = [{"match": {"uri": "/loc"}, "action": {"return": 302, "location": js(expr)}},
              {"match": {"uri": "/pass"}, "action": {"pass": js("routes/" + expr)}},
              {"match": {"uri": "/rw"}, "action": {"rewrite": js(expr), "return": 204}},
              hdr_route({"X-Ok": js("${uri}")}, code=200)]
    port = hh.setup(vwarren, routes)
    for p in ("/loc", "/pass", "/rw"):
        assert hh.get(port, p).status == 500, p
    r = hh.get(port, "/ok")
    assert r.status == 200 and r.header("X-Ok") == "/ok", r
    assert error_lines(vwarren, re.escape(msg)), log_since(vwarren)[-3000:]


@pytest.mark.parametrize("expr,msg", ERRORS, ids=ERROR_IDS)
def test_runtime_error_in_response_headers_500(vwarren, expr, msg):
    """response_headers is an action option too: a throwing value answers 500
    (as Unit does), not the response without that field."""
    port = hh.setup(vwarren, [hdr_route({"X-E": js(expr)}, {"uri": "/err"}),
                              {"action": {"return": 204}}])
    r = hh.get(port, "/err")
    assert error_lines(vwarren, re.escape(msg)), log_since(vwarren)[-3000:]
    assert hh.get(port, "/ok").status == 204
    assert r.status == 500, r


def test_runtime_error_keepalive_next_request(vwarren):
    routes = [{"match": {"uri": "/err"},
               "action": {"return": 302, "location": js("${nosuch}")}},
              hdr_route({"X-Ok": js("ok${uri}")})]
    port = hh.setup(vwarren, routes)
    with hh.Conn(port) as c:
        assert c.request("GET", "/err").status == 500
        if c.closed(0.2):         # the connection may be closed after the 500
            c.close()
            c = hh.Conn(port)
        r = c.request("GET", "/x")
        assert r.status == 200 and r.header("X-Ok") == "ok/x", r
        c.close()


def test_access_log_format_throws(vwarren):
    path = os.path.join(vwarren.dir, "njs-throw.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path, "format": js("${args.boom ? null.x : uri}")}})
    r = hh.get(port, "/a?boom=1")
    assert r.status == 200, r                      # the answer is already made
    hh.get(port, "/b")
    assert hh.wait_lines(path, 1) == ["/b"]
    assert error_lines(vwarren, "TypeError"), log_since(vwarren)[-3000:]
    path2 = os.path.join(vwarren.dir, "njs-throw-obj.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path2, "format": {"u": "$uri", "x": js("${args.boom ? nosuch : 'ok'}")}}})
    hh.get(port, "/c?boom=1")
    hh.get(port, "/d")
    assert [json.loads(l) for l in hh.wait_lines(path2, 1)] == [{"u": "/d", "x": "ok"}]
    assert error_lines(vwarren, "nosuch is not defined"), log_since(vwarren)[-3000:]


def test_access_log_if_throws_is_false(vwarren):
    path = os.path.join(vwarren.dir, "njs-ifthrow.log")
    port = hh.setup(vwarren, [{"action": {"return": 200}}], extra={"access_log": {
        "path": path, "format": "$uri", "if": js("${args.boom ? nosuch : 1}")}})
    hh.get(port, "/a?boom=1")
    hh.get(port, "/b")
    hh.get(port, "/c?boom=")
    assert hh.wait_lines(path, 2) == ["/b", "/c"]


# --------------------------------------------------------- 6. runaway code

def test_runaway_template_stopped(vwarren):
    routes = [{"match": {"uri": "/loop"}, "action": {
                  "return": 302, "location": js("${(() => { for (;;) {} })()}")}},
              hdr_route({"X-Ok": js("${uri}")})]
    port = hh.setup(vwarren, routes)
    t0 = time.monotonic()
    with hh.Conn(port, timeout=12) as c:
        r = c.request("GET", "/loop")
    assert r.status == 500, r
    assert time.monotonic() - t0 < 10
    r = hh.get(port, "/after")
    assert r.status == 200 and r.header("X-Ok") == "/after", r
    assert error_lines(vwarren, r"(?i)too long|ran longer|time ?limit|timed? ?out|timeout"), \
        log_since(vwarren)[-3000:]


def test_runaway_template_stopped_after_idle(warren):
    """The watchdog sleeps when no template has run for a second; a runaway
    template after such a pause must still be stopped (own daemon: its
    router's watchdog state is this test's)."""
    routes = [{"match": {"uri": "/loop"}, "action": {
                  "return": 302, "location": js("${(() => { for (;;) {} })()}")}},
              hdr_route({"X-Ok": js("${uri}")})]
    port = hh.setup(warren, routes)
    assert hh.get(port, "/warm").header("X-Ok") == "/warm"
    time.sleep(2.5)                     # > 20 idle looks of 50 ms
    with hh.Conn(port, timeout=12) as c:
        r = c.request("GET", "/loop")
    assert r.status == 500, r
    assert hh.get(port, "/after").header("X-Ok") == "/after"


# ----------------------------------------------------------- 7. isolation

def test_globals_describe_current_request(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-T": js("${uri}|${headers['X-Only'] ?? 'none'}|${args.q ?? '-'}|"
                  "${cookies.c ?? '-'}|${vars.method}")})])
    reqs = [("GET", "/one?q=1", {"X-Only": "v1", "Cookie": "c=k1"}, "/one|v1|1|k1|GET"),
            ("POST", "/two", None, "/two|none|-|-|POST"),
            ("GET", "/three?q=3", {"X-Only": "v3"}, "/three|v3|3|-|GET"),
            ("DELETE", "/four", {"Cookie": "c=k4"}, "/four|none|-|k4|DELETE")]
    with hh.Conn(port) as c1, hh.Conn(port) as c2:
        for i, (m, p, h, want) in enumerate(reqs * 2):
            r = (c1 if i % 2 else c2).request(m, p, h)
            assert r.header("X-T") == want, (i, r)


@pytest.mark.parametrize("op", [
    "${Object.defineProperty(globalThis, 'uri', {value: 'evil'}) && 1}",
    "${delete globalThis.uri}",
], ids=["defineProperty", "delete"])
def test_globals_cannot_be_redefined(warren, op):
    """A template that redefines or deletes a global does not change what
    uri is for the next requests (own daemon: a failure poisons its
    threads)."""
    port = hh.setup(warren, [hdr_route({"X-C": js(op)}, {"uri": "/clobber"}),
                             hdr_route({"X-U": js("${uri}")})])
    for _ in range(6):
        hh.get(port, "/clobber")
    got = [hh.get(port, "/now%d" % i).header("X-U") for i in range(6)]
    assert got == ["/now%d" % i for i in range(6)], got


def test_statements_do_not_break_later_requests(warren):
    """Only one template literal: a declaration after it is either refused
    at PUT or harmless, not a runtime SyntaxError from the second request
    on ("redeclaration of let q"). Own daemon: the declaration may stay."""
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": [hdr_route({"X-L": "`a`; let q = 1; `b`"})]}
    s, j = warren.put("/config", cfg)
    if s == 400:
        return
    assert (s, j) == (200, wh.SUCCESS), (s, j)
    got = {hh.get(port, "/").header("X-L") for _ in range(6)}
    assert len(got) == 1 and None not in got, got


def test_names_like_object_properties(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-A": js("${JSON.stringify(args)}"), "X-C": js("${JSON.stringify(cookies)}")})])
    r = hh.get(port, "/?constructor=3&toString=4", {"Cookie": "constructor=c; toString=t"})
    assert json.loads(r.header("X-A")) == {"constructor": "3", "toString": "4"}, r
    assert json.loads(r.header("X-C")) == {"constructor": "c", "toString": "t"}, r


def test_header_named_like_object_property(warren):
    """A request field named "constructor" (own daemon: it may crash the
    router)."""
    port = hh.setup(warren, [hdr_route({"X-H": js("${headers['constructor']}|${headers.A}")})])
    r = hh.get(port, "/", [("constructor", "h"), ("A", "1")])
    assert r.status == 200 and r.header("X-H") == "h|1", r
    assert hh.get(port, "/", {"A": "2"}).header("X-H") == "undefined|2"


def test_args_non_ascii_names(vwarren):
    port = hh.setup(vwarren, [hdr_route({
        "X-A": js("${'\\u00e9' in args}|${args.k === '\\u00e9'}|${Object.keys(args).length}")})])
    r = hh.get(port, "/?%C3%A9=1&k=%C3%A9")
    assert r.header("X-A") == "true|true|2", r


# ------------------------------------------------------- 8. reconfiguration

def test_reconfiguration(vwarren):
    port = hh.setup(vwarren, [hdr_route({"X-T": js("A-${uri}")})])
    assert hh.get(port, "/p").header("X-T") == "A-/p"
    tpl = {0: js("B-${uri.toUpperCase()}"), 1: js("A-${uri}")}
    want = {0: "B-/Q", 1: "A-/q"}
    for i in range(30):
        s, j = vwarren.put("/config/routes/0/action/response_headers/X-T", tpl[i % 2])
        assert (s, j) == (200, wh.SUCCESS), (i, s, j)
        r = hh.get(port, "/q")
        assert r.header("X-T") == want[i % 2], (i, r)


# ----------------------------------------------------------------- 9. mixed

def test_mixed_plain_and_js(vwarren):
    routes = [{"match": {"uri": "/m/*", "if": js("${args.go ? 1 : ''}")},
               "action": {"return": 301, "location": "/to$uri?m=$method",
                          "response_headers": {"X-P": "$uri $arg_go",
                                               "X-J": js("${uri} ${args.go}"),
                                               "X-Both": "${uri}-$host"}}},
              {"match": {"if": "$arg_plain"}, "action": {"return": 202}},
              {"action": {"return": 404}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/m/x?go=yes", host="mx.example")
    assert r.status == 301, r
    assert r.header("Location") == "/to/m/x?m=GET", r
    assert r.header("X-P") == "/m/x yes" and r.header("X-J") == "/m/x yes", r
    assert r.header("X-Both") == "/m/x-mx.example", r
    assert hh.get(port, "/m/x").status == 404
    assert hh.get(port, "/m/x?plain=1").status == 202
