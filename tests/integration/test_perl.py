"""Perl PSGI applications (`"type": "perl"`) run by warrend through
build/warren-perl (Debian's libperl 5.36 embedded), end to end.

Every test starts a real warrend whose --modulesdir holds a copy of
build/warren-perl (wh.runtimes_modulesdir: a missing runtime fails the
tests, it does not skip them; WARREN_PERL_BIN picks another build), writes
its .psgi scripts (core Perl modules only: no Plack) into a temp dir user
nobody can read, PUTs the config on the control socket and talks HTTP to the
listener:

  - loading: the script is loaded once, by the prototype, and the workers
    are forked from that image (a script-level `my $loaded = $$`); an
    object with a `call` method is an application too; "perl 5" and
    "perl 5.36" are the same type; a replaced worker is forked again, the
    script not run again;
  - a script that cannot load (missing, syntax error, not a code
    reference, die at load) fails the PUT with 500 and the cause in
    "detail", the running configuration serving on;
  - the PSGI env (compared key by key), psgi.url_scheme over TLS;
  - psgi.input: 4 MiB read 64 KiB at a time, with Content-Length and
    chunked, byte-exact;
  - responses: status, Location, repeated headers, a file handle body, a
    getline/close object (close called, also when the client leaves),
    delayed and streaming responses (chunked, 8 MiB to a slow reader, a
    client that leaves), HEAD;
  - errors: die while serving and invalid responses (not an array, too
    short, odd headers, a CR LF in a value, a wide character ...) give 500
    and a log line, the same worker serves on; psgi.errors and warn reach
    the log;
  - environment, working_directory, processes, restart, threads (two
    requests at once in one worker; every kind of response through
    interpreter clones);
  - validation: no "script", threads out of 1..64.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import socket
import time

import pytest

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

MiB = 1024 * 1024
WAIT_S = 10.0          # bounds a wait that should end at once

# ------------------------------------------------------------------ scripts

# The test application: dispatches on PATH_INFO.
APP = r'''# The test application of tests/integration/test_perl.py: core modules only.
use strict;
use warnings;
use Cwd ();
use Digest::SHA ();
use File::Basename ();
use JSON::PP ();

my $loaded = $$;                         # the process that loaded the script
my $here = File::Basename::dirname(__FILE__);
my $JSON = JSON::PP->new->canonical->utf8;
my %BOOL = map { $_ => 1 } qw(psgi.multithread psgi.multiprocess psgi.run_once
                              psgi.nonblocking psgi.streaming);

# Each load leaves a line in out/loads: the script is loaded once per generation.
if (open my $fh, '>>', "$here/out/loads") {
    print $fh "$$\n";
    close $fh;
}

sub query {
    my %q;
    for my $pair (split /&/, $_[0]->{QUERY_STRING} // '') {
        my ($k, $v) = split /=/, $pair, 2;
        $v = '' unless defined $v;
        for ($k, $v) { tr/+/ /; s/%([0-9A-Fa-f]{2})/chr hex $1/ge; }
        $q{$k} = $v;
    }
    return \%q;
}

sub json_response {
    my ($code, $data) = @_;
    return [$code, ['Content-Type' => 'application/json'], [$JSON->encode($data)]];
}

sub env_dump {
    my $env = shift;
    my %out;
    for my $k (keys %$env) {
        my $v = $env->{$k};
        if ($BOOL{$k}) {
            $out{$k} = $v ? JSON::PP::true : JSON::PP::false;
        } elsif ($k eq 'psgi.version') {
            $out{$k} = ref $v eq 'ARRAY' ? [map { 0 + $_ } @$v] : "NOT-AN-ARRAY:$v";
        } elsif (!ref $v) {
            $out{$k} = $v;
        } else {
            $out{$k} = 'REF:' . ref $v;
        }
    }
    my $in = $env->{'psgi.input'};
    my $err = $env->{'psgi.errors'};
    $out{'x.input_can_read'} = (ref $in && eval { $in->can('read') }) ? JSON::PP::true : JSON::PP::false;
    $out{'x.errors_can_print'} = (ref $err && eval { $err->can('print') }) ? JSON::PP::true : JSON::PP::false;
    $out{'x.pid'} = $$;
    $out{'x.loaded'} = $loaded;
    return \%out;
}

# A body object: getline until undef, then close (which leaves a marker file).
package LineBody {
    sub new {
        my ($class, $n, $marker) = @_;
        return bless { i => 0, n => $n, marker => $marker }, $class;
    }
    sub getline {
        my $self = shift;
        return undef if $self->{i} >= $self->{n};
        $self->{i}++;
        return "line $self->{i} of $self->{n}\n";
    }
    sub close {
        my $self = shift;
        open my $fh, '>', $self->{marker} or die "cannot write $self->{marker}: $!";
        print $fh "closed after $self->{i}";
        close $fh;
    }
}

sub stream_line { sprintf "%07d\n", $_[0] }

my %ROUTES = (
    '/env' => sub { json_response(200, env_dump($_[0])) },

    '/pid' => sub {
        [200, ['Content-Type' => 'application/json'], [$JSON->encode({pid => $$, loaded => $loaded})]];
    },

    # Slow on purpose, so that concurrent requests spread over the workers.
    '/slowpid' => sub {
        select undef, undef, undef, 0.3;
        [200, ['Content-Type' => 'application/json'], [$JSON->encode({pid => $$, loaded => $loaded})]];
    },

    '/hello' => sub {
        [200, ['Content-Type' => 'text/plain', 'X-Hello' => 'yes', 'Content-Length' => 12],
         ["hello world\n"]];
    },

    '/options' => sub {
        json_response(200, {foo => $ENV{FOO}, cwd => Cwd::getcwd(), pid => $$});
    },

    # The body, read with read($buf, 65536, $offset) appending to $buf.
    '/echo' => sub {
        my $env = shift;
        my $in = $env->{'psgi.input'};
        my $body = '';
        while (1) {
            my $n = $in->read($body, 65536, length $body);
            die "read failed: $!" unless defined $n;
            last if $n == 0;
        }
        [200, ['Content-Type' => 'application/octet-stream'], [$body]];
    },

    # The body in one read of CONTENT_LENGTH bytes, as many PSGI apps do.
    '/readall' => sub {
        my $env = shift;
        my $n = $env->{'psgi.input'}->read(my $body, $env->{CONTENT_LENGTH});
        my $more = $env->{'psgi.input'}->read(my $rest, 1);
        [200, ['Content-Type' => 'text/plain'], ["$n:$more:", Digest::SHA::sha256_hex($body)]];
    },

    # The body, read into a fresh buffer 64 KiB at a time: what read returned.
    '/sha' => sub {
        my $env = shift;
        my $in = $env->{'psgi.input'};
        my $sha = Digest::SHA->new(256);
        my ($len, $count, $min, $max) = (0, 0, undef, 0);
        while (1) {
            my $buf;
            my $n = $in->read($buf, 65536);
            die "read failed: $!" unless defined $n;
            last if $n == 0;
            die "read said $n but gave " . length($buf) unless length($buf) == $n;
            $sha->add($buf);
            $len += $n;
            $count++;
            $min = $n if !defined $min || $n < $min;
            $max = $n if $n > $max;
        }
        my $buf = 'untouched';
        my $again = $in->read($buf, 65536);
        json_response(200, {len => $len, sha256 => $sha->hexdigest, reads => $count,
                            min => $min, max => $max, again => $again,
                            content_length => $env->{CONTENT_LENGTH}});
    },

    '/notfound' => sub { [404, ['Content-Type' => 'text/plain'], ['no such thing']] },

    '/redirect' => sub { [302, ['Location' => '/elsewhere?from=perl'], []] },

    '/cookies' => sub {
        [200, ['Content-Type' => 'text/plain', 'Set-Cookie' => 'a=1; Path=/',
               'Set-Cookie' => 'b=2; HttpOnly', 'X-Several' => 'one'],
         ['two', ' cookies']];
    },

    '/file' => sub {
        my $q = query($_[0]);
        open my $fh, '<', $q->{path} or die "cannot open $q->{path}: $!";
        binmode $fh;
        [200, ['Content-Type' => 'application/octet-stream'], $fh];
    },

    '/getline' => sub {
        my $q = query($_[0]);
        [200, ['Content-Type' => 'text/plain'], LineBody->new($q->{n}, $q->{marker})];
    },

    '/delayed' => sub {
        my $env = shift;
        return sub {
            my $responder = shift;
            $responder->([201, ['Content-Type' => 'text/plain', 'X-Delayed' => 'yes'],
                          ['delayed ', 'body']]);
        };
    },

    # lines=N lines of 8 bytes ("%07d\n"), written per=P lines at a time.
    '/stream' => sub {
        my $q = query($_[0]);
        my ($lines, $per) = ($q->{lines}, $q->{per} || 8192);
        return sub {
            my $responder = shift;
            my $w = $responder->([200, ['Content-Type' => 'text/plain', 'X-Streamed' => 'yes']]);
            for (my $i = 0; $i < $lines; $i += $per) {
                my $end = $i + $per < $lines ? $i + $per : $lines;
                $w->write(join '', map { stream_line($_) } $i .. $end - 1);
                $w->write('') if $q->{empty};
            }
            $w->close;
        };
    },

    '/die' => sub { die "perl-died-marker-4711\n" },

    '/invalid/string' => sub { "a string" },
    '/invalid/short' => sub { [200] },
    '/invalid/odd-headers' => sub { [200, ['X-Alone'], ['body']] },
    '/invalid/body-string' => sub { [200, ['Content-Type' => 'text/plain'], 'not an array'] },
    '/invalid/wide' => sub { [200, ['Content-Type' => 'text/plain'], ["wide \x{263A}"]] },
    '/invalid/delayed' => sub { sub { $_[0]->("a string") } },

    '/invalid/header-crlf' => sub {
        [200, ['Content-Type' => 'text/plain', 'X-Value' => "a\r\nX-Injected: 1"], ['body']];
    },

    # Empty strings among the body's parts (an empty chunk must not end a
    # chunked response).
    '/empties' => sub { [200, ['Content-Type' => 'text/plain'], ['', 'one', '', '', 'two', '']] },

    # An in-memory filehandle: no fd, read with getline.
    '/memfh' => sub {
        my $q = query($_[0]);
        my $text = join '', map { "memory line $_\n" } 1 .. $q->{n};
        open my $fh, '<', \$text or die "open scalar: $!";
        [200, ['Content-Type' => 'text/plain'], $fh];
    },

    '/die-delayed' => sub { sub { die "delayed-died-marker-4712\n" } },

    '/errors' => sub {
        my $env = shift;
        $env->{'psgi.errors'}->print("psgi-errors-marker-1234\n");
        warn "warn-marker-5678\n";
        [200, ['Content-Type' => 'text/plain'], ['logged']];
    },

    # As the spec puts it: print without a newline.
    '/errors-partial' => sub {
        $_[0]->{'psgi.errors'}->print("partial-marker-999");
        [200, ['Content-Type' => 'text/plain'], ['logged']];
    },

    # A line printed in pieces, then a piece no newline ends.
    '/errors-pieces' => sub {
        my $m = $_[0]->{QUERY_STRING};
        my $err = $_[0]->{'psgi.errors'};
        $err->print("$m-a ");
        $err->printf("%s-b %s-c\n%s-tail", $m, $m, $m);
        [200, ['Content-Type' => 'text/plain'], ['logged']];
    },

    # read($buf, $len, $offset) past the end of $buf pads it with "\0", as
    # Perl's read does.
    '/offset' => sub {
        my $in = $_[0]->{'psgi.input'};
        my $buf = 'ab';
        my $n = $in->read($buf, 3, 5);
        my $m = $in->read(my $undef_buf, 100);
        [200, ['Content-Type' => 'text/plain'],
         [join ':', $n, unpack('H*', $buf), $m, defined $undef_buf ? $undef_buf : 'undef']];
    },

    # Threads: /wait says it started (file ?started=), then waits up to 10 s
    # for ?file= to exist; /create makes it.
    '/wait' => sub {
        my $q = query($_[0]);
        open my $fh, '>', $q->{started} or die "cannot write $q->{started}: $!";
        print $fh $$;
        close $fh;
        my $found = 0;
        for (1 .. 1000) {
            if (-e $q->{file}) { $found = 1; last }
            select undef, undef, undef, 0.01;
        }
        json_response(200, {pid => $$, found => $found ? JSON::PP::true : JSON::PP::false});
    },

    '/create' => sub {
        my $q = query($_[0]);
        open my $fh, '>', $q->{file} or die "cannot write $q->{file}: $!";
        close $fh;
        json_response(200, {pid => $$});
    },
);

my $app = sub {
    my $env = shift;
    my $path = $env->{PATH_INFO};
    return $ROUTES{'/env'}->($env) if $path =~ m{^/env(/|$)};
    my $h = $ROUTES{$path};
    return [404, ['Content-Type' => 'text/plain'], ["no route $path"]] unless $h;
    return $h->($env);
};

$app;
'''

# An object with a `call` method is an application too.
OBJECT_APP = r'''package My::ObjectApp;
sub new { my ($class, %args) = @_; return bless {%args}, $class }
sub call {
    my ($self, $env) = @_;
    return [200, ['Content-Type' => 'text/plain'], ["$self->{greeting} $env->{PATH_INFO}"]];
}
package main;
My::ObjectApp->new(greeting => 'object app says');
'''

# Scripts that cannot become an application (test_load_failure_*).
SYNTAX_ERROR = '''use strict;
my $x = ;
sub { [200, [], ["never"]] };
'''

NOT_CODE = '''use strict;
my %h = (not => "code");
\\%h;
'''

DIE_AT_LOAD = '''die "boom-at-load\\n";
sub { [200, [], ["never"]] };
'''


def site(root):
    for rel, text in {"app.psgi": APP, "obj.psgi": OBJECT_APP,
                      "syntax.psgi": SYNTAX_ERROR, "notcode.psgi": NOT_CODE,
                      "die.psgi": DIE_AT_LOAD}.items():
        hh.write(root, rel, text)
    for d in ("out", "wd"):
        p = os.path.join(root, d)
        os.mkdir(p)
    os.chmod(os.path.join(root, "out"), 0o777)      # the app (nobody) writes there
    os.chmod(os.path.join(root, "wd"), 0o755)


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def perl(warren_factory):
    """(warrend with the Perl runtime in its --modulesdir, the scripts' dir)."""
    rt = wh.runtimes_modulesdir()
    root = hh.make_root("warren-perl-")
    site(root)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, root
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)


def app_cfg(root, script="app.psgi", **kw):
    a = {"type": "perl", "script": os.path.join(root, script), "processes": 1}
    a.update(kw)
    return a


def start(w, app, name="pl", listeners=None, settings=None):
    """PUT one Perl app, every request passed to it. Returns the port."""
    return hh.setup(w, [{"action": {"pass": "applications/" + name}}], listeners=listeners,
                    settings=settings, extra={"applications": {name: app}})


def get_json(port, path, **kw):
    r = hh.get(port, path, **kw)
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r
    return json.loads(r.body)


def pid_of(port):
    return get_json(port, "/pid")["pid"]


def log_since(w, mark):
    return w.log()[mark:]


def loads(root):
    """pids that loaded app.psgi (one line per load)."""
    try:
        with open(os.path.join(root, "out", "loads")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def sha(b):
    return hashlib.sha256(b).hexdigest()


def chunked(body, size=100000):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def lines(n):
    return b"".join(b"%07d\n" % i for i in range(n))


def two_pids(port, deadline=20.0):
    """Slow requests two at a time until both workers answered: the pids
    seen and the `loaded` values they reported."""
    seen, loaded = set(), set()
    end = time.monotonic() + deadline
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        while len(seen) < 2 and time.monotonic() < end:
            for d in ex.map(lambda _: get_json(port, "/slowpid"), range(2)):
                seen.add(d["pid"])
                loaded.add(d["loaded"])
    return seen, loaded


# ------------------------------------------------------------------ 1. loading

def test_script_is_loaded_once_and_the_workers_are_forked_from_it(perl):
    """`my $loaded = $$` at the script's top level: the same value in both
    workers, the pid of the application's loader (its prototype, or the
    zygote the prototype started), none of the workers' own; the script ran
    once (its load-time side effect, a line in out/loads, is there once)."""
    w, root = perl
    port = start(w, app_cfg(root, processes=2))
    pids, loaded = two_pids(port)
    assert len(pids) == 2, pids
    assert len(loaded) == 1, loaded
    [ld] = loaded
    assert ld not in pids, (ld, pids)
    protos, workers = w.app_processes()
    assert pids == workers, (pids, workers)
    assert ld in protos or (wh.is_zygote(ld) and wh.proc_stat(ld)[1] in protos), \
        (ld, protos, wh.proc_cmdline(ld))
    for _ in range(10):
        d = get_json(port, "/pid")
        assert d["pid"] in pids and d["loaded"] == ld, d
    assert loads(root) == [ld], loads(root)


def test_a_replaced_worker_is_forked_from_the_same_load(perl):
    """A worker killed (here by limits.timeout, its request hung) is
    replaced by a fork of the same loaded image: the script is not run
    again."""
    w, root = perl
    port = start(w, app_cfg(root, limits={"timeout": 1}))
    first = get_json(port, "/pid")
    started = os.path.join(root, "out", "started-hang")
    never = os.path.join(root, "out", "never")
    r = hh.get(port, "/wait?started=%s&file=%s" % (started, never))
    assert r.status == 503, r
    d = wh.wait_for(lambda: (lambda x: x if x["pid"] != first["pid"] else None)(
        get_json(port, "/pid")), WAIT_S)
    assert d, "the worker was not replaced"
    assert d["loaded"] == first["loaded"], (d, first)
    assert loads(root) == [first["loaded"]], loads(root)
    assert first["pid"] not in w.app_processes()[1]


def test_object_with_a_call_method_is_an_application(perl):
    w, root = perl
    port = start(w, app_cfg(root, "obj.psgi"))
    r = hh.get(port, "/some/path")
    assert (r.status, r.body) == (200, b"object app says /some/path"), r
    assert r.header("Content-Type") == "text/plain", r


@pytest.mark.parametrize("type_", ["perl 5", "perl 5.36"])
def test_versioned_type(perl, type_):
    w, root = perl
    port = start(w, app_cfg(root, type=type_))
    d = get_json(port, "/pid")
    assert d["pid"] in w.app_processes()[1], d
    s, j = w.get("/config/applications/pl/type")
    assert (s, j) == (200, type_), (s, j)


# ------------------------------------------------------------------ 2. load failures

LOAD_FAILURES = {
    # case: (script file, what the detail must contain)
    "missing": ("no-such-app.psgi", ["no-such-app.psgi", "No such file or directory"]),
    "syntax": ("syntax.psgi", ["syntax error"]),
    "not-code": ("notcode.psgi", ["code reference"]),
    "die": ("die.psgi", ["boom-at-load"]),
}


@pytest.mark.parametrize("case", sorted(LOAD_FAILURES))
def test_load_failure_fails_the_put_and_the_old_config_serves(perl, case):
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    before = w.config_bytes()
    script, needles = LOAD_FAILURES[case]
    path = os.path.join(root, script)
    if case == "missing":
        needles = [path, needles[1]]
    # The running app changed to the bad script, then a new app beside it.
    for variant in ("change", "add"):
        cfg = json.loads(before)
        if variant == "change":
            cfg["applications"]["pl"]["script"] = path
        else:
            cfg["applications"]["other"] = app_cfg(root, script)
        s, j = w.put("/config", cfg)
        assert s == 500, (variant, s, j)
        assert isinstance(j.get("error"), str) and j["error"], (variant, j)
        assert isinstance(j.get("detail"), str), (variant, j)
        for n in needles:
            assert n in j["detail"], (variant, n, j)
        assert w.config_bytes() == before, variant
        d = get_json(port, "/pid")
        assert d["pid"] == pid, (variant, d, pid)


# ------------------------------------------------------------------ 3. env

def test_psgi_env(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    target = "/env/a%20b?x=1&y=%20z"
    body = b"raw=body&more"
    with hh.Conn(port) as c:
        client_port = c.s.getsockname()[1]
        r = c.request("POST", target, headers=[
            ("User-Agent", "warren-test/1.0"),
            ("Accept", "application/json"),
            ("X-Custom-Thing", "custom value"),
            ("x-lower-case", "lower"),
            ("X-Multi", "first"),
            ("X-Multi", "second"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ], body=body, host="example.test:8080")
    assert r.status == 200, r
    e = json.loads(r.body)
    want = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/env/a b",
        "REQUEST_URI": target,
        "QUERY_STRING": "x=1&y=%20z",
        "SERVER_NAME": "example.test",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": str(client_port),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "HTTP_HOST": "example.test:8080",
        "HTTP_USER_AGENT": "warren-test/1.0",
        "HTTP_ACCEPT": "application/json",
        "HTTP_X_CUSTOM_THING": "custom value",
        "HTTP_X_LOWER_CASE": "lower",
        "HTTP_X_MULTI": "first, second",
        "psgi.version": [1, 1],
        "psgi.url_scheme": "http",
        "psgi.multithread": False,
        "psgi.multiprocess": True,
        "psgi.run_once": False,
        "psgi.nonblocking": False,
        "psgi.streaming": True,
        "x.input_can_read": True,
        "x.errors_can_print": True,
    }
    # numbers may come as Perl numbers or strings: compared as strings
    numeric = ("SERVER_PORT", "REMOTE_PORT", "CONTENT_LENGTH")
    got = {k: (str(e[k]) if k in numeric and k in e else e.get(k, "<absent>")) for k in want}
    assert got == want, json.dumps(e, indent=1, sort_keys=True)
    assert e["psgi.input"].startswith("REF:") and e["psgi.errors"].startswith("REF:"), e
    # HTTP_<NAME> for the headers sent, and nothing else; Content-Type and
    # Content-Length only under their CGI names.
    assert sorted(k for k in e if k.startswith("HTTP_")) == [
        "HTTP_ACCEPT", "HTTP_HOST", "HTTP_USER_AGENT", "HTTP_X_CUSTOM_THING",
        "HTTP_X_LOWER_CASE", "HTTP_X_MULTI"], e


def test_psgi_env_without_a_body_or_query(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    e = get_json(port, "/env")
    assert (e["REQUEST_METHOD"], e["PATH_INFO"], e["REQUEST_URI"], e["QUERY_STRING"],
            e["SCRIPT_NAME"]) == ("GET", "/env", "/env", "", ""), e
    assert "CONTENT_LENGTH" not in e and "CONTENT_TYPE" not in e, e
    assert "HTTP_CONTENT_LENGTH" not in e and "HTTP_CONTENT_TYPE" not in e, e
    assert (e["SERVER_NAME"], e["HTTP_HOST"]) == ("localhost", "localhost"), e
    assert sorted(k for k in e if k.startswith("HTTP_")) == ["HTTP_HOST"], e
    # A percent-encoded query stays as sent; PATH_INFO is decoded.
    e = get_json(port, "/env/%7Euser/x%41y?q=%41%20b&r")
    assert (e["PATH_INFO"], e["QUERY_STRING"], e["REQUEST_URI"]) == (
        "/env/~user/xAy", "q=%41%20b&r", "/env/%7Euser/x%41y?q=%41%20b&r"), e


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return th.PKI(str(tmp_path_factory.mktemp("warren-perl-pki")))


def test_server_name_of_an_ipv6_host_keeps_its_brackets(perl):
    """Host "[::1]:PORT": SERVER_NAME is the host without its port,
    "[::1]", so SERVER_NAME:SERVER_PORT is an authority (Plack::Request's
    uri builds on it), not the bare "::1"."""
    w, root = perl
    port = start(w, app_cfg(root))
    host = "[::1]:%d" % port
    e = get_json(port, "/env", host=host)
    assert (e["SERVER_NAME"], e["HTTP_HOST"], e["SERVER_PORT"]) == ("[::1]", host, str(port)), e
    e = get_json(port, "/env", host="example.com:%d" % port)
    assert e["SERVER_NAME"] == "example.com", e


def test_url_scheme_is_https_on_tls(perl, pki):
    w, root = perl
    th.store(w, pki, "localhost")
    port, plain = wh.free_port(), wh.free_port()
    th.tls_setup(w, port, {"certificate": "localhost"}, plain_port=plain,
                 routes=[{"action": {"pass": "applications/pl"}}],
                 extra={"applications": {"pl": app_cfg(root)}})
    r, _ = th.tls_get(port, th.client_ctx(pki.cafile), "/env")
    assert r.status == 200, r
    e = json.loads(r.body)
    assert (e["psgi.url_scheme"], str(e["SERVER_PORT"])) == ("https", str(port)), e
    e = get_json(plain, "/env")
    assert (e["psgi.url_scheme"], str(e["SERVER_PORT"])) == ("http", str(plain)), e


# ------------------------------------------------------------------ 4. psgi.input

BIG_POST = 4 * MiB


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_input_read_in_64k_chunks(perl, framing):
    """read($buf, 65536) returns what it read (never more than asked), 0 at
    the end and 0 again after it; the sha256 of what was read is the
    body's."""
    w, root = perl
    port = start(w, app_cfg(root))
    body = os.urandom(BIG_POST)
    if framing == "chunked":
        hdrs, raw = {"Transfer-Encoding": "chunked"}, chunked(body)
    else:
        hdrs, raw = {}, body
    hdrs["Content-Type"] = "application/octet-stream"
    with hh.Conn(port, timeout=30) as c:
        r = c.request("POST", "/sha", headers=hdrs, body=raw)
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["len"], d["sha256"], d["again"]) == (len(body), sha(body), 0), d
    assert 1 <= d["min"] <= d["max"] <= 65536, d
    assert d["reads"] >= len(body) // 65536, d
    want_cl = str(len(body)) if framing == "content-length" else None
    assert (None if d["content_length"] is None else str(d["content_length"])) == want_cl, d


def test_input_read_of_content_length_gets_it_all(perl):
    """One read($buf, CONTENT_LENGTH) returns the whole body, as Perl's
    read on a handle does (not the part that had arrived), then 0."""
    w, root = perl
    port = start(w, app_cfg(root))
    body = os.urandom(BIG_POST)
    with hh.Conn(port, timeout=30) as c:
        r = c.request("POST", "/readall", body=body)
    assert r.status == 200, r
    assert r.body.decode() == "%d:0:%s" % (len(body), hashlib.sha256(body).hexdigest()), r


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_input_echoed_byte_exact(perl, framing):
    """read($buf, 65536, length $buf) appends at the offset: the 4 MiB
    echoed back are the body."""
    w, root = perl
    port = start(w, app_cfg(root))
    body = os.urandom(BIG_POST)
    if framing == "chunked":
        hdrs, raw = {"Transfer-Encoding": "chunked"}, chunked(body)
    else:
        hdrs, raw = {}, body
    with hh.Conn(port, timeout=30) as c:
        r = c.request("POST", "/echo", headers=hdrs, body=raw)
        assert r.status == 200, r
        assert len(r.body) == len(body) and sha(r.body) == sha(body)
        # the connection serves on
        r = c.request("POST", "/echo", body=b"small one")
        assert (r.status, r.body) == (200, b"small one"), r
        # an offset past the buffer's end pads it with NULs; then the rest
        r = c.request("POST", "/offset", body=b"xyzREST")
        assert (r.status, r.body) == (200, b"3:616200000078797a:4:REST"), r


# ------------------------------------------------------------------ 5. responses

def test_status_location_and_repeated_headers(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    r = hh.get(port, "/notfound")
    assert (r.status, r.body, r.header("Content-Type")) == (404, b"no such thing",
                                                            "text/plain"), r
    r = hh.get(port, "/redirect")
    assert (r.status, r.header("Location")) == (302, "/elsewhere?from=perl"), r
    r = hh.get(port, "/cookies")
    assert (r.status, r.body) == (200, b"two cookies"), r
    assert r.all("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly"], r.headers
    assert r.all("X-Several") == ["one"], r.headers
    with hh.Conn(port) as c:
        for _ in range(2):
            r = c.request("GET", "/empties")
            assert (r.status, r.body) == (200, b"onetwo"), r


def test_filehandle_body(perl):
    w, root = perl
    data = os.urandom(MiB)
    path = hh.write(root, "random.bin", data)
    port = start(w, app_cfg(root))
    with hh.Conn(port, timeout=15) as c:
        for _ in range(2):
            r = c.request("GET", "/file?path=" + path)
            assert r.status == 200, r
            assert len(r.body) == len(data) and r.body == data
    # An empty file.
    empty = hh.write(root, "empty.bin", b"")
    r = hh.get(port, "/file?path=" + empty)
    assert (r.status, r.body) == (200, b""), r
    # An in-memory filehandle (no fd: read by lines).
    r = hh.get(port, "/memfh?n=10000")
    assert r.status == 200, r
    assert r.body == b"".join(b"memory line %d\n" % i for i in range(1, 10001)), r


def test_getline_body_and_close_is_called(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    marker = os.path.join(root, "out", "closed")
    n = 5000
    r = hh.get(port, "/getline?n=%d&marker=%s" % (n, marker))
    assert r.status == 200, r
    want = b"".join(b"line %d of %d\n" % (i, n) for i in range(1, n + 1))
    assert r.body == want, (len(r.body), r.body[-100:])
    assert wh.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0, WAIT_S)
    with open(marker) as f:
        assert f.read() == "closed after %d" % n


def test_getline_close_is_called_when_the_client_leaves(perl):
    """A getline body far larger than the client takes: the client reads the
    head and goes; close is called all the same, and the worker serves on."""
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    marker = os.path.join(root, "out", "closed-gone")
    with hh.Conn(port, timeout=15) as c:
        c.send(hh.build("GET", "/getline?n=5000000&marker=" + marker))
        r = c.read_response(head_only=True)
        assert r.status == 200, r
    assert wh.wait_for(lambda: os.path.exists(marker) and os.path.getsize(marker) > 0,
                       WAIT_S), "close was not called"
    with open(marker) as f:
        assert re.fullmatch(r"closed after \d+", f.read())
    assert pid_of(port) == pid


def test_delayed_response(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    r = hh.get(port, "/delayed")
    assert (r.status, r.body, r.header("X-Delayed")) == (201, b"delayed body", "yes"), r


def test_streaming_writer_is_chunked_and_exact(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    with hh.Conn(port, timeout=15) as c:
        for n, per, empty in ((100000, 1000, 0), (7, 3, 0), (0, 1, 0), (5000, 100, 1)):
            # empty=1: a write("") after each write
            r = c.request("GET", "/stream?lines=%d&per=%d&empty=%d" % (n, per, empty))
            assert r.status == 200, r
            assert r.header("Transfer-Encoding") == "chunked", r.headers
            assert r.header("Content-Length") is None, r.headers
            assert r.header("X-Streamed") == "yes", r.headers
            assert r.body == lines(n), (n, len(r.body))


class SlowConn(hh.Conn):
    """A client that reads a little at a time, pausing between reads, with
    a small receive buffer."""

    def __init__(self, port, piece=16384, pause=0.002, timeout=30.0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.s.settimeout(timeout)
        self.s.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False
        self.piece, self.pause = piece, pause
        self.reads = 0

    def _fill(self):
        if self.eof:
            return False
        time.sleep(self.pause)
        try:
            d = self.s.recv(self.piece)
        except self.EOF_ERRORS:
            d = b""
        if not d:
            self.eof = True
            return False
        self.reads += 1
        self.buf += d
        return True


def test_streaming_8mib_to_a_slow_client(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    n = 8 * MiB // 8
    want = lines(n)
    with SlowConn(port) as c:
        c.send(hh.build("GET", "/stream?lines=%d&per=8192" % n))
        r = c.read_response()
        assert r.status == 200, r
        assert r.header("Transfer-Encoding") == "chunked", r.headers
        assert len(r.body) == len(want), len(r.body)
        assert r.body == want
        assert c.reads > 100, c.reads
        # the worker serves on, on the same connection
        r = c.request("GET", "/pid")
        assert r.status == 200, r


def test_head_has_headers_and_no_body(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    with hh.Conn(port) as c:
        for path in ("/hello", "/stream?lines=1000&per=100", "/delayed"):
            r = c.request("HEAD", path)
            assert r.status in (200, 201), (path, r)
            assert r.body == b"", (path, r)
            if path == "/hello":
                assert (r.header("X-Hello"), r.header("Content-Type")) == (
                    "yes", "text/plain"), r.headers
            # no body bytes came: the next response on the connection is whole
            r = c.request("GET", "/hello")
            assert (r.status, r.body, r.header("X-Hello")) == (200, b"hello world\n", "yes"), r


# ------------------------------------------------------------------ 6. errors

def test_die_while_serving_is_500_logged_and_the_worker_serves_on(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    for _ in range(2):
        r = hh.get(port, "/die")
        assert r.status == 500, r
        assert b"perl-died-marker-4711" not in r.body, r     # nothing leaked to the client
        assert pid_of(port) == pid
    assert w.log_has("perl-died-marker-4711"), w.log()[-3000:]
    assert pid in w.app_processes()[1]
    # dying in a delayed response's code, before it answered: the same
    r = hh.get(port, "/die-delayed")
    assert r.status == 500, r
    assert pid_of(port) == pid
    assert w.log_has("delayed-died-marker-4712"), w.log()[-3000:]


def test_streaming_to_a_client_that_leaves(perl):
    """The client takes the head of an 80 MiB stream and goes: the writer's
    next writes fail, the application ends, and the same worker serves the
    next requests."""
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    for _ in range(2):
        with hh.Conn(port, timeout=15) as c:
            c.send(hh.build("GET", "/stream?lines=%d&per=8192" % (10 * MiB)))
            r = c.read_response(head_only=True)
            assert r.status == 200, r
        d = wh.wait_for(lambda: (lambda x: x if x["pid"] == pid else None)(
            get_json(port, "/pid")), WAIT_S)
        assert d, "the worker did not come back"
    r = hh.get(port, "/stream?lines=1000&per=7")
    assert (r.status, r.body) == (200, lines(1000)), r


@pytest.mark.parametrize("kind", ["string", "short", "odd-headers", "body-string", "wide",
                                  "delayed", "header-crlf"])
def test_invalid_response_is_500_and_logged(perl, kind):
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    mark = len(w.log())
    r = hh.get(port, "/invalid/" + kind)
    assert r.status == 500, r
    assert r.header("X-Injected") is None, r.headers
    # an entry about it, from app "pl" (its worker's stderr, or the daemon)
    want = re.compile(r'app "pl" .*(/invalid/%s|respon)' % kind)
    assert wh.wait_for(lambda: want.search(log_since(w, mark)), WAIT_S), log_since(w, mark)
    r = hh.get(port, "/hello")
    assert (r.status, r.body) == (200, b"hello world\n"), r
    assert pid_of(port) == pid


def test_psgi_errors_and_warn_reach_the_error_log(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    r = hh.get(port, "/errors")
    assert (r.status, r.body) == (200, b"logged"), r
    assert w.log_has("psgi-errors-marker-1234"), w.log()[-3000:]
    assert w.log_has("warn-marker-5678"), w.log()[-3000:]
    # print without a newline: it reaches the log too
    r = hh.get(port, "/errors-partial")
    assert (r.status, r.body) == (200, b"logged"), r
    assert w.log_has("partial-marker-999"), w.log()[-3000:]
    # a line printed in pieces is one log line; the unfinished rest is
    # logged when the request ends
    m = "pieces-marker-%d" % os.getpid()
    r = hh.get(port, "/errors-pieces?" + m)
    assert (r.status, r.body) == (200, b"logged"), r
    wh.assert_logged_in_pieces(w, m)


# ------------------------------------------------------------------ 7. options

def test_environment_and_working_directory(perl):
    w, root = perl
    wd = os.path.join(root, "wd")
    port = start(w, app_cfg(root, environment={"FOO": "bar"}, working_directory=wd))
    d = get_json(port, "/options")
    assert (d["foo"], d["cwd"]) == ("bar", os.path.realpath(wd)), d
    # without them: no FOO, another directory
    port2 = start(w, app_cfg(root), name="plain")
    d = get_json(port2, "/options")
    assert d["foo"] is None and d["cwd"] != os.path.realpath(wd), d


def test_two_processes_two_pids(perl):
    w, root = perl
    port = start(w, app_cfg(root, processes=2))
    pids, _ = two_pids(port)
    assert len(pids) == 2, pids
    more = {pid_of(port) for _ in range(20)}
    assert more <= pids, (more, pids)
    assert w.app_processes()[1] == pids


def test_restart_gives_new_workers_and_loads_again(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    first = get_json(port, "/pid")
    assert loads(root) == [first["loaded"]]
    s, j = w.get("/control/applications/pl/restart")
    assert (s, j) == (200, {"success": "Ok"}), (s, j)
    d = wh.wait_for(lambda: (lambda x: x if x["pid"] != first["pid"] else None)(
        get_json(port, "/pid")), WAIT_S)
    assert d, first
    assert d["loaded"] != first["loaded"], (d, first)
    assert loads(root) == [first["loaded"], d["loaded"]], loads(root)
    assert wh.wait_for(lambda: first["pid"] not in w.app_processes()[1], WAIT_S)


PLACK_APP = r'''
# Plack from Debian (libplack-perl): its Lint middleware checks the env and
# the response against the PSGI spec; Plack::Request reads them.
use strict;
use Plack::Builder;
use Plack::Request;
my $app = sub {
    my $req = Plack::Request->new(shift);
    my $res = $req->new_response(200);
    $res->content_type("text/plain");
    $res->body(join(",", "name=" . ($req->param("name") // ""), "path=" . $req->path_info,
                    "uri=" . $req->uri, "len=" . length($req->content)));
    $res->finalize;
};
builder { enable "Lint"; enable "ContentLength"; $app };
'''


def test_plack_lint_and_request(perl):
    """A real PSGI stack: Plack::Builder with Plack::Middleware::Lint (which
    dies on anything off-spec in the env or the response) and
    ContentLength, Plack::Request for the query, the form and the URI."""
    w, root = perl
    hh.write(root, "plack.psgi", PLACK_APP)
    port = start(w, app_cfg(root, script="plack.psgi"))
    r = hh.get(port, "/p/x?name=warren")
    assert r.status == 200, r
    assert r.body == b"name=warren,path=/p/x,uri=http://localhost/p/x?name=warren,len=0", r
    assert r.header("Content-Length") == str(len(r.body)), r
    r = hh.get(port, "/form", method="POST", body=b"name=posted&x=1",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.body) == (200, b"name=posted,path=/form,uri=http://localhost/form,len=15"), r
    host = "[::1]:%d" % port
    r = hh.get(port, "/v6?name=a", host=host)
    assert (r.status, r.body) == (200, ("name=a,path=/v6,uri=http://%s/v6?name=a,len=0"
                                        % host).encode()), r


END_APP = r'''
# An END block appends the pid of the interpreter's process to a file.
my $out = $ENV{END_LOG};
END { if (open(my $fh, ">>", $out)) { print $fh "$$\n"; close $fh } }
sub { [200, ["Content-Type" => "text/plain"], [$$]] };
'''


@pytest.mark.parametrize("threads", [1, 3])
def test_end_blocks_run_once_when_a_worker_ends(perl, threads):
    """END blocks run when a worker stops, as under a forking PSGI server:
    once per worker, however many threads (interpreter clones) it had,
    and not in the zygote's children that never served."""
    w, root = perl
    hh.write(root, "end.psgi", END_APP)
    log = os.path.join(root, "out", "end.log")
    port = start(w, app_cfg(root, script="end.psgi", threads=threads,
                            environment={"END_LOG": log}))
    r = hh.get(port, "/")
    assert r.status == 200, r
    pid = int(r.body)
    s, j = w.get("/control/applications/pl/restart")
    assert (s, j) == (200, {"success": "Ok"}), (s, j)
    assert wh.wait_for(lambda: pid not in w.app_processes()[1], WAIT_S)

    def ended():
        if not os.path.exists(log):
            return None
        with open(log) as f:
            return [int(x) for x in f.read().split()]
    assert wh.wait_for(lambda: pid in (ended() or []), WAIT_S), ended()
    assert ended().count(pid) == 1, ended()


# ------------------------------------------------------------------ 8. threads

STACK = 1024 * 1024 + 64 * 1024     # a page multiple, not a default size


def test_two_threads_serve_two_requests_at_once(perl):
    """Request A says it started, then waits (at most 10 s) for a file that
    request B creates: with one worker, A can find it only if B ran while A
    was still running, in the same process."""
    w, root = perl
    port = start(w, app_cfg(root, threads=2, thread_stack_size=STACK))
    e = get_json(port, "/env")
    assert e["psgi.multithread"] is True, e
    out = os.path.join(root, "out")
    started, go = os.path.join(out, "started"), os.path.join(out, "go")
    with hh.Conn(port, timeout=30) as a:
        a.send(hh.build("GET", "/wait?started=%s&file=%s" % (started, go)))
        assert wh.wait_for(lambda: os.path.exists(started) and os.path.getsize(started) > 0,
                           WAIT_S), "request A never started"
        b = get_json(port, "/create?file=" + go)
        ra = a.read_response()
    assert ra.status == 200, ra
    da = json.loads(ra.body)
    assert da["found"] is True, da
    assert da["pid"] == b["pid"], (da, b)
    with open(started) as f:
        assert int(f.read()) == da["pid"]
    assert w.app_processes()[1] == {da["pid"]}


def test_one_thread_is_not_multithread(perl):
    w, root = perl
    port = start(w, app_cfg(root, threads=1))
    assert get_json(port, "/env")["psgi.multithread"] is False


def test_threaded_workers_serve_every_kind_of_response(perl):
    """The same requests through interpreter clones (threads 2, processes
    2), eight at a time: bodies in and out, files, getline objects, streams
    and dies stay per request."""
    w, root = perl
    data = os.urandom(MiB)
    path = hh.write(root, "random.bin", data)
    port = start(w, app_cfg(root, processes=2, threads=2))
    bodies = [os.urandom(MiB + i) for i in range(8)]

    def one(i):
        kind = i % 5
        with hh.Conn(port, timeout=30) as c:
            if kind == 0:
                body = bodies[(i // 5) % len(bodies)]
                r = c.request("POST", "/echo", body=body)
                assert r.status == 200 and r.body == body, (i, r)
            elif kind == 1:
                r = c.request("GET", "/file?path=" + path)
                assert r.status == 200 and r.body == data, (i, r)
            elif kind == 2:
                marker = os.path.join(root, "out", "closed-%d" % i)
                r = c.request("GET", "/getline?n=2000&marker=" + marker)
                assert r.status == 200 and r.body == b"".join(
                    b"line %d of 2000\n" % k for k in range(1, 2001)), (i, r)
                assert wh.wait_for(lambda: os.path.exists(marker)
                                   and os.path.getsize(marker) > 0, WAIT_S), i
            elif kind == 3:
                r = c.request("GET", "/stream?lines=%d&per=997" % (100000 + i))
                assert r.status == 200 and r.body == lines(100000 + i), (i, r)
            else:
                r = c.request("GET", "/die")
                assert r.status == 500, (i, r)
            r = c.request("GET", "/env/%d" % i)
            assert r.status == 200, (i, r)
            e = json.loads(r.body)
            assert (e["PATH_INFO"], e["psgi.multithread"]) == ("/env/%d" % i, True), (i, e)
            return e["x.pid"], e["x.loaded"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        got = list(ex.map(one, range(40)))
    assert {p for p, _ in got} <= w.app_processes()[1], got
    assert len({ld for _, ld in got}) == 1, got
    assert loads(root) == [got[0][1]], loads(root)


# ------------------------------------------------------------------ 9. validation

def check_invalid(w, cfg, pointer):
    before = w.config_bytes()
    s, j = w.put("/config", cfg)
    assert s == 400, (s, j)
    assert j.get("error") == "Invalid configuration.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    assert j.get("location", {}).get("path") == pointer or pointer in j["detail"], j
    assert w.config_bytes() == before


def test_validation(perl):
    w, root = perl
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    base = json.loads(w.config_bytes())
    cfg = wh.deep(base)
    del cfg["applications"]["pl"]["script"]
    check_invalid(w, cfg, "/applications/pl")
    for bad in (0, -1, 1.5, "2"):
        cfg = wh.deep(base)
        cfg["applications"]["pl"]["threads"] = bad
        check_invalid(w, cfg, "/applications/pl/threads")
    # a new perl app without a script
    cfg = wh.deep(base)
    cfg["applications"]["more"] = {"type": "perl"}
    check_invalid(w, cfg, "/applications/more")
    assert w.config() == base
    assert pid_of(port) == pid


def test_threads_over_64_are_capped(perl):
    """Unit takes any count from 1; a worker is never sent more than 64
    requests at once, so more threads could never be busy: capped at 64
    and said in the log (as for Python), the app serves, multithreaded."""
    w, root = perl
    port = start(w, app_cfg(root))
    cfg = json.loads(w.config_bytes())
    cfg["applications"]["pl"]["threads"] = 65
    s, j = w.put("/config", cfg)
    assert s == 200, (s, j)
    assert get_json(port, "/env")["psgi.multithread"] is True
    assert w.log_has('"threads": 65 capped at 64'), w.log()[-3000:]
