#!/usr/bin/python3
"""bench/python_memory.py BUILD_DIR [PROCESSES]: memory and start time of
the workers of one Python app under the warrend in BUILD_DIR (warrend and
warren-python). The app imports a set of stdlib modules and builds ~30 MB
of data at import, like a real app's code and caches. Prints the summed
Rss and Pss (from /proc/PID/smaps_rollup) of the app's processes (workers,
and the zygote when there is one), and the time a PUT takes to start the
app (it answers once the workers are ready), median of RUNS. Run as root
(warrend's default user nobody must read the app directory: /tmp)."""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

RUNS = 5
APP = '''
import decimal, email.parser, http.client, json, xml.etree.ElementTree, sqlite3
import asyncio, unittest, argparse, logging.handlers, csv, zipfile
TABLE = {i: ("row %d " % i) * 8 for i in range(200000)}

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
'''


def control(sock, method, path, body=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n" % (method, path, len(data))).encode() + data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out.split(b"\r\n", 1)[0].decode()


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(d))
            except OSError:
                pass
    return out


def rollup(pid):
    vals = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                vals[parts[0][:-1]] = int(parts[1])
    return vals


def app_processes(main_pid):
    """The processes under the app's prototype (the one child of main whose
    own children run warren-python)."""
    for c in children(main_pid):
        kids = children(c)
        if kids and all("warren-python" in open("/proc/%d/cmdline" % k).read()
                        for k in kids):
            return kids
    return []


def main():
    build = os.path.abspath(sys.argv[1])
    procs = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    work = tempfile.mkdtemp(prefix="warren-mem-")
    os.chmod(work, 0o755)
    with open(os.path.join(work, "memapp.py"), "w") as f:
        f.write(APP)
    sock = os.path.join(work, "control.sock")
    d = subprocess.Popen([os.path.join(build, "warrend"), "--no-daemon",
                          "--control", "unix:" + sock, "--statedir", work + "/state",
                          "--pid", work + "/pid", "--log", work + "/log",
                          "--tmpdir", work + "/tmp", "--modulesdir", build],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        times = []
        for i in range(RUNS):
            control(sock, "PUT", "/config", {"listeners": {}, "applications": {}})
            app = {"type": "python", "path": work, "module": "memapp",
                   "processes": procs, "environment": {"RUN": str(i)}}
            t0 = time.monotonic()
            st = control(sock, "PUT", "/config", {"listeners": {}, "applications": {"m": app}})
            times.append(time.monotonic() - t0)
            assert " 200 " in st, st
        time.sleep(1)
        pids = app_processes(d.pid)
        mem = [rollup(p) for p in pids]
        print("%s: %d processes (%d workers + zygote if any): Rss %.1f MB, Pss %.1f MB; "
              "start of %d workers: median %.0f ms"
              % (build, len(pids), procs, sum(m["Rss"] for m in mem) / 1024,
                 sum(m["Pss"] for m in mem) / 1024, procs,
                 statistics.median(times) * 1000))
    finally:
        d.send_signal(signal.SIGTERM)
        d.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
