"""
pytest fixtures for Warren's integration tests.

  warren          a fresh build/warrend --no-daemon (empty config) per test
  warren_factory  make more instances with options: warren_factory(extra_args=[...])
  vwarren         one daemon per module, reset to the realistic base config before
                  each test (fast path for the many validation cases)

After each test body (in the call phase, so it fails the test itself):
  - the log must have no [alert]/[emerg] line written during the test
    (@pytest.mark.allow_alert / @pytest.mark.allow_emerg lift that);
  - main, controller and router must not hold more fds than when the test
    started (a test that restarts a process calls w.baseline(role) afterwards).
At teardown each instance is stopped with SIGTERM and no process that ever
descended from its main may be left.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import warren_helpers as wh  # noqa: E402


def pytest_configure(config):
    wh.become_subreaper()
    config.addinivalue_line("markers", "allow_alert: the test expects [alert] log lines")
    config.addinivalue_line("markers", "allow_emerg: the test expects [emerg] log lines")


def _apply_marks(item, w):
    w.allow_alert = item.get_closest_marker("allow_alert") is not None
    w.allow_emerg = item.get_closest_marker("allow_emerg") is not None


def _register(item, w):
    lst = item.__dict__.setdefault("_warren_instances", [])
    if w not in lst:
        lst.append(w)
    _apply_marks(item, w)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is not None:
        return
    problems = []
    for w in item.__dict__.get("_warren_instances", []):
        if w.main_pid is None or not w.alive():
            continue
        try:
            w.check_fds()
        except AssertionError as e:
            problems.append(str(e))
        try:
            w.check_log()
        except AssertionError as e:
            problems.append(str(e))
    if problems:
        raise wh.WarrenError("post-test checks failed: " + " | ".join(problems))


def _finish(w, keep=False):
    err = None
    try:
        if w.main_pid is not None:
            w.stop()
    except AssertionError as e:
        err = e
    try:
        w.check_log()
    except AssertionError as e:
        err = err or e
    if not keep and not os.environ.get("WARREN_KEEP"):
        w.cleanup_dir()
    if err:
        raise err


def _start_or_clean(w):
    try:
        w.start()
    except BaseException:
        try:
            w.kill_all()
        finally:
            if not os.environ.get("WARREN_KEEP"):
                w.cleanup_dir()
        raise


@pytest.fixture
def warren(request):
    w = wh.Warren()
    _register(request.node, w)
    _start_or_clean(w)
    yield w
    _finish(w)


@pytest.fixture
def warren_factory(request):
    made = []

    def make(start=True, **kw):
        w = wh.Warren(**kw)
        made.append(w)
        _register(request.node, w)
        if start:
            w.start()     # on failure the factory's teardown cleans up
        return w

    yield make
    errs = []
    for w in made:
        try:
            _finish(w)
        except AssertionError as e:
            errs.append(str(e))
    if errs:
        raise wh.WarrenError(" | ".join(errs))


@pytest.fixture
def rt_warren(warren_factory):
    """warrend with the language runtimes (warren-python, -php, -perl, -ruby,
    -java) in its --modulesdir."""
    rt = wh.runtimes_modulesdir()
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w
    shutil.rmtree(rt, ignore_errors=True)


@pytest.fixture(scope="module")
def _module_warren():
    w = wh.Warren()
    _start_or_clean(w)
    w.base = wh.base_config(w.dir)
    yield w
    _finish(w)


@pytest.fixture
def vwarren(request, _module_warren):
    w = _module_warren
    if not w.alive():
        w.main_pid = None
        w.start()
    cur = w.config()
    if cur != w.base:
        s, j = w.put("/config", w.base)
        assert (s, j) == (200, wh.SUCCESS), "could not set the base config: %r" % (j,)
    w.baseline_all()
    w.mark_log()
    _register(request.node, w)
    yield w
