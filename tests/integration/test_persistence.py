"""State file <statedir>/conf.json: written atomically after each successful
change, restored at start; a bad one is renamed aside."""

import json
import os

import pytest

import warren_helpers as wh

SUCCESS = wh.SUCCESS


def read_state(w):
    with open(w.state_file()) as f:
        return json.load(f)


def test_state_written(warren):
    cfg = wh.base_config(warren.dir)
    assert warren.put("/config", cfg) == (200, SUCCESS)
    assert read_state(warren) == cfg
    assert warren.put("/config/settings/http/idle_timeout", 77) == (200, SUCCESS)
    cfg["settings"]["http"]["idle_timeout"] = 77
    assert read_state(warren) == cfg


def test_state_replaced_atomically(warren):
    """Each write is a new file renamed over the old one (new inode), and no
    temporary file is left in the state dir."""
    cfg = wh.base_config(warren.dir)
    assert warren.put("/config", cfg) == (200, SUCCESS)
    prev = os.stat(warren.state_file()).st_ino
    for i in range(5):
        assert warren.put("/config/settings/http/idle_timeout", 40 + i) == (200, SUCCESS)
        ino = os.stat(warren.state_file()).st_ino
        assert ino != prev, "conf.json rewritten in place (same inode)"
        prev = ino
    leftovers = [n for n in os.listdir(warren.statedir)
                 if n != "conf.json" and n.startswith("conf")]
    assert not leftovers, leftovers


def test_state_not_world_writable(warren):
    assert warren.put("/config", {"routes": []}) == (200, SUCCESS)
    mode = os.stat(warren.state_file()).st_mode
    assert not mode & 0o002


def test_failed_change_keeps_state_file(warren):
    cfg = wh.base_config(warren.dir)
    assert warren.put("/config", cfg) == (200, SUCCESS)
    st = os.stat(warren.state_file())
    with open(warren.state_file(), "rb") as f:
        data = f.read()
    assert warren.put("/config/listeners/bad", {"pass": "routes"})[0] == 400
    assert warren.request("PUT", "/config", "{").status == 400
    assert warren.delete("/config/nope")[0] == 404
    st2 = os.stat(warren.state_file())
    assert st2.st_ino == st.st_ino and st2.st_mtime_ns == st.st_mtime_ns
    with open(warren.state_file(), "rb") as f:
        assert f.read() == data


def test_restart_restores_config(warren):
    cfg = wh.base_config(warren.dir)
    port = int(next(iter(cfg["listeners"])).rsplit(":", 1)[1])
    assert warren.put("/config", cfg) == (200, SUCCESS)
    before = warren.config_bytes()
    warren.restart()
    assert warren.config_bytes() == before
    assert warren.config() == cfg
    assert wh.wait_for(lambda: wh.tcp_connect(port), 3), "listener not restored"


def test_restart_after_delete_config(warren):
    assert warren.put("/config", wh.base_config(warren.dir)) == (200, SUCCESS)
    assert warren.delete("/config") == (200, SUCCESS)
    assert read_state(warren) == {}
    warren.restart()
    assert warren.get("/config") == (200, {})


def test_restart_after_sub_edits(warren):
    cfg = wh.base_config(warren.dir)
    assert warren.put("/config", cfg) == (200, SUCCESS)
    step = {"action": {"return": 204}}
    assert warren.post("/config/routes", step) == (200, SUCCESS)
    assert warren.delete("/config/routes/0") == (200, SUCCESS)
    cfg["routes"] = cfg["routes"][1:] + [step]
    warren.restart()
    assert warren.config() == cfg


def test_restart_with_preexisting_state(warren_factory):
    """A conf.json laid down before the first start is loaded."""
    w = warren_factory(start=False)
    cfg = wh.base_config(w.dir)
    with open(os.path.join(w.statedir, "conf.json"), "w") as f:
        json.dump(cfg, f)
    w.start()
    assert w.config() == cfg


def _bad_files(w):
    return sorted(n for n in os.listdir(w.statedir) if n.startswith("conf.json.bad"))


def _alerts(w):
    return [l for l in w.log().splitlines() if "[alert]" in l]


@pytest.mark.allow_alert
@pytest.mark.parametrize("content,why", [
    (b"{\"listeners\": {", "truncated JSON"),
    (b"\x00\x01garbage", "binary garbage"),
    (b'{"listenrs": {}}', "invalid configuration"),
    (b'{"listeners": {"*:99999": {"pass": "routes"}}}', "invalid listener"),
    (b"[]", "not an object"),
])
def test_bad_state_file(warren_factory, content, why):
    w = warren_factory(start=False)
    path = os.path.join(w.statedir, "conf.json")
    with open(path, "wb") as f:
        f.write(content)
    w.start()
    assert w.get("/config") == (200, {})
    alerts = _alerts(w)
    assert len(alerts) == 1, alerts
    assert wh.LOG_LINE_RE.match(alerts[0]), alerts[0]
    bad = _bad_files(w)
    assert len(bad) == 1, os.listdir(w.statedir)
    with open(os.path.join(w.statedir, bad[0]), "rb") as f:
        assert f.read() == content
    assert bad[0] in alerts[0] or "conf.json" in alerts[0], alerts[0]
    # the server works normally afterwards and persists new changes
    cfg = {"routes": [{"action": {"return": 200}}]}
    assert w.put("/config", cfg) == (200, SUCCESS)
    assert read_state(w) == cfg


@pytest.mark.allow_alert
def test_bad_state_files_never_overwritten(warren_factory):
    w = warren_factory(start=False)
    path = os.path.join(w.statedir, "conf.json")
    contents = [b"{first", b"{second", b"{third"]
    for c in contents:
        with open(path, "wb") as f:
            f.write(c)
        w.start()
        assert w.get("/config") == (200, {})
        w.stop()
    bad = _bad_files(w)
    assert len(bad) == 3, bad
    got = set()
    for n in bad:
        with open(os.path.join(w.statedir, n), "rb") as f:
            got.add(f.read())
    assert got == set(contents)
    assert len(_alerts(w)) == 3, _alerts(w)


def test_empty_statedir_no_alert(warren):
    """Absence of conf.json is normal: empty config, no alert (checked by the
    fixture), nothing renamed."""
    assert warren.get("/config") == (200, {})
    assert not _bad_files(warren)
