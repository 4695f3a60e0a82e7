"""
pytest fixtures for the language runtimes' tests (tests/runtime): each test
starts the runtime as a worker under a fake router (fake_router.py) with a
test application from tests/runtime/apps.

  WARREN_PYTHON_BIN   the runtime to test (default build/warren-python;
                      `make runtime-test` gives the sanitizer build)

  python_worker(**options)   starts a worker and takes its HELLO; options
                             are WARREN_PYTHON_* names without the prefix
                             in lower case (module="wsgi_apps", ...); at
                             teardown the channel is closed and the worker
                             must exit 0 with no sanitizer report.
  python_start(**options)    starts one without waiting for HELLO (for the
                             start-failure tests).
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APPS = os.path.join(HERE, "apps")
sys.path.insert(0, HERE)

from fake_router import Worker  # noqa: E402

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer")


def runtime_bin():
    path = os.environ.get("WARREN_PYTHON_BIN",
                          os.path.join(ROOT, "build", "warren-python"))
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: run `make build/warren-python`" % path)
    return path


def option_env(options):
    env = {"WARREN_PYTHON_PATH": APPS, "PYTHONDONTWRITEBYTECODE": "1"}
    for key, value in options.items():
        name = key if key.startswith("WARREN_") else \
            "WARREN_PYTHON_" + key.upper()
        env[name] = value
    return env


def assert_clean_stderr(text):
    for mark in SANITIZER_MARKS:
        assert mark not in text, text


@pytest.fixture
def python_start(tmp_path):
    started = []

    def start(**options):
        n = len(started)
        w = Worker(runtime_bin(), option_env(options), cwd=str(tmp_path),
                   stderr_path=str(tmp_path / ("stderr-%d.txt" % n)))
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        assert_clean_stderr(w.stderr())


@pytest.fixture
def python_worker(python_start):
    workers = []

    def start(**options):
        options.setdefault("module", "wsgi_apps")
        w = python_start(**options)
        w.expect_hello()
        workers.append(w)
        return w

    yield start
    for w in workers:
        status = w.close()
        assert status == 0, "worker exit %s; stderr:\n%s" % (status,
                                                             w.stderr())
