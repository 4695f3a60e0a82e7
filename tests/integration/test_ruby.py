"""Ruby Rack applications (`"type": "ruby"`) run by warrend through
build/warren-ruby (libruby 3.1, Debian's Rack 2.2): the runtime's promises
(/tmp/ruby/SPEC.md, docs/applications.md), end to end.

Every test starts a real warrend whose --modulesdir holds a copy of
build/warren-ruby (wh.runtimes_modulesdir: a missing runtime fails the
tests, it does not skip them), writes its rackup files into a temp dir that
user nobody can read, PUTs the config on the control socket and talks HTTP
to the listener. The numbers refer to the spec's points:

  1. the rackup file is loaded once, workers are forked from that image;
  2. a file that cannot load (missing, syntax error, raises; a missing
     hooks file, a failing on_worker_boot) fails the PUT (500 + the
     cause), the old config serves on;
  3. the Rack 2 env, key by key (IPv6 Host included), and Rack::Lint;
  4. rack.input: read(n), read, gets, each, rewind; 4 MiB echoed byte-exact
     with Content-Length and chunked;
  5. responses: status, Location, multi-line Set-Cookie, Array / each+close /
     File / Rack::Files / to_path bodies, 8 MiB streamed to a slow client
     (and to one that leaves: close still called), HEAD;
  6. exceptions and invalid responses: 500, the log, the worker serves on;
     rack.errors and $stderr reach the log;
  7. environment, working_directory, processes, restart;
  8. threads: two requests in one worker at once; more than 64 capped;
  9. hooks: on_worker_boot, on_thread_boot, on_worker_shutdown;
 10. Sinatra (Debian's ruby-sinatra);
 11. validation of a missing "script".
Isolation (12) is in test_ruby_isolation.py.
"""

import concurrent.futures
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import urllib.parse
import uuid

import http_helpers as hh
import warren_helpers as wh

import pytest

WAIT_S = 10.0                   # bounds a wait (in the app) that should end at once

# ------------------------------------------------------------------ rackup files

# The main test app: one Rack app, its route chosen by PATH_INFO (anything
# not listed dumps the env as JSON). LOAD_LOG (when set) gets a line per load.
APP = r'''
# The test app of tests/integration/test_ruby.py: one Rack app, its route
# chosen by PATH_INFO (anything unknown dumps the env as JSON).
require "json"
require "digest"

LOADED = Process.pid
if ENV["LOAD_LOG"]
  File.open(ENV["LOAD_LOG"], "a") { |f| f.puts Process.pid }
end

class WarrenRackError < StandardError; end

module RbTest
  CHUNK = 65536

  def self.json(obj, status = 200, headers = {})
    body = JSON.generate(obj)
    [status, {"Content-Type" => "application/json",
              "Content-Length" => body.bytesize.to_s}.merge(headers), [body]]
  end

  def self.text(s, status = 200, headers = {})
    [status, {"Content-Type" => "text/plain"}.merge(headers), [s]]
  end

  def self.bytes(s, headers = {})
    [200, {"Content-Type" => "application/octet-stream"}.merge(headers), [s]]
  end

  # A JSON-able copy of an env value; :skip for objects (rack.input ...).
  def self.plain(v)
    case v
    when String then v.dup.force_encoding("UTF-8").scrub
    when Integer, Float, true, false, nil then v
    when Array
      v.all? { |x| x.is_a?(String) || x.is_a?(Integer) } ? v.map { |x| plain(x) } : :skip
    else :skip
    end
  end

  def self.dump(env)
    out = {}
    env.each do |k, v|
      p = plain(v)
      out[k] = p unless p == :skip
    end
    input, errors = env["rack.input"], env["rack.errors"]
    {"env" => out,
     "types" => env.map { |k, v| [k, v.class.name] }.to_h,
     "input_ok" => %i[read gets each rewind].all? { |m| input.respond_to?(m) },
     "errors_ok" => %i[puts write flush].all? { |m| errors.respond_to?(m) },
     "pid" => Process.pid, "loaded" => LOADED}
  end

  # Yields two parts; close leaves a marker file (its content: the pid).
  class ClosingBody
    def initialize(marker)
      @marker = marker
    end

    def each
      yield "part-one,"
      yield "part-two"
    end

    def close
      File.write(@marker, Process.pid.to_s)
    end
  end

  # Not a File, but a path to one (and each, as Rack wants).
  class PathBody
    def initialize(path)
      @path = path
    end

    def to_path
      @path
    end

    def each
      File.open(@path, "rb") do |f|
        while (c = f.read(CHUNK))
          yield c
        end
      end
    end
  end

  # 8 MiB in 128 chunks of 64 KiB: chunk i is "%07d\n" % i, 8192 times.
  class BigBody
    def each
      128.times { |i| yield(format("%07d\n", i) * 8192) }
    end
  end

  # BigBody leaving a marker when closed: "pid chunks-yielded".
  class BigClosingBody < BigBody
    def initialize(marker)
      @marker = marker
      @n = 0
    end

    def each
      super do |c|
        @n += 1
        yield c
      end
    end

    def close
      File.write(@marker, "#{Process.pid} #{@n}")
    end
  end

  def self.echo(env, mode)
    input = env["rack.input"]
    out = "".b
    reads = 0
    biggest = 0
    case mode
    when "chunks"
      while (c = input.read(CHUNK))
        reads += 1
        biggest = c.bytesize if c.bytesize > biggest
        out << c
      end
    when "all"
      out << input.read
      reads = 1
    when "gets"
      while (line = input.gets)
        reads += 1
        out << line
      end
    when "each"
      input.each do |line|
        reads += 1
        out << line
      end
    end
    bytes(out, "X-Reads" => reads.to_s, "X-Biggest" => biggest.to_s)
  end

  def self.rewind(env)
    input = env["rack.input"]
    first = input.read
    input.rewind
    second = input.read
    json("first_len" => first.bytesize, "first" => Digest::SHA256.hexdigest(first),
         "second_len" => second.bytesize, "second" => Digest::SHA256.hexdigest(second),
         "read_all_at_eof" => input.read, "read_n_at_eof" => input.read(10))
  end

  # Rack::Lint around a small app that uses the input and errors streams;
  # the body is iterated here, so every Lint error becomes the answer.
  def self.lint(env)
    inner = lambda do |e|
      i = e["rack.input"]
      head = i.read(3)
      line = i.gets
      rest = i.read
      i.rewind
      lines = []
      i.each { |l| lines << l }
      i.rewind
      all = i.read(1 << 20)
      e["rack.errors"].puts("lint-errors-ok")
      e["rack.errors"].write("lint-errors-write\n")
      e["rack.errors"].flush
      body = JSON.generate("head" => head, "line" => line, "rest" => rest,
                           "lines" => lines, "all" => all)
      [200, {"Content-Type" => "application/json",
             "Content-Length" => body.bytesize.to_s}, [body]]
    end
    status, headers, body = Rack::Lint.new(inner).call(env)
    parts = []
    body.each { |p| parts << p }
    body.close if body.respond_to?(:close)
    [status, headers, parts]
  rescue Rack::Lint::LintError => e
    text("lint: #{e.message}", 500)
  end

  def self.wait(q)
    File.write(q["started"], Process.pid.to_s) if q["started"]
    met = false
    1000.times do               # at most ~10 s
      if File.exist?(q["file"])
        met = true
        break
      end
      sleep 0.01
    end
    json("met" => met, "pid" => Process.pid, "thread" => Thread.current.object_id)
  end

  def self.call(env)
    q = Rack::Utils.parse_query(env["QUERY_STRING"])
    case env["PATH_INFO"]
    when "/pid" then json("pid" => Process.pid, "loaded" => LOADED)
    when "/slow_pid"
      sleep 0.3
      json("pid" => Process.pid, "loaded" => LOADED)
    when "/echo" then echo(env, q["mode"])
    when "/rewind" then rewind(env)
    when "/lint" then lint(env)
    when "/status" then text("status #{q["code"]}", q["code"].to_i)
    when "/redirect" then [302, {"Location" => "/elsewhere?from=ruby"}, []]
    when "/cookies"
      [200, {"Content-Type" => "text/plain", "Set-Cookie" => "a=1\nb=2; Path=/p"}, ["cookies"]]
    when "/array"
      [200, {"Content-Type" => "text/plain", "X-Array" => "yes"}, ["hello ", "from ", "an array"]]
    when "/each_close" then [200, {"Content-Type" => "text/plain"}, ClosingBody.new(q["marker"])]
    when "/streaming_body"
      # Rack 3: a body with call (and no each) gets a stream to write to
      body = lambda do |stream|
        stream.write("one,")
        stream << "two," << "three"
        stream.flush
        stream.close
        File.write(q["marker"], stream.closed?.to_s)
      end
      [200, {"content-type" => "text/plain", "x-array" => ["a", "b"]}, body]
    when "/file"
      [200, {"Content-Type" => "application/octet-stream"}, File.open(q["path"], "rb")]
    when "/rack_files"
      Rack::Files.new(File.dirname(q["path"])).call(
        env.merge("PATH_INFO" => "/" + File.basename(q["path"])))
    when "/to_path"
      [200, {"Content-Type" => "application/octet-stream"}, PathBody.new(q["path"])]
    when "/big" then [200, {"Content-Type" => "text/plain"}, BigBody.new]
    when "/big_close"
      [200, {"Content-Type" => "text/plain"}, BigClosingBody.new(q["marker"])]
    when "/raise" then raise WarrenRackError, "kaboom-rb-42"
    when "/bad_string" then "a string"
    when "/bad_nil" then nil
    when "/errors_parts"
      # a line written in pieces, then a piece no newline ends
      env["rack.errors"].write("#{q["m"]}-a ")
      env["rack.errors"].print("#{q["m"]}-b ", "#{q["m"]}-c\n#{q["m"]}-tail")
      text("logged")
    when "/errors"
      env["rack.errors"].puts(q["m1"])
      env["rack.errors"].flush
      $stderr.puts q["m2"]
      $stderr.flush
      text("logged")
    when "/envvars"
      json("foo" => ENV["FOO"], "cwd" => Dir.pwd, "pid" => Process.pid)
    when "/wait" then wait(q)
    when "/create"
      File.write(q["file"], Process.pid.to_s)
      json("pid" => Process.pid, "thread" => Thread.current.object_id)
    else json(dump(env))
    end
  end
end

run RbTest
'''

# Sinatra, as Debian ships it: a modular app.
SINATRA = r'''
require "sinatra/base"
require "json"

class WarrenSinatra < Sinatra::Base
  get "/hello/:name" do
    content_type "text/plain"
    "Hello, #{params[:name]}! (#{request.path_info})"
  end

  post "/form" do
    content_type :json
    JSON.generate("name" => params["name"], "double" => params["n"].to_i * 2,
                  "q" => params["q"], "len" => request.body.read.bytesize,
                  "pid" => Process.pid)
  end
end

run WarrenSinatra
'''

# Hooks: each appends a line to a file of its own per pid (in MARKS), so a
# hook that runs twice shows.
HOOKS = r'''
on_worker_boot do
  File.open(File.join(ENV["MARKS"], "boot-#{Process.pid}"), "a") { |f| f.puts "boot" }
end

on_worker_shutdown do
  File.open(File.join(ENV["MARKS"], "shutdown-#{Process.pid}"), "a") { |f| f.puts "shutdown" }
end

on_thread_boot do
  File.open(File.join(ENV["MARKS"], "thread-#{Process.pid}"), "a") { |f| f.puts Thread.current.object_id }
end
'''

# Cannot load: a syntax error (the "]" is missing), an exception.
SYNTAX = '''run lambda { |env| [200, {}, ["x"] }
'''

RAISES = '''raise "boom-at-load"
run lambda { |env| [200, {}, ["never"]] }
'''

# A worker boot hook that fails (docs: the change that starts it fails).
BOOT_RAISES = '''on_worker_boot { raise "boom-at-boot" }
'''

RANDOM = os.urandom(1 << 20)
BIG_BODY = b"".join((b"%07d\n" % i) * 8192 for i in range(128))


def site(root):
    hh.write(root, "config.ru", APP)
    hh.write(root, "hooks.rb", HOOKS)
    hh.write(root, "sinatra/config.ru", SINATRA)
    hh.write(root, "bad/syntax.ru", SYNTAX)
    hh.write(root, "bad/raises.ru", RAISES)
    hh.write(root, "bad/boot_raises.rb", BOOT_RAISES)
    hh.write(root, "files/random.bin", RANDOM)
    hh.write(root, "wd/here.txt", "here\n")
    marks = os.path.join(root, "marks")          # the workers (nobody) write there
    os.mkdir(marks)
    os.chmod(marks, 0o777)


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def rb(warren_factory):
    """(warrend with the Ruby runtime in its --modulesdir, the site root)."""
    rt = wh.runtimes_modulesdir()
    root = hh.make_root("warren-rb-")
    site(root)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, root
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def app(root, **kw):
    a = {"type": "ruby", "script": os.path.join(root, "config.ru"), "processes": 1}
    a.update(kw)
    return a


def start(w, a, name="rb", settings=None):
    """PUT one Ruby app, every request passed to it; returns the port."""
    return hh.setup(w, [{"action": {"pass": "applications/" + name}}], settings=settings,
                    extra={"applications": {name: a}})


def get(port, path, **kw):
    return hh.get(port, path, **kw)


def jget(port, path, **kw):
    r = hh.get(port, path, **kw)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r
    return json.loads(r.body)


def pid_of(port):
    return jget(port, "/pid")["pid"]


def mark_path(root, name):
    return os.path.join(root, "marks", name)


def q(s):
    return urllib.parse.quote(s, safe="/")


def lines_of(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return None


def chunked(body, size=100000):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


# ------------------------------------------------------------------ 1. loaded once

def concurrent_pids(port, rounds=6, path="/slow_pid"):
    """{pid: loaded} over rounds of two requests at once."""
    seen = {}

    def one(_):
        d = jget(port, path)
        return d["pid"], d["loaded"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for _ in range(rounds):
            for pid, loaded in ex.map(one, range(2)):
                seen.setdefault(pid, set()).add(loaded)
    return seen


def test_rackup_file_is_loaded_once_and_workers_are_forked(rb):
    """LOADED = Process.pid at the top of config.ru: one value in both
    workers, neither worker's pid; the file ran once (LOAD_LOG), also after
    a worker was killed and replaced."""
    w, root = rb
    load_log = mark_path(root, "loads")
    port = start(w, app(root, processes=2, environment={"LOAD_LOG": load_log}))
    seen = concurrent_pids(port)
    assert len(seen) == 2, seen
    loaded = set().union(*seen.values())
    assert len(loaded) == 1, seen
    [loaded] = loaded
    assert loaded not in seen, seen
    assert lines_of(load_log) == [str(loaded)]
    workers = w.app_processes()[1]
    assert set(seen) <= workers, (seen, workers)

    # A worker killed -9 is replaced, from the same image: no new load.
    victim = min(seen)
    os.kill(victim, 9)

    def replaced():
        ws = w.app_processes()[1]
        return not wh.proc_alive(victim) and len(ws) == 2 and victim not in ws
    assert wh.wait_for(replaced, 15.0, 0.05), w.app_processes()
    fresh = {}
    for _ in range(20):
        for pid, ld in concurrent_pids(port, rounds=1).items():
            if pid not in seen:
                fresh[pid] = ld
        if fresh:
            break
    assert fresh, seen
    assert set().union(*fresh.values()) == {loaded}, (fresh, loaded)
    assert lines_of(load_log) == [str(loaded)]


# ------------------------------------------------------------------ 2. load failures

@pytest.mark.parametrize("case", ["missing", "syntax", "raise", "missing-hooks",
                                  "boot-hook-raises"])
def test_rackup_file_that_cannot_load_fails_the_put(rb, case):
    """500 {"error", "detail"}, the detail with the cause; the running
    configuration is kept and serves."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    before = w.config_bytes()
    script, want = {
        "missing": (os.path.join(root, "no-such-dir", "config.ru"), "No such file or directory"),
        "syntax": (os.path.join(root, "bad", "syntax.ru"), "syntax error"),
        "raise": (os.path.join(root, "bad", "raises.ru"), "boom-at-load"),
        "missing-hooks": (os.path.join(root, "config.ru"), "No such file or directory"),
        "boot-hook-raises": (os.path.join(root, "config.ru"), "boom-at-boot"),
    }[case]
    extra = {}
    if case == "missing-hooks":
        extra["hooks"] = os.path.join(root, "no-such-hooks.rb")
    if case == "boot-hook-raises":
        extra["hooks"] = os.path.join(root, "bad", "boot_raises.rb")
    cfg = json.loads(before)
    cfg["applications"]["bad"] = dict({"type": "ruby", "script": script, "processes": 1}, **extra)
    cfg["routes"] = [{"match": {"uri": "/bad/*"}, "action": {"pass": "applications/bad"}},
                     {"action": {"pass": "applications/rb"}}]
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert isinstance(j.get("error"), str) and j["error"], j
    detail = j.get("detail")
    assert isinstance(detail, str) and want in detail, j
    if case == "missing":
        assert script in detail, j
    if case == "missing-hooks":
        assert extra["hooks"] in detail, j
    assert w.config_bytes() == before
    assert pid_of(port) == pid
    # Changing the running app itself to the bad file: refused the same way.
    cfg = json.loads(before)
    cfg["applications"]["rb"]["script"] = script
    cfg["applications"]["rb"].update(extra)
    s, j = w.put("/config", cfg)
    assert s == 500 and want in j.get("detail", ""), (s, j)
    assert w.config_bytes() == before
    assert pid_of(port) == pid


# ------------------------------------------------------------------ 3. env

def test_env_of_a_request_with_a_body(rb):
    w, root = rb
    port = start(w, app(root))
    target = "/a%20b/c?x=1&y=%20z"
    body = b"some=body"
    with hh.Conn(port) as c:
        client_port = c.s.getsockname()[1]
        r = c.request("POST", target, headers=[
            ("User-Agent", "warren-test/1.0"),
            ("X-Multi", "one"),
            ("X-Custom-Thing", "custom value"),
            ("X-Multi", "two"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ], body=body, host="example.test:%d" % port)
    assert r.status == 200, r
    d = json.loads(r.body)
    env = d["env"]
    want = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/a b/c",
        "REQUEST_URI": target,
        "QUERY_STRING": "x=1&y=%20z",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_HOST": "example.test:%d" % port,
        "HTTP_USER_AGENT": "warren-test/1.0",
        "HTTP_X_MULTI": "one, two",
        "HTTP_X_CUSTOM_THING": "custom value",
        "rack.version": [1, 3],
        "rack.url_scheme": "http",
        "rack.multithread": False,
        "rack.multiprocess": True,
        "rack.run_once": False,
        "rack.hijack?": False,
    }
    got = {k: env.get(k, "<absent>") for k in want}
    assert got == want, json.dumps(d, indent=1, sort_keys=True)
    assert str(env.get("REMOTE_PORT")) == str(client_port), env
    # HTTP_* for the headers sent and nothing else; Content-Type and
    # Content-Length only under their CGI names.
    http_keys = sorted(k for k in env if k.startswith("HTTP_"))
    assert http_keys == ["HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_CUSTOM_THING",
                         "HTTP_X_MULTI"], http_keys
    # rack.input and rack.errors: there, IO-like.
    assert "rack.input" in d["types"] and "rack.errors" in d["types"], d["types"]
    assert (d["input_ok"], d["errors_ok"]) == (True, True), d


def test_env_of_a_request_without_a_body(rb):
    """No CONTENT_LENGTH / CONTENT_TYPE without them; QUERY_STRING "" when
    there is no query; SERVER_NAME the Host without a port."""
    w, root = rb
    port = start(w, app(root, type="ruby 3"))
    d = jget(port, "/plain/path")
    env = d["env"]
    assert (env["REQUEST_METHOD"], env["PATH_INFO"], env["QUERY_STRING"],
            env["REQUEST_URI"], env["SCRIPT_NAME"]) == ("GET", "/plain/path", "", "/plain/path", ""), env
    for k in ("CONTENT_LENGTH", "CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"):
        assert k not in env, (k, env)
    assert (env["SERVER_NAME"], env["HTTP_HOST"], env["SERVER_PORT"]) == (
        "localhost", "localhost", str(port)), env
    assert sorted(k for k in env if k.startswith("HTTP_")) == ["HTTP_HOST"], env
    # A chunked body: no CONTENT_LENGTH, the Transfer-Encoding field.
    d = jget(port, "/chunked", method="POST", body=chunked(b"abc"),
             headers={"Transfer-Encoding": "chunked", "Content-Type": "text/plain"})
    env = d["env"]
    assert "CONTENT_LENGTH" not in env and "HTTP_CONTENT_LENGTH" not in env, env
    assert (env.get("CONTENT_TYPE"), env.get("HTTP_TRANSFER_ENCODING")) == (
        "text/plain", "chunked"), env
    # "/" itself, and a query without a path.
    env = jget(port, "/?only=query")["env"]
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["REQUEST_URI"]) == (
        "/", "only=query", "/?only=query"), env


def test_env_and_input_pass_rack_lint(rb):
    """Rack::Lint (Rack 2.2's own check of the spec) around a small app
    that reads rack.input every way and writes to rack.errors: no
    LintError, with a body and without."""
    w, root = rb
    port = start(w, app(root))
    body = b"abc\ndef\nghi"
    r = get(port, "/lint?q=1", method="POST", body=body,
            headers={"Content-Type": "text/plain", "X-Some": "thing"})
    assert r.status == 200, r
    assert json.loads(r.body) == {"head": "abc", "line": "\n", "rest": "def\nghi",
                                  "lines": ["abc\n", "def\n", "ghi"],
                                  "all": "abc\ndef\nghi"}, r
    r = get(port, "/lint")
    assert r.status == 200, r
    assert json.loads(r.body) == {"head": None, "line": None, "rest": "", "lines": [],
                                  "all": None}, r
    assert w.log_has("lint-errors-write"), w.log()[-3000:]


def test_server_name_of_an_ipv6_host_keeps_its_brackets(rb):
    """Host "[::1]:PORT": SERVER_NAME is the Host without its port, "[::1]"
    (a valid authority, as Rack::Lint wants and Rack::Request#host
    expects), not the bare "::1"."""
    w, root = rb
    port = start(w, app(root))
    host = "[::1]:%d" % port
    env = jget(port, "/dump", host=host)["env"]
    assert (env["SERVER_NAME"], env["HTTP_HOST"], env["SERVER_PORT"]) == (
        "[::1]", host, str(port)), env
    r = get(port, "/lint", host=host)
    assert r.status == 200, r


# ------------------------------------------------------------------ 4. rack.input

FOUR_MIB = os.urandom(4 << 20)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_four_mebibytes_read_in_64k_chunks_come_back_byte_exact(rb, framing):
    w, root = rb
    port = start(w, app(root))
    headers = {"Content-Type": "application/octet-stream"}
    body = FOUR_MIB
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        body = chunked(FOUR_MIB)
    for mode in ("chunks", "all"):
        with hh.Conn(port, timeout=30) as c:
            r = c.request("POST", "/echo?mode=" + mode, headers=headers, body=body)
        assert r.status == 200, (mode, r)
        assert len(r.body) == len(FOUR_MIB), (mode, len(r.body))
        assert hashlib.sha256(r.body).hexdigest() == hashlib.sha256(FOUR_MIB).hexdigest(), mode
        if mode == "chunks":
            # read(65536) never gives more than asked, and all of it at the end
            assert int(r.header("X-Biggest")) <= 65536, r.headers
            assert int(r.header("X-Reads")) >= 64, r.headers


@pytest.mark.parametrize("mode", ["gets", "each"])
def test_input_by_lines(rb, mode):
    w, root = rb
    port = start(w, app(root))
    lines = [b"first line\n", b"\n", b"x" * 100000 + b"\n", b"no newline at the end"]
    body = b"".join(lines)
    for hdrs in ({}, {"Transfer-Encoding": "chunked"}):
        sent = chunked(body, 7000) if hdrs else body
        r = get(port, "/echo?mode=" + mode, method="POST", body=sent, headers=hdrs)
        assert r.status == 200, r
        assert r.body == body, (hdrs, len(r.body))
        assert r.header("X-Reads") == str(len(lines)), (hdrs, r.headers)


def test_rewind_then_read_all_again(rb):
    """After read, rewind and read give the same bytes; at the end read
    gives "" and read(n) nil (Rack 2)."""
    w, root = rb
    port = start(w, app(root))
    body = os.urandom(1 << 20)
    sha = hashlib.sha256(body).hexdigest()
    for hdrs, sent in (({}, body), ({"Transfer-Encoding": "chunked"}, chunked(body))):
        r = get(port, "/rewind", method="POST", body=sent, headers=hdrs)
        assert r.status == 200, r
        assert json.loads(r.body) == {"first_len": len(body), "first": sha,
                                      "second_len": len(body), "second": sha,
                                      "read_all_at_eof": "", "read_n_at_eof": None}, hdrs
    # No body at all.
    r = get(port, "/rewind", method="POST")
    empty = hashlib.sha256(b"").hexdigest()
    assert json.loads(r.body) == {"first_len": 0, "first": empty, "second_len": 0,
                                  "second": empty, "read_all_at_eof": "",
                                  "read_n_at_eof": None}, r


# ------------------------------------------------------------------ 5. responses

def test_status_location_and_headers(rb):
    w, root = rb
    port = start(w, app(root))
    for code in (201, 404, 503):
        r = get(port, "/status?code=%d" % code)
        assert (r.status, r.body) == (code, b"status %d" % code), r
    r = get(port, "/redirect")
    assert (r.status, r.header("Location")) == (302, "/elsewhere?from=ruby"), r
    # A value with "\n": a field per line (Rack 2).
    r = get(port, "/cookies")
    assert (r.status, r.body) == (200, b"cookies"), r
    assert r.all("Set-Cookie") == ["a=1", "b=2; Path=/p"], r.headers


def test_array_body_and_head(rb):
    w, root = rb
    port = start(w, app(root))
    r = get(port, "/array")
    assert (r.status, r.body, r.header("X-Array")) == (200, b"hello from an array", "yes"), r
    assert r.header("Content-Type") == "text/plain", r.headers
    # HEAD: the head, no body: the next response on the connection is
    # read right after it.
    with hh.Conn(port) as c:
        r = c.request("HEAD", "/array")
        assert (r.status, r.header("X-Array")) == (200, "yes"), r
        assert c.buf == b"", c.buf
        r = c.request("GET", "/array")
        assert (r.status, r.body) == (200, b"hello from an array"), r


def test_body_with_each_and_close(rb):
    """A body object with each (two parts) and close: the client gets the
    parts, close is called (it leaves a marker with the pid)."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    marker = mark_path(root, "closed-1")
    r = get(port, "/each_close?marker=" + q(marker))
    assert (r.status, r.body) == (200, b"part-one,part-two"), r
    assert wh.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0, 5.0)
    with open(marker) as f:
        assert f.read() == str(pid)


def test_rack3_streaming_body_and_array_header_values(rb):
    """Rack 3: a body that responds to call (not each) is called with a
    stream; what it writes (write, <<) is the body, chunked; an Array
    header value is one field per element."""
    w, root = rb
    port = start(w, app(root))
    marker = mark_path(root, "stream-closed")
    r = get(port, "/streaming_body?marker=" + q(marker))
    assert (r.status, r.body) == (200, b"one,two,three"), r
    assert r.header("Transfer-Encoding") == "chunked", r
    assert [v for k, v in r.headers if k.lower() == "x-array"] == ["a", "b"], r
    assert wh.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0, 5.0)
    with open(marker) as f:
        assert f.read() == "true"


@pytest.mark.parametrize("kind", ["file", "rack_files", "to_path"])
def test_file_bodies_arrive_byte_exact(rb, kind):
    """File.open(path, "rb"), Rack::Files, an object with to_path (and
    each): 1 MiB of random bytes, whole."""
    w, root = rb
    port = start(w, app(root))
    path = os.path.join(root, "files", "random.bin")
    for _ in range(2):
        with hh.Conn(port, timeout=30) as c:
            r = c.request("GET", "/%s?path=%s" % (kind, q(path)))
        assert r.status == 200, r
        assert len(r.body) == len(RANDOM), len(r.body)
        assert hashlib.sha256(r.body).digest() == hashlib.sha256(RANDOM).digest()
    assert get(port, "/pid").status == 200


class SlowConn(hh.Conn):
    """A client that reads 8 KiB at a time, pausing between reads."""

    def _fill(self):
        if self.eof:
            return False
        time.sleep(0.002)
        try:
            d = self.s.recv(8192)
        except self.EOF_ERRORS:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True


def test_large_streamed_body_to_a_slow_client(rb):
    """8 MiB yielded by each in 64 KiB chunks, no Content-Length, read by a
    client slower than the app: all of it, in order."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    assert len(BIG_BODY) == 8 << 20
    with SlowConn(port, timeout=60) as c:
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(hh.build("GET", "/big"))
        time.sleep(0.5)                  # let the app run ahead of the client
        r = c.read_response()
    assert r.status == 200, r
    assert len(r.body) == len(BIG_BODY), len(r.body)
    assert r.body == BIG_BODY
    assert pid_of(port) == pid


def test_client_leaving_mid_body_still_closes_it(rb):
    """The client goes away while an 8 MiB body is being yielded: the body
    is closed all the same (its marker), and the worker serves on."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    marker = mark_path(root, "closed-big")
    with hh.Conn(port, timeout=10) as c:
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(hh.build("GET", "/big_close?marker=" + q(marker)))
        while b"\r\n\r\n" not in c.buf:
            assert c._fill(), c.buf
        assert c.buf.startswith(b"HTTP/1.1 200"), c.buf[:200]
    assert wh.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0, 10.0)
    with open(marker) as f:
        mpid, chunks = f.read().split()
    assert int(mpid) == pid, (mpid, pid)
    assert pid_of(port) == pid
    d = jget(port, "/pid")
    assert d["pid"] == pid


# ------------------------------------------------------------------ 6. errors

def test_exception_answers_500_and_the_same_worker_serves_on(rb):
    """raise WarrenRackError, "kaboom-rb-42": 500; the class and the message
    in the log; the same worker answers the next request."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    for _ in range(2):
        r = get(port, "/raise")
        assert r.status == 500, r
        d = jget(port, "/pid")
        assert d["pid"] == pid, (d, pid)
    assert w.log_has("kaboom-rb-42"), w.log()[-3000:]
    assert w.log_has("WarrenRackError"), w.log()[-3000:]


@pytest.mark.parametrize("what", ["bad_string", "bad_nil"])
def test_invalid_response_answers_500_with_a_log_line(rb, what):
    """The app returns "a string" or nil: 500, a log entry about it (from
    the worker: with its pid), and the app serves on."""
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    mark = len(w.log())
    r = get(port, "/" + what)
    assert r.status == 500, r

    def new_line():
        return [ln for ln in w.log()[mark:].splitlines() if str(pid) in ln]
    assert wh.wait_for(new_line, 5.0), w.log()[mark:]
    assert pid_of(port) == pid


def test_rack_errors_and_stderr_reach_the_log(rb):
    w, root = rb
    port = start(w, app(root))
    m1, m2 = "marker-rack-errors-" + uuid.uuid4().hex, "marker2-stderr-" + uuid.uuid4().hex
    r = get(port, "/errors?m1=%s&m2=%s" % (m1, m2))
    assert (r.status, r.body) == (200, b"logged"), r
    assert w.log_has(m1), w.log()[-3000:]
    assert w.log_has(m2), w.log()[-3000:]


def test_rack_errors_line_written_in_pieces_is_one_log_line(rb):
    """write/print without a newline wait for the rest of their line (as a
    line-buffered IO): one log entry per line; what no newline ended is
    logged when the request ends."""
    w, root = rb
    port = start(w, app(root))
    m = "marker-parts-" + uuid.uuid4().hex
    r = get(port, "/errors_parts?m=" + m)
    assert (r.status, r.body) == (200, b"logged"), r
    wh.assert_logged_in_pieces(w, m)


# ------------------------------------------------------------------ 7. options

def test_environment_and_working_directory(rb):
    w, root = rb
    wd = os.path.join(root, "wd")
    port = start(w, app(root, environment={"FOO": "bar"}, working_directory=wd))
    for _ in range(2):
        d = jget(port, "/envvars")
        assert (d["foo"], d["cwd"]) == ("bar", wd), d
    # Without them: no FOO (warrend's environment is not passed on).
    port2 = start(w, app(root, type="ruby 3.1"), name="plain")
    d = jget(port2, "/envvars")
    assert d["foo"] is None, d
    assert d["cwd"] != wd, d


def test_two_processes_serve_with_two_pids(rb):
    w, root = rb
    port = start(w, app(root, processes=2))
    seen = concurrent_pids(port)
    pids = set(seen)
    pids |= {pid_of(port) for _ in range(10)}
    assert len(pids) == 2, pids
    assert pids <= w.app_processes()[1], (pids, w.app_processes())


def test_restart_starts_new_workers_from_a_new_load(rb):
    w, root = rb
    load_log = mark_path(root, "loads")
    port = start(w, app(root, type="ruby 3", environment={"LOAD_LOG": load_log}))
    old = jget(port, "/pid")
    assert lines_of(load_log) == [str(old["loaded"])]
    s, j = w.get("/control/applications/rb/restart")
    assert (s, j) == (200, {"success": "Ok"}), (s, j)
    new = jget(port, "/pid")
    assert new["pid"] != old["pid"], (old, new)
    assert new["loaded"] != old["loaded"], (old, new)
    assert lines_of(load_log) == [str(old["loaded"]), str(new["loaded"])]
    # The old worker goes away.
    assert wh.wait_for(lambda: not wh.proc_alive(old["pid"]), 10.0), old
    assert pid_of(port) == new["pid"]


# ------------------------------------------------------------------ 8. threads

def test_two_threads_serve_two_requests_at_once_in_one_worker(rb):
    """threads 2, processes 1: request A waits (up to 10 s) for a file that
    request B creates; A is known to be running (it says so) before B is
    sent. Both 200, from the same pid, in two threads; A met B's file."""
    w, root = rb
    port = start(w, app(root, threads=2), settings={"listen_threads": 1})
    d = jget(port, "/dump")
    assert d["env"]["rack.multithread"] is True, d["env"]
    pid = d["pid"]
    for n in range(2):
        started, go = mark_path(root, "started-%d" % n), mark_path(root, "go-%d" % n)
        out = {}

        def a():
            with hh.Conn(port, timeout=3 * WAIT_S) as c:
                out["a"] = c.request("GET", "/wait?started=%s&file=%s" % (q(started), q(go)))
        t = threading.Thread(target=a)
        t.start()
        try:
            assert wh.wait_for(lambda: os.path.exists(started), WAIT_S), "A never started"
            with hh.Conn(port, timeout=3 * WAIT_S) as c:
                rb_ = c.request("GET", "/create?file=" + q(go))
        finally:
            t.join(4 * WAIT_S)
        assert not t.is_alive()
        ra = out["a"]
        assert (ra.status, rb_.status) == (200, 200), (ra, rb_)
        da, db = json.loads(ra.body), json.loads(rb_.body)
        assert da["met"] is True, da
        assert da["pid"] == db["pid"] == pid, (da, db, pid)
        assert da["thread"] != db["thread"], (da, db)


def tasks(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def settled_tasks(pid, timeout=10.0):
    """The worker's thread count once more than 64 and the same over five
    reads 50 ms apart."""
    seen = []

    def settled():
        seen.append(tasks(pid))
        return seen[-1] > 64 and len(seen) >= 5 and len(set(seen[-5:])) == 1
    assert wh.wait_for(settled, timeout, 0.05), seen[-10:]
    return seen[-1]


def test_threads_over_64_are_capped(rb):
    """threads 100 serves as 64 does: the worker runs as many threads."""
    w, root = rb
    counts = {}
    for n in (64, 100):
        port = start(w, app(root, threads=n), name="t%d" % n)
        d = jget(port, "/dump")
        assert d["env"]["rack.multithread"] is True
        pid = d["pid"]
        counts[n] = settled_tasks(pid)
    assert counts[64] == counts[100], counts


# ------------------------------------------------------------------ 9. hooks

def test_hooks_worker_boot_thread_boot_and_worker_shutdown(rb):
    w, root = rb
    marks = os.path.join(root, "marks")
    port = start(w, app(root, threads=2, hooks=os.path.join(root, "hooks.rb"),
                        environment={"MARKS": marks}), settings={"listen_threads": 1})
    d = jget(port, "/pid")
    pid, loaded = d["pid"], d["loaded"]
    boot, thread = os.path.join(marks, "boot-%d" % pid), os.path.join(marks, "thread-%d" % pid)
    assert wh.wait_for(lambda: lines_of(boot) == ["boot"], 5.0), lines_of(boot)
    assert wh.wait_for(lambda: len(lines_of(thread) or []) >= 2, 5.0), lines_of(thread)
    for _ in range(5):
        assert pid_of(port) == pid
    # Once per worker, once per thread; only in the worker.
    assert lines_of(boot) == ["boot"]
    tids = lines_of(thread)
    assert len(tids) == 2 and len(set(tids)) == 2, tids
    boots = sorted(n for n in os.listdir(marks) if n.startswith("boot-"))
    assert boots == ["boot-%d" % pid], (boots, loaded)
    assert not os.path.exists(os.path.join(marks, "shutdown-%d" % pid))
    # A restart stops the worker: on_worker_shutdown runs in it; the new
    # worker boots.
    s, j = w.get("/control/applications/rb/restart")
    assert (s, j) == (200, {"success": "Ok"}), (s, j)
    new = pid_of(port)
    assert new != pid
    assert wh.wait_for(lambda: lines_of(os.path.join(marks, "shutdown-%d" % pid)) == ["shutdown"],
                       10.0), sorted(os.listdir(marks))
    assert wh.wait_for(lambda: lines_of(os.path.join(marks, "boot-%d" % new)) == ["boot"], 5.0)


# ------------------------------------------------------------------ 10. Sinatra

def test_sinatra_app(rb):
    w, root = rb
    port = start(w, {"type": "ruby 3.1", "script": os.path.join(root, "sinatra", "config.ru"),
                     "processes": 1})
    r = get(port, "/hello/world")
    assert (r.status, r.body) == (200, b"Hello, world! (/hello/world)"), r
    assert r.header("Content-Type").startswith("text/plain"), r.headers
    body = b"name=Ada+L&n=21"
    r = get(port, "/form?q=x%20y", method="POST", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    d = json.loads(r.body)
    assert {k: d[k] for k in ("name", "double", "q", "len")} == {
        "name": "Ada L", "double": 42, "q": "x y", "len": len(body)}, d
    r = get(port, "/nope")
    assert r.status == 404, r


# ------------------------------------------------------------------ 11. validation

def test_missing_script_is_refused_with_400(rb):
    w, root = rb
    port = start(w, app(root))
    pid = pid_of(port)
    before = w.config_bytes()
    cfg = json.loads(before)
    cfg["applications"]["noscript"] = {"type": "ruby", "processes": 1, "threads": 2}
    r = w.request("PUT", "/config", json.dumps(cfg))
    assert r.status == 400, r
    j = r.json()
    assert j.get("error") == "Invalid configuration.", j
    assert j.get("location") == {"path": "/applications/noscript"}, j
    assert "script" in j.get("detail", ""), j
    assert w.config_bytes() == before
    assert pid_of(port) == pid
