"""The reload storm: the regression Warren exists to never have.

An app with a rootfs and its own mount and pid namespaces has
`automount.tmpfs` toggled STORM_ROUNDS times by PUT. After each PUT the app
is polled until it reports the new state (/tmp a tmpfs or not, from its own
mountinfo). Every round must converge; afterwards the log has no
[alert]/[emerg], the router holds as many fds as before (+-2), and no mount
is left behind in the namespace warrend runs in.

It runs twice: on the host as it is, and with warrend started inside a
mount namespace made by the test whose "/" is MS_SHARED (as on a systemd
host, `unshare --mount --propagation shared`), so that a mount made in an
app's namespace before "/" is made private there would really propagate
back into warrend's namespace (read through /proc/<warrend>/mountinfo).
"""

import json
import os
import shutil
import time

import pytest

import iso_helpers as ih
import warren_helpers as wh

STORM_ROUNDS = 100
ROUND_TIMEOUT = 10.0            # s for one round to converge (never hit when correct)
FD_SLACK = 2
UNSHARE = shutil.which("unshare") or "/usr/bin/unshare"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")


class SharedRootWarren(wh.Warren):
    """warrend exec'd by unshare(1) in a new mount namespace whose mounts
    are all MS_SHARED: the same pid, another mount namespace."""

    def argv(self):
        return [UNSHARE, "--mount", "--propagation", "shared", "--"] + super().argv()


def router_fds(w):
    return len(wh.proc_fds(w.pid("router")) or {})


def converge(w, port, want, rounds_log):
    """Poll the app until /tmp is (want) or is not a tmpfs; returns the
    number of polls it took, or raises with what it saw."""
    end = time.monotonic() + ROUND_TIMEOUT
    polls, last = 0, None
    while True:
        polls += 1
        try:
            rep = ih.report(port)
            if ih.tmp_is_tmpfs(rep) == want:
                return polls
            last = rep["mountinfo"]
        except (OSError, AssertionError) as e:
            last = repr(e)
        if time.monotonic() >= end:
            raise AssertionError("round %d: /tmp tmpfs=%s never seen after %d polls; "
                                 "last: %s; log tail: %s" % (
                                     len(rounds_log), want, polls, last, w.log()[-1500:]))
        time.sleep(0.01)


def storm(w):
    root = ih.make_rootfs(w)
    ns_pid = w.main_pid
    host_before = ih.mounts_under([w.dir])
    ns_before = ih.mounts_under([w.dir], ns_pid)
    points_before = ih.mount_points(ns_pid)
    port, cfg = ih.start_inspect(w, {"namespaces": {"mount": True, "pid": True},
                                     "rootfs": root, "automount": {"tmpfs": True}})
    ptr = "/config/applications/%s/isolation/automount/tmpfs" % ih.APP
    rounds = []
    converge(w, port, True, rounds)
    w.baseline_all()
    fds_before = router_fds(w)
    t0 = time.monotonic()
    state = True
    for _ in range(STORM_ROUNDS):
        state = not state
        s, j = w.put(ptr, state)
        assert (s, j) == (200, wh.SUCCESS), "round %d: %r %r" % (len(rounds), s, j)
        rounds.append(converge(w, port, state, rounds))
    elapsed = time.monotonic() - t0
    cfg["applications"][ih.APP]["isolation"]["automount"]["tmpfs"] = state
    assert w.config() == cfg
    # the old generations drain and go: one prototype, one worker
    assert wh.wait_for(lambda: len(w.app_processes()[0]) == 1
                       and len(w.app_processes()[1]) == 1, 10.0), w.children()
    assert wh.wait_for(lambda: abs(router_fds(w) - fds_before) <= FD_SLACK, 5.0), \
        (fds_before, router_fds(w), wh.proc_fds(w.pid("router")))
    assert w.bad_log_lines() == []
    # nothing of any generation is mounted where warrend lives
    assert ih.mounts_under([w.dir], ns_pid) == ns_before == []
    assert ih.mounts_under([w.dir]) == host_before == []
    assert ih.mount_points(ns_pid) == points_before
    # the last generation's own view: its /tmp as last asked, / the rootfs
    rep = ih.report(port)
    assert ih.tmp_is_tmpfs(rep) == state
    assert ih.mount_at(rep, "/")["root"] == root
    assert ih.shared_mounts(rep) == [], rep["mountinfo"]
    print("storm: %d rounds in %.1f s (%.0f ms per round), polls per round: max %d"
          % (STORM_ROUNDS, elapsed, 1000 * elapsed / STORM_ROUNDS, max(rounds)))
    return elapsed


def test_reload_storm_on_the_host(warren):
    storm(warren)


def test_reload_storm_with_shared_root(warren_factory):
    """The same storm with warrend in a mount namespace where every mount
    is shared: the sandbox must make its "/" private before mounting, or
    its tmpfs and binds would show up in warrend's namespace."""
    if not os.access(UNSHARE, os.X_OK):
        pytest.skip("unshare(1) (util-linux) is not installed")
    w = warren_factory(start=False)     # registered for the harness's checks
    w.__class__ = SharedRootWarren
    w.start()
    mine = ih.ns_of(w.main_pid)["mnt"]
    assert mine != ih.ns_of()["mnt"], "warrend is not in a mount namespace of its own"
    root_line = ih.mount_at(ih.read("/proc/%d/mountinfo" % w.main_pid), "/")
    assert any(o.startswith("shared:") for o in root_line["optional"]), \
        "/ is not shared in warrend's namespace: %s" % json.dumps(root_line)
    storm(w)
