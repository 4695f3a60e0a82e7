"""Data plane: the access log. Unit's default format, custom string and JSON
object formats, "if", line safety, reopening on SIGUSR1."""

import json
import os
import re
import signal

import http_helpers as hh
import warren_helpers as wh

ROUTES = [{"match": {"uri": "/skip*"}, "action": {"return": 204}},
          {"match": {"uri": "/a*"}, "action": {"return": 200}},
          {"action": {"return": 404}}]

DEFAULT_RE = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<line>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<ref>[^"]*)" "(?P<ua>[^"]*)"$')


def log_path(w, name):
    return os.path.join(w.dir, name)


def test_default_format(vwarren):
    path = log_path(vwarren, "default.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": path})
    with hh.Conn(port) as c:
        r1 = c.request("GET", "/a/b?x=1", {"Referer": "http://ref.example/",
                                           "User-Agent": "tester/2.0"})
        r2 = c.request("POST", "/zz", body=b"12345")
    ls = hh.wait_lines(path, 2)
    assert len(ls) == 2, ls
    m = DEFAULT_RE.match(ls[0])
    assert m, ls[0]
    assert m["addr"] == "127.0.0.1"
    assert m["line"] == "GET /a/b?x=1 HTTP/1.1"
    assert m["status"] == "200"
    assert int(m["bytes"]) == len(r1.body)
    assert m["ref"] == "http://ref.example/"
    assert m["ua"] == "tester/2.0"
    m = DEFAULT_RE.match(ls[1])
    assert m, ls[1]
    assert m["line"] == "POST /zz HTTP/1.1" and m["status"] == "404"
    assert int(m["bytes"]) == len(r2.body) and int(m["bytes"]) > 0
    assert m["ref"] == "" and m["ua"] == ""


def test_object_form_default_format(vwarren):
    path = log_path(vwarren, "obj.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path}})
    hh.get(port, "/a")
    ls = hh.wait_lines(path, 1)
    assert DEFAULT_RE.match(ls[0]), ls


def test_custom_string_format(vwarren):
    path = log_path(vwarren, "custom.log")
    fmt = "$method|$uri|$request_uri|$status|$host|$arg_q|$cookie_c|$header_x_h|${dollar}"
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path, "format": fmt}})
    hh.get(port, "/a/%41?q=7", {"Cookie": "c=cv", "X-H": "hv"}, host="lh.example")
    hh.get(port, "/nope", method="DELETE")
    ls = hh.wait_lines(path, 2)
    assert ls == ["GET|/a/A|/a/%41?q=7|200|lh.example|7|cv|hv|$",
                  "DELETE|/nope|/nope|404|localhost||||$"], ls


def test_json_format(vwarren):
    path = log_path(vwarren, "json.log")
    fmt = {"method": "$method", "uri": "$uri", "status": "$status", "ua": "$header_user_agent",
           "t": "$request_time", "id": "$request_id", "lit": "x\"y"}
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path, "format": fmt}})
    hh.get(port, "/a", {"User-Agent": 'quote" back\\slash \xe9'})
    hh.get(port, "/b%0a%22c")
    ls = hh.wait_lines(path, 2)
    objs = [json.loads(x) for x in ls]
    assert objs[0]["method"] == "GET" and objs[0]["uri"] == "/a"
    assert objs[0]["status"] == "200"
    assert objs[0]["ua"].startswith('quote" back\\slash ')
    assert objs[0]["lit"] == 'x"y'
    assert re.fullmatch(r"[0-9a-f]{32}", objs[0]["id"]), objs[0]
    assert objs[0]["id"] != objs[1]["id"]
    float(objs[0]["t"])
    assert objs[1]["uri"] == '/b\n"c' and objs[1]["status"] == "404"
    assert set(objs[0]) == set(fmt)


def test_if_skips_lines(vwarren):
    path = log_path(vwarren, "if.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {
        "path": path, "format": "$uri $status", "if": "$arg_log"}})
    hh.get(port, "/a1?log=1")
    hh.get(port, "/a2?log=0")
    hh.get(port, "/a3")
    hh.get(port, "/a4?log=yes")
    ls = hh.wait_lines(path, 2)
    assert ls == ["/a1 200", "/a4 200"], ls

    path2 = log_path(vwarren, "ifnot.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {
        "path": path2, "format": "$uri", "if": "!$cookie_nolog"}})
    hh.get(port, "/a1", {"Cookie": "nolog=1"})
    hh.get(port, "/a2")
    assert hh.wait_lines(path2, 1) == ["/a2"]


def test_string_line_cannot_be_split(vwarren):
    path = log_path(vwarren, "safe.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path, "format": "$uri"}})
    hh.get(port, "/x%0d%0afake%20line")
    hh.get(port, "/a")
    ls = hh.wait_lines(path, 2)
    assert len(ls) == 2 and ls[1] == "/a", ls
    assert "fake line" in ls[0] and "\r" not in ls[0]


def test_error_response_logged(vwarren):
    """A malformed request is answered 400 and, like nginx and Unit do, the
    answer is in the access log."""
    path = log_path(vwarren, "errors.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path,
                                                           "format": "$status"}})
    r, closed = hh.raw(port, b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n")
    assert r.status == 400 and closed
    hh.get(port, "/a")
    ls = hh.wait_lines(path, 2)
    assert ls == ["400", "200"], ls


def test_router_errors_of_a_read_head_are_logged_with_it(vwarren):
    """Answers the router makes itself once a head was read (413 over
    max_body_size, 502 from an upstream that is not there) are logged with
    the request's line and its own $request_id."""
    path = log_path(vwarren, "errors-known.log")
    dead = wh.free_port()
    port = hh.setup(vwarren, [
        {"match": {"uri": "/dead*"}, "action": {"proxy": "http://127.0.0.1:%d" % dead}},
        {"action": {"return": 200}}],
        settings={"http": {"max_body_size": 10}},
        extra={"access_log": {"path": path, "format": "$status|$request_line|$request_id"}})
    assert hh.get(port, "/dead/x?q=1").status == 502
    assert hh.get(port, "/big", method="POST", body=b"x" * 100).status == 413
    ls = [l.split("|") for l in hh.wait_lines(path, 2)]
    assert [l[:2] for l in ls] == [["502", "GET /dead/x?q=1 HTTP/1.1"],
                                   ["413", "POST /big HTTP/1.1"]], ls
    assert len(ls[0][2]) == 32 and len(ls[1][2]) == 32 and ls[0][2] != ls[1][2], ls


def test_body_read_past_is_logged_once_with_the_outcome(vwarren):
    """An answer that does not need the body is built at once, but sent (and
    logged) after the body was read past: a chunked body found broken then
    replaces it with a 400, and only that is logged, once."""
    path = log_path(vwarren, "bodies.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {
        "path": path, "format": "$request_line $status $body_bytes_sent"}})
    head = b"POST /a/%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    r, closed = hh.raw(port, head % b"bad" + b"5\r\nabc\r\nzz\r\n")
    assert r.status == 400 and closed, r
    bad_len = len(r.body)
    with hh.Conn(port) as c:
        c.send(head % b"good" + b"3\r\nabc\r\n0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.request("POST", "/a/length", body=b"x" * 70000).status == 200
        assert c.request("GET", "/skip").status == 204
    ls = hh.wait_lines(path, 4)
    assert ls == ["POST /a/bad HTTP/1.1 400 %d" % bad_len,
                  "POST /a/good HTTP/1.1 200 0",
                  "POST /a/length HTTP/1.1 200 0",
                  "GET /skip HTTP/1.1 204 0"], ls


def test_reopen_on_sigusr1(vwarren):
    path = log_path(vwarren, "rot.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path, "format": "$uri"}})
    hh.get(port, "/a1")
    assert hh.wait_lines(path, 1) == ["/a1"]
    os.rename(path, path + ".1")
    hh.get(port, "/a2")                    # still goes to the renamed file
    assert hh.wait_lines(path + ".1", 2) == ["/a1", "/a2"]
    os.kill(vwarren.main_pid, signal.SIGUSR1)
    assert wh.wait_for(lambda: os.path.exists(path), 5), "access log not reopened"
    router = vwarren.pid("router")

    def switched():
        hh.get(port, "/a3")
        try:
            with open(path) as f:
                return "/a3" in f.read()
        except FileNotFoundError:
            return False
    assert wh.wait_for(switched, 5, 0.2), "new lines do not reach the new file"
    old = open(path + ".1").read().splitlines()
    assert old[:2] == ["/a1", "/a2"]
    # nobody holds the rotated file any more
    assert wh.wait_for(lambda: not any(t == path + ".1" for t in
                                       (wh.proc_fds(router) or {}).values()), 3)
    hh.get(port, "/a4")
    # The writer is asynchronous: the file may still end with "/a3".
    assert wh.wait_for(lambda: hh.wait_lines(path, 1)[-1] == "/a4", 5, 0.05), hh.wait_lines(path, 1)


def test_access_log_off(vwarren):
    path = log_path(vwarren, "off.log")
    port = hh.setup(vwarren, ROUTES, extra={"access_log": {"path": path, "format": "$uri"}})
    hh.get(port, "/a1")
    assert hh.wait_lines(path, 1) == ["/a1"]
    assert vwarren.delete("/config/access_log") == (200, wh.SUCCESS)
    hh.get(port, "/a2")
    import time
    time.sleep(0.3)
    assert open(path).read().splitlines() == ["/a1"]
