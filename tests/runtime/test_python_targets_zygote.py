"""warren-python with "targets" (WARREN_PYTHON_TARGETS) and as a zygote
(WARREN_ZYGOTE_FD, src/app/zygote.h), the test playing the prototype."""

import ctypes
import json
import os
import socket
import struct

import pytest

import subprocess

from conftest import option_env, runtime_bin, assert_clean_stderr
from fake_router import Worker

TARGETS = json.dumps({
    "env": {"module": "wsgi_apps", "callable": "env", "prefix": "/e/"},
    "write": {"module": "wsgi_apps", "callable": "write"},
})


def test_targets_pick_the_callable_the_router_names(python_worker):
    w = python_worker(module="", targets=TARGETS)
    r = w.request(path="/e/x", target_name="env")
    assert r.status == 200
    env = json.loads(r.body)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/e", "/x")
    r = w.request(path="/e/x", target_name="write")
    assert (r.status, r.body) == (200, b"one two three")
    # A name the runtime does not have: 500, the worker goes on.
    assert w.request(path="/", target_name="nope").status == 500
    assert "no target \"nope\"" in w.stderr()
    assert w.request(path="/", target_name="write").status == 200


def test_targets_bad_json_is_a_start_failure(python_start):
    w = python_start(module="", targets="{not json")
    assert w.expect_exit() == 70
    assert "WARREN_PYTHON_TARGETS is not valid JSON" in w.stderr()


# ------------------------------------------------------------------ zygote

ZMSG = struct.Struct("=IIii")
READY, SPAWN, WORKER, FAILED = 1, 2, 3, 4
PR_SET_CHILD_SUBREAPER = 36


class Adopted(Worker):
    """A worker the zygote forked: only the router's end of its channel."""

    def __init__(self, sock, pid):
        self.sock = sock
        self.reset_state()
        self.proc = type("P", (), {"pid": pid})()


@pytest.fixture
def subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def start_zygote(tmp_path, **options):
    zs, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    env = dict(os.environ)
    env.update(option_env(options))
    env.update({"WARREN_ZYGOTE_FD": str(child.fileno()), "WARREN_APP_NAME": "z",
                "MARKER": str(tmp_path / "imports.txt")})
    err = open(tmp_path / "zygote-stderr.txt", "wb")
    proc = subprocess.Popen([runtime_bin()], env=env, cwd=str(tmp_path),
                            pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                            stderr=err)
    child.close()
    err.close()
    return zs, proc


def spawn(zs, worker, tmp_path):
    router, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with open(tmp_path / ("worker-%d.txt" % worker), "wb") as err:
        zs.sendmsg([ZMSG.pack(SPAWN, worker, 0, 0)],
                   [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                     struct.pack("ii", child.fileno(), err.fileno()))])
    child.close()
    kind, got, pid, _ = ZMSG.unpack(zs.recv(ZMSG.size))
    assert (kind, got) == (WORKER, worker)
    return Adopted(router, pid)


def test_zygote_forks_workers_without_importing_again(tmp_path, subreaper):
    zs, proc = start_zygote(tmp_path, module="import_marker")
    kind, _, pid, _ = ZMSG.unpack(zs.recv(ZMSG.size))
    assert (kind, pid) == (READY, proc.pid)
    workers = [spawn(zs, n, tmp_path) for n in (1, 2)]
    for n, w in enumerate(workers, 1):
        w.expect_hello()
        r = w.request(path="/")
        assert r.body == b"forked"
        # Re-parented to us (the prototype), not the zygote's child.
        assert int(r.header("X-Pid")) == w.proc.pid != proc.pid
        assert int(r.header("X-PPid")) == os.getpid()
        # os.environ is the worker's: its id, not the zygote's socket.
        assert r.header("X-Worker") == str(n)
        assert r.header("X-Zygote-Fd") == ""
    assert (tmp_path / "imports.txt").read_text().split() == [str(proc.pid)]
    for n, w in enumerate(workers, 1):
        w.sock.close()
        _, status = os.waitpid(w.proc.pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert_clean_stderr((tmp_path / ("worker-%d.txt" % n)).read_text())
    zs.close()
    assert proc.wait(10) == 0
    assert_clean_stderr((tmp_path / "zygote-stderr.txt").read_text())


def test_zygote_import_error_ends_it_before_ready(tmp_path):
    zs, proc = start_zygote(tmp_path, module="raises_at_import")
    assert zs.recv(ZMSG.size) == b""
    assert proc.wait(10) == 70
    last = (tmp_path / "zygote-stderr.txt").read_text().strip().splitlines()[-1]
    assert 'cannot import module "raises_at_import": ZeroDivisionError' in last
