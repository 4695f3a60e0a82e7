"""Go apps written for Unit (`import "unit.nginx.org/go"`, unit.ListenAndServe)
run unchanged under Warren: their go.mod replaces that module with
src/go/unit (cgo over libwarren), and the config is Unit's
`{"type": "external", "executable": ...}`. The app is built once per module
with Debian's Go, offline."""

import hashlib
import os
import shutil
import socket
import subprocess
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh

GO = shutil.which("go") or "/usr/bin/go"
PKG = os.path.join(wh.REPO, "src", "go", "unit")
LIBWARREN = os.path.join(wh.REPO, "build", "libwarren.a")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(GO), reason="no Go toolchain (golang-go)"),
    pytest.mark.skipif(not os.path.exists(LIBWARREN), reason="build/libwarren.a is not built"),
]

APP = r'''
package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"

	unit "unit.nginx.org/go"
)

var (
	mu      sync.Mutex
	arrived int
	ctxErr  = make(chan string, 1)
	all     = make(chan struct{})
	release = make(chan struct{})
)

func main() {
	http.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Pid", fmt.Sprint(os.Getpid()))
		fmt.Fprintf(w, "%s|%s|%s|%d.%d|%s|%v|%s|%s|%d\n", r.Method, r.RequestURI, r.URL.Path,
			r.ProtoMajor, r.ProtoMinor, r.Host, r.TLS != nil,
			strings.Join(r.Header.Values("X-Multi"), ","), r.Header.Get("User-Agent"),
			r.ContentLength)
	})
	http.HandleFunc("/remote", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	})
	http.HandleFunc("/hash", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	http.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
		for i := 0; i < 160; i++ {                        // 10 MiB
			io.WriteString(w, chunk)
		}
	})
	http.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!DOCTYPE html><html><body>hi</body></html>")
	})
	http.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/thing/1")
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusCreated)
		w.WriteHeader(http.StatusTeapot) // superfluous: ignored
		io.WriteString(w, "made")
	})
	http.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
		_, err := w.Write([]byte("not allowed"))
		w.Header().Set("X-Err", fmt.Sprint(err)) // too late: not sent
	})
	http.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	http.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	http.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		io.WriteString(w, "second\n")
	})
	http.HandleFunc("/release", func(w http.ResponseWriter, r *http.Request) {
		release <- struct{}{}
		io.WriteString(w, "released")
	})
	http.HandleFunc("/ctx", func(w http.ResponseWriter, r *http.Request) {
		_, isServer := r.Context().Value(http.ServerContextKey).(*http.Server)
		fmt.Fprintf(w, "%v %v %v", r.Context().Value(http.LocalAddrContextKey), isServer,
			r.Context().Err())
	})
	http.HandleFunc("/ctx-gone", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("z", 65536))
		for {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		ctxErr <- fmt.Sprint(r.Context().Err())
	})
	http.HandleFunc("/ctx-after", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, <-ctxErr)
	})
	http.HandleFunc("/barrier", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == 8 {
			close(all)
		}
		mu.Unlock()
		<-all
		io.WriteString(w, "together")
	})
	if err := unit.ListenAndServe(os.Getenv("ADDR"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
'''

GOMOD = '''module example.com/goapp

go 1.19

require unit.nginx.org/go v0.0.0

replace unit.nginx.org/go => %s
'''


@pytest.fixture(scope="module")
def goapp():
    d = hh.make_root("warren-go-")
    hh.write(d, "main.go", APP)
    hh.write(d, "go.mod", GOMOD % PKG)
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="1",
               GOCACHE=os.path.join(d, ".cache"), HOME=d)
    r = subprocess.run([GO, "build", "-o", "app", "."], cwd=d, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(os.path.join(d, ".cache"), ignore_errors=True)
    os.chmod(os.path.join(d, "app"), 0o755)
    yield os.path.join(d, "app")
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def served(warren_factory, goapp):
    w = warren_factory()
    port = hh.setup(w, [{"action": {"pass": "applications/go"}}],
                    settings={"http": {"max_body_size": 64 << 20}}, extra={"applications": {
        "go": {"type": "external", "executable": goapp, "processes": 1}}})
    return w, port


def test_request_fields(served):
    w, port = served
    r = hh.get(port, "/info?x=1&y=%20", headers={"X-Multi": "a", "User-Agent": "t/1"})
    assert r.status == 200
    assert r.body.decode() == "GET|/info?x=1&y=%20|/info|1.1|localhost|false|a|t/1|0\n"
    assert r.header("Content-Length") == str(len(r.body))
    assert r.header("Content-Type") == "text/plain; charset=utf-8"      # sniffed
    with hh.Conn(port) as c:
        c.send(b"GET /info HTTP/1.1\r\nHost: h.example:81\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n")
        r = c.read_response()
    assert r.body.decode() == "GET|/info|/info|1.1|h.example:81|false|a,b||0\n"
    r = hh.get(port, "/remote")
    host, _, rport = r.body.decode().rpartition(":")
    assert host == "127.0.0.1" and 0 < int(rport) < 65536


def test_large_bodies_both_ways(served):
    w, port = served
    data = os.urandom(20 * 1024 * 1024)
    r = hh.get(port, "/hash", method="POST", body=data)
    assert r.status == 200
    assert r.body.decode() == "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
    r = hh.get(port, "/big")
    assert r.status == 200
    assert r.header("Content-Length") is None        # streamed: chunked
    assert r.body == b"0123456789abcdef" * 4096 * 160


def test_chunked_upload(served):
    w, port = served
    parts = [os.urandom(n) for n in (1, 70000, 5)]
    raw = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with hh.Conn(port) as c:
        c.send(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + raw)
        r = c.read_response()
    whole = b"".join(parts)
    assert r.body.decode() == "%d %s" % (len(whole), hashlib.sha256(whole).hexdigest())


def test_status_fields_and_sniffing(served):
    w, port = served
    r = hh.get(port, "/created")
    assert r.status == 201 and r.body == b"made"
    assert r.header("Location") == "/thing/1"
    assert sorted(r.all("Set-Cookie")) == ["a=1", "b=2"]
    r = hh.get(port, "/empty")
    assert r.status == 204 and r.body == b"" and r.header("X-Err") is None
    r = hh.get(port, "/html")
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    r = hh.get(port, "/nowhere")
    assert r.status == 404 and r.body == b"404 page not found\n"
    r = hh.get(port, "/html", method="HEAD")
    assert r.status == 200 and r.body == b""


def test_panic_is_500_and_the_worker_goes_on(served):
    w, port = served
    pid = hh.get(port, "/info").header("X-Pid")
    r = hh.get(port, "/panic")
    assert r.status == 500
    assert hh.get(port, "/info").header("X-Pid") == pid
    assert wh.wait_for(lambda: "unit: panic serving GET /panic: boom" in w.log(), 5.0)


def test_abort_after_head_cuts_the_response(served):
    """panic(http.ErrAbortHandler) after the head went out: the client
    never gets a whole response (a cut, as net/http does)."""
    w, port = served
    with hh.Conn(port) as c:
        c.send(b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        while c._fill():
            pass
        assert c.eof
        # What came (maybe the head and the 100,000 bytes flushed) is
        # chunked and never ends with the last chunk.
        assert not c.buf.endswith(b"0\r\n\r\n"), c.buf[-100:]
        assert b"Content-Length" not in c.buf.split(b"\r\n\r\n")[0]
    assert hh.get(port, "/info").status == 200


def test_flush_sends_before_the_handler_ends(served):
    w, port = served
    with hh.Conn(port) as c:
        c.send(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_response(head_only=True)
        assert head.status == 200
        while b"first\n" not in c.buf:
            assert c._fill()
        assert b"second" not in c.buf                # the handler is still waiting
        assert hh.get(port, "/release").body == b"released"
        while not c.buf.endswith(b"0\r\n\r\n"):
            assert c._fill()
        assert b"second\n" in c.buf


def test_request_context(served):
    """As net/http: the local address and the server in the context; the
    context is cancelled once a write finds the client gone."""
    w, port = served
    r = hh.get(port, "/ctx")
    assert r.body.decode() == "127.0.0.1:%d true <nil>" % port
    with hh.Conn(port) as c:
        c.send(b"GET /ctx-gone HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response(head_only=True).status == 200
    assert hh.get(port, "/ctx-after").body == b"context canceled"


def test_concurrent_requests_in_one_worker(served):
    w, port = served
    out = []

    def one():
        out.append(hh.get(port, "/barrier").body)

    ts = [threading.Thread(target=one) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == [b"together"] * 8


def test_restart_gives_a_new_worker(served):
    w, port = served
    old = hh.get(port, "/info").header("X-Pid")
    s, j = w.get("/control/applications/go/restart")
    assert s == 200, j
    assert wh.wait_for(lambda: hh.get(port, "/info").header("X-Pid") != old, 10.0)
    assert wh.wait_for(lambda: not wh.proc_alive(int(old)), 5.0)


def test_outside_warren_it_is_net_http(goapp):
    """Run by hand (no WARREN_CHANNEL_FD), the same binary listens on its
    address, as Unit's package does outside Unit."""
    port = wh.free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "ADDR": "127.0.0.1:%d" % port}
    p = subprocess.Popen([goapp], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wh.wait_for(lambda: _connects(port), 10.0), p.stderr.read1(4096) if p.poll() else ""
        r = hh.get(port, "/info")
        assert r.status == 200 and r.body.startswith(b"GET|/info|/info|1.1|")
    finally:
        p.kill()
        p.wait()


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False
