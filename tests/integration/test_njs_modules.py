"""JavaScript modules for templates (Unit's js_module), see spec
njs-modules.md: the /js_modules store of the control API (raw source as
the PUT body), settings.js_module naming the modules whose default
exports templates see under the module's name, load and runtime errors,
persistence across a restart."""

import re
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

SUCCESS = wh.SUCCESS
UPLOADED = {"success": "JS module uploaded."}
DELETED = {"success": "JS module deleted."}
NOT_FOUND = {"error": "Value doesn't exist."}

ROUTE_MOD = "export default { route(h) { return h['X-To'] || 'a'; } }"
A_MOD = "export default { f() { return 'from-a'; } }"
B_MOD = "export default { f() { return 'from-b'; } }"


def js(s):
    return "`" + s + "`"


def upload(w, name, source):
    """PUT /js_modules/NAME with the raw source as the body."""
    return wh.put_raw(w, "/js_modules/" + name, source)


def store(w, **mods):
    for name, src in mods.items():
        assert upload(w, name, src) == (200, UPLOADED), name


def hdr_cfg(port, template, modules, extra_routes=()):
    """A config answering 200 with X-T: template, loading modules."""
    return {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
            "routes": list(extra_routes) + [
                {"action": {"return": 200, "response_headers": {"X-T": template}}}],
            "settings": {"js_module": modules}}


def put_hdr(w, template, modules, port=None):
    port = port or wh.free_port()
    s, j = w.put("/config", hdr_cfg(port, template, modules))
    assert (s, j) == (200, SUCCESS), (s, j)
    return port


def log_since(w, mark):
    with open(w.log_path, "rb") as f:
        f.seek(mark)
        return f.read().decode("utf-8", "replace")


# ============================================================ control API

def test_upload_and_get(warren):
    assert warren.get("/js_modules") == (200, {})
    s, root = warren.get("/")
    assert s == 200 and "js_modules" in root, root
    assert {"certificates", "config", "status"} <= set(root), root
    assert upload(warren, "http", ROUTE_MOD) == (200, UPLOADED)
    assert upload(warren, "b", B_MOD) == (200, UPLOADED)
    assert warren.get("/js_modules") == (200, {"http": ROUTE_MOD, "b": B_MOD})
    assert warren.get("/js_modules/http") == (200, ROUTE_MOD)
    assert warren.get("/")[1]["js_modules"] == {"http": ROUTE_MOD, "b": B_MOD}
    assert warren.get("/js_modules/nope")[0] == 404


@pytest.mark.parametrize("name", ["1a", "a-b", "a.b", "a%20b", "a" * 129, "%C3%A9",
                                  "a:b"])
def test_invalid_name(warren, name):
    s, j = upload(warren, name, A_MOD)
    assert s == 400, j
    assert j.get("error") == "Invalid JS module name.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    assert warren.get("/js_modules") == (200, {})


def test_valid_name_edges(warren):
    names = ["a" * 128, "$", "_", "A9_$", "$x1"]
    for n in names:
        assert upload(warren, n, A_MOD) == (200, UPLOADED), n
    assert set(warren.get("/js_modules")[1]) == set(names)


@pytest.mark.parametrize("src", ["export default {", "export default 1 +;",
                                 "this is not javascript"])
def test_invalid_module(warren, src):
    s, j = upload(warren, "bad", src)
    assert s == 400, j
    assert j.get("error") == "Invalid JS module.", j
    assert j.get("detail", "").startswith("SyntaxError: "), j
    assert warren.get("/js_modules") == (200, {})
    assert warren.get("/js_modules/bad")[0] == 404


def test_duplicate_name_refused(warren):
    store(warren, m=A_MOD)
    s, j = upload(warren, "m", B_MOD)
    assert s == 400, j
    assert j.get("error") == 'JS module "m" already exists.', j
    assert "DELETE" in j.get("detail", ""), j
    assert warren.get("/js_modules") == (200, {"m": A_MOD})
    assert warren.delete("/js_modules/m") == (200, DELETED)
    assert upload(warren, "m", B_MOD) == (200, UPLOADED)
    assert warren.get("/js_modules/m") == (200, B_MOD)


def test_delete(warren):
    store(warren, a=A_MOD, b=B_MOD)
    assert warren.delete("/js_modules/a") == (200, DELETED)
    assert warren.get("/js_modules") == (200, {"b": B_MOD})
    assert warren.get("/js_modules/a")[0] == 404
    assert warren.delete("/js_modules/a") == (404, NOT_FOUND)
    assert warren.delete("/js_modules/never") == (404, NOT_FOUND)


def test_delete_in_use_refused(warren):
    store(warren, a=A_MOD, b=B_MOD)
    port = put_hdr(warren, js("${a.f()}${b.f()}"), ["a", "b"])
    for name in ("a", "b"):
        s, j = warren.delete("/js_modules/" + name)
        assert s == 400, j
        assert j.get("error") == "JS module is used in the configuration.", j
        assert j.get("detail"), j
    assert warren.get("/js_modules") == (200, {"a": A_MOD, "b": B_MOD})
    assert hh.get(port, "/").header("X-T") == "from-afrom-b"
    assert warren.put("/config/settings/js_module", "b") == (200, SUCCESS)
    assert warren.put("/config/routes/0/action/response_headers/X-T",
                      js("${b.f()}")) == (200, SUCCESS)
    assert warren.delete("/js_modules/a") == (200, DELETED)
    assert warren.delete("/js_modules/b")[0] == 400
    assert hh.get(port, "/").header("X-T") == "from-b"


def test_persist_across_restart(warren):
    store(warren, http=ROUTE_MOD, b=B_MOD, gone=A_MOD)
    assert warren.delete("/js_modules/gone") == (200, DELETED)
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port:
                         {"pass": js("routes/${http.route(headers)}")}},
           "routes": {"a": [{"action": {"return": 201}}],
                      "z": [{"action": {"return": 202}}]},
           "settings": {"js_module": "http"}}
    assert warren.put("/config", cfg) == (200, SUCCESS)
    before = warren.get("/js_modules")
    assert set(before[1]) == {"http", "b"}, before
    warren.restart()
    assert warren.get("/js_modules") == before
    assert warren.config() == cfg
    assert wh.wait_for(lambda: wh.tcp_connect(port), 5), "listener not restored"
    assert hh.get(port, "/").status == 201
    assert hh.get(port, "/", {"X-To": "z"}).status == 202
    # the same store: the name is taken, the module in use
    assert upload(warren, "http", A_MOD)[0] == 400
    assert warren.delete("/js_modules/http")[0] == 400
    assert warren.delete("/js_modules/b") == (200, DELETED)


# ========================================================== configuration

def test_module_not_found(vwarren):
    w = vwarren
    before = w.config_bytes()
    cfg = wh.deep(w.base)
    cfg["settings"]["js_module"] = "x"
    s, j = w.put("/config", cfg)
    assert s == 400, j
    assert j.get("detail") == 'JS module "x" is not found.', j
    assert j.get("location") == {"path": "/settings/js_module"}, j
    assert w.config_bytes() == before


def test_module_not_found_in_array(warren):
    store(warren, a=A_MOD)
    port = wh.free_port()
    s, j = warren.put("/config", hdr_cfg(port, js("${a.f()}"), ["a", "x"]))
    assert s == 400, j
    assert j.get("detail") == 'JS module "x" is not found.', j
    assert j.get("location") == {"path": "/settings/js_module/1"}, j
    assert warren.get("/config") == (200, {})
    s, j = warren.put("/config/settings", {"js_module": "nope"})
    assert s == 400 and j.get("detail") == 'JS module "nope" is not found.', j


def test_default_export_bound_to_name(warren):
    store(warren, http=ROUTE_MOD)
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port:
                         {"pass": js("routes/${http.route(headers)}")}},
           "routes": {"a": [{"action": {"return": 201}}],
                      "b": [{"action": {"return": 202}}]},
           "settings": {"js_module": "http"}}
    assert warren.put("/config", cfg) == (200, SUCCESS)
    assert hh.get(port, "/").status == 201
    assert hh.get(port, "/", {"X-To": "b"}).status == 202
    assert hh.get(port, "/").status == 201


def test_several_modules_and_kinds_of_export(warren):
    """An array of names; a default export that is a function, a string; the
    top-level code's values are seen by the export."""
    store(warren,
          fn="export default function (u) { return 'fn:' + u; }",
          str1="const s = ['x', 'y'].join('+'); export default s;",
          a=A_MOD)
    port = put_hdr(warren, js("${fn(uri)}|${str1}|${a.f()}"), ["fn", "str1", "a"])
    r = hh.get(port, "/p")
    assert r.status == 200 and r.header("X-T") == "fn:/p|x+y|from-a", r


def test_non_ascii_source_round_trip(warren):
    src = "// caf\u00e9 \u20ac\nexport default { n() { return '\u00e9\u20ac'.length; } }"
    assert upload(warren, "u", src) == (200, UPLOADED)
    assert warren.get("/js_modules/u") == (200, src)
    port = put_hdr(warren, js("${u.n()}"), "u")
    assert hh.get(port, "/").header("X-T") == "2"


def test_import_cycle_both_named(warren):
    store(warren,
          p="import q from 'q'; export default { f() { return 'p' + q.g(); } }",
          q="import p from 'p'; export default { g() { return 'q'; } }")
    port = put_hdr(warren, js("${p.f()}"), ["p", "q"])
    assert hh.get(port, "/").header("X-T") == "pq"


def test_module_sees_request_arguments(warren):
    store(warren, m="export default { q(a) { return JSON.stringify(a); } }")
    port = put_hdr(warren, js("${m.q(args)}"), "m")
    r = hh.get(port, "/?k=v")
    assert r.header("X-T") == '{"k":"v"}', r


def test_import_other_module(warren):
    store(warren,
          lib="export default { twice(s) { return s + s; } }",
          m="import lib from 'lib'; export default { f(u) { return lib.twice(u); } }")
    port = wh.free_port()
    s, j = warren.put("/config", hdr_cfg(port, js("${m.f(uri)}"), "m"))
    assert s == 400, j
    assert "lib" in j.get("detail", ""), j
    assert warren.get("/config") == (200, {})
    store(warren, m2="import x from 'nolib'; export default x;")
    s, j = warren.put("/config", hdr_cfg(port, js("${m2}"), "m2"))
    assert s == 400 and "nolib" in j.get("detail", ""), j
    port = put_hdr(warren, js("${m.f(uri)}"), ["m", "lib"], port)
    r = hh.get(port, "/ab")
    assert r.status == 200 and r.header("X-T") == "/ab/ab", r


@pytest.mark.parametrize("src,why", [
    ("throw new Error('at load'); export default {};", "Error: at load"),
    ("for (;;) {} export default {};", "longer"),
], ids=["throws", "loops"])
def test_module_cannot_be_loaded(warren, src, why):
    store(warren, a=A_MOD, bad=src)
    port = put_hdr(warren, js("${a.f()}"), "a")
    before = warren.config_bytes()
    t0 = time.monotonic()
    s, j = warren.put("/config", hdr_cfg(port, js("${a.f()}"), ["a", "bad"]))
    assert time.monotonic() - t0 < 10
    assert s == 400, j
    assert "cannot be loaded" in j.get("detail", ""), j
    assert why in j.get("detail", ""), j
    assert warren.config_bytes() == before
    r = hh.get(port, "/")
    assert r.status == 200 and r.header("X-T") == "from-a", r
    assert warren.put("/config/settings/js_module", "bad")[0] == 400
    assert hh.get(port, "/").header("X-T") == "from-a"
    assert warren.delete("/js_modules/bad") == (200, DELETED)


def test_throw_at_request_time(warren):
    store(warren, m="export default { f(u) { if (u == '/boom') "
                    "throw new Error('module-boom'); return 'ok' + u; } }")
    port = put_hdr(warren, js("${m.f(uri)}"), "m")
    mark = warren.log_mark
    with hh.Conn(port) as c:
        r = c.request("GET", "/boom")
    assert r.status == 500, r
    assert wh.wait_for(lambda: [l for l in log_since(warren, mark).splitlines()
                                if "[error]" in l and "module-boom" in l], 5, 0.05), \
        log_since(warren, mark)[-3000:]
    r = hh.get(port, "/x")
    assert r.status == 200 and r.header("X-T") == "ok/x", r


def test_module_state_lives_on(warren):
    """let count in the module: per router thread, so only that it keeps
    counting (some value above 1 over many requests), not exact counts."""
    store(warren, ctr="let count = 0; export default { n() { return ++count; } }")
    port = put_hdr(warren, js("${ctr.n()}"), "ctr")
    got = []
    with hh.Conn(port) as c:
        for _ in range(12):
            got.append(c.request("GET", "/").header("X-T"))
    got += [hh.get(port, "/").header("X-T") for _ in range(8)]
    assert all(g is not None and re.fullmatch(r"[1-9][0-9]*", g) for g in got), got
    assert max(int(g) for g in got) >= 2, got


def test_switch_modules(warren):
    store(warren, a=A_MOD, b=B_MOD)
    tpl = js("${typeof a !== 'undefined' ? a.f() : b.f()}")
    port = put_hdr(warren, tpl, "a")
    assert hh.get(port, "/").header("X-T") == "from-a"
    for i in range(4):
        name = "b" if i % 2 == 0 else "a"
        assert warren.put("/config/settings/js_module", name) == (200, SUCCESS)
        r = hh.get(port, "/")
        assert r.status == 200 and r.header("X-T") == "from-" + name, (i, r)


def test_every_router_thread_has_the_modules(warren):
    """Threads started by a later change of listen_threads load the modules
    too: every one of several open connections gets the module's answer."""
    store(warren, a=A_MOD)
    port = wh.free_port()
    cfg = hdr_cfg(port, js("${a.f()}"), "a")
    cfg["settings"]["listen_threads"] = 1
    assert warren.put("/config", cfg) == (200, SUCCESS)
    assert hh.get(port, "/").header("X-T") == "from-a"
    assert warren.put("/config/settings/listen_threads", 4) == (200, SUCCESS)
    warren.baseline("router")     # the new threads' own epoll and eventfd
    conns = [hh.Conn(port) for _ in range(12)]
    try:
        for _ in range(2):
            got = [c.request("GET", "/") for c in conns]
            assert all(r.status == 200 and r.header("X-T") == "from-a" for r in got), got
    finally:
        for c in conns:
            c.close()
