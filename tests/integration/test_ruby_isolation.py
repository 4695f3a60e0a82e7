"""Ruby Rack applications in a sandbox: a rootfs that holds nothing but the
app, with credential, mount and pid namespaces. The runtime (opened by main
outside the rootfs) must find libruby and its libraries, Ruby's standard
library and extensions (json, digest), Rack and other gems (Sinatra)
through the language_deps automount, and see nothing else of the host."""

import hashlib
import json

import iso_helpers as ih
import warren_helpers as wh

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


def test_ruby_in_an_empty_rootfs(warren_factory):
    with ih.app_in_rootfs(warren_factory, {"srv/app/config.ru": PROBE}, "rb", {
            "type": "ruby", "script": "/srv/app/config.ru",
            "working_directory": "/srv/app"}) as (w, port):
        rep = json.loads(ih.fetch(port, "/probe/x"))
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


def test_sinatra_in_an_empty_rootfs(warren_factory):
    """A gem outside Ruby's own library (Debian's ruby-sinatra, with
    rack-protection, tilt, mustermann) loads in the rootfs too."""
    with ih.app_in_rootfs(warren_factory, {"srv/sin/config.ru": SINATRA}, "sin", {
            "type": "ruby", "script": "/srv/sin/config.ru"}, secret=False) as (w, port):
        assert ih.fetch(port, "/hi/there") == b"hi there"
