"""How a pool of workers starts and is renewed (issue 4, "process options"):
workers are spawned in parallel, not one by one, and the PUT that starts an
application answers once a worker is ready; limits.requests recycles each
worker after its share of requests, a share with jitter (between requests
and requests + requests/10), so a pool started together does not recycle
all at once.

Both tests run tests/apps/slowstart.c, a libwarren app that can sleep
before it says hello, logs when it started and when it became ready, and
answers every request with its pid and worker number."""

import os
import signal
import threading
import time

import http_helpers as hh
import warren_helpers as wh

APP = "slowstart"


def put_slowstart(w, name, processes, environment, **app):
    """PUT a config with one listener passing to the slowstart app NAME;
    returns (port, status, answer, monotonic time the answer came)."""
    port = wh.free_port()
    a = {"type": "external", "executable": wh.app_binary(w.dir, APP),
         "processes": processes, "environment": environment}
    a.update(app)
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/" + name}},
           "applications": {name: a}}
    s, j = w.put("/config", cfg)
    return port, s, j, time.monotonic()


def read_events(path):
    """{"start": {pid: t}, "ready": {pid: t}} from the app's log."""
    out = {"start": {}, "ready": {}}
    try:
        with open(path) as f:
            for line in f:
                what, pid, t = line.split()
                out[what][int(pid)] = float(t)
    except FileNotFoundError:
        pass
    return out


def app_status(w, name):
    s, j = w.get("/status/applications/" + name)
    assert s == 200, (s, j)
    return j


# ------------------------------------------------------------ parallel spawn

NAP_MS = 1000
NPROC = 4


def test_workers_spawned_in_parallel_not_one_by_one(warren):
    """With "processes": 4 and workers that each take 1 s between their
    start and their hello, all 4 workers start before the first one is
    ready: their start-to-ready intervals overlap, so main asked for them
    side by side instead of waiting for each hello before the next spawn.
    The PUT answers 200 only once a worker is ready: right after it,
    /status/applications/NAME shows at least one running worker, and the
    earliest hello was logged before the answer came."""
    w = warren
    log = os.path.join(w.dir, "slowstart.log")
    with open(log, "w"):
        pass
    os.chmod(log, 0o666)          # the workers run as nobody
    t_put = time.monotonic()
    port, s, j, t_answer = put_slowstart(
        w, "slow", NPROC, {"SLOWSTART_LOG": log, "SLOWSTART_MS": str(NAP_MS)})
    assert (s, j) == (200, wh.SUCCESS), j
    st = app_status(w, "slow")
    assert st["processes"]["running"] >= 1, st

    ev = wh.wait_for(lambda: (lambda e: e if len(e["ready"]) >= NPROC else None)(
        read_events(log)), 10.0, 0.05) or read_events(log)
    starts, readies = ev["start"], ev["ready"]
    assert len(starts) == NPROC and set(readies) == set(starts), ev
    _, workers = w.app_processes()
    assert workers == set(starts), (workers, ev)

    # Every worker started after the PUT was sent and slept before its hello.
    for pid in starts:
        assert t_put <= starts[pid], (t_put, ev)
        assert readies[pid] - starts[pid] >= NAP_MS / 1000.0 * 0.9, ev
    # The PUT was answered after a worker became ready (said hello), not
    # before: the PUT waits for the first worker.
    assert min(readies.values()) <= t_answer, (t_answer, ev)
    # The overlap: the last worker started before the first one was ready.
    # Spawned one by one (the next spawn waiting for the previous hello),
    # worker k+1 would start only after worker k logged "ready", so
    # max(start) > min(ready) and this fails.
    assert max(starts.values()) < min(readies.values()), \
        "workers started one by one: %r" % (ev,)

    st = hh.wait_status(w, lambda x: x["applications"]["slow"]["processes"]["running"] == NPROC)
    assert st["applications"]["slow"]["processes"]["running"] == NPROC, st
    r = hh.get(port, "/")
    assert r.status == 200 and int(r.header("X-Pid")) in starts, r


# ------------------------------------------------------ recycle with jitter

LIMIT = 40
# src/router/app.c claim_locked(): a worker takes no more requests once it
# was given LIMIT + id % (LIMIT / 10 + 1) of them (id: its worker number):
# each recycled worker served between LIMIT and LIMIT + LIMIT // 10.
LOW, HIGH = LIMIT, LIMIT + LIMIT // 10
POOL = 4
CLIENTS = 4
PER_CLIENT = 150          # 600 requests: at least (600 - 4 * 44) / 44 > 9 recycled
MIN_RECYCLED = 8


def test_limits_requests_recycles_workers_with_jitter(warren):
    """With "limits": {"requests": 40} and a pool of 4, 600 keep-alive
    requests from 4 clients all succeed while workers are recycled; every
    worker that was recycled served between 40 and 44 requests (no worker
    ever more than 44), and they did not all serve the same number: the
    jitter exists. Recycling is normal: no respawn backoff."""
    w = warren
    port, s, j, _ = put_slowstart(w, "rec", POOL, {}, limits={"requests": LIMIT})
    assert (s, j) == (200, wh.SUCCESS), j
    hh.wait_status(w, lambda x: x["applications"]["rec"]["processes"]["running"] == POOL)

    answers = []              # (status, pid, worker) of every request
    errors = []
    lock = threading.Lock()

    def client():
        got = []
        try:
            with hh.Conn(port) as c:
                for _ in range(PER_CLIENT):
                    r = c.request("GET", "/")
                    got.append((r.status, r.header("X-Pid"), r.header("X-Worker")))
        except Exception as e:            # reported below, with what was got
            with lock:
                errors.append(repr(e))
        with lock:
            answers.extend(got)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(answers) == CLIENTS * PER_CLIENT, len(answers)
    assert all(a[0] == 200 for a in answers), [a for a in answers if a[0] != 200][:5]

    served = {}               # (pid, worker number) -> requests it answered
    for _, pid, wid in answers:
        k = (int(pid), int(wid))
        served[k] = served.get(k, 0) + 1
    # No worker, recycled or still running, ever took more than its share.
    assert max(served.values()) <= HIGH, served

    # Recycled: the workers that served and are gone. (One still running,
    # or retiring and not exited yet, is left out: it may be short of its
    # share.) A worker gone with fewer than LOW requests died otherwise,
    # and fails the bounds.
    wh.wait_for(lambda: len(w.app_processes()[1]) == POOL, 5.0)
    _, live = w.app_processes()
    recycled = {k: n for k, n in served.items() if k[0] not in live}
    assert len(recycled) >= MIN_RECYCLED, (served, live)
    for k, n in recycled.items():
        assert LOW <= n <= HIGH, "worker %r served %d requests: %r" % (k, n, served)

    # The jitter: not every recycled worker served the same number. Given
    # the code this is certain, not probable: the share is LIMIT + id % 5
    # and main numbers a generation's workers 1, 2, 3, ... in order, so the
    # recycled ones are all the numbers issued but the <= 4 still running;
    # 8 of them lie within 1..12, where a residue class mod 5 holds at most
    # 3 numbers, so at least two recycled workers have different shares
    # (probability of equal counts: 0). Were the jitter a uniform random
    # draw among the 5 values instead, 8 equal counts would happen with
    # probability 5 ** -7 (about 1.3e-5).
    assert len(set(recycled.values())) >= 2, \
        "every recycled worker served the same count, no jitter: %r" % (recycled,)
    assert "replacing it in" not in w.log(), w.log()[-3000:]


# ------------------------------------------------- the "starting" counter

def test_status_counts_a_replacement_as_starting(warren):
    """A worker killed with SIGKILL is replaced; while the replacement is
    between its start and its hello (1.5 s here), /status/applications/NAME
    counts it as "starting", not "running"; once it said hello, it runs."""
    w = warren
    port, s, j, _ = put_slowstart(w, "st", 2, {"SLOWSTART_MS": "1500"})
    assert (s, j) == (200, wh.SUCCESS), j
    hh.wait_status(w, lambda x: x["applications"]["st"]["processes"]["running"] == 2)
    victim = int(hh.get(port, "/").header("X-Pid"))
    os.kill(victim, signal.SIGKILL)

    def starting_one():
        p = app_status(w, "st")["processes"]
        return p if (p["starting"], p["running"]) == (1, 1) else None
    p = wh.wait_for(starting_one, 5.0, 0.02)
    assert p, app_status(w, "st")
    st = hh.wait_status(w, lambda x: x["applications"]["st"]["processes"]
                        == {"running": 2, "starting": 0, "idle": 2})
    assert st["applications"]["st"]["processes"]["starting"] == 0, st
    assert victim not in w.app_processes()[1]
