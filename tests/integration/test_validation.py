"""Config validation: each invalid change answers 400 "Invalid configuration."
with the JSON pointer (relative to the config root, RFC 6901 escaped) of the
bad value, and leaves the running config byte-identical.

The daemon is shared by the module (vwarren) and reset to the realistic base
config (wh.base_config) before every test."""

import json

import pytest

import warren_helpers as wh


def L(cfg):
    """Key of the base listener ("127.0.0.1:PORT")."""
    return next(iter(cfg["listeners"]))


def S(cfg):
    """Key of the base upstream server."""
    return next(iter(cfg["upstreams"]["backend"]["servers"]))


def app(cfg):
    return cfg["applications"]["app"]


def with_(fn):
    """Mutate a copy of the base config with fn(cfg); PUT it to /config."""
    def make(base):
        cfg = wh.deep(base)
        fn(cfg)
        return "PUT", "/config", cfg
    return make


def sub(method, path, value=None):
    """A change on a sub path; path may use {L} and {S} for the base keys."""
    def make(base):
        p = path.format(L=L(base).replace(":", "%3A"), S=S(base))
        return method, p, value
    return make


def set_in(cfg, keys, value):
    d = cfg
    for k in keys[:-1]:
        d = d[k]
    d[keys[-1]] = value


def dele(cfg, keys):
    d = cfg
    for k in keys[:-1]:
        d = d[k]
    del d[keys[-1]]


# (id, change maker, expected location path (may use {L}/{S}), suggestion substring)
CASES = [
    # ---- top level
    ("top-unknown-key",
     with_(lambda c: c.__setitem__("listenrs", c.pop("listeners"))),
     "/listenrs", "listeners"),
    ("top-not-object", lambda b: ("PUT", "/config", []), "", None),
    ("top-listeners-not-object", sub("PUT", "/config/listeners", "x"), "/listeners", None),

    # ---- listeners
    ("listener-pass-missing-app",
     with_(lambda c: c["listeners"].__setitem__("*:80", {"pass": "applications/missing"})),
     "/listeners/*:80/pass", None),
    ("listener-port-out-of-range",
     with_(lambda c: c["listeners"].__setitem__("*:99999", {"pass": "routes"})),
     "/listeners/*:99999", None),
    ("listener-backlog-string",
     with_(lambda c: c["listeners"].__setitem__("*:80", {"pass": "routes", "backlog": "x"})),
     "/listeners/*:80/backlog", None),
    ("listener-backlog-negative",
     with_(lambda c: c["listeners"][L(c)].__setitem__("backlog", -5)),
     "/listeners/{L}/backlog", None),
    ("listener-not-object",
     with_(lambda c: c["listeners"].__setitem__(L(c), "routes")),
     "/listeners/{L}", None),
    ("listener-bad-address",
     with_(lambda c: c["listeners"].__setitem__("999.1.1.1:80", {"pass": "routes"})),
     "/listeners/999.1.1.1:80", None),
    ("listener-unknown-key",
     with_(lambda c: c["listeners"][L(c)].__setitem__("bogus", 1)),
     "/listeners/{L}/bogus", None),
    ("listener-pass-missing-route",
     with_(lambda c: c["listeners"][L(c)].__setitem__("pass", "routes/nope")),
     "/listeners/{L}/pass", None),
    ("listener-pass-missing-upstream",
     with_(lambda c: c["listeners"][L(c)].__setitem__("pass", "upstreams/nope")),
     "/listeners/{L}/pass", None),
    ("listener-pass-bad-target",
     with_(lambda c: c["listeners"][L(c)].__setitem__("pass", "foo")),
     "/listeners/{L}/pass", None),
    ("listener-pass-not-string",
     with_(lambda c: c["listeners"][L(c)].__setitem__("pass", 5)),
     "/listeners/{L}/pass", None),
    ("listener-tls-missing-cert",
     with_(lambda c: c["listeners"][L(c)].__setitem__("tls", {"certificate": "missing"})),
     "/listeners/{L}/tls/certificate", None),
    ("listener-forwarded-no-source",
     with_(lambda c: c["listeners"][L(c)].__setitem__(
         "forwarded", {"client_ip": "X-Forwarded-For"})),
     "/listeners/{L}/forwarded", None),
    ("listener-subpath-put-pass",
     sub("PUT", "/config/listeners/{L}/pass", "applications/none"),
     "/listeners/{L}/pass", None),

    # ---- routes / match / action
    ("routes-not-array",
     with_(lambda c: c.__setitem__("routes", 5)), "/routes", None),
    ("route-step-no-action",
     with_(lambda c: dele(c, ["routes", 0, "action"])), "/routes/0", None),
    ("route-step-not-object",
     with_(lambda c: c["routes"].__setitem__(2, "x")), "/routes/2", None),
    ("action-empty",
     with_(lambda c: set_in(c, ["routes", 0, "action"], {})), "/routes/0/action", None),
    ("action-two-kinds",
     with_(lambda c: set_in(c, ["routes", 0, "action"],
                            {"return": 200, "proxy": "http://127.0.0.1:1"})),
     "/routes/0/action", None),
    ("action-unknown-key",
     with_(lambda c: set_in(c, ["routes", 0, "action", "bogus"], 1)),
     "/routes/0/action/bogus", None),
    ("action-return-out-of-range",
     with_(lambda c: set_in(c, ["routes", 0, "action", "return"], 1000)),
     "/routes/0/action/return", None),
    ("action-return-not-int",
     with_(lambda c: set_in(c, ["routes", 3, "action", "return"], "200")),
     "/routes/3/action/return", None),
    ("action-location-not-string",
     with_(lambda c: set_in(c, ["routes", 0, "action"], {"return": 301, "location": 5})),
     "/routes/0/action/location", None),
    ("action-proxy-bad-url",
     with_(lambda c: set_in(c, ["routes", 0, "action"], {"proxy": "ftp://x"})),
     "/routes/0/action/proxy", None),
    ("action-share-not-string",
     with_(lambda c: set_in(c, ["routes", 0, "action"], {"share": 5})),
     "/routes/0/action/share", None),
    ("action-pass-missing-app",
     with_(lambda c: set_in(c, ["routes", 1, "action", "pass"], "applications/nope")),
     "/routes/1/action/pass", None),
    ("match-unknown-key",
     with_(lambda c: set_in(c, ["routes", 0, "match", "urii"], "/x")),
     "/routes/0/match/urii", None),
    ("match-method-not-string",
     with_(lambda c: set_in(c, ["routes", 0, "match", "method"], 5)),
     "/routes/0/match/method", None),
    ("match-uri-array-element",
     with_(lambda c: set_in(c, ["routes", 0, "match", "uri"], ["/a", 5])),
     "/routes/0/match/uri/1", None),
    ("match-scheme-invalid",
     with_(lambda c: set_in(c, ["routes", 0, "match", "scheme"], "ftp")),
     "/routes/0/match/scheme", None),
    ("match-source-invalid",
     with_(lambda c: set_in(c, ["routes", 0, "match", "source"], "1.2.3.4.5")),
     "/routes/0/match/source", None),
    ("match-headers-not-object",
     with_(lambda c: set_in(c, ["routes", 0, "match", "headers"], "x")),
     "/routes/0/match/headers", None),
    ("match-arguments-value",
     with_(lambda c: set_in(c, ["routes", 2, "match", "arguments", "a"], 5)),
     "/routes/2/match/arguments/a", None),
    ("match-key-with-slash-escaped",
     with_(lambda c: set_in(c, ["routes", 2, "match", "arguments", "a/b"], 5)),
     "/routes/2/match/arguments/a~1b", None),
    ("match-key-with-tilde-escaped",
     with_(lambda c: set_in(c, ["routes", 0, "match", "cookies"], {"x~y": 1})),
     "/routes/0/match/cookies/x~0y", None),
    ("named-routes-step-no-action",
     with_(lambda c: (c.__setitem__("routes", {"main": [{"action": {"return": 200}},
                                                         {"match": {"uri": "/x"}}]}),
                      c["listeners"][L(c)].__setitem__("pass", "routes/main"))),
     "/routes/main/1", None),
    ("post-route-step-no-action",
     sub("POST", "/config/routes", {"match": {"uri": "/x"}}), "/routes/4", None),

    # ---- applications
    ("app-no-type",
     with_(lambda c: c["applications"].__setitem__("a", {"executable": "/bin/true"})),
     "/applications/a", None),
    ("app-unknown-type",
     with_(lambda c: c["applications"].__setitem__("a", {"type": "cobol",
                                                         "executable": "/bin/true"})),
     "/applications/a/type", None),
    ("app-external-no-executable",
     with_(lambda c: dele(c, ["applications", "app", "executable"])),
     "/applications/app", None),
    ("app-python-no-module",
     with_(lambda c: c["applications"].__setitem__("py", {"type": "python", "path": "/tmp"})),
     "/applications/py", None),
    ("app-unknown-key",
     with_(lambda c: app(c).__setitem__("bogus", 1)), "/applications/app/bogus", None),
    ("app-processes-negative",
     with_(lambda c: app(c).__setitem__("processes", -1)),
     "/applications/app/processes", None),
    ("app-processes-spare-over-max",
     with_(lambda c: app(c).__setitem__("processes", {"max": 2, "spare": 5})),
     "/applications/app/processes/spare", None),
    ("app-processes-unknown-key",
     with_(lambda c: app(c).__setitem__("processes", {"max": 2, "bogus": 1})),
     "/applications/app/processes/bogus", None),
    ("app-processes-idle-timeout-too-big",
     with_(lambda c: app(c).__setitem__("processes", {"max": 2, "idle_timeout": 2147484})),
     "/applications/app/processes/idle_timeout", None),
    ("app-limits-timeout-string",
     with_(lambda c: set_in(c, ["applications", "app", "limits", "timeout"], "x")),
     "/applications/app/limits/timeout", None),
    ("app-limits-requests-string",
     with_(lambda c: set_in(c, ["applications", "app", "limits", "requests"], "many")),
     "/applications/app/limits/requests", None),
    ("app-limits-unknown-key",
     with_(lambda c: set_in(c, ["applications", "app", "limits", "bogus"], 1)),
     "/applications/app/limits/bogus", None),
    ("app-isolation-unknown-namespace",
     with_(lambda c: app(c).__setitem__("isolation", {"namespaces": {"bogus": True}})),
     "/applications/app/isolation/namespaces/bogus", None),
    ("app-isolation-namespace-not-bool",
     with_(lambda c: app(c).__setitem__("isolation", {"namespaces": {"credential": "yes"}})),
     "/applications/app/isolation/namespaces/credential", None),
    ("app-isolation-uidmap-no-size",
     with_(lambda c: app(c).__setitem__("isolation", {
         "namespaces": {"credential": True},
         "uidmap": [{"container": 0, "host": 1000}]})),
     "/applications/app/isolation/uidmap/0", None),
    ("app-isolation-rootfs-not-string",
     with_(lambda c: app(c).__setitem__("isolation", {"rootfs": 5})),
     "/applications/app/isolation/rootfs", None),
    ("app-isolation-automount-unknown",
     with_(lambda c: app(c).__setitem__("isolation", {"automount": {"bogus": True}})),
     "/applications/app/isolation/automount/bogus", None),
    ("app-isolation-unknown-key",
     with_(lambda c: app(c).__setitem__("isolation", {"bogus": True})),
     "/applications/app/isolation/bogus", None),
    ("app-arguments-element",
     with_(lambda c: app(c).__setitem__("arguments", ["a", 1])),
     "/applications/app/arguments/1", None),
    ("app-environment-value",
     with_(lambda c: set_in(c, ["applications", "app", "environment", "A"], 1)),
     "/applications/app/environment/A", None),
    ("app-user-not-string",
     with_(lambda c: app(c).__setitem__("user", 5)), "/applications/app/user", None),
    ("app-working-directory-not-string",
     with_(lambda c: app(c).__setitem__("working_directory", 5)),
     "/applications/app/working_directory", None),
    ("app-subpath-put-type",
     sub("PUT", "/config/applications/app/type", "bogus"),
     "/applications/app/type", None),
    ("delete-referenced-app",
     sub("DELETE", "/config/applications/app"), "/routes/1/action/pass", None),

    # ---- upstreams
    ("upstream-no-servers",
     with_(lambda c: c["upstreams"].__setitem__("backend", {})),
     "/upstreams/backend", None),
    ("upstream-server-bad-address",
     with_(lambda c: c["upstreams"]["backend"]["servers"].__setitem__("nothost", {})),
     "/upstreams/backend/servers/nothost", None),
    ("upstream-weight-negative",
     with_(lambda c: set_in(c, ["upstreams", "backend", "servers", S(c), "weight"], -1)),
     "/upstreams/backend/servers/{S}/weight", None),
    ("upstream-weight-too-big",
     with_(lambda c: set_in(c, ["upstreams", "backend", "servers", S(c), "weight"], 1000001)),
     "/upstreams/backend/servers/{S}/weight", None),
    ("upstream-server-unknown-key",
     with_(lambda c: set_in(c, ["upstreams", "backend", "servers", S(c), "bogus"], 1)),
     "/upstreams/backend/servers/{S}/bogus", None),
    ("delete-referenced-upstream",
     sub("DELETE", "/config/upstreams/backend"), "/routes/2/action/pass", None),

    # ---- settings
    ("settings-unknown-key",
     with_(lambda c: c["settings"].__setitem__("htp", {})), "/settings/htp", "http"),
    ("settings-http-unknown-key",
     with_(lambda c: set_in(c, ["settings", "http", "bogus"], 1)),
     "/settings/http/bogus", None),
    ("settings-http-idle-timeout-string",
     with_(lambda c: set_in(c, ["settings", "http", "idle_timeout"], "x")),
     "/settings/http/idle_timeout", None),
    ("settings-http-max-body-size-string",
     with_(lambda c: set_in(c, ["settings", "http", "max_body_size"], "1M")),
     "/settings/http/max_body_size", None),
    ("settings-http-discard-unsafe-not-bool",
     with_(lambda c: set_in(c, ["settings", "http", "discard_unsafe_fields"], "yes")),
     "/settings/http/discard_unsafe_fields", None),
    ("settings-http-mime-type-value",
     with_(lambda c: set_in(c, ["settings", "http", "static"],
                            {"mime_types": {"text/x-warren": 5}})),
     "/settings/http/static/mime_types/text~1x-warren", None),
    ("settings-subpath-put",
     sub("PUT", "/config/settings/http/idle_timeout", "x"),
     "/settings/http/idle_timeout", None),

    # ---- access_log
    ("access-log-number",
     with_(lambda c: c.__setitem__("access_log", 5)), "/access_log", None),
    ("access-log-unknown-key",
     with_(lambda c: c.__setitem__("access_log", {"path": "/tmp/x.log", "bogus": 1})),
     "/access_log/bogus", None),
    ("access-log-path-not-string",
     with_(lambda c: c.__setitem__("access_log", {"path": 5})),
     "/access_log/path", None),
    ("access-log-format-not-string",
     with_(lambda c: c.__setitem__("access_log", {"path": "/tmp/x.log", "format": 5})),
     "/access_log/format", None),
]


@pytest.mark.parametrize("change,path,suggestion", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_config(vwarren, change, path, suggestion):
    w = vwarren
    before = w.config_bytes()
    method, p, body = change(w.base)
    r = w.request(method, p, None if body is None else json.dumps(body))
    assert r.status == 400, r
    j = r.json()
    assert j.get("error") == "Invalid configuration.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    want = path.format(L=L(w.base), S=S(w.base))
    assert j.get("location") == {"path": want}, j
    if suggestion:
        assert suggestion in j.get("suggestion", ""), j
    assert w.config_bytes() == before


def test_case_count():
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_invalid_leaves_state_file(vwarren):
    w = vwarren
    with open(w.state_file(), "rb") as f:
        before = f.read()
    cfg = wh.deep(w.base)
    cfg["listenrs"] = {}
    s, j = w.put("/config", cfg)
    assert s == 400
    with open(w.state_file(), "rb") as f:
        assert f.read() == before


# ---- valid variants: the validator must not be stricter than Unit

VALID = [
    ("processes-int", lambda c: app(c).__setitem__("processes", 2)),
    ("named-routes", lambda c: (c.__setitem__("routes", {"main": c["routes"]}),
                                c["listeners"][L(c)].__setitem__("pass", "routes/main"))),
    ("listener-pass-app", lambda c: c["listeners"][L(c)].__setitem__("pass",
                                                                     "applications/app")),
    ("listener-pass-upstream", lambda c: c["listeners"][L(c)].__setitem__(
        "pass", "upstreams/backend")),
    ("listener-backlog", lambda c: c["listeners"][L(c)].__setitem__("backlog", 128)),
    ("action-redirect", lambda c: set_in(c, ["routes", 0, "action"],
                                         {"return": 301, "location": "https://e.x/"})),
    ("action-share-array", lambda c: set_in(c, ["routes", 0, "action"],
                                            {"share": ["/srv/www$uri", "/srv/alt$uri"],
                                             "fallback": {"return": 404}})),
    ("action-proxy", lambda c: set_in(c, ["routes", 0, "action"],
                                      {"proxy": "http://127.0.0.1:9"})),
    ("match-source-cidr", lambda c: set_in(c, ["routes", 0, "match", "source"],
                                           ["127.0.0.0/8", "!10.0.0.1"])),
    ("match-headers", lambda c: set_in(c, ["routes", 0, "match", "headers"],
                                       [{"Host": "*.example.com"}])),
    ("upstream-weight-fraction", lambda c: set_in(
        c, ["upstreams", "backend", "servers", S(c), "weight"], 0.5)),
    ("mime-types", lambda c: set_in(c, ["settings", "http", "static"],
                                    {"mime_types": {"text/plain": [".log", "README"]}})),
    ("access-log-object", lambda c: c.__setitem__(
        "access_log", {"path": c["access_log"], "format": "$remote_addr $status"})),
    ("empty-object", lambda c: c.clear()),
]

# Valid, but main cannot run them yet: validation passes (not 400), the apply
# refuses them with 500 "... is not supported yet." and nothing changes.
VALID_UNSUPPORTED = [
    ("wasm", lambda c: c["applications"].__setitem__(
        "wa", {"type": "wasm", "module": "/srv/app.wasm", "request_handler": "h",
               "malloc_handler": "m", "free_handler": "f"})),
]


@pytest.mark.parametrize("fn", [v[1] for v in VALID_UNSUPPORTED],
                         ids=[v[0] for v in VALID_UNSUPPORTED])
def test_valid_but_not_supported_yet(vwarren, fn):
    w = vwarren
    before = w.config_bytes()
    cfg = wh.deep(w.base)
    fn(cfg)
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert "not supported yet" in j.get("detail", ""), j
    assert w.config_bytes() == before


@pytest.mark.parametrize("fn", [v[1] for v in VALID], ids=[v[0] for v in VALID])
def test_valid_variant(vwarren, fn):
    w = vwarren
    cfg = wh.deep(w.base)
    fn(cfg)
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, wh.SUCCESS)
    assert w.config() == cfg
