"""A Python WSGI application run by warrend: `type: "python"` starts the
runtime (warren-python, from --modulesdir) with the app's options."""

import os
import shutil
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WSGI = '''
import os

def application(environ, start_response):
    body = environ["wsgi.input"].read()
    text = "%s %s %s|%s|%s|%d" % (environ["REQUEST_METHOD"], environ["SCRIPT_NAME"],
                                  environ["PATH_INFO"], environ["QUERY_STRING"],
                                  os.environ.get("GREETING", ""), len(body))
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [text.encode()]
'''


@pytest.fixture
def pyw(warren_factory):
    """A warrend whose --modulesdir holds a copy of warren-python, and an app
    directory that user nobody can read."""
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "hello_wsgi.py", WSGI)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def test_wsgi_app_serves(pyw):
    w, appdir = pyw
    port = hh.setup(w, [{"action": {"pass": "applications/py"}}], extra={
        "applications": {"py": {"type": "python 3", "path": appdir, "module": "hello_wsgi",
                                "prefix": "/app", "processes": 2,
                                "environment": {"GREETING": "hi"}}}})
    r = hh.get(port, "/app/x/y?q=1", method="POST", body=b"12345")
    assert r.status == 200
    assert r.body == b"POST /app /x/y|q=1|hi|5"
    assert r.header("Content-Type") == "text/plain"
    pids = {hh.get(port, "/app/").header("X-Pid") for _ in range(20)}
    assert 1 <= len(pids) <= 2
    # A chunked body: no CONTENT_LENGTH, wsgi.input reads it to its end.
    r = hh.get(port, "/app/c", method="POST", headers={"Transfer-Encoding": "chunked"},
               body=b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
    assert (r.status, r.body) == (200, b"POST /app /c||hi|7")


def test_wsgi_app_that_cannot_load_fails_the_put(pyw):
    w, appdir = pyw
    before = w.config_bytes()
    s, j = w.put("/config", {"applications": {"py": {
        "type": "python", "path": appdir, "module": "no_such_module"}}})
    assert s == 500, j
    # The runtime's own last line says why.
    assert 'Application "py" could not start' in j["detail"], j
    assert "No module named 'no_such_module'" in j["detail"], j
    assert w.config_bytes() == before


SLOW = '''
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(30)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


def test_limits_timeout_answers_503_and_replaces_the_worker(pyw):
    w, appdir = pyw
    hh.write(appdir, "slow_wsgi.py", SLOW)
    port = hh.setup(w, [{"action": {"pass": "applications/slow"}}], extra={
        "applications": {"slow": {"type": "python", "path": appdir, "module": "slow_wsgi",
                                  "processes": 1, "limits": {"timeout": 1}}}})
    first = hh.get(port, "/").header("X-Pid")
    t0 = time.time()
    r = hh.get(port, "/sleep")
    assert r.status == 503
    assert time.time() - t0 < 10
    # The hung worker was killed; a new one serves.
    deadline = time.time() + 10
    pid = None
    while time.time() < deadline:
        try:
            r = hh.get(port, "/")
            if r.status == 200:
                pid = r.header("X-Pid")
                break
        except Exception:
            pass
        time.sleep(0.1)
    assert pid is not None and pid != first
    assert "did not answer within 1 s" in w.log()


def test_limits_requests_recycles_workers(pyw):
    w, appdir = pyw
    hh.write(appdir, "slow_wsgi.py", SLOW)
    port = hh.setup(w, [{"action": {"pass": "applications/rec"}}], extra={
        "applications": {"rec": {"type": "python", "path": appdir, "module": "slow_wsgi",
                                 "processes": 1, "limits": {"requests": 3}}}})
    pids = []
    for _ in range(10):
        r = hh.get(port, "/")
        assert r.status == 200
        pids.append(r.header("X-Pid"))
    # A worker answers 3 (with jitter: at most 3 + 3 // 10 + ... = 3) requests.
    assert len(set(pids)) >= 3, pids
    for p in set(pids):
        assert pids.count(p) <= 3, pids
    assert "replacing it in" not in w.log()     # recycled at once, no backoff


NAP = '''
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/nap":
        time.sleep(1)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


def test_client_leaving_mid_request_keeps_the_worker(pyw):
    """The router ends the request whose client left mid-request (ABORT on
    its stream) and keeps the worker: the application finds the request
    aborted when it answers, which is nobody's failure. The same worker
    serves on: no exit, no replacement, nothing in the log."""
    import socket
    w, appdir = pyw
    hh.write(appdir, "nap_wsgi.py", NAP)
    port = hh.setup(w, [{"action": {"pass": "applications/nap"}}], extra={
        "applications": {"nap": {"type": "python", "path": appdir, "module": "nap_wsgi",
                                 "processes": 1}}})
    first = hh.get(port, "/").header("X-Pid")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /nap HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    s.close()
    for _ in range(3):
        r = hh.get(port, "/")
        assert (r.status, r.header("X-Pid")) == (200, first)
    log = w.log()
    assert "exited with code" not in log, log[-2000:]
    assert "replacing it in" not in log, log[-2000:]
    assert "request failed" not in log, log[-2000:]


# ------------------------------------------------------------------ targets

TARGETS_APP = '''
def front(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("front %s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]

def make_admin():
    def admin(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("admin %s|%s" % (environ["SCRIPT_NAME"], environ["PATH_INFO"])).encode()]
    return admin
'''


def test_targets_route_to_two_callables_of_one_app(pyw):
    w, appdir = pyw
    hh.write(appdir, "targets_wsgi.py", TARGETS_APP)
    port = hh.setup(w, [
        {"match": {"uri": "/admin/*"}, "action": {"pass": "applications/shop/admin"}},
        {"action": {"pass": "applications/shop/front"}}], extra={
        "applications": {"shop": {"type": "python", "path": appdir, "processes": 1,
                                  "targets": {
                                      "front": {"module": "targets_wsgi", "callable": "front"},
                                      "admin": {"module": "targets_wsgi",
                                                "callable": "make_admin", "factory": True,
                                                "prefix": "/admin"}}}}})
    r = hh.get(port, "/x/y")
    assert (r.status, r.body) == (200, b"front |/x/y")
    r = hh.get(port, "/admin/users")
    assert (r.status, r.body) == (200, b"admin /admin|/users")


def test_targets_with_a_broken_target_fail_the_put(pyw):
    w, appdir = pyw
    hh.write(appdir, "targets_wsgi.py", TARGETS_APP)
    s, j = w.put("/config", {"applications": {"shop": {
        "type": "python", "path": appdir, "targets": {
            "front": {"module": "targets_wsgi", "callable": "front"},
            "bad": {"module": "targets_wsgi", "callable": "nope"}}}}})
    assert s == 500, j
    assert 'no callable "nope"' in j["detail"], j


# ------------------------------------------------------------------- zygote

IMPORT_ONCE = '''
import os
with open(os.environ["MARKER"], "a") as f:
    f.write("%d\\n" % os.getpid())

def application(environ, start_response):
    start_response("200 OK", [("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


def imports(marker):
    with open(marker) as f:
        return [int(x) for x in f.read().split()]


def ppid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return None


def children_of(ppid):
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if ppid_of(int(d)) == ppid:
                    out.add(int(d))
            except (OSError, ValueError):
                pass
    return out


def wait_for(cond, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_zygote_imports_once_and_forks_the_workers(pyw):
    w, appdir = pyw
    marker = os.path.join(appdir, "imports.txt")
    open(marker, "w").close()
    os.chmod(marker, 0o666)
    hh.write(appdir, "once_wsgi.py", IMPORT_ONCE)
    port = hh.setup(w, [{"action": {"pass": "applications/once"}}], extra={
        "applications": {"once": {"type": "python", "path": appdir, "module": "once_wsgi",
                                  "processes": 3, "environment": {"MARKER": marker}}}})
    assert hh.get(port, "/").status == 200
    [zygote] = imports(marker)
    proto = ppid_of(zygote)
    # Three workers, children of the prototype (re-parented), none the importer.
    workers = wait_for(lambda: (children_of(proto) - {zygote}
                                if len(children_of(proto) - {zygote}) == 3 else None),
                       "three workers")
    assert zygote not in workers
    pid = int(hh.get(port, "/").header("X-Pid"))
    assert pid in workers

    # A worker killed -9 is replaced from the zygote: no second import.
    os.kill(pid, 9)
    wait_for(lambda: len(children_of(proto) - {zygote} - {pid}) == 3, "a replacement")
    for _ in range(10):
        assert hh.get(port, "/").status == 200
    assert imports(marker) == [zygote]
    # A new generation imports once more.
    s, j = w.get("/control/applications/once/restart")
    assert s == 200, j
    wait_for(lambda: len(imports(marker)) == 2, "the new generation's import")
    assert hh.get(port, "/").status == 200
    assert len(imports(marker)) == 2


def test_import_exception_fails_the_put_with_its_text(pyw):
    w, appdir = pyw
    hh.write(appdir, "boom_wsgi.py", "raise RuntimeError('boom at import time')\n")
    before = w.config_bytes()
    s, j = w.put("/config", {"applications": {"py": {
        "type": "python", "path": appdir, "module": "boom_wsgi", "processes": 2}}})
    assert s == 500, j
    assert "RuntimeError: boom at import time" in j["detail"], j
    assert w.config_bytes() == before


VENV_APP = '''
import os, sys
import venv_only

def application(environ, start_response):
    start_response("200 OK", [])
    return [("%s|%s|%s|%s" % (venv_only.MARK, sys.prefix, os.getcwd(),
                              os.environ.get("GREETING"))).encode()]
'''


def test_home_venv_path_and_working_directory(pyw):
    import subprocess
    import sys
    w, appdir = pyw
    venv = os.path.join(appdir, "venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv], check=True)
    site = os.path.join(venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    hh.write(site, "venv_only.py", "MARK = 'from the venv'\n")
    code = os.path.join(appdir, "code")
    hh.write(code, "venv_wsgi.py", VENV_APP)
    wd = os.path.join(appdir, "wd")
    os.mkdir(wd)
    port = hh.setup(w, [{"action": {"pass": "applications/v"}}], extra={
        "applications": {"v": {"type": "python", "home": venv, "path": [code],
                               "working_directory": wd, "processes": 2,
                               "module": "venv_wsgi", "environment": {"GREETING": "hi"}}}})
    mark, prefix, cwd, greeting = hh.get(port, "/").body.decode().split("|")
    assert mark == "from the venv"
    assert os.path.realpath(prefix) == os.path.realpath(venv)
    assert (os.path.realpath(cwd), greeting) == (os.path.realpath(wd), "hi")


PRINTING_WSGI = '''
import os

def application(environ, start_response):
    print("served %s by %d" % (environ["PATH_INFO"], os.getpid()), flush=True)
    start_response("200 OK", [("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


def test_stdout_file_gets_what_workers_print(pyw):
    """"stdout": the workers' standard output is appended to that file (it
    is created by the app's user, so its directory must be theirs to write)."""
    w, appdir = pyw
    hh.write(appdir, "printing_wsgi.py", PRINTING_WSGI)
    logdir = os.path.join(appdir, "out")
    os.mkdir(logdir)
    os.chmod(logdir, 0o777)
    out = os.path.join(logdir, "app.out")
    port = hh.setup(w, [{"action": {"pass": "applications/p"}}], extra={
        "applications": {"p": {"type": "python", "path": appdir, "module": "printing_wsgi",
                               "processes": 1, "stdout": out}}})
    pids = [hh.get(port, "/n%d" % i).header("X-Pid") for i in range(3)]
    assert len(set(pids)) == 1, pids            # "processes": 1
    with open(out) as f:
        assert f.read().splitlines() == ["served /n%d by %s" % (i, pids[0])
                                         for i in range(3)]
    assert os.stat(out).st_uid == wh.NOBODY_UID


def test_put_answers_once_a_worker_is_running(pyw):
    """The PUT that starts an app answers 200 only once its first worker
    said hello (docs/applications.md): the status shows it running at once
    (the others may still be starting), and a request is served."""
    w, appdir = pyw
    port = hh.setup(w, [{"action": {"pass": "applications/py"}}], extra={
        "applications": {"py": {"type": "python", "path": appdir, "module": "hello_wsgi",
                                "processes": 2}}})
    s, j = w.get("/status/applications/py")
    assert s == 200, j
    assert j["processes"]["running"] >= 1, j
    assert j["processes"]["running"] + j["processes"]["starting"] == 2, j
    assert hh.get(port, "/").status == 200
