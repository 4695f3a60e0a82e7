"""Ruby Rack applications in a sandbox: a rootfs that holds nothing but the
app, with credential, mount and pid namespaces. The runtime (opened by main
outside the rootfs) must find libruby and its libraries, Ruby's standard
library and extensions (json, digest), Rack and other gems (Sinatra)
through the language_deps automount, and see nothing else of the host."""

import hashlib
import json
import shutil
import urllib.request

import iso_helpers as ih
import warren_helpers as wh

ROOT_NS_USER = {"credential": True, "mount": True, "pid": True}

PROBE = r'''
require "json"
require "digest"

LOADED = Process.pid

run lambda { |env|
  host = begin
    File.read(ENV["HOST_FILE"])
  rescue SystemCallError
    nil
  end
  body = JSON.generate(
    "root" => Dir.children("/").sort,
    "var" => (Dir.children("/var").sort rescue nil),
    "var_lib" => (Dir.children("/var/lib").sort rescue nil),
    "host_file" => host && host.bytesize,
    "uid" => Process.uid,
    "pid" => Process.pid,
    "loaded" => LOADED,
    "cwd" => Dir.pwd,
    "rack" => Rack.release,
    "ruby" => RUBY_VERSION,
    "sha" => Digest::SHA256.hexdigest("warren"),
    "path_info" => env["PATH_INFO"])
  [200, {"Content-Type" => "application/json"}, [body]]
}
'''

SINATRA = r'''
require "sinatra/base"

class IsoSinatra < Sinatra::Base
  get "/hi/:name" do
    content_type "text/plain"
    "hi #{params[:name]}"
  end
end

run IsoSinatra
'''


def get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        assert r.status == 200
        return r.read()


def test_ruby_in_an_empty_rootfs(warren_factory):
    rt = wh.runtimes_modulesdir()
    try:
        w = warren_factory(extra_args=["--modulesdir", rt])
        root = ih.site_rootfs(w, {"srv/app/config.ru": PROBE})
        host_file = ih.host_secret(w)
        port = wh.free_port()
        ih.put(w, {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/rb"}},
                   "applications": {"rb": {
                       "type": "ruby", "script": "/srv/app/config.ru", "processes": 1,
                       "working_directory": "/srv/app",
                       "environment": {"HOST_FILE": host_file},
                       "isolation": {"namespaces": ROOT_NS_USER, "rootfs": root}}}})
        w.baseline_all()
        rep = json.loads(get(port, "/probe/x"))
        assert rep["path_info"] == "/probe/x", rep
        # Ruby's library (json, digest: extensions), Rack from its gem dir
        assert rep["rack"].startswith("2.2"), rep
        assert rep["ruby"].startswith("3.1"), rep
        assert rep["sha"] == hashlib.sha256(b"warren").hexdigest(), rep
        # only the rootfs and what language_deps bound into it
        assert "srv" in rep["root"], rep["root"]
        assert not {"home", "root", "boot"} & set(rep["root"]), rep["root"]
        # /var, if there, only for Debian's gem dir (/var/lib/gems/3.1.0)
        if "var" in rep["root"]:
            assert (rep["var"], rep["var_lib"]) == (["lib"], ["gems"]), rep
        assert rep["host_file"] is None, rep
        assert rep["uid"] == wh.NOBODY_UID, rep
        # own pid namespace: the worker's pid is a small one there, and the
        # loader's as well (not a host pid)
        assert rep["pid"] < 10 and rep["loaded"] < 10, rep
        assert rep["pid"] != rep["loaded"], rep
        assert rep["cwd"] == "/srv/app", rep
        s, _ = w.put("/config", {"listeners": {}, "applications": {}})
        assert s == 200
        assert wh.wait_for(lambda: ih.mounts_under([w.dir]) == [], 5.0), \
            ih.mounts_under([w.dir])
    finally:
        shutil.rmtree(rt, ignore_errors=True)


def test_sinatra_in_an_empty_rootfs(warren_factory):
    """A gem outside Ruby's own library (Debian's ruby-sinatra, with
    rack-protection, tilt, mustermann) loads in the rootfs too."""
    rt = wh.runtimes_modulesdir()
    try:
        w = warren_factory(extra_args=["--modulesdir", rt])
        root = ih.site_rootfs(w, {"srv/sin/config.ru": SINATRA})
        port = wh.free_port()
        ih.put(w, {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/sin"}},
                   "applications": {"sin": {
                       "type": "ruby", "script": "/srv/sin/config.ru", "processes": 1,
                       "isolation": {"namespaces": ROOT_NS_USER, "rootfs": root}}}})
        w.baseline_all()
        assert get(port, "/hi/there") == b"hi there"
        s, _ = w.put("/config", {"listeners": {}, "applications": {}})
        assert s == 200
        assert wh.wait_for(lambda: ih.mounts_under([w.dir]) == [], 5.0), \
            ih.mounts_under([w.dir])
    finally:
        shutil.rmtree(rt, ignore_errors=True)
