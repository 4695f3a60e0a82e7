"""PHP applications (`"type": "php"`) run by warrend through build/warren-php
(libphp8.2-embed): what docs/applications.md#php promises, end to end.

Every test starts a real warrend whose --modulesdir holds a copy of
build/warren-php (wh.runtimes_modulesdir: a missing runtime fails the
tests, it does not skip them),
writes its PHP scripts into a temp dir that user nobody can read, PUTs the
config on the control socket and talks HTTP to the listener:

  - request -> script: `script` mode, index, the ".php/" PATH_INFO split,
    directory -> 301 with Location, missing or non-PHP file -> 404;
  - $_SERVER (dumped with json_encode and compared key by key), getenv/$_ENV,
    the working directory (relative include/require);
  - bodies: $_POST urlencoded and multipart, $_FILES + move_uploaded_file,
    php://input of 1 MB;
  - cookies in, Set-Cookie out, http_response_code(), Location -> 302, the
    default Content-Type, streamed output (flush(), 2 MB whole), exit/die;
  - fatal error / parse error / uncaught exception -> 500, the same worker
    (getmypid()) serves on; the message reaches Warren's log;
  - options.admin / options.user / options.file, targets, processes, and a
    PUT refused (500 + detail) when a worker cannot start.
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import http_helpers as hh
import warren_helpers as wh

import pytest

JSON_FLAGS = "JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE"

# ------------------------------------------------------------------ scripts

# Everything a script sees of its request.
DUMP = '''<?php
header("Content-Type: application/json");
echo json_encode([
    "server" => $_SERVER,
    "get" => (object) $_GET,
    "post" => (object) $_POST,
    "cookie" => (object) $_COOKIE,
    "cwd" => getcwd(),
    "file" => __FILE__,
    "pid" => getmypid(),
], %s);
''' % JSON_FLAGS

PID = '''<?php
header("Content-Type: text/plain");
echo getmypid();
'''

CWD_SUB = '''<?php
$lib = require "./lib.php";          // "./" and "../": resolved against the cwd only
$shared = require "../shared.php";
header("Content-Type: application/json");
echo json_encode(["cwd" => getcwd(), "lib" => $lib, "shared" => $shared,
                  "data" => file_get_contents("data.txt")], %s);
''' % JSON_FLAGS

CWD_TOP = '''<?php
echo getcwd();
'''

UPLOAD = '''<?php
header("Content-Type: application/json");
$out = ["post" => (object) $_POST, "files" => []];
foreach ($_FILES as $field => $f) {
    $dest = getenv("UPLOAD_DIR") . "/" . $field . "-" . basename($f["name"]);
    $was_uploaded = is_uploaded_file($f["tmp_name"]);
    $moved = move_uploaded_file($f["tmp_name"], $dest);
    clearstatcache();
    $out["files"][$field] = [
        "name" => $f["name"], "type" => $f["type"], "size" => $f["size"],
        "error" => $f["error"], "is_uploaded" => $was_uploaded, "moved" => $moved,
        "dest" => $dest, "dest_size" => filesize($dest), "md5" => md5_file($dest),
    ];
}
echo json_encode($out, %s);
''' % JSON_FLAGS

INPUT = '''<?php
$raw = file_get_contents("php://input");
$again = file_get_contents("php://input");   // php://input can be read twice
header("Content-Type: application/json");
echo json_encode(["len" => strlen($raw), "md5" => md5($raw), "again" => md5($again),
                  "content_length" => $_SERVER["CONTENT_LENGTH"] ?? null,
                  "content_type" => $_SERVER["CONTENT_TYPE"] ?? null,
                  "post" => (object) $_POST]);
'''

COOKIES = '''<?php
setcookie("x", "1");
setcookie("y", "two words", ["path" => "/p", "httponly" => true]);
header("Content-Type: application/json");
echo json_encode((object) $_COOKIE, %s);
''' % JSON_FLAGS

CODE = '''<?php
http_response_code((int) $_GET["code"]);
header("X-Seen-Code: " . http_response_code());
echo "code body ", $_GET["code"];
'''

REDIRECT = '''<?php
header("Location: /elsewhere?from=php");
'''

REDIRECT_301 = '''<?php
header("Location: https://example.test/moved", true, 301);
echo "moved";
'''

DEFAULT_CTYPE = '''<?php
header("X-Custom: custom value");
echo "<p>hello</p>";
'''

# 2 MiB: 262144 lines of 8 bytes, "%07d\\n".
BIG_LINES = 262144
BIG = '''<?php
header("Content-Type: text/plain");
$flush = isset($_GET["flush"]);
if ($flush) {
    for ($i = 0; $i < %(n)d; $i += 8192) {
        $chunk = "";
        for ($j = $i; $j < $i + 8192; $j++) {
            $chunk .= sprintf("%%07d\\n", $j);
        }
        echo $chunk;
        flush();
    }
} else {
    $all = "";
    for ($j = 0; $j < %(n)d; $j++) {
        $all .= sprintf("%%07d\\n", $j);
    }
    print $all;
}
''' % {"n": BIG_LINES}

# Writes a first part, flushes (ob_flush: Debian's php.ini keeps a 4 KiB
# output buffer, as php-fpm's does; flush() alone empties only the SAPI's),
# then waits for the test to create ?go=FILE before the second part: no
# timing, the order alone shows the first part was sent on its own.
FLUSHY = '''<?php
header("Content-Type: text/plain");
echo "first-part\\n";
OB_FLUSH
flush();
for ($i = 0; $i < 500 && !file_exists($_GET["go"]); $i++) usleep(10000);
echo "second-part\\n";
'''

EXIT = '''<?php
header("X-Exit: yes");
echo "before exit";
exit();
echo "after exit";
'''

DIE = '''<?php
echo "about to ";
die("die");
echo "after die";
'''

FATAL = '''<?php
header("X-Leak: fatal");
undefined_function_warren_xyz();
'''

# A parse error: no ";" before the end of the file.
PARSE = '''<?php
echo "never"
'''

EXCEPTION = '''<?php
header("X-Leak: exception");
throw new RuntimeException("kaboom-warren-42");
'''

MEMORY = '''<?php
ini_set("memory_limit", "16M");
$s = str_repeat("x", 64 * 1024 * 1024);
echo strlen($s);
'''

MEMORY_LIMIT = '''<?php
echo ini_get("memory_limit");
'''

ENV = '''<?php
header("Content-Type: application/json");
echo json_encode([
    "greeting" => getenv("GREETING"),
    "empty" => getenv("EMPTY_ONE"),
    "unicode" => getenv("UNICODE_ONE"),
    "unset" => getenv("WARREN_TEST_NOT_SET"),
    "env_greeting" => $_ENV["GREETING"] ?? null,
    "env_unicode" => $_ENV["UNICODE_ONE"] ?? null,
], %s);
''' % JSON_FLAGS

OPTS = '''<?php
header("Content-Type: application/json");
$keys = ["memory_limit", "default_socket_timeout", "precision", "arg_separator.output"];
$out = ["pid" => getmypid(), "before" => []];
foreach ($keys as $k) $out["before"][$k] = ini_get($k);
$out["third_before"] = (string) (1 / 3);
if (isset($_GET["set"])) {
    $out["set_admin"] = ini_set("memory_limit", "256M");
    $out["set_admin2"] = ini_set("default_socket_timeout", "99");
    $out["set_user"] = ini_set("precision", "3");
    $out["set_user2"] = ini_set("arg_separator.output", "|");
    $out["after"] = [];
    foreach ($keys as $k) $out["after"][$k] = ini_get($k);
    $out["third_after"] = (string) (1 / 3);
}
echo json_encode($out, %s);
''' % JSON_FLAGS

INI = '''<?php
header("Content-Type: application/json");
echo json_encode([
    "precision" => ini_get("precision"),
    "third" => (string) (1 / 3),
    "timezone_ini" => ini_get("date.timezone"),
    "timezone" => date_default_timezone_get(),
    "memory_limit" => ini_get("memory_limit"),
    "gc_probability" => ini_get("session.gc_probability"),
    "loaded" => php_ini_loaded_file(),
], %s);
''' % JSON_FLAGS

SLOW_PID = '''<?php
usleep(300000);
echo getmypid();
'''


def site(root):
    """The main test site: scripts at the top, in sub/, and files that the
    PHP app must not serve."""
    files = {
        "index.php": DUMP,
        "dump.php": DUMP,
        "pid.php": PID,
        "cwd.php": CWD_TOP,
        "shared.php": '<?php return "shared from the root";\n',
        "sub/index.php": DUMP,
        "sub/info.php": DUMP,
        "sub/cwd.php": CWD_SUB,
        "sub/lib.php": '<?php return "lib from sub";\n',
        "sub/data.txt": "data in sub\n",
        "style.css": "body { color: red }\n",
        "readme.txt": "not a script\n",
        "notes.php.txt": "<?php echo 'not run';\n",
        "upload.php": UPLOAD,
        "input.php": INPUT,
        "cookies.php": COOKIES,
        "code.php": CODE,
        "redirect.php": REDIRECT,
        "redirect301.php": REDIRECT_301,
        "ctype.php": DEFAULT_CTYPE,
        "big.php": BIG,
        "flushy.php": FLUSHY.replace("OB_FLUSH", "ob_flush();"),
        "exit.php": EXIT,
        "die.php": DIE,
        "fatal.php": FATAL,
        "parse.php": PARSE,
        "exception.php": EXCEPTION,
        "memory.php": MEMORY,
        "memory_limit.php": MEMORY_LIMIT,
        "env.php": ENV,
        "opts.php": OPTS,
        "ini.php": INI,
        "slow_pid.php": SLOW_PID,
    }
    for rel, text in files.items():
        hh.write(root, rel, text)
    empty = os.path.join(root, "empty")
    os.mkdir(empty)
    os.chmod(empty, 0o755)


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def php(warren_factory):
    """(warrend with the PHP runtime in its --modulesdir, the site root)."""
    rt = wh.runtimes_modulesdir()
    root = hh.make_root("warren-php-")
    site(root)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, root
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def start(w, app, name="site", routes=None, listeners=None):
    """PUT one PHP app (every request passed to it unless routes are given)."""
    routes = routes or [{"action": {"pass": "applications/" + name}}]
    return hh.setup(w, routes, listeners=listeners, extra={"applications": {name: app}})


def get(port, path, **kw):
    return hh.get(port, path, **kw)


def dump(port, path, **kw):
    r = hh.get(port, path, **kw)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r
    return r, json.loads(r.body)


def multipart(fields, files):
    """A multipart/form-data body and its Content-Type."""
    b = "warren" + uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (b, k, v)).encode()
    for k, (name, ctype, data) in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (b, k, name, ctype)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b


def warren_version():
    out = subprocess.run([wh.BINARY, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"^warren version: (\S+)$", out, re.M)
    assert m, out
    return m.group(1)


# ------------------------------------------------------------------ script resolution

def test_script_mode_runs_the_one_script_for_every_path(php):
    w, root = php
    hh.write(root, "front.php", DUMP)
    port = start(w, {"type": "php", "root": root, "script": "front.php", "processes": 1})
    for target in ("/", "/anything/here?x=1", "/dump.php", "/sub/info.php/a/b",
                   "/style.css", "/no/such/thing.php", "/sub/"):
        r, d = dump(port, target)
        s = d["server"]
        assert d["file"] == os.path.join(root, "front.php"), (target, d["file"])
        assert s["SCRIPT_NAME"] == "/front.php", (target, s)
        assert s["SCRIPT_FILENAME"] == os.path.join(root, "front.php"), (target, s)
        assert s["PHP_SELF"] == "/front.php", (target, s)
        assert "PATH_INFO" not in s, (target, s)
        assert s["DOCUMENT_ROOT"] == root, (target, s)
        assert s["REQUEST_URI"] == target, (target, s)
    r, d = dump(port, "/anything/here?x=1&y=two")
    assert d["get"] == {"x": "1", "y": "two"}
    assert d["server"]["QUERY_STRING"] == "x=1&y=two"


def test_index_for_paths_ending_in_slash(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r, d = dump(port, "/")
    s = d["server"]
    assert d["file"] == os.path.join(root, "index.php")
    assert (s["SCRIPT_NAME"], s["SCRIPT_FILENAME"], s["PHP_SELF"]) == (
        "/index.php", os.path.join(root, "index.php"), "/index.php"), s
    assert "PATH_INFO" not in s, s
    assert s["REQUEST_URI"] == "/"
    r, d = dump(port, "/sub/?q=1")
    s = d["server"]
    assert d["file"] == os.path.join(root, "sub", "index.php")
    assert (s["SCRIPT_NAME"], s["SCRIPT_FILENAME"], s["PHP_SELF"]) == (
        "/sub/index.php", os.path.join(root, "sub", "index.php"), "/sub/index.php"), s
    assert "PATH_INFO" not in s, s
    assert (s["REQUEST_URI"], s["QUERY_STRING"], d["get"]) == ("/sub/?q=1", "q=1", {"q": "1"})
    # A directory without the index file: 404.
    assert get(port, "/empty/").status == 404


def test_custom_index(php):
    w, root = php
    hh.write(root, "main.php", DUMP)
    hh.write(root, "sub/main.php", DUMP)
    port = start(w, {"type": "php 8", "root": root, "index": "main.php"})
    r, d = dump(port, "/")
    assert (d["file"], d["server"]["SCRIPT_NAME"]) == (os.path.join(root, "main.php"), "/main.php")
    r, d = dump(port, "/sub/")
    assert (d["file"], d["server"]["SCRIPT_NAME"]) == (
        os.path.join(root, "sub", "main.php"), "/sub/main.php")
    # index.php is no longer the index, but is still a script of its own.
    r, d = dump(port, "/index.php")
    assert d["server"]["SCRIPT_NAME"] == "/index.php"


def test_direct_script_and_path_info_split(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    # A plain script.
    r, d = dump(port, "/sub/info.php?a=1")
    s = d["server"]
    assert d["file"] == os.path.join(root, "sub", "info.php")
    assert (s["SCRIPT_NAME"], s["SCRIPT_FILENAME"], s["PHP_SELF"]) == (
        "/sub/info.php", os.path.join(root, "sub", "info.php"), "/sub/info.php"), s
    assert "PATH_INFO" not in s, s
    # ".php/": the script and PATH_INFO.
    r, d = dump(port, "/sub/info.php/a/b?q=1")
    s = d["server"]
    assert d["file"] == os.path.join(root, "sub", "info.php")
    assert (s["SCRIPT_NAME"], s["PATH_INFO"], s["PHP_SELF"]) == (
        "/sub/info.php", "/a/b", "/sub/info.php/a/b"), s
    assert s["SCRIPT_FILENAME"] == os.path.join(root, "sub", "info.php")
    assert (s["REQUEST_URI"], s["QUERY_STRING"]) == ("/sub/info.php/a/b?q=1", "q=1")
    # PATH_INFO of just "/".
    r, d = dump(port, "/dump.php/")
    s = d["server"]
    assert (s["SCRIPT_NAME"], s["PATH_INFO"], s["PHP_SELF"]) == ("/dump.php", "/", "/dump.php/"), s
    # The decoded, normalized path: "." and ".." resolved, %XX decoded;
    # REQUEST_URI stays as sent.
    target = "/sub/./x/../%69nfo.php/a%20b/c?q=%41"
    r, d = dump(port, target)
    s = d["server"]
    assert d["file"] == os.path.join(root, "sub", "info.php")
    assert (s["SCRIPT_NAME"], s["PATH_INFO"], s["PHP_SELF"]) == (
        "/sub/info.php", "/a b/c", "/sub/info.php/a b/c"), s
    assert (s["REQUEST_URI"], s["QUERY_STRING"], d["get"]) == (target, "q=%41", {"q": "A"})
    # A ".php/" whose script does not exist: 404.
    assert get(port, "/nope.php/x").status == 404


def test_directory_without_slash_redirects(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r = get(port, "/sub")
    assert (r.status, r.header("Location")) == (301, "/sub/"), r
    r = get(port, "/sub?a=1&b=%20x")
    assert (r.status, r.header("Location")) == (301, "/sub/?a=1&b=%20x"), r
    r = get(port, "/empty")
    assert (r.status, r.header("Location")) == (301, "/empty/"), r
    # Following the redirect lands on the index.
    r, d = dump(port, "/sub/?a=1&b=%20x")
    assert d["server"]["SCRIPT_NAME"] == "/sub/index.php"


def test_missing_paths_are_404(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    for target in ("/nope.php", "/nope", "/nope/", "/sub/nope.php", "/nope/x.php",
                   "/nope.php?x=1"):
        r = get(port, target)
        assert r.status == 404, (target, r)


def test_non_php_files_are_404(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    for target in ("/style.css", "/readme.txt", "/sub/data.txt", "/notes.php.txt"):
        r = get(port, target)
        assert r.status == 404, (target, r)
        assert b"not a script" not in r.body and b"color: red" not in r.body, (target, r)
    # The same files exist: the PHP scripts beside them are served.
    assert get(port, "/pid.php").status == 200


# ------------------------------------------------------------------ $_SERVER

def test_server_variables(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    target = "/sub/info.php/p%20i?x=1&y=%20z"
    body = b"raw=body"
    t0 = time.time()
    with hh.Conn(port) as c:
        client_port = c.s.getsockname()[1]
        r = c.request("POST", target, headers=[
            ("User-Agent", "warren-test/1.0"),
            ("Accept", "application/json"),
            ("X-Custom-Thing", "custom value"),
            ("x-lower-case", "lower"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ], body=body, host="example.test:8080")
    t1 = time.time()
    assert r.status == 200, r
    d = json.loads(r.body)
    s = d["server"]
    want = {
        "REQUEST_METHOD": "POST",
        "REQUEST_URI": target,
        "QUERY_STRING": "x=1&y=%20z",
        "SCRIPT_NAME": "/sub/info.php",
        "SCRIPT_FILENAME": os.path.join(root, "sub", "info.php"),
        "PATH_INFO": "/p i",
        "PHP_SELF": "/sub/info.php/p i",
        "DOCUMENT_ROOT": root,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "Warren/" + warren_version(),
        "SERVER_NAME": "example.test",
        "SERVER_ADDR": "127.0.0.1",
        "SERVER_PORT": str(port),
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": str(client_port),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "example.test:8080",
        "HTTP_USER_AGENT": "warren-test/1.0",
        "HTTP_ACCEPT": "application/json",
        "HTTP_X_CUSTOM_THING": "custom value",
        "HTTP_X_LOWER_CASE": "lower",
    }
    got = {k: s.get(k) for k in want}
    assert got == want, json.dumps(s, indent=1, sort_keys=True)
    assert s["SERVER_SOFTWARE"] == r.header("Server")
    # HTTP_<NAME> for the headers sent, and nothing else; Content-Type and
    # Content-Length only under their CGI names.
    http_keys = sorted(k for k in s if k.startswith("HTTP_"))
    assert http_keys == ["HTTP_ACCEPT", "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_CUSTOM_THING",
                         "HTTP_X_LOWER_CASE"], http_keys
    assert "HTTPS" not in s, s
    # Request time.
    assert isinstance(s["REQUEST_TIME"], int), s["REQUEST_TIME"]
    assert int(t0) <= s["REQUEST_TIME"] <= int(t1) + 1, (t0, s["REQUEST_TIME"], t1)
    assert isinstance(s["REQUEST_TIME_FLOAT"], float), s["REQUEST_TIME_FLOAT"]
    assert t0 - 0.5 <= s["REQUEST_TIME_FLOAT"] <= t1 + 0.5, (t0, s["REQUEST_TIME_FLOAT"], t1)
    # The body and query reached PHP too.
    assert d["get"] == {"x": "1", "y": " z"}
    assert d["post"] == {"raw": "body"}


def test_server_variables_without_a_body(php):
    """CONTENT_TYPE and CONTENT_LENGTH only when the request has them;
    SERVER_NAME is the Host's name."""
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r, d = dump(port, "/dump.php")
    s = d["server"]
    assert (s["REQUEST_METHOD"], s["REQUEST_URI"], s["QUERY_STRING"]) == ("GET", "/dump.php", ""), s
    assert "CONTENT_TYPE" not in s and "CONTENT_LENGTH" not in s, s
    assert "HTTP_CONTENT_TYPE" not in s and "HTTP_CONTENT_LENGTH" not in s, s
    assert (s["SERVER_NAME"], s["HTTP_HOST"]) == ("localhost", "localhost"), s
    assert sorted(k for k in s if k.startswith("HTTP_")) == ["HTTP_HOST"], s
    # an IPv6 host keeps its brackets, as in the Host field
    host = "[::1]:%d" % port
    r, d = dump(port, "/dump.php", host=host)
    assert (d["server"]["SERVER_NAME"], d["server"]["HTTP_HOST"]) == ("[::1]", host), d["server"]


def test_https_only_for_https(php):
    """HTTPS is "on" only when the request's scheme is https: here set by
    a trusted proxy's X-Forwarded-Proto (the listener's "forwarded")."""
    w, root = php
    port = wh.free_port()
    start(w, {"type": "php", "root": root}, listeners={
        "127.0.0.1:%d" % port: {"pass": "routes", "forwarded": {
            "protocol": "X-Forwarded-Proto", "source": ["127.0.0.1"]}}})
    r, d = dump(port, "/dump.php", headers={"X-Forwarded-Proto": "https"})
    assert d["server"].get("HTTPS") == "on", d["server"]
    r, d = dump(port, "/dump.php", headers={"X-Forwarded-Proto": "http"})
    assert "HTTPS" not in d["server"], d["server"]
    r, d = dump(port, "/dump.php")
    assert "HTTPS" not in d["server"], d["server"]


def test_working_directory_is_the_scripts_directory(php):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    for _ in range(2):       # alternate on the same worker
        r = get(port, "/sub/cwd.php")
        assert r.status == 200, r
        d = json.loads(r.body)
        assert d == {"cwd": os.path.realpath(os.path.join(root, "sub")), "lib": "lib from sub",
                     "shared": "shared from the root", "data": "data in sub\n"}, d
        r = get(port, "/cwd.php")
        assert (r.status, r.body.decode()) == (200, os.path.realpath(root)), r


def env_app(w, root):
    port = start(w, {"type": "php", "root": root, "environment": {
        "GREETING": "hi there", "EMPTY_ONE": "", "UNICODE_ONE": "Zürich"}})
    r = get(port, "/env.php")
    assert r.status == 200, r
    return json.loads(r.body)


def test_environment_reaches_getenv(php):
    d = env_app(*php)
    assert {k: d[k] for k in ("greeting", "empty", "unicode", "unset")} == {
        "greeting": "hi there", "empty": "", "unicode": "Zürich", "unset": False}, d


def test_environment_reaches_env_superglobal(php):
    """$_ENV follows variables_order, as in PHP: empty with Debian's php.ini
    ("GPCS"), filled with "EGPCS" (set here as an admin option)."""
    w, root = php
    d = env_app(w, root)
    assert (d["env_greeting"], d["env_unicode"]) == (None, None), d
    port = start(w, {"type": "php", "root": root, "environment": {
        "GREETING": "hi there", "UNICODE_ONE": "Zürich"},
        "options": {"admin": {"variables_order": "EGPCS"}}}, name="envs")
    r = get(port, "/env.php")
    d = json.loads(r.body)
    assert (d["env_greeting"], d["env_unicode"]) == ("hi there", "Zürich"), d


# ------------------------------------------------------------------ bodies

def test_post_urlencoded(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    body = "a=1&b=hello+world&arr%5B%5D=x&arr%5B%5D=y&m%5Bk%5D=v&u=Z%C3%BCrich"
    r, d = dump(port, "/dump.php?g=1", method="POST", body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert d["post"] == {"a": "1", "b": "hello world", "arr": ["x", "y"], "m": {"k": "v"},
                         "u": "Zürich"}, d["post"]
    assert d["get"] == {"g": "1"}
    assert d["server"]["CONTENT_LENGTH"] == str(len(body))


def test_post_multipart_with_file_uploads(php):
    w, root = php
    updir = hh.make_root("warren-php-up-")
    os.chmod(updir, 0o777)
    try:
        port = start(w, {"type": "php", "root": root, "environment": {"UPLOAD_DIR": updir}})
        big = os.urandom(1900000)       # under upload_max_filesize (2M by default)
        small = b"hello, upload\n"
        body, ctype = multipart({"name": "Ada", "city": "Zürich"},
                                {"doc": ("report.bin", "application/octet-stream", big),
                                 "note": ("note.txt", "text/plain", small)})
        r = get(port, "/upload.php", method="POST", body=body, headers={"Content-Type": ctype})
        assert r.status == 200, r
        d = json.loads(r.body)
        assert d["post"] == {"name": "Ada", "city": "Zürich"}, d
        doc_dest = os.path.join(updir, "doc-report.bin")
        note_dest = os.path.join(updir, "note-note.txt")
        assert d["files"] == {
            "doc": {"name": "report.bin", "type": "application/octet-stream", "size": len(big),
                    "error": 0, "is_uploaded": True, "moved": True, "dest": doc_dest,
                    "dest_size": len(big), "md5": hashlib.md5(big).hexdigest()},
            "note": {"name": "note.txt", "type": "text/plain", "size": len(small),
                     "error": 0, "is_uploaded": True, "moved": True, "dest": note_dest,
                     "dest_size": len(small), "md5": hashlib.md5(small).hexdigest()},
        }, d
        with open(doc_dest, "rb") as f:
            assert f.read() == big
        with open(note_dest, "rb") as f:
            assert f.read() == small
        # Written by the worker, which runs as nobody by default.
        assert os.stat(doc_dest).st_uid == wh.NOBODY_UID
    finally:
        shutil.rmtree(updir, ignore_errors=True)


def test_php_input_of_one_megabyte(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    body = os.urandom(1 << 20)
    r = get(port, "/input.php", method="POST", body=body,
            headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    md5 = hashlib.md5(body).hexdigest()
    assert json.loads(r.body) == {"len": 1 << 20, "md5": md5, "again": md5,
                                  "content_length": str(1 << 20),
                                  "content_type": "application/octet-stream", "post": {}}
    # Larger (post_max_size is 8M by default): streamed whole.
    big = os.urandom(5 << 20)
    r = get(port, "/input.php", method="POST", body=big,
            headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["len"], d["md5"], d["content_length"]) == (
        5 << 20, hashlib.md5(big).hexdigest(), str(5 << 20)), d
    # Chunked: no Content-Length, the whole body all the same.
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100000]), body[i:i + 100000])
                      for i in range(0, len(body), 100000)) + b"0\r\n\r\n"
    r = get(port, "/input.php", method="POST", body=chunks,
            headers={"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["len"], d["md5"]) == (1 << 20, md5), d


# ------------------------------------------------------------------ cookies and response

def test_cookies_in_and_set_cookie_out(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r = get(port, "/cookies.php", headers={"Cookie": "a=1; b=hello%20world; c=3"})
    assert r.status == 200, r
    assert json.loads(r.body) == {"a": "1", "b": "hello world", "c": "3"}
    assert r.all("Set-Cookie") == ["x=1", "y=two%20words; path=/p; HttpOnly"], r.headers
    r = get(port, "/cookies.php")
    assert json.loads(r.body) == {}


def test_http_response_code(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    for code in (201, 404, 503):
        r = get(port, "/code.php?code=%d" % code)
        assert (r.status, r.body, r.header("X-Seen-Code")) == (
            code, b"code body %d" % code, str(code)), r


def test_location_header_redirects(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r = get(port, "/redirect.php")
    assert (r.status, r.header("Location")) == (302, "/elsewhere?from=php"), r
    r = get(port, "/redirect301.php")
    assert (r.status, r.header("Location"), r.body) == (
        301, "https://example.test/moved", b"moved"), r


def test_default_content_type_and_headers(php):
    w, root = php
    port = start(w, {"type": "php", "root": root})
    r = get(port, "/ctype.php")
    assert (r.status, r.body) == (200, b"<p>hello</p>"), r
    assert r.header("Content-Type") == "text/html; charset=UTF-8", r.headers
    assert r.all("Content-Type") == ["text/html; charset=UTF-8"], r.headers
    assert r.header("X-Custom") == "custom value", r.headers


BIG_BODY = b"".join(b"%07d\n" % i for i in range(BIG_LINES))


def test_two_megabytes_of_output_arrive_whole(php):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    assert len(BIG_BODY) == 2 * 1024 * 1024
    for target in ("/big.php?flush=1", "/big.php"):
        r = get(port, target)
        assert r.status == 200, r
        assert len(r.body) == len(BIG_BODY), (target, len(r.body))
        assert r.body == BIG_BODY, target
    # The worker is fine afterwards.
    assert get(port, "/pid.php").status == 200


def flush_check(port, target, go):
    """The first part arrives while the script still waits for go to exist,
    without the second; then the whole response."""
    with hh.Conn(port, timeout=10) as c:
        c.send(hh.build("GET", target + "?go=" + go))
        while b"first-part" not in c.buf:
            assert c._fill(), c.buf
        early = bytes(c.buf)
        with open(go, "w"):
            pass
        r = c.read_response()
    assert b"second-part" not in early, early
    assert (r.status, r.body) == (200, b"first-part\nsecond-part\n"), r


def test_flush_pushes_output_out(php):
    """ob_flush() + flush(), PHP's way with an output buffer (Debian's
    php.ini has output_buffering 4096): the part reaches the client while
    the script goes on."""
    w, root = php
    port = start(w, {"type": "php", "root": root})
    flush_check(port, "/flushy.php", os.path.join(root, "go-1"))


def test_flush_pushes_output_out_without_output_buffers(php):
    """The runtime's own flush: with PHP's output buffers ended first, what
    flush() hands the SAPI reaches the client at once."""
    w, root = php
    hh.write(root, "flushy_ob.php", FLUSHY.replace(
        "OB_FLUSH", "").replace("echo \"first-part", "while (ob_get_level()) ob_end_flush();\necho \"first-part"))
    port = start(w, {"type": "php", "root": root})
    flush_check(port, "/flushy_ob.php", os.path.join(root, "go-2"))


def test_exit_and_die_end_normally(php):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    pid = get(port, "/pid.php").body
    r = get(port, "/exit.php")
    assert (r.status, r.body, r.header("X-Exit")) == (200, b"before exit", "yes"), r
    r = get(port, "/die.php")
    assert (r.status, r.body) == (200, b"about to die"), r
    assert get(port, "/pid.php").body == pid


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("script,message", [
    ("fatal.php", "Call to undefined function undefined_function_warren_xyz()"),
    ("parse.php", "syntax error"),
    ("exception.php", "kaboom-warren-42"),
    ("memory.php", "Allowed memory size of 16777216 bytes exhausted"),
])
def test_errors_answer_500_and_the_worker_serves_on(php, script, message):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    r = get(port, "/pid.php")
    assert r.status == 200, r
    pid = r.body
    assert int(pid) in w.app_processes()[1], (pid, w.app_processes())
    for _ in range(2):
        r = get(port, "/" + script)
        assert r.status == 500, r
        # The same worker answers the next request, cleanly.
        r = get(port, "/pid.php")
        assert (r.status, r.body) == (200, pid), r
        assert r.header("X-Leak") is None, r.headers
        assert r.header("Content-Type") == "text/plain;charset=UTF-8", r.headers
    r = get(port, "/memory_limit.php")
    assert (r.status, r.body) == (200, b"128M"), r
    # The message went to the app's stderr: Warren's log.
    assert w.log_has(message), w.log()[-3000:]


# ------------------------------------------------------------------ options

def test_options_admin_and_user(php):
    w, root = php
    port = start(w, {"type": "php 8.2", "root": root, "processes": 1, "options": {
        "admin": {"memory_limit": "64M", "default_socket_timeout": "17"},
        "user": {"precision": "9", "arg_separator.output": ";"}}})
    configured = {"memory_limit": "64M", "default_socket_timeout": "17", "precision": "9",
                  "arg_separator.output": ";"}
    r = get(port, "/opts.php")
    assert r.status == 200, r
    d = json.loads(r.body)
    pid = d["pid"]
    assert d == {"pid": pid, "before": configured, "third_before": "0.333333333"}, d
    # ini_set: refused for admin values, allowed for user values.
    r = get(port, "/opts.php?set=1")
    d = json.loads(r.body)
    assert d["pid"] == pid
    assert d["before"] == configured, d
    assert (d["set_admin"], d["set_admin2"]) == (False, False), d
    assert (d["set_user"], d["set_user2"]) == ("9", ";"), d
    assert d["after"] == {"memory_limit": "64M", "default_socket_timeout": "17",
                          "precision": "3", "arg_separator.output": "|"}, d
    assert d["third_after"] == "0.333", d
    # The next request (same worker) sees the configured values again.
    r = get(port, "/opts.php")
    d = json.loads(r.body)
    assert d == {"pid": pid, "before": configured, "third_before": "0.333333333"}, d


PHP_INI = '''; written by test_php.py
precision = 7
date.timezone = "Pacific/Chatham"
memory_limit = 77M
'''


def test_options_file_replaces_the_default_php_ini(php):
    w, root = php
    ini = hh.write(root, "conf/custom-php.ini", PHP_INI)
    port = wh.free_port()
    hh.setup(w, [{"match": {"uri": "/default/*"}, "action": {"pass": "applications/plain"}},
                 {"action": {"pass": "applications/custom"}}], port=port, extra={
        "applications": {
            "custom": {"type": "php", "root": root, "options": {"file": ini}},
            "plain": {"type": "php", "root": root, "script": "ini.php"}}})
    r = get(port, "/ini.php")
    assert r.status == 200, r
    d = json.loads(r.body)
    # Only this file: session.gc_probability is PHP's built-in 1 (Debian's
    # php.ini sets 0), the loaded file is ours.
    loaded = d.pop("loaded")
    assert d == {"precision": "7", "third": "0.3333333", "timezone_ini": "Pacific/Chatham",
                 "timezone": "Pacific/Chatham", "memory_limit": "77M", "gc_probability": "1"}, d
    assert loaded == ini, loaded
    r = get(port, "/default/x")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["precision"], d["third"], d["timezone"]) == ("14", "0.33333333333333", "UTC"), d
    assert d["loaded"] != ini, d


def test_missing_options_file_fails_the_put_and_the_old_config_serves(php):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    r = get(port, "/pid.php")
    assert r.status == 200, r
    before = w.config_bytes()
    missing = os.path.join(root, "conf", "no-such-php.ini")
    cfg = json.loads(before)
    cfg["applications"]["site"]["options"] = {"file": missing}
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert isinstance(j.get("detail"), str) and missing in j["detail"], j
    assert w.config_bytes() == before
    r = get(port, "/pid.php")
    assert r.status == 200, r
    r, d = dump(port, "/dump.php")
    assert d["server"]["SCRIPT_NAME"] == "/dump.php"
    # A new app with the missing file: refused the same way.
    cfg = json.loads(before)
    cfg["applications"]["other"] = {"type": "php", "root": root, "options": {"file": missing}}
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert isinstance(j.get("detail"), str) and missing in j["detail"], j
    assert w.config_bytes() == before
    assert get(port, "/pid.php").status == 200


@pytest.mark.parametrize("case", ["root", "script", "target-root"])
def test_missing_root_or_script_fails_the_put(php, case):
    """A root that is not a directory or a script that is not a file stops
    the worker before it starts: 500 naming the path and the cause, the
    running configuration kept."""
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 1})
    before = w.config_bytes()
    cfg = json.loads(before)
    gone = os.path.join(root, "no-such-dir")
    app = {"root": {"type": "php", "root": gone},
           "script": {"type": "php", "root": root, "script": "no-such.php"},
           "target-root": {"type": "php", "targets": {"a": {"root": root},
                                                      "b": {"root": gone}}}}[case]
    cfg["applications"]["bad"] = app
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    want = os.path.join(root, "no-such.php") if case == "script" else gone
    assert want in j.get("detail", "") and "No such file or directory" in j["detail"], j
    assert w.config_bytes() == before
    assert get(port, "/pid.php").status == 200


# ------------------------------------------------------------------ targets, processes

def test_targets_with_two_roots(php):
    w, root = php
    ra = hh.make_root("warren-php-a-")
    rb = hh.make_root("warren-php-b-")
    try:
        hh.write(ra, "front.php", DUMP)
        hh.write(ra, "other.php", DUMP)
        hh.write(ra, "only-a.php", DUMP)
        hh.write(rb, "main.php", DUMP)
        hh.write(rb, "page.php", DUMP)
        hh.write(rb, "sub/main.php", DUMP)
        port = hh.setup(w, [
            {"match": {"uri": "/a/*"}, "action": {"pass": "applications/multi/a"}},
            {"action": {"pass": "applications/multi/b"}}], extra={
            "applications": {"multi": {"type": "php", "processes": 1, "targets": {
                "a": {"root": ra, "script": "front.php"},
                "b": {"root": rb, "index": "main.php"}}}}})
        for target in ("/a/", "/a/other.php", "/a/x/y?z=1"):
            r, d = dump(port, target)
            s = d["server"]
            assert d["file"] == os.path.join(ra, "front.php"), (target, d)
            assert (s["SCRIPT_NAME"], s["SCRIPT_FILENAME"], s["DOCUMENT_ROOT"]) == (
                "/front.php", os.path.join(ra, "front.php"), ra), (target, s)
            assert "PATH_INFO" not in s, (target, s)
        r, d = dump(port, "/")
        s = d["server"]
        assert (d["file"], s["SCRIPT_NAME"], s["DOCUMENT_ROOT"]) == (
            os.path.join(rb, "main.php"), "/main.php", rb), s
        r, d = dump(port, "/sub/")
        assert d["file"] == os.path.join(rb, "sub", "main.php")
        r, d = dump(port, "/page.php/more")
        s = d["server"]
        assert (d["file"], s["SCRIPT_NAME"], s["PATH_INFO"], s["PHP_SELF"]) == (
            os.path.join(rb, "page.php"), "/page.php", "/more", "/page.php/more"), s
        r = get(port, "/sub")
        assert (r.status, r.header("Location")) == (301, "/sub/"), r
        # Files of the other target's root are not reachable.
        assert get(port, "/only-a.php").status == 404
        assert get(port, "/front.php").status == 404
        # Nor those of the main site root.
        assert get(port, "/pid.php").status == 404
    finally:
        shutil.rmtree(ra, ignore_errors=True)
        shutil.rmtree(rb, ignore_errors=True)


def test_two_processes_serve_with_two_pids(php):
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 2})

    def one(_):
        r = get(port, "/slow_pid.php")
        assert r.status == 200, r
        return int(r.body)

    pids = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for _ in range(6):
            pids += list(ex.map(one, range(2)))
    pids += [int(get(port, "/pid.php").body) for _ in range(20)]
    assert len(set(pids)) == 2, pids
    workers = w.app_processes()[1]
    assert set(pids) <= workers, (pids, workers)


def test_basic_authorization_fills_php_auth(php):
    """Authorization: Basic gives PHP_AUTH_USER and PHP_AUTH_PW (PHP's own
    parsing, fed by the runtime); without it neither is set."""
    w, root = php
    port = start(w, {"type": "php", "root": root})
    cred = base64.b64encode("ann:s3cr:et".encode()).decode()
    r, d = dump(port, "/dump.php", headers={"Authorization": "Basic " + cred})
    s = d["server"]
    assert (s.get("PHP_AUTH_USER"), s.get("PHP_AUTH_PW")) == ("ann", "s3cr:et"), s
    assert s["HTTP_AUTHORIZATION"] == "Basic " + cred
    r, d = dump(port, "/dump.php")
    assert "PHP_AUTH_USER" not in d["server"] and "PHP_AUTH_PW" not in d["server"]


FINISH = '''<?php
header("X-Before: 1");
echo "answered";
$ok = fastcgi_finish_request();
echo "dropped";                      // no client any more
header("X-After: 1");                // too late, and no error for it
for ($i = 0; $i < 500 && !file_exists($_GET["go"]); $i++) usleep(10000);
file_put_contents($_GET["mark"], json_encode([$ok, fastcgi_finish_request(), getmypid()]));
'''


def test_fastcgi_finish_request_ends_the_response_and_the_script_goes_on(php):
    """php-fpm's fastcgi_finish_request(): the client has the whole response
    while the script still runs (it waits for the test's go file); what it
    prints after is dropped; a second call returns false."""
    w, root = php
    hh.write(root, "finish.php", FINISH)
    port = start(w, {"type": "php", "root": root, "processes": 1})
    out = os.path.join(root, "out")              # the worker (nobody) writes there
    os.mkdir(out)
    os.chmod(out, 0o777)
    go, mark = os.path.join(out, "go"), os.path.join(out, "mark")
    r = get(port, "/finish.php?go=%s&mark=%s" % (go, mark))
    assert (r.status, r.body, r.header("X-Before"), r.header("X-After")) == \
        (200, b"answered", "1", None), r
    assert not os.path.exists(mark)          # the script is still waiting
    with open(go, "w"):
        pass
    assert wh.wait_for(lambda: os.path.exists(mark) and os.path.getsize(mark) > 0, 10.0)
    ok, again, pid = json.loads(open(mark).read())
    assert (ok, again) == (True, False)
    assert get(port, "/pid.php").body == str(pid).encode()


OPCACHE = '''<?php
$s = opcache_get_status(false);
header("Content-Type: application/json");
echo json_encode(["pid" => getmypid(), "sapi" => php_sapi_name(),
                  "on" => $s ? $s["opcache_enabled"] : false,
                  "start" => $s ? $s["opcache_statistics"]["start_time"] : null]);
'''


def test_workers_share_one_opcache(php):
    """Workers are forked from one started PHP (the zygote), as php-fpm's
    are from its master: opcache is on (PHP keeps it off for SAPI names it
    does not know; Warren's is "cli-server", as under Unit) and its shared
    memory is one for all workers: the same start time in each."""
    w, root = php
    hh.write(root, "opcache.php", OPCACHE)
    port = start(w, {"type": "php", "root": root, "processes": 2})
    seen = {}
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for _ in range(10):
            for r in ex.map(lambda _: get(port, "/opcache.php"), range(8)):
                d = json.loads(r.body)
                seen[d["pid"]] = d
            if len(seen) == 2:
                break
    assert len(seen) == 2, seen
    a, b = seen.values()
    assert (a["sapi"], a["on"]) == ("cli-server", True), a
    assert a["start"] == b["start"], seen
    zygotes = [p for p in wh.descendants(w.main_pid) if wh.is_zygote(p)]
    assert len(zygotes) == 1, zygotes
    protos, workers = w.app_processes()
    assert workers == set(seen), (workers, seen)


HANG = '''<?php
// says it started (?mark=FILE), then waits for a file that never comes
// (at most 30 s)
if (isset($_GET["mark"])) file_put_contents($_GET["mark"], getmypid());
for ($i = 0; $i < 3000 && !file_exists("/nonexistent/go"); $i++) usleep(10000);
echo "late";
'''


def php_workers(w):
    return w.app_processes()[1]


def test_hung_script_times_out_and_the_worker_is_replaced(php):
    """limits.timeout: the hung request is answered 503, its worker killed and
    a new one forked from the same zygote serves the next request."""
    w, root = php
    hh.write(root, "hang.php", HANG)
    port = start(w, {"type": "php", "root": root, "processes": 1, "limits": {"timeout": 1}})
    first = get(port, "/pid.php").body
    [zygote] = [p for p in wh.descendants(w.main_pid) if wh.is_zygote(p)]
    assert get(port, "/hang.php").status == 503
    assert wh.wait_for(lambda: str(first.decode()) not in map(str, php_workers(w)), 10.0)
    r = get(port, "/pid.php")
    assert r.status == 200 and r.body != first, (r, first)
    assert [p for p in wh.descendants(w.main_pid) if wh.is_zygote(p)] == [zygote]


def test_worker_killed_mid_request_is_replaced_and_restart_makes_a_new_zygote(php):
    """kill -9 of a worker running a script: that request fails (502/503),
    the worker is replaced from the zygote; a restart starts a new
    generation, with a new zygote."""
    w, root = php
    hh.write(root, "hang.php", HANG)
    port = start(w, {"type": "php", "root": root, "processes": 1})
    pid = int(get(port, "/pid.php").body)
    [zygote] = [p for p in wh.descendants(w.main_pid) if wh.is_zygote(p)]
    out = os.path.join(root, "out-kill")           # the worker (nobody) writes there
    os.mkdir(out)
    os.chmod(out, 0o777)
    mark = os.path.join(out, "started")
    with hh.Conn(port, timeout=15) as c:
        c.send(hh.build("GET", "/hang.php?mark=" + mark))
        assert wh.wait_for(lambda: os.path.exists(mark) and os.path.getsize(mark) > 0, 10.0)
        assert int(open(mark).read()) == pid
        os.kill(pid, 9)
        r = c.read_response()
    assert r.status in (502, 503), r
    r = get(port, "/pid.php")
    assert r.status == 200 and int(r.body) != pid, r
    assert [p for p in wh.descendants(w.main_pid) if wh.is_zygote(p)] == [zygote]
    s, j = w.get("/control/applications/site/restart")
    assert (s, j) == (200, {"success": "Ok"}), j
    assert wh.wait_for(lambda: [p for p in wh.descendants(w.main_pid)
                                if wh.is_zygote(p)] not in ([], [zygote]), 10.0)
    assert get(port, "/pid.php").status == 200


def test_relative_root_is_taken_from_the_working_directory(php):
    """A relative root is resolved against working_directory once, at start
    (PHP then changes directory to each script's)."""
    w, root = php
    parent, base = os.path.split(root)
    port = start(w, {"type": "php", "root": base, "working_directory": parent})
    for _ in range(2):                   # the second after a chdir into sub/
        r, d = dump(port, "/sub/info.php")
        assert d["server"]["DOCUMENT_ROOT"] == root, d["server"]
        assert d["server"]["SCRIPT_FILENAME"] == os.path.join(root, "sub", "info.php")
    r, d = dump(port, "/dump.php")
    assert d["server"]["SCRIPT_FILENAME"] == os.path.join(root, "dump.php")


def test_share_with_fallback_to_a_front_controller(php):
    """The routing docs/applications.md gives a PHP site (as with Unit): PHP
    paths to the "direct" target, other files from a share, anything else
    to the front controller ("front" target, script index.php)."""
    w, root = php
    hh.write(root, "index.php", '<?php echo "front:", $_SERVER["REQUEST_URI"], ":", '
                                '$_SERVER["SCRIPT_NAME"];')
    hh.write(root, "page.php", '<?php echo "direct:", $_SERVER["SCRIPT_NAME"], ":", '
                               '$_SERVER["PATH_INFO"] ?? "-";')
    hh.write(root, "style.css", "body{}")
    share = root + "$uri"
    port = hh.setup(w, [
        {"match": {"uri": ["*.php", "*.php/*", "*/"]},
         "action": {"pass": "applications/site/direct"}},
        {"action": {"share": share, "fallback": {"pass": "applications/site/front"}}},
    ], extra={"applications": {"site": {"type": "php", "targets": {
        "direct": {"root": root},
        "front": {"root": root, "script": "index.php"}}}}})
    assert get(port, "/page.php/x").body == b"direct:/page.php:/x"
    assert get(port, "/").body == b"front:/:/index.php"       # "/" + index, direct
    r = get(port, "/style.css")
    assert (r.status, r.body) == (200, b"body{}"), r
    assert get(port, "/blog/2024/hello?p=1").body == b"front:/blog/2024/hello?p=1:/index.php"


def test_status_counts_the_workers_not_the_zygote(php):
    """/status/applications/NAME for a PHP app: the two workers are the
    processes running; the zygote they are forked from is not counted."""
    w, root = php
    port = start(w, {"type": "php", "root": root, "processes": 2})
    assert get(port, "/pid.php").status == 200
    assert wh.wait_for(lambda: len(php_workers(w)) == 2, 10.0)

    def processes():
        s, j = w.get("/status/applications/site")
        assert s == 200, j
        return j["processes"]
    # The PUT answers once the first worker is ready; the second one is
    # "starting" (forked, not ready yet) for a moment. Counting the zygote
    # would make it 3 running once both are.
    assert wh.wait_for(lambda: processes()["starting"] == 0, 10.0), processes()
    assert processes()["running"] == 2, processes()
    s, j = w.get("/status/applications/site")
    assert j["requests"]["active"] == 0, j


SESSION = '''<?php
session_start();
$_SESSION["n"] = ($_SESSION["n"] ?? 0) + 1;
echo $_SESSION["n"];
'''


def test_sessions_persist_across_requests_and_workers(php):
    """PHP's file sessions (here in a directory of the test's, set by
    options.user): the counter grows across requests, whichever of the two
    workers serves them; a client without the cookie starts over."""
    w, root = php
    hh.write(root, "session.php", SESSION)
    store = os.path.join(root, "sessions")
    os.mkdir(store)
    os.chmod(store, 0o1733)                   # as Debian's /var/lib/php/sessions
    port = start(w, {"type": "php", "root": root, "processes": 2,
                     "options": {"user": {"session.save_path": store}}})
    r = get(port, "/session.php")
    assert (r.status, r.body) == (200, b"1"), r
    cookie = r.header("Set-Cookie").split(";", 1)[0]
    assert cookie.startswith("PHPSESSID="), cookie
    for n in range(2, 8):
        r = get(port, "/session.php", headers={"Cookie": cookie})
        assert (r.status, r.body) == (200, str(n).encode()), (n, r)
    assert get(port, "/session.php").body == b"1"
    assert os.path.exists(os.path.join(store, "sess_" + cookie.split("=", 1)[1]))
