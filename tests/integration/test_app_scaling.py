"""Dynamic "processes": {max, spare, idle_timeout}: the router asks main for
workers when requests wait, never past max, keeps spare idle ones, lets the
others go after idle_timeout; /status/applications/NAME follows; workers and
prototypes killed under load are replaced without losing more than the
requests they were serving; limits.timeout kills a hung worker of another
user than the router's (through main). Only the exits the router causes
(recycling, idle let-go) are normal: a worker that exits by itself, even
with status 0, holds its generation's respawns back."""

import os
import pwd
import shutil
import signal
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELLO = os.path.join(REPO, "build", "apps", "hello")
QUITTER = os.path.join(REPO, "build", "apps", "quit_after_hello")

APP = '''
import os, time

def application(environ, start_response):
    q = environ.get("QUERY_STRING", "")
    if q.startswith("sleep="):
        time.sleep(float(q[6:]))
    if q == "crash":
        os._exit(3)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


@pytest.fixture
def pyw(warren_factory):
    """A warrend whose --modulesdir holds warren-python, and an app that
    sleeps ?sleep=SECONDS before answering with its pid."""
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "scale_wsgi.py", APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def put_py(w, appdir, processes, **app):
    a = {"type": "python", "path": appdir, "module": "scale_wsgi", "processes": processes}
    a.update(app)
    return hh.setup(w, [{"action": {"pass": "applications/py"}}],
                    extra={"applications": {"py": a}})


def prototypes(w, name="py"):
    title = "warren: %s prototype" % name
    return sorted(p for p, t in w.children().items() if t == title)


def workers(w, name="py"):
    protos = prototypes(w, name)
    return sorted(p for p, st in wh.descendants(w.main_pid).items()
                  if st[1] in protos and st[0] not in ("Z", "X") and not wh.is_zygote(p))


def app_status(w, name="py"):
    s, j = w.get("/status/applications/" + name)
    assert s == 200, j
    return j


def settle(w, n, name="py", timeout=15.0):
    """Wait for n workers, the router's count agreeing and nothing starting."""
    def ok():
        st = app_status(w, name)["processes"]
        return len(workers(w, name)) == n and st["running"] == n and st["starting"] == 0
    assert wh.wait_for(ok, timeout, 0.1), (n, workers(w, name), app_status(w, name))


class Load:
    """Client threads, each doing one request per connection in a loop
    (bounded by count and time), recording statuses and errors."""

    def __init__(self, port, threads, path="/", per_thread=400, seconds=30.0):
        self.port, self.path = port, path
        self.per_thread, self.deadline = per_thread, time.time() + seconds
        self.stop = threading.Event()
        self.results, self.errors = [], []
        self.lock = threading.Lock()
        self.ts = [threading.Thread(target=self.run) for _ in range(threads)]

    def run(self):
        for _ in range(self.per_thread):
            if self.stop.is_set() or time.time() > self.deadline:
                return
            try:
                r = hh.get(self.port, self.path)
                with self.lock:
                    self.results.append((time.time(), r.status))
            except Exception as e:      # noqa: BLE001 - recorded, asserted by the test
                with self.lock:
                    self.errors.append((time.time(), repr(e)))

    def __enter__(self):
        for t in self.ts:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.ts:
            t.join(60)

    def ok_since(self, t0):
        with self.lock:
            return sum(1 for t, s in self.results if t > t0 and s == 200)

    def failures(self):
        with self.lock:
            return [s for _, s in self.results if s != 200] + [e for _, e in self.errors]


def test_spare_zero_starts_one_for_the_put_then_idles_out(pyw):
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 3, "spare": 0, "idle_timeout": 1})
    # The PUT answered with one worker up: the app could serve.
    assert len(prototypes(w)) == 1
    w.baseline_all()
    settle(w, 0)
    assert app_status(w) == {"processes": {"running": 0, "starting": 0, "idle": 0},
                             "requests": {"active": 0}}
    assert "idle for 1 s; letting it go" in w.log()
    # A request starts one again.
    r = hh.get(port, "/")
    assert r.status == 200 and r.body == b"ok"
    assert len(workers(w)) == 1
    settle(w, 0)


def test_scale_up_under_load_within_max_then_idle_down(pyw):
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 3, "spare": 0, "idle_timeout": 1})
    w.baseline_all()
    seen = {"procs": 0, "running": 0}
    with Load(port, 6, "/?sleep=0.2", per_thread=150) as load:
        def full():
            n = len(workers(w))
            st = app_status(w)
            seen["procs"] = max(seen["procs"], n)
            seen["running"] = max(seen["running"], st["processes"]["running"]
                                  + st["processes"]["starting"])
            return st["processes"]["running"] == 3
        assert wh.wait_for(full, 20.0, 0.05), (workers(w), app_status(w))
        # keep watching while the load goes on: never above max
        end = time.time() + 1.5
        while time.time() < end:
            full()
            time.sleep(0.05)
    assert load.failures() == []
    assert len(load.results) > 10
    assert seen["procs"] <= 3 and seen["running"] <= 3, seen
    settle(w, 0)
    assert app_status(w)["requests"] == {"active": 0}


def test_spare_kept_and_counters(pyw):
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 4, "spare": 2, "idle_timeout": 1})
    settle(w, 2)
    w.baseline_all()
    assert app_status(w) == {"processes": {"running": 2, "starting": 0, "idle": 2},
                             "requests": {"active": 0}}
    # One busy worker leaves one idle: a third starts, so two stay idle.
    t = threading.Thread(target=lambda: hh.get(port, "/?sleep=3"))
    t.start()
    try:
        assert wh.wait_for(lambda: app_status(w) == {
            "processes": {"running": 3, "starting": 0, "idle": 2},
            "requests": {"active": 1}}, 10.0, 0.05), app_status(w)
        assert len(workers(w)) == 3
    finally:
        t.join(30)
    # Three idle now: the one beyond spare goes after idle_timeout.
    settle(w, 2)
    assert app_status(w) == {"processes": {"running": 2, "starting": 0, "idle": 2},
                             "requests": {"active": 0}}


def test_timeout_kills_a_worker_of_another_user(pyw):
    """The router runs as nobody, the app as daemon: only main can kill the
    hung worker."""
    w, appdir = pyw
    daemon = pwd.getpwnam("daemon")
    port = put_py(w, appdir, 1, user="daemon", limits={"timeout": 1})
    settle(w, 1)
    hung = workers(w)[0]
    assert int(wh.proc_status(hung)["Uid"].split()[0]) == daemon.pw_uid
    r = hh.get(port, "/?sleep=60")
    assert r.status == 503
    assert wh.wait_for(lambda: not wh.proc_alive(hung), 10.0), "hung worker still alive"
    assert wh.wait_for(lambda: len(workers(w)) == 1 and hung not in workers(w), 10.0)
    r = hh.get(port, "/")
    assert r.status == 200 and int(r.header("X-Pid")) != hung
    assert "did not answer in time; killing it" in w.log()
    assert "kill(worker" not in w.log()


def test_worker_killed_under_load(pyw):
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 3, "spare": 1, "idle_timeout": 1})
    settle(w, 1)
    w.baseline_all()
    with Load(port, 4, "/?sleep=0.05") as load:
        assert wh.wait_for(lambda: len(workers(w)) == 3, 20.0, 0.05), app_status(w)
        victim = workers(w)[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.time()
        assert wh.wait_for(lambda: load.ok_since(t0 + 0.5) >= 20, 20.0, 0.1), \
            (load.failures(), app_status(w))
    # Only the request it was serving may have failed, with a 502.
    fails = load.failures()
    assert len(fails) <= 1 and all(f in (502, 503) for f in fails), fails
    assert not wh.proc_alive(victim)
    assert "killed by signal 9" in w.log()
    settle(w, 1)


def test_prototype_killed_under_load(pyw):
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 3, "spare": 1, "idle_timeout": 1})
    settle(w, 1)
    proto = prototypes(w)[0]
    w.baseline_all()
    with Load(port, 4, "/?sleep=0.05") as load:
        assert wh.wait_for(lambda: len(workers(w)) == 3, 20.0, 0.05), app_status(w)
        old = workers(w)
        os.kill(proto, signal.SIGKILL)
        t0 = time.time()
        assert wh.wait_for(lambda: [p for p in prototypes(w) if p != proto], 10.0), \
            w.children()
        assert wh.wait_for(lambda: load.ok_since(t0 + 0.5) >= 20, 20.0, 0.1), \
            (load.failures(), app_status(w))
    # At most the requests in flight on its three workers as they died
    # failed: each serves one and holds one more (the automatic pipeline is 1
    # at 50 ms a request), so 6. Not one per client: the workers die one
    # after another within milliseconds, and a client whose request failed
    # on the first may have its next one taken by a second that is dying too.
    fails = load.failures()
    assert len(fails) <= 6 and all(f in (502, 503) for f in fails), fails
    assert wh.wait_for(lambda: not any(wh.proc_alive(p) for p in old), 5.0)
    assert "prototype %d killed by signal 9" % proto in w.log()
    settle(w, 1)


def test_reconfiguration_under_load_loses_no_request(warren):
    """A dynamic pool replaced ten times while requests flow: every request
    gets a whole 200."""
    w = warren
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "hello")
    shutil.copy(HELLO, exe)
    os.chmod(exe, 0o755)
    app = {"type": "external", "executable": exe,
           "processes": {"max": 3, "spare": 1, "idle_timeout": 1}}
    port = hh.setup(w, [{"action": {"pass": "applications/hello"}}],
                    extra={"applications": {"hello": app}})
    settle(w, 1, "hello")
    w.baseline_all()
    try:
        most = 0
        with Load(port, 4, "/") as load:
            for i in range(10):
                s, j = w.put("/config/applications/hello/environment", {"ROUND": str(i)})
                assert (s, j) == (200, wh.SUCCESS)
                end = time.time() + 0.2
                while time.time() < end:
                    most = max(most, app_status(w, "hello")["processes"]["running"])
                    time.sleep(0.02)
        assert load.failures() == []
        assert len(load.results) > 50
        assert 2 <= most <= 3, most          # the pools did scale, within max
        settle(w, 1, "hello")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_failing_workers_back_off_whoever_asks(pyw):
    """Workers that die on every request: the starts the router asks for
    are held back by a delay that doubles, as the floor's are."""
    w, appdir = pyw
    port = put_py(w, appdir, {"max": 3, "spare": 0, "idle_timeout": 1})
    w.baseline_all()
    for _ in range(4):
        r = hh.get(port, "/?crash")
        assert r.status == 502
    def delays():
        return [int(x.split(" not before ")[1].split()[0]) for x in w.log().splitlines()
                if "exited with code 3; workers start again on demand, not before" in x]
    wh.wait_for(lambda: len(delays()) >= 4, 5.0)
    assert delays()[:4] == [100, 200, 400, 800], delays()
    assert hh.get(port, "/").status == 200
    settle(w, 0)


def external_app(name, src):
    """A C test app copied where user nobody can run it; its directory."""
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, name)
    shutil.copy(src, exe)
    os.chmod(exe, 0o755)
    return d, exe


def backoff_lines(w, app):
    return [x for x in w.log().splitlines() if 'app "%s" generation' % app in x
            and ("replacing it in" in x or "not before" in x)]


def test_worker_exiting_after_hello_backs_off(warren):
    """A worker that says hello and exits 0 at once, every time: each exit
    is a failure ([warn] naming app, generation, worker, pid and status),
    and the respawns wait 100, 200, 400 ... ms instead of looping."""
    w = warren
    d, exe = external_app("quitter", QUITTER)
    try:
        hh.setup(w, [{"action": {"pass": "applications/q"}}], extra={
            "applications": {"q": {"type": "external", "executable": exe,
                                   "processes": 1}}})
        assert wh.wait_for(lambda: len(backoff_lines(w, "q")) >= 5, 20.0, 0.1), \
            w.log()[-3000:]
        lines = backoff_lines(w, "q")
        ready = [x for x in w.log().splitlines()
                 if 'app "q" generation' in x and ") ready" in x]
        for x in lines[:5]:
            assert "[warn]" in x, x
            assert ", not let go by the router, exited with code 0" in x, x
            assert " worker " in x and "(pid " in x, x
        delays = [int(x.rsplit(" in ", 1)[1].split()[0]) for x in lines]
        assert delays[:5] == [100, 200, 400, 800, 1600], lines
        # Before the fix each exit was "served" and replaced at once: the
        # same span of the log held thousands of starts, not a handful.
        assert len(ready) <= len(lines) + 2, (len(ready), len(lines))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_recycled_and_idle_workers_never_back_off(warren):
    """limits.requests recycling and idle let-go are exits the router
    causes (it hands the channel back to main): a long run of recycled
    workers keeps serving, and no exit is taken for a failure."""
    w = warren
    d, exe = external_app("hello", HELLO)
    try:
        port = hh.setup(w, [{"action": {"pass": "applications/hello"}}], extra={
            "applications": {"hello": {
                "type": "external", "executable": exe, "limits": {"requests": 2},
                "processes": {"max": 2, "spare": 0, "idle_timeout": 1}}}})
        for _ in range(61):             # the last worker is not recycled: it idles out
            with hh.Conn(port) as c:
                r = c.request("GET", "/")
                assert (r.status, r.body) == (200, b"Hello, world\n"), r
        assert wh.wait_for(lambda: "idle for 1 s; letting it go" in w.log(), 10.0, 0.1)
        settle(w, 0, "hello")
        log = w.log()
        let_go = [x for x in log.splitlines()
                  if 'app "hello" generation' in x and ") let go, exited with code 0" in x]
        assert len(let_go) >= 25, len(let_go)
        assert backoff_lines(w, "hello") == []
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fd_table(pid):
    """{fd: target} of pid, pipes and sockets by kind only: what matters is
    that nothing is added, not which inode a channel has."""
    return {fd: t.split(":[")[0] for fd, t in (wh.proc_fds(pid) or {}).items()}


@pytest.mark.parametrize("kind", ["python", "external"])
def test_prototype_fds_stay_flat_over_worker_churn(warren_factory, kind):
    """A prototype (and a Python app's zygote) forks workers for the whole
    life of its generation: after 30 recycled workers (limits.requests) and
    two killed with SIGKILL, it holds exactly the descriptors it held with
    its first workers. A channel end kept after a fork would grow it by one
    per worker (and hand siblings' channels to later workers)."""
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "scale_wsgi.py", APP)
    d, exe = external_app("hello", HELLO)
    w = warren_factory(extra_args=["--modulesdir", rt])
    try:
        if kind == "python":
            app = {"type": "python", "path": appdir, "module": "scale_wsgi"}
        else:
            app = {"type": "external", "executable": exe}
        app.update({"processes": 2, "limits": {"requests": 2}})
        port = hh.setup(w, [{"action": {"pass": "applications/py"}}],
                        extra={"applications": {"py": app}})
        settle(w, 2)
        proto = prototypes(w)[0]
        zygotes = [p for p, st in wh.descendants(w.main_pid).items()
                   if st[1] == proto and wh.is_zygote(p)]
        assert len(zygotes) == (1 if kind == "python" else 0), zygotes
        watched = [proto] + zygotes
        before = {p: fd_table(p) for p in watched}
        first = set(workers(w))
        for _ in range(60):
            with hh.Conn(port) as c:
                assert c.request("GET", "/").status == 200
        settle(w, 2)                    # none of them half-way through recycling
        victims = workers(w)
        for victim in victims:
            os.kill(victim, signal.SIGKILL)
        # Every death noticed before the next requests: one sent to a worker
        # that died under it is answered 502, as it should be.
        assert wh.wait_for(lambda: w.log().count("killed by signal 9") >= len(victims), 5.0), \
            w.log()[-2000:]
        for _ in range(4):
            with hh.Conn(port) as c:
                assert c.request("GET", "/").status == 200
        settle(w, 2)
        assert not first & set(workers(w)), "no worker was replaced"
        assert prototypes(w) == [proto]
        for p in watched:
            wh.wait_for(lambda: fd_table(p) == before[p], 5.0)
            now = fd_table(p)
            assert now == before[p], (p, sorted(set(before[p].items()) ^ set(now.items())))
    finally:
        shutil.rmtree(rt, ignore_errors=True)
        shutil.rmtree(appdir, ignore_errors=True)
        shutil.rmtree(d, ignore_errors=True)
