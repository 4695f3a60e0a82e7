"""Data plane: routing as Unit documents it. Every match option, first match
wins, named routes, rewrite, return + location, response_headers, and the
variables as they appear in responses."""

import pytest

import http_helpers as hh
import warren_helpers as wh


def step(match, code):
    return {"match": match, "action": {"return": code}}


NOMATCH = {"action": {"return": 404}}


def codes(w, routes, requests, **kw):
    """Put routes, send each (path, headers or None, extra kwargs) and
    return the statuses."""
    port = hh.setup(w, routes, **kw)
    out = []
    for req in requests:
        if isinstance(req, str):
            req = (req, None)
        path, hdrs = req[0], req[1]
        opts = req[2] if len(req) > 2 else {}
        out.append(hh.get(port, path, hdrs, **opts).status)
    return out


def test_uri_exact_wildcard_negation(vwarren):
    routes = [step({"uri": "/exact"}, 201),
              step({"uri": "/w/*"}, 202),
              step({"uri": "*.php"}, 203),
              step({"uri": "/mid*dle"}, 204),
              step({"uri": "!/neg*"}, 205),
              NOMATCH]
    got = codes(vwarren, routes, ["/exact", "/exact/", "/w/", "/w/a/b", "/x/y.php",
                                  "/middle", "/mid-x-dle", "/negative", "/other"])
    assert got == [201, 205, 202, 202, 203, 204, 204, 404, 205]


def test_uri_is_case_sensitive(vwarren):
    got = codes(vwarren, [step({"uri": "/Case"}, 201), NOMATCH], ["/Case", "/case"])
    assert got == [201, 404]


def test_uri_array_semantics(vwarren):
    """An array matches when any positive pattern matches and no negative one
    does; only negatives: matches when none of them does."""
    routes = [step({"uri": ["/a/*", "/b/*", "!/a/secret*", "!/b/secret*"]}, 201),
              step({"uri": ["!/x", "!/y"]}, 202),
              NOMATCH]
    got = codes(vwarren, routes, ["/a/1", "/b/2", "/a/secret", "/b/secret/z", "/c",
                                  "/x", "/y"])
    assert got == [201, 201, 202, 202, 202, 404, 404]


def test_method(vwarren):
    routes = [step({"method": "POST"}, 201), step({"method": ["PUT", "DELETE"]}, 202),
              step({"method": "!GET"}, 203), NOMATCH]
    port = hh.setup(vwarren, routes)
    got = [hh.get(port, "/", method=m).status for m in
           ("POST", "PUT", "DELETE", "PATCH", "GET")]
    assert got == [201, 202, 202, 203, 404]


def test_host(vwarren):
    routes = [step({"host": "example.com"}, 201), step({"host": "*.example.org"}, 202),
              NOMATCH]
    port = hh.setup(vwarren, routes)
    got = [hh.get(port, "/", host=h).status for h in
           ("example.com", "EXAMPLE.com", "example.com:8080", "a.example.org",
            "example.net")]
    assert got == [201, 201, 201, 202, 404]


def test_headers(vwarren):
    routes = [step({"headers": {"User-Agent": "*curl*", "X-A": "1"}}, 201),
              step({"headers": [{"X-B": "yes"}, {"X-C": "yes"}]}, 202),
              NOMATCH]
    got = codes(vwarren, routes, [
        ("/", {"User-Agent": "my curl/8", "X-A": "1"}),
        ("/", {"User-Agent": "my curl/8"}),
        ("/", {"x-b": "yes"}),
        ("/", {"X-C": "yes"}),
        ("/", {"X-C": "no"}),
        ("/", None)])
    assert got == [201, 404, 202, 202, 404, 404]


def test_headers_negation(vwarren):
    got = codes(vwarren, [step({"headers": {"X-Neg": "!bad*"}}, 201), NOMATCH],
                [("/", {"X-Neg": "good"}), ("/", {"X-Neg": "badder"})])
    assert got == [201, 404]


def test_headers_missing_header_no_match(vwarren):
    got = codes(vwarren, [step({"headers": {"X-A": "*"}}, 201), NOMATCH],
                [("/", {"X-A": ""}), ("/", {"X-A": "v"}), ("/", None)])
    assert got[1] == 201 and got[2] == 404, got


def test_arguments(vwarren):
    routes = [step({"arguments": {"a": "1", "b": "x*"}}, 201),
              step({"arguments": {"sp": "a b"}}, 202),
              step({"arguments": {"neg": "!no"}}, 203),
              NOMATCH]
    got = codes(vwarren, routes, ["/?a=1&b=xyz", "/?b=xyz&a=1", "/?a=2&b=xyz",
                                  "/?sp=a%20b", "/?sp=a+b", "/?neg=yes", "/?neg=no", "/"])
    assert got[:5] == [201, 201, 404, 202, 202], got
    assert got[5] == 203 and got[6] == 404, got


def test_cookies(vwarren):
    routes = [step({"cookies": {"sess": "abc*"}}, 201), NOMATCH]
    got = codes(vwarren, routes, [("/", {"Cookie": "x=1; sess=abc123"}),
                                  ("/", {"Cookie": "sess=zzz"}),
                                  ("/", {"Cookie": "sessx=abc"}),
                                  ("/", None)])
    assert got == [201, 404, 404, 404]


def test_query(vwarren):
    got = codes(vwarren, [step({"query": "a=1*"}, 201), NOMATCH],
                ["/?a=1", "/?a=1&b=2", "/?b=2&a=1", "/"])
    assert got == [201, 201, 404, 404]


def test_scheme(vwarren):
    got = codes(vwarren, [step({"scheme": "https"}, 201), step({"scheme": "http"}, 202),
                          NOMATCH], ["/"])
    assert got == [202]


def test_source(vwarren):
    routes = [step({"source": "10.0.0.0/8"}, 201),
              step({"source": ["127.0.0.0/8", "!127.0.0.1"]}, 202),
              step({"source": "127.0.0.0/8"}, 203),
              NOMATCH]
    assert codes(vwarren, routes, ["/"]) == [203]
    routes2 = [step({"source": "!127.0.0.1"}, 201), step({"source": "127.0.0.1"}, 202),
               NOMATCH]
    assert codes(vwarren, routes2, ["/"]) == [202]
    routes3 = [step({"source": "127.0.0.1-127.0.0.5"}, 201), NOMATCH]
    assert codes(vwarren, routes3, ["/"]) == [201]


def test_destination(vwarren):
    p1, p2 = wh.free_port(), wh.free_port()
    routes = [step({"destination": "*:%d" % p2}, 202),
              step({"destination": "127.0.0.1:%d" % p1}, 201),
              NOMATCH]
    hh.setup(vwarren, routes, listeners={"127.0.0.1:%d" % p1: {"pass": "routes"},
                                         "127.0.0.1:%d" % p2: {"pass": "routes"}})
    assert hh.get(p1).status == 201
    assert hh.get(p2).status == 202


def test_regex(vwarren):
    routes = [step({"uri": "~^/re/[0-9]+$"}, 201), step({"uri": "!~^/keep"}, 202), NOMATCH]
    got = codes(vwarren, routes, ["/re/123", "/re/12a", "/keep/x"])
    assert got == [201, 202, 404]


def test_if(vwarren):
    routes = [step({"if": "$arg_debug"}, 201), step({"if": "!$cookie_x"}, 202), NOMATCH]
    got = codes(vwarren, routes, ["/?debug=1", "/?debug=0", "/?debug=",
                                  ("/", {"Cookie": "x=1"})])
    assert got == [201, 202, 202, 404]


def test_match_all_conditions(vwarren):
    routes = [step({"uri": "/a", "method": "GET", "arguments": {"k": "v"}}, 201), NOMATCH]
    got = codes(vwarren, routes, ["/a?k=v", "/a", "/b?k=v"])
    assert got == [201, 404, 404]


def test_first_match_wins_and_no_match_404(vwarren):
    routes = [step({"uri": "/a*"}, 201), step({"uri": "/ab"}, 202)]
    got = codes(vwarren, routes, ["/ab", "/a", "/z"])
    assert got == [201, 201, 404]


def test_named_routes_and_pass(vwarren):
    routes = {
        "main": [{"match": {"uri": "/api/*"}, "action": {"pass": "routes/api"}},
                 {"action": {"return": 200}}],
        "api": [{"match": {"method": "POST"}, "action": {"return": 201}},
                {"action": {"pass": "routes/leaf"}}],
        "leaf": [{"match": {"uri": "/api/leaf"}, "action": {"return": 202}}],
    }
    port = wh.free_port()
    hh.setup(vwarren, routes, listeners={"127.0.0.1:%d" % port: {"pass": "routes/main"}})
    assert hh.get(port, "/x").status == 200
    assert hh.get(port, "/api/x", method="POST").status == 201
    assert hh.get(port, "/api/leaf").status == 202
    assert hh.get(port, "/api/none").status == 404


def test_rewrite(vwarren):
    routes = {
        "main": [{"match": {"uri": "/old/*"},
                  "action": {"rewrite": "/new?from=$uri", "pass": "routes/second"}},
                 {"match": {"uri": "/r"}, "action": {
                     "rewrite": "/rewritten", "return": 200,
                     "response_headers": {"X-U": "$uri", "X-RU": "$request_uri"}}},
                 NOMATCH],
        "second": [{"match": {"uri": "/new", "arguments": {"from": "/old/*"}},
                    "action": {"return": 204, "response_headers": {
                        "X-U": "$uri", "X-From": "$arg_from"}}},
                   {"action": {"return": 418}}],
    }
    port = wh.free_port()
    hh.setup(vwarren, routes, listeners={"127.0.0.1:%d" % port: {"pass": "routes/main"}})
    r = hh.get(port, "/old/page")
    assert r.status == 204, r
    assert r.header("X-U") == "/new" and r.header("X-From") == "/old/page", r
    r = hh.get(port, "/r?q=1")
    assert r.status == 200
    assert r.header("X-U") == "/rewritten", r
    assert r.header("X-RU") == "/r?q=1", r


def test_return_location_with_variables(vwarren):
    routes = [{"match": {"uri": "/go/*"},
               "action": {"return": 301, "location": "https://$host/new$uri?$args"}},
              {"action": {"return": 302, "location": "/static"}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/go/x?a=1", host="h.example")
    assert r.status == 301, r
    assert r.header("Location") == "https://h.example/new/go/x?a=1", r
    r = hh.get(port, "/y")
    assert r.status == 302 and r.header("Location") == "/static", r


@pytest.mark.parametrize("code", [200, 204, 308, 403, 418, 503, 599])
def test_return_codes(vwarren, code):
    port = hh.setup(vwarren, [{"action": {"return": code}}])
    with hh.Conn(port) as c:
        r = c.request("GET", "/")
        assert r.status == code, r
        if code == 204:
            assert r.header("Content-Length") in (None, "0") and r.body == b""


def test_response_headers_set_and_delete(vwarren):
    routes = [{"action": {"return": 200, "response_headers": {
        "X-Set": "v1", "X-Var": "$method $uri", "Server": None, "Cache-Control": "no-store"}}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/p")
    assert r.status == 200
    assert r.header("X-Set") == "v1"
    assert r.header("X-Var") == "GET /p"
    assert r.header("Cache-Control") == "no-store"
    assert r.header("Server") is None, r
    assert len(r.all("X-Set")) == 1


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b"])
def test_response_headers_crlf_rejected(vwarren, value):
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": [{"action": {"return": 200, "response_headers": {"X-A": value}}}]}
    s, j = vwarren.put("/config", cfg)
    assert s == 400, (s, j)
    assert "error" in j


def test_response_header_name_rejected(vwarren):
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": [{"action": {"return": 200, "response_headers": {"X A\r\n": "v"}}}]}
    s, j = vwarren.put("/config", cfg)
    assert s == 400, (s, j)


def test_variables_in_responses(vwarren):
    routes = [{"action": {"return": 301,
                          "location": "/to${uri}x?m=$method",
                          "response_headers": {
                              "X-Uri": "$uri",
                              "X-Host": "$host",
                              "X-Method": "$method",
                              "X-Request-Uri": "$request_uri",
                              "X-Arg": "$arg_x",
                              "X-Cookie": "$cookie_y",
                              "X-UA": "$header_user_agent",
                              "X-Braces": "${uri}.bak",
                              "X-Dollar": "cost: ${dollar}5 $dollar",
                              "X-Args": "$args",
                          }}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/p/%41b?x=42&z=1", {"Cookie": "a=1; y=cv", "User-Agent": "tester/1"},
               method="PUT", host="vh.example")
    assert r.status == 301, r
    assert r.header("X-Uri") == "/p/Ab"
    assert r.header("X-Host") == "vh.example"
    assert r.header("X-Method") == "PUT"
    assert r.header("X-Request-Uri") == "/p/%41b?x=42&z=1"
    assert r.header("X-Arg") == "42"
    assert r.header("X-Cookie") == "cv"
    assert r.header("X-UA") == "tester/1"
    assert r.header("X-Braces") == "/p/Ab.bak"
    assert r.header("X-Dollar") == "cost: $5 $"
    assert r.header("X-Args") == "x=42&z=1"
    assert r.header("Location") == "/to/p/Abx?m=PUT"


def test_variable_missing_is_empty(vwarren):
    port = hh.setup(vwarren, [{"action": {"return": 200, "response_headers": {
        "X-Arg": "[$arg_nope]", "X-H": "[$header_x_nope]"}}}])
    r = hh.get(port, "/")
    assert r.header("X-Arg") == "[]" and r.header("X-H") == "[]", r


def test_unknown_variable_rejected(vwarren):
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": [{"action": {"return": 200, "response_headers": {"X": "$nosuchvar"}}}]}
    s, j = vwarren.put("/config", cfg)
    assert s == 400, (s, j)


def test_response_header_variables_in_response_headers(vwarren):
    """$response_header_NAME inside response_headers sees the response as
    the action made it (before response_headers change it)."""
    root = hh.make_root()
    hh.write(root, "a.txt", b"hello")
    copy = {"X-Copy": "$response_header_content_type",
            "X-Len": "$response_header_content_length",
            "X-Status": "$status", "Content-Type": "text/x-new", "Server": None,
            "X-Server": "$response_header_server"}
    routes = [{"match": {"uri": "/a.txt"},
               "action": {"share": root + "$uri", "response_headers": copy}},
              {"action": {"return": 403, "response_headers": copy}}]
    port = hh.setup(vwarren, routes)
    r = hh.get(port, "/a.txt")
    assert r.status == 200 and r.body == b"hello", r
    assert r.header("X-Copy") == "text/plain", r
    assert r.header("X-Len") == "5", r
    assert r.header("X-Status") == "200", r
    assert r.header("Content-Type") == "text/x-new", r
    assert r.header("Server") is None and r.header("X-Server").startswith("Warren"), r
    r = hh.get(port, "/other")
    assert r.status == 403, r
    assert r.header("X-Copy") == "text/html", r
    assert r.header("X-Len") == str(len(r.body)), r
    assert r.header("Content-Type") == "text/x-new", r


def test_expanded_field_values_cannot_add_fields(vwarren):
    """$uri is decoded: "%0d%0a" in a request's path must not end a field of
    the answer (Location, response_headers) and start another."""
    port = hh.setup(vwarren, [{"action": {"return": 301, "location": "$uri",
                                          "response_headers": {"X-U": "${uri}"}}}])
    r = hh.get(port, "/a%0d%0aSet-Cookie:%20x=1%0aX-Evil:%201%7f")
    assert r.status == 301, r
    assert r.header("Set-Cookie") is None and r.header("X-Evil") is None, r
    assert r.header("Location") == "/a%0D%0ASet-Cookie: x=1%0AX-Evil: 1%7F", r
    assert r.header("X-U") == r.header("Location"), r
