"""An application's stderr in the error log: every line becomes an entry of
its own, labelled with the app and the worker (or zygote), control bytes
escaped, long lines split with a mark. So an app cannot forge a daemon
line (the harness takes the level at the start of an entry: a forged
"[alert]" there would fail the test) nor put raw ESC/CR in the log. An app
whose "stderr" is a file of its own still gets its raw bytes there."""

import os
import shutil

import pytest

import http_helpers as hh
import warren_helpers as wh

FORGED = b"2026/12/03 10:00:00 [alert] 1#1 forged"
LONG = 3000

APP = '''
import os

os.write(2, %(forged)r + b" at import\\n")

def application(environ, start_response):
    os.write(2, %(forged)r + b" in a request\\n")
    os.write(2, b"colour \\x1b[31mred\\x1b[0m\\rback\\n")
    os.write(2, b"long " + b"x" * %(long)d + b"\\n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
''' % {"forged": FORGED, "long": LONG}


@pytest.fixture
def pyw(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "noisy_wsgi.py", APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def entries(w, needle):
    return [x for x in w.log().splitlines() if needle in x]


def long_line(w):
    """The worker's long stderr line put back together from its entries."""
    pieces = entries(w, 'app "noisy" worker 1 (pid ')
    start = [i for i, x in enumerate(pieces) if "stderr: long x" in x]
    if not start:
        return ""
    return pieces[start[0]].split(" stderr: ", 1)[1] + "".join(
        x.split(" stderr (continued): ", 1)[1] for x in pieces[start[0] + 1:]
        if " stderr (continued): " in x)


def assert_entry(line, label):
    m = wh.LOG_LINE_RE.match(line)
    assert m and m.group(1) == "notice", line
    assert label in line, (label, line)


def test_stderr_lines_are_labelled_and_escaped(pyw):
    w, appdir = pyw
    port = hh.setup(w, [{"action": {"pass": "applications/noisy"}}], extra={
        "applications": {"noisy": {"type": "python", "path": appdir,
                                   "module": "noisy_wsgi", "processes": 1}}})
    r = hh.get(port, "/")
    assert (r.status, r.body) == (200, b"ok")
    # The long line comes in several entries, not at once: wait for its last.
    assert wh.wait_for(lambda: long_line(w) == "long " + "x" * LONG, 5.0, 0.05), \
        long_line(w)
    text = w.log()
    # The zygote's import-time line and the worker's: app-labelled entries.
    [imp] = entries(w, "forged at import")
    assert_entry(imp, 'app "noisy" zygote (pid ')
    assert ' stderr: 2026/12/03 10:00:00 [alert] 1#1 forged at import' in imp, imp
    [req] = entries(w, "forged in a request")
    assert_entry(req, 'app "noisy" worker 1 (pid ')
    # No forged entry: no line of the log starts as an [alert] one.
    assert [x for x in text.splitlines() if (m := wh.LOG_LINE_RE.match(x))
            and m.group(1) == "alert"] == []
    assert w.bad_log_lines() == []
    # Control bytes escaped: no raw ESC or CR anywhere in the log.
    assert "\x1b" not in text and "\r" not in text
    [col] = entries(w, "colour ")
    assert_entry(col, 'app "noisy" worker 1 (pid ')
    assert col.endswith(r"stderr: colour \x1b[31mred\x1b[0m\x0dback"), col
    # A long line: split over entries, the later ones marked, nothing lost.
    pieces = entries(w, 'app "noisy" worker 1 (pid ')
    start = [i for i, x in enumerate(pieces) if "stderr: long x" in x]
    assert len(start) == 1, pieces
    rest = pieces[start[0] + 1:]
    assert rest and all(" stderr (continued): " in x for x in rest), rest
    for x in [pieces[start[0]]] + rest:
        assert_entry(x, 'app "noisy" worker 1')
    joined = pieces[start[0]].split(" stderr: ", 1)[1] + "".join(
        x.split(" stderr (continued): ", 1)[1] for x in rest)
    assert joined == "long " + "x" * LONG


def test_stderr_file_gets_the_raw_bytes(pyw):
    w, appdir = pyw
    logdir = os.path.join(appdir, "logs")
    os.mkdir(logdir)
    os.chmod(logdir, 0o777)              # the app's user writes its own file
    path = os.path.join(logdir, "err.log")
    port = hh.setup(w, [{"action": {"pass": "applications/noisy"}}], extra={
        "applications": {"noisy": {"type": "python", "path": appdir,
                                   "module": "noisy_wsgi", "processes": 1,
                                   "stderr": path}}})
    assert hh.get(port, "/").status == 200

    def raw():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return data if b"long " in data else None
    data = wh.wait_for(raw, 5.0, 0.05)
    assert data, data
    assert FORGED + b" in a request\n" in data
    assert b"colour \x1b[31mred\x1b[0m\rback\n" in data
    assert b"long " + b"x" * LONG + b"\n" in data
    assert "forged" not in w.log()


def failed_start(w, script):
    """PUTs an external app that is the shell script given (it must fail
    before its hello): the answer's detail."""
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "fails.sh")
    with open(exe, "w") as f:
        f.write("#!/bin/sh\n" + script)
    os.chmod(exe, 0o755)
    try:
        s, j = w.put("/config", {
            "listeners": {},
            "applications": {"sh": {"type": "external", "executable": exe,
                                    "processes": 1}}})
        assert s == 500, j
        return j["detail"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_last_words_of_a_failed_start_are_escaped(warren):
    """A program that writes and dies before its hello (the exec'd worker
    path): its lines are labelled entries, and the last one, quoted in the
    PUT's answer, has its control bytes escaped too."""
    detail = failed_start(warren, "printf '2026/12/03 10:00:00 [emerg] 1#1 forged\\n' >&2\n"
                                  "printf 'cannot start: \\033[1mbold\\033[0m\\n' >&2\nexit 3\n")
    assert r"its last words: cannot start: \x1b[1mbold\x1b[0m" in detail, detail
    [forged] = entries(warren, "[emerg] 1#1 forged")
    assert_entry(forged, 'app "sh" worker 1 (pid ')
    assert "\x1b" not in warren.log()
    assert warren.bad_log_lines() == []


def test_last_words_are_whole_up_to_480_bytes(warren):
    """A runtime's last line is often long (a Java exception with its
    class and message): the PUT's answer quotes 480 bytes of it, and cuts
    what goes beyond."""
    words = "w" * 470 + "0123456789" + "CUT"
    detail = failed_start(warren, "echo %s >&2\nexit 3\n" % words)
    assert "its last words: " + words[:479] in detail, detail
    assert "CUT" not in detail, detail
