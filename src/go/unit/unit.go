// Package unit serves net/http handlers from Warren's worker channel, as
// NGINX Unit's package of the same import path serves them from Unit's:
// a Go app written for Unit runs unchanged under Warren once its go.mod
// replaces unit.nginx.org/go with this directory (docs/applications.md).
//
// It is cgo over libwarren (include/warren.h, build/libwarren.a of the same
// checkout: run make first). Each of the worker's streams is a goroutine
// that waits in warren_accept and serves one request at a time, so up to
// Streams requests run at once; body reads and writes block in libwarren,
// which is what gives them the router's flow control.
package unit

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: ${SRCDIR}/../../../build/libwarren.a -lpthread
#include <stdlib.h>
#include <warren.h>

enum { P_METHOD, P_TARGET, P_VERSION, P_RADDR, P_RPORT, P_SERVER, P_SCHEME,
       P_LADDR, P_LPORT };

// One part of the request head (cgo cannot hold C functions as values).
static const char *part(const warren_req_t *r, int i, size_t *n)
{
	switch (i) {
	case P_METHOD:  return warren_req_method(r, n);
	case P_TARGET:  return warren_req_target(r, n);
	case P_VERSION: return warren_req_version(r, n);
	case P_RADDR:   return warren_req_remote_addr(r, n);
	case P_RPORT:   return warren_req_remote_port(r, n);
	case P_SERVER:  return warren_req_server_name(r, n);
	case P_LADDR:   return warren_req_local_addr(r, n);
	case P_LPORT:   return warren_req_local_port(r, n);
	default:        return warren_req_scheme(r, n);
	}
}
*/
import "C"

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

// Streams is how many requests one worker serves at once (the router
// sends it no more): goroutines each holding an OS thread while it waits.
var Streams = 32

// bufferSize is the body a handler may write before the head goes out,
// as net/http's: a whole answer that fits gets a Content-Length.
const bufferSize = 4096

// ListenAndServe serves handler (nil: http.DefaultServeMux) from Warren's
// channel until Warren closes it, then returns nil. addr is Warren's
// listener's to decide and is ignored there. A program not started by
// Warren (no WARREN_CHANNEL_FD) listens on addr with net/http, as Unit's
// package does outside Unit.
func ListenAndServe(addr string, handler http.Handler) error {
	if os.Getenv(C.WARREN_ENV_CHANNEL_FD) == "" {
		return http.ListenAndServe(addr, handler)
	}
	return serve(handler)
}

// ListenAndServeTLS is ListenAndServe; under Warren, TLS is the
// listener's (its "tls" object), so the files are only used outside it.
func ListenAndServeTLS(addr, certFile, keyFile string, handler http.Handler) error {
	if os.Getenv(C.WARREN_ENV_CHANNEL_FD) == "" {
		return http.ListenAndServeTLS(addr, certFile, keyFile, handler)
	}
	return serve(handler)
}

func serve(handler http.Handler) error {
	if handler == nil {
		handler = http.DefaultServeMux
	}
	// errno comes back through cgo's second result: a goroutine may be on
	// another thread by its next C call.
	ctx, errno := C.warren_init_threads(C.uint(Streams))
	if ctx == nil {
		return fmt.Errorf("unit: cannot reach Warren's router: %w", errno)
	}
	// As net/http's: the server in every request's context.
	base := context.WithValue(context.Background(), http.ServerContextKey, &http.Server{Handler: handler})
	var wg sync.WaitGroup
	errs := make(chan error, Streams)
	for i := 0; i < Streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				req, errno := C.warren_accept(ctx)
				if req == nil {
					if errno != nil {
						errs <- fmt.Errorf("unit: %s", C.GoString(C.warren_error(ctx)))
					}
					return
				}
				serveOne(base, ctx, req, handler)
			}
		}()
	}
	wg.Wait()
	C.warren_done(ctx)
	close(errs)
	return <-errs
}

func str(i C.int, req *C.warren_req_t) string {
	var n C.size_t
	p := C.part(req, i, &n)
	return C.GoStringN(p, C.int(n))
}

// newRequest makes the *http.Request net/http would have made of it, with
// a context that ends when cancel is called: when the handler returns, or
// when a read or write finds the client gone.
func newRequest(ctx context.Context, cancel context.CancelFunc, req *C.warren_req_t) (*http.Request, error) {
	target := str(C.P_TARGET, req)
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, err
	}
	r := &http.Request{
		Method:     str(C.P_METHOD, req),
		URL:        u,
		RequestURI: target,
		Header:     http.Header{},
		RemoteAddr: net.JoinHostPort(str(C.P_RADDR, req), str(C.P_RPORT, req)),
	}
	r.Proto = str(C.P_VERSION, req)
	if major, minor, ok := http.ParseHTTPVersion(r.Proto); ok {
		r.ProtoMajor, r.ProtoMinor = major, minor
	}
	for i := C.size_t(0); i < C.warren_req_header_count(req); i++ {
		var name, value *C.char
		var nl, vl C.size_t
		C.warren_req_header(req, i, &name, &nl, &value, &vl)
		r.Header.Add(C.GoStringN(name, C.int(nl)), C.GoStringN(value, C.int(vl)))
	}
	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = str(C.P_SERVER, req)
	}
	delete(r.Header, "Host")
	if str(C.P_SCHEME, req) == "https" {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: str(C.P_SERVER, req)}
	}
	r.ContentLength = 0
	if te := r.Header.Get("Transfer-Encoding"); te != "" {
		r.TransferEncoding = []string{strings.ToLower(te)}
		r.ContentLength = -1
		delete(r.Header, "Transfer-Encoding")
	} else if cl := r.Header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			r.ContentLength = n
		}
	}
	r.Body = http.NoBody
	if r.ContentLength != 0 {
		r.Body = &body{req: req, cancel: cancel}
	}
	local := &net.TCPAddr{IP: net.ParseIP(str(C.P_LADDR, req))}
	local.Port, _ = strconv.Atoi(str(C.P_LPORT, req))
	return r.WithContext(context.WithValue(ctx, http.LocalAddrContextKey, net.Addr(local))), nil
}

// body reads the request body through libwarren (blocking: the goroutine's
// thread waits, the router sends more as it is read).
type body struct {
	req    *C.warren_req_t
	cancel context.CancelFunc
	done   bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done || b.req == nil {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, errno := C.warren_read(b.req, unsafe.Pointer(&p[0]), C.size_t(len(p)))
	if n < 0 {
		e := errnoOf(errno)
		if e == syscall.ECONNABORTED {
			b.cancel()
		}
		return 0, fmt.Errorf("unit: reading the request body: %w", e)
	}
	if n == 0 {
		b.done = true
		return 0, io.EOF
	}
	return int(n), nil
}

func (b *body) Close() error {
	b.done = true
	return nil
}

// response is the http.ResponseWriter (and http.Flusher) of one request.
type response struct {
	ctx        *C.warren_ctx_t
	cancel     context.CancelFunc
	req        *C.warren_req_t
	header     http.Header
	sentHeader http.Header // header as WriteHeader saw it
	status     int
	wrote      bool // WriteHeader happened (the head is decided)
	sent       bool // the head went to the router
	buf        bytes.Buffer
	failed     error
	noBody     bool
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wrote {
		fmt.Fprintf(os.Stderr, "unit: superfluous WriteHeader(%d)\n", code)
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		return // informational answers are the router's (100-continue)
	}
	w.wrote = true
	w.status = code
	// As net/http: fields changed after WriteHeader are not sent.
	w.sentHeader = w.header.Clone()
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.noBody = true
	}
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if w.failed != nil {
		return 0, w.failed
	}
	if !w.sent {
		w.buf.Write(p)
		if w.buf.Len() > bufferSize {
			w.flush(false)
		}
		return len(p), w.failed
	}
	w.send(p, false)
	if w.failed != nil {
		return 0, w.failed
	}
	return len(p), nil
}

// Flush sends the head and what is buffered now.
func (w *response) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	w.flush(false)
}

// head hands the status and fields to libwarren, with net/http's
// defaults: a sniffed Content-Type, and a Content-Length when the whole
// body is known (last).
func (w *response) head(last bool) {
	h := w.sentHeader
	if _, ok := h["Content-Type"]; !ok && !w.noBody && w.buf.Len() > 0 {
		h.Set("Content-Type", http.DetectContentType(w.buf.Bytes()))
	}
	if _, ok := h["Content-Length"]; !ok && last && !w.noBody && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Length", strconv.Itoa(w.buf.Len()))
	}
	if rc, errno := C.warren_response_init(w.req, C.int(w.status), C.size_t(len(h))); rc < 0 {
		w.fail(errno)
		return
	}
	for name, values := range h {
		cn := C.CString(name)
		for _, v := range values {
			cv := C.CString(v)
			rc := C.warren_response_add_header(w.req, cn, C.size_t(len(name)), cv, C.size_t(len(v)))
			C.free(unsafe.Pointer(cv))
			if rc < 0 {
				fmt.Fprintf(os.Stderr, "unit: response field %q dropped: %s\n", name,
					C.GoString(C.warren_error(w.ctx)))
			}
		}
		C.free(unsafe.Pointer(cn))
	}
}

// flush sends the head and the buffered body; with last, the response ends.
func (w *response) flush(last bool) {
	if w.failed != nil {
		return
	}
	if !w.sent {
		w.head(last)
		w.sent = true
		if w.failed != nil {
			return
		}
	}
	data := w.buf.Bytes()
	w.buf.Reset()
	w.send(data, last)
}

func (w *response) send(p []byte, last bool) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	var rc C.int
	var errno error
	if last {
		rc, errno = C.warren_write_end(w.req, ptr, C.size_t(len(p)))
	} else if len(p) > 0 {
		rc, errno = C.warren_write(w.req, ptr, C.size_t(len(p)))
	}
	if rc < 0 {
		w.fail(errno)
	}
}

// errnoOf: the errno cgo returned with a call's result (0 if none).
func errnoOf(err error) syscall.Errno {
	e, _ := err.(syscall.Errno)
	return e
}

func (w *response) fail(errno error) {
	e := errnoOf(errno)
	if e == syscall.ECONNABORTED {
		w.failed = http.ErrAbortHandler
		w.cancel()
	} else {
		w.failed = fmt.Errorf("unit: %w", e)
	}
}

// serveOne runs the handler on one request, then ends it. A handler that
// panics gets net/http's treatment: a 500 when nothing went out yet, else
// a cut; the worker goes on.
func serveOne(base context.Context, wctx *C.warren_ctx_t, req *C.warren_req_t, handler http.Handler) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	w := &response{ctx: wctx, cancel: cancel, req: req, header: http.Header{}}
	r, err := newRequest(ctx, cancel, req)
	if err != nil {
		C.warren_response_init(req, http.StatusBadRequest, 0)
		C.warren_finish(req)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			if !errors.Is(asError(p), http.ErrAbortHandler) {
				fmt.Fprintf(os.Stderr, "unit: panic serving %s %s: %v\n", r.Method, r.RequestURI, p)
			}
			if !w.sent && w.failed == nil {
				C.warren_response_init(req, http.StatusInternalServerError, 0)
				C.warren_finish(req)
			} else {
				C.warren_abort(req)
			}
			return
		}
		if !w.wrote {
			w.WriteHeader(http.StatusOK)
		}
		w.flush(true)
		C.warren_finish(req)
	}()
	handler.ServeHTTP(w, r)
}

func asError(p interface{}) error {
	if e, ok := p.(error); ok {
		return e
	}
	return nil
}
