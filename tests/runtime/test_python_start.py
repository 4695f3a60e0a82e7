"""warren-python: loading the application (factory, venv), failing to
start with a clear last line and status before HELLO, and serving many
requests on one worker."""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import APPS

EXIT_NO_ROUTER, EXIT_APP, EXIT_CONFIG = 69, 70, 78


def last_line(worker):
    lines = worker.stderr().rstrip("\n").splitlines()
    assert lines, "no stderr"
    prefix = "warren-python[test:%d]: " % worker.proc.pid
    assert lines[-1].startswith(prefix), lines[-1]
    return lines[-1][len(prefix):]


FAILURES = [
    # (options, exit status, last line (regex), traceback expected)
    (dict(module="nope"), EXIT_APP,
     r'cannot import module "nope": ModuleNotFoundError: '
     r"No module named 'nope'$", False),
    (dict(module="nope.sub"), EXIT_APP,
     r"cannot import module \"nope.sub\": ModuleNotFoundError: "
     r"No module named 'nope'$", False),
    (dict(module="syntax_error"), EXIT_APP,
     r'cannot import module "syntax_error": SyntaxError: '
     r"expected ':' \(syntax_error.py, line 1\)$", True),
    (dict(module="raises_at_import"), EXIT_APP,
     r'cannot import module "raises_at_import": ZeroDivisionError: '
     r"division by zero$", True),
    (dict(module="exits_at_import"), EXIT_APP,
     r'cannot import module "exits_at_import": SystemExit: 3$', True),
    (dict(module="missing_dep"), EXIT_APP,
     r'cannot import module "missing_dep": ModuleNotFoundError: '
     r"No module named 'not_installed_xyz'$", True),
    (dict(module="wsgi_apps", callable="nope"), EXIT_APP,
     r'module "wsgi_apps" has no callable "nope": AttributeError: '
     r"module 'wsgi_apps' has no attribute 'nope'$", False),
    (dict(module="wsgi_apps", callable="NOT_CALLABLE"), EXIT_APP,
     r'"wsgi_apps.NOT_CALLABLE" is not callable \(it is a str\)$', False),
    (dict(module="wsgi_apps", callable="failing_factory", factory="1"),
     EXIT_APP, r"application factory wsgi_apps.failing_factory\(\) failed: "
     r"RuntimeError: no database$", True),
    (dict(module="wsgi_apps", callable="none_factory", factory="1"),
     EXIT_APP, r'"wsgi_apps.none_factory\(\)" is not callable '
     r"\(it is a NoneType\)$", False),
    (dict(module=None), EXIT_CONFIG,
     r"WARREN_PYTHON_MODULE is not set: no application module to load$",
     False),
    (dict(module="wsgi_apps", factory="yes"), EXIT_CONFIG,
     r'WARREN_PYTHON_FACTORY must be 0 or 1, not "yes"$', False),
    (dict(module="wsgi_apps", prefix="app"), EXIT_CONFIG,
     r'WARREN_PYTHON_PREFIX must start with "/", not "app"$', False),
    (dict(module="wsgi_apps", home="/nonexistent/venv"), EXIT_CONFIG,
     r'WARREN_PYTHON_HOME "/nonexistent/venv": No such file or directory$',
     False),
    (dict(module="wsgi_apps", WARREN_CHANNEL_FD=None), EXIT_NO_ROUTER,
     r"cannot reach the router: WARREN_CHANNEL_FD: No such file or "
     r"directory$", False),
    (dict(module="wsgi_apps", WARREN_CHANNEL_FD="x"), EXIT_NO_ROUTER,
     r"cannot reach the router: WARREN_CHANNEL_FD: Invalid argument$",
     False),
]


@pytest.mark.parametrize("options,status,line,traceback", FAILURES,
                         ids=[re.sub(r"\W+", "_", f[2][:40]) for f in FAILURES])
def test_start_failure(python_start, options, status, line, traceback):
    w = python_start(**options)
    assert w.expect_exit() == status        # no HELLO came first
    assert re.search(line, last_line(w)), last_line(w)
    assert ("Traceback (most recent call last)" in w.stderr()) == traceback


def test_factory(python_worker):
    w = python_worker(callable="create_app", factory="1")
    r = w.request(path="/")
    assert (r.status, r.body) == (200, b"made by the factory")


def test_factory_zero_is_plain_callable(python_worker):
    w = python_worker(callable="create_app", factory="0")
    # create_app(environ, start_response) is a TypeError: answered 500.
    assert w.request(path="/").status == 500


def test_dotted_callable(python_worker):
    w = python_worker(callable="Namespace.write")
    assert w.request(path="/").body == b"one two three"


def test_working_directory_on_path_by_default(python_start, tmp_path):
    (tmp_path / "cwd_app.py").write_text(
        "def application(e, s):\n"
        "    s('200 OK', [])\n"
        "    return [b'from cwd']\n")
    w = python_start(module="cwd_app", path=None)
    w.expect_hello()
    assert w.request(path="/").body == b"from cwd"
    assert w.close() == 0


def test_virtualenv_home(python_start, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip",
                    str(venv)], check=True)
    site = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / \
        "site-packages"
    (site / "venv_only.py").write_text("MARK = 'from the venv'\n")

    w = python_start(module="venv_app", home=str(venv))
    w.expect_hello()
    r = w.request(path="/")
    mark, prefix = r.body.decode().split("|")
    assert mark == "from the venv"
    assert os.path.realpath(prefix) == os.path.realpath(str(venv))
    assert w.close() == 0

    # Without the venv the module is not there: a failed start.
    w = python_start(module="venv_app")
    assert w.expect_exit() == EXIT_APP
    assert "No module named 'venv_only'" in last_line(w)


LEAK_KINDS = {
    "env": dict(path="/env", headers=[("X-A", "1"), ("X-A", "2")]),
    "body": dict(method="POST", path="/body", query="readline",
                 body=b"0123456789\n" * 3000),
    "partial": dict(method="POST", path="/body", query="partial",
                    body=b"x" * 600000),
    "stream": dict(path="/stream"),
    "write": dict(path="/write"),
    "raise": dict(path="/raise"),
    "cut": dict(path="/closing", query="after_body"),
    "exc_info": dict(path="/exc_replace"),
    "bad_heads": dict(path="/bad_heads"),
    "bytesio": dict(path="/file", query="bytesio:%(file)s"),
    "fd": dict(path="/file", query="fd:%(file)s"),
}
WARM, MEASURED = 200, 100


def test_many_requests_one_worker_no_leak(python_worker, tmp_path):
    """Every kind of request, hundreds of times on one worker: all are
    answered, and what Python holds stays flat: live container objects
    exactly (a leaked environ, exception or iterable shows at once);
    allocated blocks only loosely, as interpreter caches keep filling for
    a couple of thousand requests before they level off."""
    w = python_worker()
    path = str(tmp_path / "f.bin")
    with open(path, "wb") as f:
        f.write(b"0123456789\n" * 3000)

    def alloc():
        got = json.loads(w.request(path="/alloc").body)
        return got["objects"], got["blocks"]

    growth = {}
    for kind, req in LEAK_KINDS.items():
        req = dict(req)
        if "query" in req:
            req["query"] = req["query"] % {"file": path}
        first = w.request(**req)
        assert first.status in (200, 500, 503), (kind, first)
        for i in range(WARM + MEASURED):
            if i == WARM:
                before = alloc()
            r = w.request(**req)
            assert (r.status, r.end) == (first.status, first.end), kind
            w.request(path="/closed")       # empties the close() log
        after = alloc()
        growth[kind] = (after[0] - before[0], after[1] - before[1])
    assert all(objects < MEASURED // 10 and blocks < 4 * MEASURED
               for objects, blocks in growth.values()), growth
    assert w.next_stream > 2 * len(LEAK_KINDS) * (WARM + MEASURED)
