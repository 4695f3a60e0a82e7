"""How the programs are linked: applications can use the shared libwarren
as well as the static one, and the daemon never links libpython or libphp
(only the runtimes, worker programs, do)."""

import os
import shutil
import subprocess

import http_helpers as hh
import warren_helpers as wh

BUILD = os.path.join(wh.REPO, "build")


def needed(path):
    """The DT_NEEDED entries of an ELF file."""
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True,
                         text=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines()
            if "(NEEDED)" in line]


def test_an_app_on_the_shared_libwarren_serves(warren):
    """build/apps-so/hello is tests/apps/hello.c linked to libwarren.so.0
    (make build/apps-so/hello); copied with the library beside it, it runs
    as an external app and answers."""
    w = warren
    src = os.path.join(BUILD, "apps-so", "hello")
    if not os.path.exists(src):
        raise wh.WarrenError("%s is missing: run make build/apps-so/hello" % src)
    assert "libwarren.so.0" in needed(src)
    d = os.path.join(w.dir, "so")
    os.mkdir(d)
    shutil.copy(src, os.path.join(d, "hello"))
    shutil.copy(os.path.realpath(os.path.join(BUILD, "libwarren.so.0")),
                os.path.join(d, "libwarren.so.0"))
    os.chmod(d, 0o755)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o755)
    port = hh.setup(w, [{"action": {"pass": "applications/so"}}], extra={
        "applications": {"so": {"type": "external", "processes": 1,
                                "executable": os.path.join(d, "hello")}}})
    r = hh.get(port, "/")
    assert (r.status, r.body) == (200, b"Hello, world\n")
    r = hh.get(port, "/", method="POST", body=b"x" * 100000)
    assert (r.status, r.body) == (200, b"x" * 100000)


def test_only_the_python_runtime_links_libpython():
    daemon = [n for n in needed(wh.BINARY) if n.startswith("libpython")]
    assert daemon == [], daemon
    runtime = needed(os.path.join(BUILD, "warren-python"))
    assert any(n.startswith("libpython3") for n in runtime), runtime


def test_only_the_php_runtime_links_libphp():
    daemon = [n for n in needed(wh.BINARY) if n.startswith("libphp")]
    assert daemon == [], daemon
    runtime = needed(os.path.join(BUILD, "warren-php"))
    # Debian's libphp8.2.so has the soname libphp.so (an alternatives link)
    assert any(n.startswith("libphp") for n in runtime), runtime
