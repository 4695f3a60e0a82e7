"""The `warren` command (tools/warren.c): the control API from a shell.
GET by default, PUT/POST from standard input, DELETE, EDIT through
$EDITOR; the answer's body on stdout, an error answer's on stderr with
exit status 1, no answer or bad usage 2."""

import json
import os
import subprocess

import pytest

import warren_helpers as wh

CLI = os.path.join(wh.REPO, "build", "warren")
CONFIG = {"listeners": {}, "routes": [{"action": {"return": 204}}]}


def run(w, *args, stdin=b"", env=None, control=True):
    e = dict(os.environ)
    e.pop("WARREN_CONTROL", None)
    e.update(env or {})
    argv = [CLI] + (["--control", w.control] if control else []) + list(args)
    return subprocess.run(argv, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=e, timeout=20)


@pytest.fixture
def cw(warren):
    assert os.access(CLI, os.X_OK), "build/warren is missing: make all builds it"
    r = run(warren, "PUT", "/config", stdin=json.dumps(CONFIG).encode())
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == wh.SUCCESS
    return warren


def test_get_put_post_delete(cw):
    r = run(cw, "/config")
    assert (r.returncode, json.loads(r.stdout), r.stderr) == (0, CONFIG, b"")
    r = run(cw, "post", "/config/routes", stdin=b'{"action": {"return": 200}}')
    assert r.returncode == 0, r
    r = run(cw, "GET", "/config/routes/1/action/return")
    assert (r.returncode, r.stdout.strip()) == (0, b"200")
    r = run(cw, "DELETE", "/config/routes/1")
    assert r.returncode == 0, r
    assert cw.get("/config")[1] == CONFIG
    # The environment names the socket when --control does not.
    r = run(cw, "/status/requests", env={"WARREN_CONTROL": cw.control}, control=False)
    assert (r.returncode, json.loads(r.stdout)) == (0, {"total": 0}), r


def test_error_answers_go_to_stderr_with_status_1(cw):
    r = run(cw, "PUT", "/config/routes/0/action", stdin=b'{"return": 2000}')
    assert r.returncode == 1 and r.stdout == b"", r
    err = json.loads(r.stderr)
    assert err["location"] == {"path": "/routes/0/action/return"}, err
    r = run(cw, "/config/nope")
    assert r.returncode == 1 and json.loads(r.stderr) == {"error": "Value doesn't exist."}
    assert cw.get("/config")[1] == CONFIG


def test_metrics_text_and_a_target_with_blanks(cw):
    r = run(cw, "/metrics")
    assert r.returncode == 0, r
    assert b"# TYPE warren_requests_total counter\n" in r.stdout
    # A space in the path is sent percent-encoded (the controller decodes it).
    r = run(cw, "PUT", "/config/applications", stdin=b"{}")
    assert r.returncode == 0, r
    r = run(cw, "/config/applications/a b")
    assert r.returncode == 1 and b"Value doesn't exist." in r.stderr, r


def test_edit(cw, tmp_path):
    sed = {"EDITOR": "sed -i s/204/205/", "VISUAL": ""}
    r = run(cw, "EDIT", "/config/routes", env=sed)
    assert r.returncode == 0, r
    assert json.loads(r.stdout) == wh.SUCCESS
    assert cw.get("/config/routes/0/action/return") == (200, 205)
    # Nothing changed: nothing sent.
    r = run(cw, "EDIT", "/config", env={"EDITOR": "true", "VISUAL": ""})
    assert (r.returncode, r.stderr) == (0, b"warren: no change\n"), r
    # A refused edit: the answer, and the file kept with the edit in it.
    r = run(cw, "EDIT", "/config/routes", env={"VISUAL": "sed -i s/205/2000/"})
    assert r.returncode == 1, r
    last = r.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("warren: your edit is kept in /tmp/warren-edit-"), r.stderr
    kept = last.split(" in ", 1)[1]
    try:
        with open(kept) as f:
            assert json.load(f)[0]["action"]["return"] == 2000
    finally:
        os.unlink(kept)
    assert cw.get("/config/routes/0/action/return") == (200, 205)
    # An editor that fails changes nothing.
    r = run(cw, "EDIT", "/config", env={"EDITOR": "false", "VISUAL": ""})
    assert r.returncode == 2 and b"failed; nothing changed" in r.stderr, r


def test_usage_and_no_answer(cw, tmp_path):
    for args in ([], ["config"], ["FETCH", "/config"], ["GET", "/a", "/b"]):
        r = run(cw, *args)
        assert r.returncode == 2 and b"Usage: warren" in r.stderr, (args, r)
    r = subprocess.run([CLI, "--control", "unix:%s/none.sock" % tmp_path, "/config"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    assert r.returncode == 2 and b"No such file or directory" in r.stderr, r
    r = subprocess.run([CLI, "--help"], stdout=subprocess.PIPE, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith(b"Usage: warren"), r
