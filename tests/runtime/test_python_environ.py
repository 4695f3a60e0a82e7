"""warren-python: the WSGI environ (PEP 3333) built from a request head."""

import json

HEADERS = [
    ("Host", "example.com:8080"),
    ("User-Agent", "pytest"),
    ("X-Multi", "a"),
    ("x-multi", "b"),
    ("X-Multi", "c, d"),
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Content-Length", "5"),
    ("Cookie", "a=1"),
    ("Cookie", "b=2"),
    ("Accept-Encoding", "gzip"),
]


def get_env(worker, **kw):
    r = worker.request(**kw)
    assert r.status == 200, r
    assert r.end == "END"
    return json.loads(r.body)


def test_environ_keys_and_values(python_worker):
    w = python_worker()
    e = get_env(w, method="POST", path="/env/a b", query="x=1&y=%20",
                target=b"/env/a%20b?x=1&y=%20", headers=HEADERS,
                body=b"hello", remote_addr="2001:db8::7",
                remote_port="51234", local_addr="10.0.0.1",
                local_port="8443", server_name="example.com")
    assert e["REQUEST_METHOD"] == "POST"
    assert e["SCRIPT_NAME"] == ""
    assert e["PATH_INFO"] == "/env/a b"
    assert e["QUERY_STRING"] == "x=1&y=%20"
    assert e["REQUEST_URI"] == "/env/a%20b?x=1&y=%20"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert e["SERVER_NAME"] == "example.com"
    assert e["SERVER_PORT"] == "8443"
    assert e["REMOTE_ADDR"] == "2001:db8::7"
    assert e["REMOTE_PORT"] == "51234"
    assert e["CONTENT_TYPE"] == "text/plain; charset=utf-8"
    assert e["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in e
    assert "HTTP_CONTENT_LENGTH" not in e
    assert e["HTTP_HOST"] == "example.com:8080"
    assert e["HTTP_USER_AGENT"] == "pytest"
    assert e["HTTP_ACCEPT_ENCODING"] == "gzip"
    assert e["HTTP_X_MULTI"] == "a,b,c, d"
    assert e["HTTP_COOKIE"] == "a=1; b=2"
    assert e["SERVER_SOFTWARE"].startswith("Warren/")
    assert e["wsgi.version"] == [1, 0]
    assert e["wsgi.url_scheme"] == "http"
    assert e["wsgi.multithread"] is False
    assert e["wsgi.multiprocess"] is True
    assert e["wsgi.run_once"] is False
    assert e["wsgi.input_terminated"] is True
    assert e["input_type"] == "Input"
    assert e["errors_type"] == "Errors"
    assert e["file_wrapper_callable"] is True
    assert e["keys_are_str"] is True


def test_environ_no_body_fields_when_absent(python_worker):
    w = python_worker()
    e = get_env(w, path="/env", headers=[("Host", "h")])
    assert "CONTENT_TYPE" not in e
    assert "CONTENT_LENGTH" not in e
    assert e["QUERY_STRING"] == ""
    assert e["REQUEST_URI"] == "/env"


def test_https_scheme(python_worker):
    w = python_worker()
    assert get_env(w, path="/env", scheme="https")["wsgi.url_scheme"] \
        == "https"


def test_server_name_falls_back_to_local_address(python_worker):
    w = python_worker()
    e = get_env(w, path="/env", server_name="", local_addr="192.0.2.1",
                version="HTTP/1.0")
    assert e["SERVER_NAME"] == "192.0.2.1"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_server_name_of_ipv6_has_brackets(python_worker):
    """An IPv6 host (from Host, or the listener's address) is written as
    in a URL, so SERVER_NAME ":" SERVER_PORT is an authority (PEP 3333's
    URL reconstruction)."""
    w = python_worker()
    e = get_env(w, path="/env", server_name="::1")
    assert e["SERVER_NAME"] == "[::1]"
    e = get_env(w, path="/env", server_name="", local_addr="2001:db8::1",
                version="HTTP/1.0")
    assert e["SERVER_NAME"] == "[2001:db8::1]"


def test_path_info_is_latin1_of_the_bytes(python_worker):
    w = python_worker()
    # "/env/café" as UTF-8 bytes: PEP 3333 hands them over as latin-1.
    e = get_env(w, path=b"/env/caf\xc3\xa9", target=b"/env/caf%C3%A9")
    assert e["PATH_INFO"] == "/env/caf\u00c3\u00a9"
    assert e["PATH_INFO"].encode("latin-1").decode("utf-8") == "/env/café"
    assert e["REQUEST_URI"] == "/env/caf%C3%A9"


def test_prefix_sets_script_name(python_worker):
    w = python_worker(prefix="/app/")          # trailing slash dropped
    e = get_env(w, path="/app/env/x")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/app", "/env/x")
    assert e["REQUEST_URI"] == "/app/env/x"


def test_prefix_exact_and_outside(python_start, python_worker):
    w = python_worker(prefix="/env")
    e = get_env(w, path="/env")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("/env", "")
    # Not at a segment boundary: the prefix does not apply.
    w2 = python_worker(prefix="/en")
    e = get_env(w2, path="/env/y")
    assert (e["SCRIPT_NAME"], e["PATH_INFO"]) == ("", "/env/y")


def test_environ_is_fresh_per_request(python_worker):
    w = python_worker()
    first = get_env(w, path="/env", headers=[("X-Once", "1")])
    second = get_env(w, path="/env")
    assert first["HTTP_X_ONCE"] == "1"
    assert "HTTP_X_ONCE" not in second
