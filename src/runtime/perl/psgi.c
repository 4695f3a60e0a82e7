/*
 * warren-perl: one PSGI request. The env hash is built here from the
 * request head (text values are the request's bytes, as PSGI wants), the
 * glue's Warren::_serve (glue.pl) calls the application and hands the
 * response back through the XS functions below, which speak libwarren.
 *
 * A request's C state lives on wpl_serve_one's stack; Perl reaches it
 * through a handle, a blessed reference to a scalar holding its address
 * (the same object is the env's psgi.input). When the request is over the
 * scalar is set to 0, so a handle the application kept fails cleanly
 * ("the request is over") instead of touching freed memory.
 */
#include <errno.h>
#include <string.h>

#include <EXTERN.h>
#include <perl.h>
#include <XSUB.h>

#include "runtime/common/cgi.h"
#include "runtime/perl/wpl.h"

#define STATUS_ERROR    500
#define ERROR_BODY      "Internal Server Error\n"
#define TEXT_PLAIN      "text/plain"
#define HEADER_JOIN     ", "
/* RFC 6265 5.4: several cookie fields are one list joined by "; ". */
#define COOKIE_JOIN     "; "
/* What a write to a client that left dies with: the glue and the app
 * unwind, and nothing is logged (the router knows). */
#define CLIENT_GONE     "Warren: the client went away\n"

enum {
    STATUS_MIN = 100, STATUS_MAX = 999,
    KEY_STACK  = 256,           /* usual header keys fit on the stack */
};

typedef struct {
    warren_req_t *req;
    int head_sent;      /* libwarren sent the head: no 500 any more */
    int ended;          /* the response's end went */
    int chan_errno;     /* a channel call failed with this (0: none) */
} wpl_req_t;

/* ------------------------------------------------------------ XS helpers */

static wpl_req_t *req_of(pTHX_ SV *handle)
{
    IV p;

    if (!SvROK(handle))
        croak("Warren: not a request handle");
    p = SvIV(SvRV(handle));
    if (p == 0)
        croak("Warren: the request is over");
    return INT2PTR(wpl_req_t *, p);
}

/* A libwarren call failed: remember why, and unwind the application. */
static void chan_failed(pTHX_ wpl_req_t *st, const char *what)
{
    st->chan_errno = errno ? errno : EIO;
    if (st->chan_errno == ECONNABORTED || st->chan_errno == ECONNRESET
        || st->chan_errno == EPIPE)
        croak(CLIENT_GONE);
    croak("Warren: %s: %s", what, strerror(st->chan_errno));
}

static void write_bytes(pTHX_ wpl_req_t *st, SV *data, int last)
{
    STRLEN n = 0;
    const char *p = NULL;
    int rc;

    if (st->ended)
        croak("Warren: the response has ended");
    if (data != NULL && SvOK(data))
        p = SvPVbyte(data, n);      /* croaks on wide characters */
    if (n == 0 && !last)
        return;
    rc = last ? warren_write_end(st->req, p, n) : warren_write(st->req, p, n);
    st->head_sent = 1;
    if (last)
        st->ended = 1;
    if (rc < 0)
        chan_failed(aTHX_ st, "write");
}

/* ------------------------------------------------------------- XS calls */

/* Warren::_head($r, $status, \@headers [, $send_now]) */
XS(xs_head);
XS(xs_head)
{
    dXSARGS;
    wpl_req_t *st;
    AV *headers;
    IV status;
    SSize_t last;

    if (items < 3)
        croak_xs_usage(cv, "r, status, headers [, send_now]");
    st = req_of(aTHX_ ST(0));
    if (st->head_sent)
        croak("Warren: the response head was sent already");
    if (!SvOK(ST(1)) || !looks_like_number(ST(1)))
        croak("the response's status is not a number\n");
    status = SvIV(ST(1));
    if (status < STATUS_MIN || status > STATUS_MAX)
        croak("the response's status %" IVdf " is not 100..999\n", status);
    if (!SvROK(ST(2)) || SvTYPE(SvRV(ST(2))) != SVt_PVAV)
        croak("the response's headers are not an array reference\n");
    headers = (AV *) SvRV(ST(2));
    last = av_len(headers);
    if (warren_response_init(st->req, (int) status, (size_t) (last + 1) / 2) < 0)
        croak("the response's status %" IVdf " is refused: %s\n", status, strerror(errno));
    for (SSize_t i = 0; i + 1 <= last; i += 2) {
        SV **name = av_fetch(headers, i, 0), **value = av_fetch(headers, i + 1, 0);
        STRLEN nn, vn;
        const char *n, *v;

        if (name == NULL || value == NULL || !SvOK(*name) || !SvOK(*value))
            croak("the response's header %ld has no name or no value\n", (long) i / 2);
        n = SvPVbyte(*name, nn);
        v = SvPVbyte(*value, vn);
        if (warren_response_add_header(st->req, n, nn, v, vn) < 0)
            croak("the response's header \"%.*s\" is refused: %s\n", (int) nn, n,
                  errno == EINVAL ? "not a valid field" : strerror(errno));
    }
    if (items > 3 && SvTRUE(ST(3))) {
        if (warren_response_send_head(st->req) < 0)
            chan_failed(aTHX_ st, "sending the head");
        st->head_sent = 1;
    }
    XSRETURN_EMPTY;
}

/* Warren::_write($r, $bytes) */
XS(xs_write);
XS(xs_write)
{
    dXSARGS;

    if (items != 2)
        croak_xs_usage(cv, "r, bytes");
    write_bytes(aTHX_ req_of(aTHX_ ST(0)), ST(1), 0);
    XSRETURN_EMPTY;
}

/* Warren::_write_last($r, \@body): the whole body, its last piece with the
 * end (a small response leaves as one message). */
XS(xs_write_last);
XS(xs_write_last)
{
    dXSARGS;
    wpl_req_t *st;
    AV *body;
    SSize_t last;

    if (items != 2)
        croak_xs_usage(cv, "r, body");
    st = req_of(aTHX_ ST(0));
    if (!SvROK(ST(1)) || SvTYPE(SvRV(ST(1))) != SVt_PVAV)
        croak("the response's body is not an array reference\n");
    body = (AV *) SvRV(ST(1));
    last = av_len(body);
    for (SSize_t i = 0; i < last; i++) {
        SV **piece = av_fetch(body, i, 0);
        write_bytes(aTHX_ st, piece ? *piece : NULL, 0);
    }
    if (last >= 0) {
        SV **piece = av_fetch(body, last, 0);
        write_bytes(aTHX_ st, piece ? *piece : NULL, 1);
    } else {
        write_bytes(aTHX_ st, NULL, 1);
    }
    XSRETURN_EMPTY;
}

/* Warren::_end($r): the end of the body (the writer's close). */
XS(xs_end);
XS(xs_end)
{
    dXSARGS;
    wpl_req_t *st;

    if (items != 1)
        croak_xs_usage(cv, "r");
    st = req_of(aTHX_ ST(0));
    if (!st->ended)
        write_bytes(aTHX_ st, NULL, 1);
    XSRETURN_EMPTY;
}

/* $input->read($buf, $len [, $offset]): $len bytes of the body (fewer
 * only at its end) into $buf at $offset (negative: from the end; past the
 * end: padded with "\0", as Perl's read does). Returns the count, 0 at
 * the end. */
XS(xs_input_read);
XS(xs_input_read)
{
    dXSARGS;
    wpl_req_t *st;
    SV *buf;
    IV len, off = 0;
    STRLEN have;
    ssize_t got;
    char *p;

    if (items < 3 || items > 4)
        croak_xs_usage(cv, "input, buf, len [, offset]");
    st = req_of(aTHX_ ST(0));
    buf = ST(1);
    len = SvIV(ST(2));
    if (len < 0)
        croak("Negative length");
    if (items == 4)
        off = SvIV(ST(3));
    if (!SvOK(buf))
        sv_setpvs(buf, "");
    (void) SvPVbyte_force(buf, have);
    SvPOK_only(buf);            /* a string now, whatever it held */
    if (off < 0) {
        if ((STRLEN) -off > have)
            croak("Offset outside string");
        off += (IV) have;
    }
    p = SvGROW(buf, (STRLEN) off + (STRLEN) len + 1);
    if ((STRLEN) off > have)
        memset(p + have, 0, (STRLEN) off - have);
    /* Until len bytes or the end, as Perl's read on a handle does: an
     * application may read CONTENT_LENGTH bytes in one call. */
    for (got = 0; got < len;) {
        ssize_t n = warren_read(st->req, p + off + got, (size_t) (len - got));
        if (n < 0) {
            SvCUR_set(buf, (STRLEN) off > have ? (STRLEN) off : have);
            chan_failed(aTHX_ st, "reading the request body");
        }
        if (n == 0)
            break;
        got += n;
    }
    SvCUR_set(buf, (STRLEN) off + (STRLEN) got);
    *SvEND(buf) = '\0';
    SvSETMAGIC(buf);
    XSRETURN_IV((IV) got);
}

/* Warren::_log($text): to the error log, a line per line. */
XS(xs_log);
XS(xs_log)
{
    dXSARGS;
    STRLEN n;
    const char *p;

    if (items != 1)
        croak_xs_usage(cv, "text");
    p = SvPVbyte(ST(0), n);
    if (n > 0)
        wpl_log_text(p, n);
    XSRETURN_EMPTY;
}

void wpl_psgi_xs(pTHX)
{
    static const char file[] = __FILE__;

    newXS("Warren::_head", xs_head, file);
    newXS("Warren::_write", xs_write, file);
    newXS("Warren::_write_last", xs_write_last, file);
    newXS("Warren::_end", xs_end, file);
    newXS("Warren::Input::read", xs_input_read, file);
    newXS("Warren::_log", xs_log, file);
}

/* ----------------------------------------------------------------- env */

/* %Warren::_base_env: the keys that are the same for every request,
 * copied into each env. */
int wpl_psgi_init(pTHX_ const wpl_options_t *o)
{
    HV *base = get_hv("Warren::_base_env", GV_ADD);
    AV *version = newAV();

    av_push(version, newSViv(1));
    av_push(version, newSViv(1));
    hv_stores(base, "psgi.version", newRV_noinc((SV *) version));
    hv_stores(base, "psgi.errors",
              sv_bless(newRV_noinc(newSVpvs("")), gv_stashpvs("Warren::Errors", GV_ADD)));
    hv_stores(base, "psgi.multithread", o->threads > 1 ? &PL_sv_yes : &PL_sv_no);
    hv_stores(base, "psgi.multiprocess", &PL_sv_yes);
    hv_stores(base, "psgi.run_once", &PL_sv_no);
    hv_stores(base, "psgi.nonblocking", &PL_sv_no);
    hv_stores(base, "psgi.streaming", &PL_sv_yes);
    hv_stores(base, "SCRIPT_NAME", newSVpvs(""));
    return 0;
}

static void put(pTHX_ HV *env, const char *key, const char *p, size_t n)
{
    (void) hv_store(env, key, (I32) strlen(key), newSVpvn(p, n), 0);
}

typedef const char *(*getter_t)(const warren_req_t *, size_t *);

static void put_field(pTHX_ HV *env, const char *key, warren_req_t *req, getter_t get)
{
    size_t n;
    const char *p = get(req, &n);

    put(aTHX_ env, key, p, n);
}

/* A field repeated is one list (RFC 9110 5.3): its values joined. */
static void put_header(pTHX_ HV *env, const char *name, size_t n, const char *v, size_t vn)
{
    char stack[KEY_STACK];
    size_t need = WR_RT_CGI_KEY_SIZE(n);
    char *key = need <= sizeof(stack) ? stack : (char *) safemalloc(need);
    size_t klen = wr_rt_cgi_key(key, name, n);
    SV **old = hv_fetch(env, key, (I32) klen, 0);

    if (old != NULL) {
        sv_catpv(*old, wr_rt_field_is(name, n, "Cookie") ? COOKIE_JOIN : HEADER_JOIN);
        sv_catpvn(*old, v, vn);
    } else {
        (void) hv_store(env, key, (I32) klen, newSVpvn(v, vn), 0);
    }
    if (key != stack)
        safefree(key);
}

static HV *make_env(pTHX_ wpl_interp_t *pi, warren_req_t *req, SV *input)
{
    HV *env = newHVhv(pi->base_env);
    size_t n, count = warren_req_header_count(req);
    const char *server = warren_req_server_name(req, &n);
    SV *name;

    /* No Host (HTTP/1.0): the address the request came in on. */
    if (n == 0)
        server = warren_req_local_addr(req, &n);
    name = newSV(WR_RT_SERVER_NAME_SIZE(n));
    SvPOK_on(name);
    SvCUR_set(name, wr_rt_server_name(SvPVX(name), server, n));
    (void) hv_stores(env, "SERVER_NAME", name);
    put_field(aTHX_ env, "REQUEST_METHOD", req, warren_req_method);
    put_field(aTHX_ env, "PATH_INFO", req, warren_req_path);
    put_field(aTHX_ env, "REQUEST_URI", req, warren_req_target);
    put_field(aTHX_ env, "QUERY_STRING", req, warren_req_query);
    put_field(aTHX_ env, "SERVER_PROTOCOL", req, warren_req_version);
    put_field(aTHX_ env, "SERVER_PORT", req, warren_req_local_port);
    put_field(aTHX_ env, "REMOTE_ADDR", req, warren_req_remote_addr);
    put_field(aTHX_ env, "REMOTE_PORT", req, warren_req_remote_port);
    put_field(aTHX_ env, "psgi.url_scheme", req, warren_req_scheme);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t nn, vn;

        if (warren_req_header(req, i, &name, &nn, &value, &vn) == 0)
            put_header(aTHX_ env, name, nn, value, vn);
    }
    (void) hv_stores(env, "psgi.input", SvREFCNT_inc_simple_NN(input));
    return env;
}

/* ------------------------------------------------------------- request */

/* A short 500, whatever the application had set. */
static void answer_error(warren_req_t *req)
{
    if (warren_response_init(req, STATUS_ERROR, 1) < 0
        || warren_response_add_header(req, "Content-Type", strlen("Content-Type"),
                                      TEXT_PLAIN, strlen(TEXT_PLAIN)) < 0
        || warren_write_end(req, ERROR_BODY, strlen(ERROR_BODY)) < 0) {
        warren_abort(req);
        return;
    }
    warren_finish(req);
}

static void report(pTHX_ wpl_req_t *st, SV *err)
{
    STRLEN n;
    const char *text = SvPV(err, n);
    warren_req_t *req = st->req;

    if (st->chan_errno == ECONNABORTED || st->chan_errno == ECONNRESET
        || st->chan_errno == EPIPE) {
        warren_abort(req);          /* the router knows */
        return;
    }
    wpl_log("the application failed (%s %s)%s:", warren_req_method(req, NULL),
            warren_req_target(req, NULL),
            st->head_sent ? ", response cut" : ", answered 500");
    wpl_log_text(text, n);
    if (st->head_sent)
        warren_abort(req);
    else
        answer_error(req);
}

void wpl_serve_one(wpl_interp_t *pi, warren_req_t *req)
{
    dTHXa(pi->perl);
    wpl_req_t st = { .req = req };
    SV *handle, *input;
    HV *env;
    dSP;

    ENTER;
    SAVETMPS;
    handle = newSViv(PTR2IV(&st));
    input = sv_bless(newRV_inc(handle), pi->input_stash);
    env = make_env(aTHX_ pi, req, input);
    PUSHMARK(SP);
    XPUSHs(sv_2mortal(newRV_noinc((SV *) env)));
    XPUSHs(sv_2mortal(input));
    PUTBACK;
    call_sv((SV *) pi->serve, G_DISCARD | G_EVAL);
    SPAGAIN;
    /* The handle outlives the request only in what the app kept. */
    sv_setiv(handle, 0);
    SvREFCNT_dec(handle);
    if (SvTRUE(ERRSV))
        report(aTHX_ &st, ERRSV);
    else
        warren_finish(req);     /* ends a writer the app left open */
    PUTBACK;
    FREETMPS;
    LEAVE;
}
