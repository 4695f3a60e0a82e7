"""TLS: the certificate store of the control API (/certificates, as Unit)
and listeners with "tls" (SNI, conf_commands, session resumption, HTTP/1.1
over TLS to static files and Python apps, hostile clients, live changes).

Certificates are made once per session with the openssl CLI
(tls_helpers.PKI); the clients are Python's ssl module."""

import base64
import hashlib
import http.server
import itertools
import json
import os
import shutil
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time

import pytest

import http_helpers as hh
import test_python_websocket as pws
import tls_helpers as th
import warren_helpers as wh

SUCCESS = wh.SUCCESS
NOT_FOUND = {"error": "Value doesn't exist."}
RSA = "RSA (2048 bits)"
TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3
MB = 1 << 20


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return th.PKI(str(tmp_path_factory.mktemp("warren-pki")))


@pytest.fixture
def root():
    """A share root the router (nobody) can read: small files and a 6 MiB
    random one."""
    d = hh.make_root()
    hh.write(d, "pub/a.txt", b"file a\n")
    hh.write(d, "pub/b.txt", b"the b file\n" * 10)
    hh.write(d, "pub/big.bin", os.urandom(6 * MB))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def big(root):
    with open(os.path.join(root, "pub/big.bin"), "rb") as f:
        return f.read()


def share_routes(root):
    return [{"action": {"share": os.path.join(root, "pub") + "$uri"}}]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def addr(port):
    return "127.0.0.1:%d" % port


def handshake_error(port, ctx, server_hostname="localhost"):
    """The exception of a failed handshake, or None if it succeeded."""
    try:
        c = th.TLSConn(port, ctx, server_hostname=server_hostname)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return e
    c.close()
    return None


# ================================================================ certificate store

def test_upload_and_info(warren, pki):
    leaf = pki["localhost"]
    assert th.upload(warren, "localhost", leaf.bundle()) == (200, th.UPLOADED)
    s, info = warren.get("/certificates/localhost")
    assert s == 200, info
    assert info == {
        "key": RSA,
        "chain": [{
            "subject": {"common_name": "localhost", "organization": "Warren Test",
                        "alt_names": ["localhost"]},
            "issuer": th.CA_NAME,
            "validity": {"since": leaf.since, "until": leaf.until},
        }],
    }


def test_info_ec_key_and_names(warren, pki):
    """An EC P-256 key; a certificate without subjectAltName has no
    alt_names; several DNS names are listed in the certificate's order."""
    th.store(warren, pki, "ec", "nosan", "example")
    s, ec = warren.get("/certificates/ec")
    assert s == 200 and ec["key"] == "EC (prime256v1)", ec
    assert ec["chain"][0]["subject"]["alt_names"] == ["ec.test"], ec
    s, nosan = warren.get("/certificates/nosan")
    assert s == 200 and nosan["key"] == RSA, nosan
    assert nosan["chain"][0]["subject"] == {"common_name": "nosan.test",
                                            "organization": "Warren Test"}, nosan
    s, ex = warren.get("/certificates/example")
    assert ex["chain"][0]["subject"]["alt_names"] == ["example.com", "*.example.org"], ex


def test_info_intermediate_chain(warren, pki):
    th.store(warren, pki, "chain")
    s, info = warren.get("/certificates/chain")
    assert s == 200, info
    chain = info["chain"]
    assert len(chain) == 2, info
    assert chain[0]["subject"]["common_name"] == "chain.test"
    assert chain[0]["issuer"] == {"common_name": "Warren Test Intermediate",
                                  "organization": "Warren Test"}
    assert chain[1]["subject"] == {"common_name": "Warren Test Intermediate",
                                   "organization": "Warren Test"}
    assert chain[1]["issuer"] == {"common_name": "Warren Test Root 2",
                                  "organization": "Warren Test"}
    assert "alt_names" not in chain[1]["subject"]


def test_key_after_certificates(warren, pki):
    """The key may come after the certificates in the file."""
    loc, ch = pki["localhost"], pki["chain"]
    assert th.upload(warren, "a", loc.cert + loc.key) == (200, th.UPLOADED)
    assert th.upload(warren, "b", ch.cert + ch.key + pki.inter_cert) == (200, th.UPLOADED)
    s, a = warren.get("/certificates/a")
    assert a["key"] == RSA and a["chain"][0]["subject"]["common_name"] == "localhost", a
    s, b = warren.get("/certificates/b")
    assert [c["subject"]["common_name"] for c in b["chain"]] == \
        ["chain.test", "Warren Test Intermediate"], b


def test_collection_and_root(warren, pki):
    assert warren.get("/certificates") == (200, {})
    th.store(warren, pki, "localhost", "ec")
    s, allc = warren.get("/certificates")
    assert s == 200 and set(allc) == {"localhost", "ec"}, allc
    assert allc["localhost"] == warren.get("/certificates/localhost")[1]
    assert allc["ec"] == warren.get("/certificates/ec")[1]
    s, rootdoc = warren.get("/")
    assert s == 200 and rootdoc["certificates"] == allc, rootdoc


def test_pointer_into_certificate(warren, pki):
    th.store(warren, pki, "example")
    assert warren.get("/certificates/example/chain/0/subject/common_name") == \
        (200, "example.com")
    assert warren.get("/certificates/example/chain/0/subject/alt_names/1") == \
        (200, "*.example.org")
    assert warren.get("/certificates/example/chain/0/issuer/department") == (200, "QA")
    assert warren.get("/certificates/example/key") == (200, RSA)
    for p in ("/certificates/nope", "/certificates/example/chain/1",
              "/certificates/example/nope", "/certificates/example/chain/0/subject/country"):
        assert warren.get(p) == (404, NOT_FOUND), p


def test_duplicate_name_refused(warren, pki):
    th.store(warren, pki, "localhost")
    before = warren.get("/certificates")
    s, j = th.upload(warren, "localhost", pki["example"].bundle())
    assert s == 400, j
    assert j["error"] == 'Certificate "localhost" already exists.', j
    assert warren.get("/certificates") == before
    # after a DELETE the name is free again
    assert warren.delete("/certificates/localhost") == (200, th.DELETED)
    assert th.upload(warren, "localhost", pki["example"].bundle()) == (200, th.UPLOADED)
    assert warren.get("/certificates/localhost/chain/0/subject/common_name") == \
        (200, "example.com")


BAD_BUNDLES = [
    ("not-pem", lambda p: "hello, this is not a PEM file\n", None),
    ("empty", lambda p: "", None),
    ("garbage-in-pem", lambda p: p["localhost"].key +
     "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=!!\n-----END CERTIFICATE-----\n",
     None),
    ("no-key", lambda p: p["localhost"].cert, "private key"),
    ("no-certificate", lambda p: p["localhost"].key, "certificate"),
    ("two-keys", lambda p: p["localhost"].key + p["example"].key + p["localhost"].cert, None),
    ("key-mismatch", lambda p: p["example"].key + p["localhost"].cert, "private key"),
]


@pytest.mark.parametrize("make,detail", [b[1:] for b in BAD_BUNDLES],
                         ids=[b[0] for b in BAD_BUNDLES])
def test_invalid_bundle(warren, pki, make, detail):
    s, j = th.upload(warren, "bad", make(pki))
    assert s == 400, j
    assert j.get("error") == "Invalid certificate bundle.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    if detail:
        assert detail in j["detail"].lower(), j
    assert warren.get("/certificates") == (200, {})
    assert warren.get("/certificates/bad") == (404, NOT_FOUND)


@pytest.mark.parametrize("name", [".hidden", "a" * 129, "a*b", "a~b", "a@b", "a:b",
                                  "a%20b", "%C3%A9t%C3%A9"])
def test_invalid_name(warren, pki, name):
    s, j = th.upload(warren, name, pki["localhost"].bundle())
    assert s == 400, j
    assert j.get("error") == "Invalid certificate name.", j
    assert warren.get("/certificates") == (200, {})


def test_bundle_with_non_utf8_text_serves(warren, pki):
    """Text around the PEM blocks is not ours to judge: an export's
    "Bag Attributes" in Latin-1 still makes a bundle that a listener
    serves with."""
    bundle = (b"Bag Attributes\n    friendlyName: caf\xe9\n" +
              pki["localhost"].bundle().encode())
    assert th.upload(warren, "latin1", bundle) == (200, th.UPLOADED)
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "latin1"})
    r, der = th.tls_get(port, th.client_ctx(pki.cafile))
    assert r.status == 200 and der == pki["localhost"].der


def test_bundle_size_limit_and_chunked_upload(warren, pki):
    """A bundle is at most 1 MiB (text around the PEM blocks counts): one
    byte more is refused; a chunked upload is taken like any other."""
    bundle = pki["localhost"].bundle().encode()
    padded = bundle + b"\n" * (MB - len(bundle))
    assert len(padded) == MB
    assert th.upload(warren, "max", padded) == (200, th.UPLOADED)
    s, j = th.upload(warren, "over", padded + b"\n")
    assert s == 400 and j.get("error") == "Invalid certificate bundle.", j
    assert "1 MiB" in j.get("detail", ""), j
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(bundle[i:i + 700]), bundle[i:i + 700])
                      for i in range(0, len(bundle), 700)) + b"0\r\n\r\n"
    r = warren.request("PUT", "/certificates/chunked", chunks,
                       headers={"Transfer-Encoding": "chunked"})
    assert (r.status, r.json()) == (200, th.UPLOADED), r.body
    assert set(warren.get("/certificates")[1]) == {"max", "chunked"}


def test_valid_name_edges(warren, pki):
    names = ["a" * 128, "A-z_0.9", "x.pem", "-", "_x"]
    for n in names:
        assert th.upload(warren, n, pki["localhost"].bundle()) == (200, th.UPLOADED), n
    assert set(warren.get("/certificates")[1]) == set(names)


def test_delete_certificate(warren, pki):
    th.store(warren, pki, "localhost", "example")
    assert warren.delete("/certificates/localhost") == (200, th.DELETED)
    assert warren.get("/certificates/localhost") == (404, NOT_FOUND)
    assert set(warren.get("/certificates")[1]) == {"example"}
    assert warren.delete("/certificates/localhost") == (404, NOT_FOUND)
    assert warren.delete("/certificates/never") == (404, NOT_FOUND)


def test_post_certificate_not_allowed(warren, pki):
    r = warren.request("POST", "/certificates/x", pki["localhost"].bundle())
    assert r.status == 405, r
    assert warren.get("/certificates") == (200, {})


def test_delete_in_use_refused_then_allowed(warren, pki):
    th.store(warren, pki, "localhost", "example")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": ["localhost", "example"]})
    for name in ("localhost", "example"):
        s, j = warren.delete("/certificates/" + name)
        assert s == 400, j
        assert j.get("error") == "Certificate is used in the configuration.", j
        assert "detail" in j, j
    assert set(warren.get("/certificates")[1]) == {"localhost", "example"}
    r, der = th.tls_get(port, th.client_ctx(pki.cafile))
    assert r.status == 200 and der == pki["localhost"].der
    # the listener stops using "localhost": it can go; "example" cannot
    assert warren.put("/config/listeners/%s/tls/certificate" % addr(port),
                      "example") == (200, SUCCESS)
    assert warren.delete("/certificates/localhost") == (200, th.DELETED)
    assert warren.delete("/certificates/example")[0] == 400
    # no TLS listener any more: it can go as well
    assert warren.put("/config/listeners/%s" % addr(port), {"pass": "routes"}) == \
        (200, SUCCESS)
    assert warren.delete("/certificates/example") == (200, th.DELETED)
    assert warren.get("/certificates") == (200, {})
    assert hh.get(port, "/").status == 200


def test_certificates_persist_across_restart(warren, pki):
    th.store(warren, pki, "localhost", "chain", "ec")
    assert warren.delete("/certificates/ec") == (200, th.DELETED)
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"})
    before = warren.get("/certificates")
    assert set(before[1]) == {"localhost", "chain"}
    warren.restart()
    assert warren.get("/certificates") == before
    assert wh.wait_for(lambda: wh.tcp_connect(port), 5), "TLS listener not restored"
    r, der = th.tls_get(port, th.client_ctx(pki.cafile))
    assert r.status == 200 and der == pki["localhost"].der
    # still the same store: the name is taken, the certificate in use
    assert th.upload(warren, "localhost", pki["localhost"].bundle())[0] == 400
    assert warren.delete("/certificates/localhost")[0] == 400
    assert warren.delete("/certificates/chain") == (200, th.DELETED)


# ================================================================ listener config

def test_unknown_certificate_refused(warren, pki):
    th.store(warren, pki, "localhost")
    hh.setup(warren, [{"action": {"return": 200}}])
    before = warren.config_bytes()
    port = wh.free_port()
    cfg = {"listeners": {addr(port): {"pass": "routes", "tls": {"certificate": "x"}}},
           "routes": [{"action": {"return": 200}}]}
    s, j = warren.put("/config", cfg)
    assert s == 400, j
    assert j.get("error") == "Invalid configuration.", j
    assert j.get("detail") == 'Certificate "x" is not found.', j
    assert j.get("location") == {"path": "/listeners/%s/tls/certificate" % addr(port)}, j
    assert warren.config_bytes() == before
    # one unknown name in a list is refused as well
    cfg["listeners"][addr(port)]["tls"]["certificate"] = ["localhost", "y"]
    s, j = warren.put("/config", cfg)
    assert s == 400 and 'Certificate "y" is not found.' in j.get("detail", ""), j
    assert warren.config_bytes() == before
    assert not wh.tcp_connect(port)


def test_tls_config_round_trip(warren, pki):
    """The whole tls object is kept as given; its ciphersuites apply."""
    th.store(warren, pki, "localhost", "example")
    port = wh.free_port()
    tls = {"certificate": ["localhost", "example"],
           "conf_commands": {"minprotocol": "TLSv1.2",
                             "ciphersuites": "TLS_AES_128_GCM_SHA256"},
           "session": {"cache_size": 10, "timeout": 60, "tickets": False}}
    cfg = th.tls_setup(warren, port, tls)
    assert warren.config() == cfg
    assert warren.get("/config/listeners/%s/tls/certificate/1" % addr(port)) == \
        (200, "example")
    with th.TLSConn(port, th.client_ctx(pki.cafile, minimum=TLS13)) as c:
        assert c.s.cipher()[0] == "TLS_AES_128_GCM_SHA256", c.s.cipher()
        assert c.request().status == 200


# ================================================================ HTTP over TLS

def test_https_get_verified(warren, pki):
    """The handshake verifies against the CA (by name and by IP address,
    the latter without SNI), then HTTP/1.1 is answered."""
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"},
                 routes=[{"action": {"return": 200}}])
    ctx = th.client_ctx(pki.cafile)
    for host in ("localhost", "127.0.0.1"):
        with th.TLSConn(port, ctx, server_hostname=host) as c:
            assert c.s.version() in ("TLSv1.2", "TLSv1.3"), c.s.version()
            assert c.peer_der() == pki["localhost"].der
            r = c.request("GET", "/")
            assert r.status == 200, r
            assert r.version == "HTTP/1.1"


def test_keepalive_and_pipelining(warren, pki, root):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, routes=share_routes(root))
    with th.TLSConn(port, th.client_ctx(pki.cafile)) as c:
        for _ in range(5):
            r = c.request("GET", "/a.txt")
            assert (r.status, r.body) == (200, b"file a\n"), r
        c.send(hh.build("GET", "/b.txt") + hh.build("HEAD", "/a.txt") +
               hh.build("GET", "/nope") + hh.build("GET", "/a.txt"))
        r1 = c.read_response()
        r2 = c.read_response(head_only=True)
        r3 = c.read_response()
        r4 = c.read_response()
        assert (r1.status, r1.body) == (200, b"the b file\n" * 10), r1
        assert r2.status == 200 and r2.header("Content-Length") == "7", r2
        assert r3.status == 404, r3
        assert (r4.status, r4.body) == (200, b"file a\n"), r4
        assert c.still_open()


def test_large_static_file_and_range(warren, pki, root):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, routes=share_routes(root))
    data = big(root)
    with th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30) as c:
        r = c.request("GET", "/big.bin")
        assert r.status == 200, r
        assert r.header("Content-Length") == str(len(data))
        assert len(r.body) == len(data) and sha(r.body) == sha(data)
        r = c.request("GET", "/big.bin", {"Range": "bytes=1000000-2999999"})
        assert r.status == 206, r
        assert r.header("Content-Range") == "bytes 1000000-2999999/%d" % len(data), r
        assert sha(r.body) == sha(data[1000000:3000000])
        r = c.request("GET", "/big.bin", {"Range": "bytes=-10"})
        assert (r.status, r.body) == (206, data[-10:]), r
        r = c.request("GET", "/a.txt")
        assert (r.status, r.body) == (200, b"file a\n"), r


def test_large_file_to_slow_reader(warren, pki, root):
    """A client with a tiny receive buffer that waits before reading: the
    router's TLS writes block and resume many times; every byte arrives in
    order."""
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, routes=share_routes(root))
    data = big(root)
    s = th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30, rcvbuf=4096).s
    try:
        s.sendall(hh.build("GET", "/big.bin") + hh.build("GET", "/a.txt"))
        time.sleep(1.0)
        got = bytearray()
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
            if len(got) >= len(data) + 200 and got.endswith(b"file a\n"):
                break
            if len(got) % (512 * 1024) < 16384:
                time.sleep(0.05)
    finally:
        s.close()
    head, _, rest = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    body = rest[:len(data)]
    assert sha(body) == sha(data), "body differs (got %d bytes)" % len(body)
    assert rest[len(data):].startswith(b"HTTP/1.1 200"), rest[len(data):len(data) + 200]
    assert rest.endswith(b"file a\n")


def test_concurrent_clients(warren, pki, root):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, routes=share_routes(root))
    want = sha(big(root))
    ctx = th.client_ctx(pki.cafile)
    errors = []

    def client(i):
        try:
            with th.TLSConn(port, ctx, timeout=60) as c:
                for _ in range(10):
                    r = c.request("GET", "/b.txt")
                    assert (r.status, r.body) == (200, b"the b file\n" * 10), r
                if i % 3 == 0:
                    r = c.request("GET", "/big.bin")
                    assert r.status == 200 and sha(r.body) == want, r.status
            for _ in range(5):
                r, _der = th.tls_get(port, ctx, "/a.txt")
                assert (r.status, r.body) == (200, b"file a\n"), r
        except BaseException as e:       # noqa: B902 - reported below
            errors.append("client %d: %r" % (i, e))

    ts = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors


def test_route_match_scheme(warren, pki):
    th.store(warren, pki, "localhost")
    port, plain = wh.free_port(), wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, plain_port=plain,
                 routes=[{"match": {"scheme": "https"}, "action": {"return": 204}},
                         {"action": {"return": 200}}])
    r, _ = th.tls_get(port, th.client_ctx(pki.cafile))
    assert r.status == 204, r
    assert hh.get(plain, "/").status == 200


def test_intermediate_sent_with_leaf(warren, pki):
    """A client trusting only the root verifies the leaf: the intermediate
    of the bundle is sent in the handshake."""
    th.store(warren, pki, "chain")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "chain"})
    ctx = th.client_ctx(pki.root2file)
    with th.TLSConn(port, ctx, server_hostname="chain.test") as c:
        assert c.peer_der() == pki["chain"].der
        assert c.s.getpeercert()["subject"][-1] == (("commonName", "chain.test"),)
        assert c.request().status == 200


def test_ec_certificate(warren, pki):
    th.store(warren, pki, "ec")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "ec"})
    for maximum in (TLS12, None):
        ctx = th.client_ctx(pki.cafile, maximum=maximum)
        with th.TLSConn(port, ctx, server_hostname="ec.test") as c:
            assert c.peer_der() == pki["ec"].der
            if maximum == TLS12:
                assert c.s.version() == "TLSv1.2"
                assert "ECDSA" in c.s.cipher()[0], c.s.cipher()
            assert c.request().status == 200


# ================================================================ Python app over TLS

ECHO_APP = '''
import hashlib, json

def stream(n):
    for i in range(n):
        yield bytes([i % 251]) * 65536

def application(environ, start_response):
    body = environ["wsgi.input"].read()
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return stream(int(environ["QUERY_STRING"]))
    if environ["PATH_INFO"] == "/echo":
        out, ctype = body, "application/octet-stream"
    else:
        out = json.dumps({"scheme": environ["wsgi.url_scheme"], "len": len(body),
                          "sha256": hashlib.sha256(body).hexdigest()}).encode()
        ctype = "application/json"
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(out)))])
    return [out]
'''


@pytest.fixture
def pyw(warren_factory, pki):
    """A warrend with warren-python in its --modulesdir, the certificate
    "localhost" stored, and a TLS and a plain listener passing to the
    echo app: (w, tls port, plain port)."""
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "echo_wsgi.py", ECHO_APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    th.store(w, pki, "localhost")
    port, plain = wh.free_port(), wh.free_port()
    th.tls_setup(w, port, {"certificate": "localhost"}, plain_port=plain,
                 routes=[{"action": {"pass": "applications/echo"}}],
                 settings={"http": {"max_body_size": 32 * MB}},
                 extra={"applications": {"echo": {"type": "python", "path": appdir,
                                                  "module": "echo_wsgi",
                                                  "processes": 1}}})
    yield w, port, plain
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def test_wsgi_stream_to_slow_tls_reader(pyw, pki):
    """An application's streamed (chunked) 8 MiB answer to a client with a
    tiny receive buffer that reads slowly: the router's TLS writes stop and
    resume many times while the worker's window holds the rest back; every
    byte arrives in order, and the connection serves the next request."""
    w, port, plain = pyw
    n = 128
    want = b"".join(bytes([i % 251]) * 65536 for i in range(n))
    c = th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30, rcvbuf=4096)
    try:
        c.send(hh.build("GET", "/stream?%d" % n))
        time.sleep(1.0)                     # the router meets a full socket
        while b"\r\n\r\n" not in c.buf:
            assert c._fill()
        for i in range(40):                 # slow at first: many stops
            c._fill()
            time.sleep(0.02)
        r = c.read_response()
        assert r.status == 200 and r.header("Transfer-Encoding") == "chunked", r
        assert len(r.body) == len(want) and sha(r.body) == sha(want)
        r = c.request("GET", "/")
        assert r.status == 200 and json.loads(r.body)["scheme"] == "https", r
    finally:
        c.s.close()


def expect_100(c, wait):
    """The next answer on c is a 100 Continue, within wait seconds."""
    old = c.s.gettimeout()
    c.s.settimeout(wait)
    try:
        r = c.read_response()
    except socket.timeout:
        pytest.fail("no 100 Continue within %d s" % wait)
    finally:
        c.s.settimeout(old)
    assert r.status == 100, r


def test_expect_continue_behind_a_large_answer(pyw, pki):
    """A POST with Expect: 100-continue pipelined behind a large answer to a
    client that reads slowly: its "100 Continue" comes after that answer
    (the router keeps it until the socket takes it, ahead of anything
    else: a TLS write abandoned half done would break the next one; this
    test cannot make the socket full at that very moment, so that case is
    exercised only when it happens), then the body is taken and answered on
    the same connection."""
    w, port, plain = pyw
    n = 96
    body = os.urandom(100000)
    c = th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30, rcvbuf=4096)
    try:
        c.send(hh.build("GET", "/stream?%d" % n) +
               b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        time.sleep(1.0)                     # both sides' buffers fill
        r = c.read_response()
        assert r.status == 200 and len(r.body) == n * 65536, r
        expect_100(c, 5)
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and sha(r.body) == sha(body), r
    finally:
        c.s.close()


def test_wsgi_url_scheme(pyw, pki):
    w, port, plain = pyw
    r, _ = th.tls_get(port, th.client_ctx(pki.cafile))
    assert r.status == 200, r
    assert json.loads(r.body)["scheme"] == "https", r
    r = hh.get(plain, "/")
    assert r.status == 200 and json.loads(r.body)["scheme"] == "http", r


def test_wsgi_large_post_and_echo(pyw, pki):
    w, port, plain = pyw
    body = os.urandom(5 * MB)
    with th.TLSConn(port, th.client_ctx(pki.cafile), timeout=60) as c:
        r = c.request("POST", "/", body=body)
        assert r.status == 200, r
        j = json.loads(r.body)
        assert (j["len"], j["sha256"], j["scheme"]) == (len(body), sha(body), "https"), j
        r = c.request("POST", "/echo", body=body)
        assert r.status == 200, r
        assert len(r.body) == len(body) and sha(r.body) == sha(body)
        # a chunked body on the same connection
        chunks = b"".join(b"%x\r\n%s\r\n" % (64 * 1024, body[i:i + 64 * 1024])
                          for i in range(0, MB, 64 * 1024)) + b"0\r\n\r\n"
        r = c.request("POST", "/", {"Transfer-Encoding": "chunked"}, body=chunks)
        assert r.status == 200, r
        assert json.loads(r.body)["sha256"] == sha(body[:MB]), r


def test_wsgi_expect_100_continue(pyw, pki):
    """A body announced with Expect: 100-continue to an application: the
    router answers 100 Continue inside the TLS stream (a client would
    otherwise wait, curl a second), the body then reaches the app whole and
    the connection stays open for the next request."""
    w, port, plain = pyw
    body = os.urandom(2 * MB)
    with th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30) as c:
        c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        expect_100(c, 10)
        c.send(body)
        r = c.read_response()
        assert r.status == 200, r
        assert json.loads(r.body)["sha256"] == sha(body), r
        r = c.request("GET", "/")
        assert r.status == 200, r


def test_wsgi_expect_100_continue_plain(pyw):
    """The same on a plain listener; an HTTP/1.0 client gets no 100 (it
    would not know one) and sends its body after its own wait."""
    w, port, plain = pyw
    body = os.urandom(64 * 1024)
    head = b"POST / HTTP/%s\r\nHost: localhost\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
    c = hh.Conn(plain, timeout=10)
    try:
        c.send(head % (b"1.1", len(body)))
        r = c.read_response()
        assert r.status == 100, r
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["sha256"] == sha(body), r
    finally:
        c.s.close()
    c = hh.Conn(plain, timeout=1.5)
    try:
        c.send(head % (b"1.0", len(body)))
        with pytest.raises(socket.timeout):
            c._fill()
        c.s.settimeout(10)
        c.send(body)
        r = c.read_response()
        assert r.status == 200 and json.loads(r.body)["sha256"] == sha(body), r
    finally:
        c.s.close()


class Upstream(hh.NumberedHandler):
    """A backend for the proxy action: answers a POST with the digest of
    the body it got."""

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        out = json.dumps({"got": n, "sha256": sha(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class UpstreamServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def upstream():
    srv = UpstreamServer(("127.0.0.1", 0), Upstream)
    srv.numbers = itertools.count()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_proxy_chunked_body_expect_100_continue(warren, pki, upstream):
    """Proxied, a chunked body is read first (the router answers "100
    Continue" itself): over TLS the interim answer and the final one both
    come inside the TLS stream."""
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"},
                 routes=[{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                 settings={"http": {"max_body_size": 32 * MB}})
    body = os.urandom(3 * MB + 17)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100003]), body[i:i + 100003])
                      for i in range(0, len(body), 100003)) + b"0\r\n\r\n"
    with th.TLSConn(port, th.client_ctx(pki.cafile), timeout=30) as c:
        c.send(b"POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
               b"Expect: 100-continue\r\n\r\n")
        r = c.read_response()
        assert r.status == 100, r
        c.send(chunks)
        r = c.read_response()
        assert r.status == 200, r
        assert json.loads(r.body) == {"got": len(body), "sha256": sha(body)}, r.body


# ================================================================ SNI

SNI_CASES = [
    ("localhost", "localhost"),
    ("example.com", "example"),
    ("www.example.org", "example"),
    ("nosan.test", "nosan"),              # no subjectAltName: the CN counts
    ("a.b.example.org", "localhost"),     # "*" is one label
    ("example.org", "localhost"),
    ("unknown.test", "localhost"),
    (None, "localhost"),                  # no SNI
]


@pytest.mark.parametrize("sni,want", SNI_CASES, ids=[str(c[0]) for c in SNI_CASES])
def test_sni_selects_certificate(warren, pki, sni, want):
    th.store(warren, pki, "localhost", "example", "nosan")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": ["localhost", "example", "nosan"]})
    with th.TLSConn(port, th.client_ctx(), server_hostname=sni) as c:
        got = [n for n in ("localhost", "example", "nosan") if pki[n].der == c.peer_der()]
        assert got == [want], "SNI %r got %r" % (sni, got)
        assert c.request().status == 200


def test_sni_default_is_first_in_list(warren, pki):
    th.store(warren, pki, "localhost", "example")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": ["example", "localhost"]})
    anyc = th.client_ctx()
    for sni in (None, "unknown.test"):
        with th.TLSConn(port, anyc, server_hostname=sni) as c:
            assert c.peer_der() == pki["example"].der, sni
    # and verified by name, both ways
    ctx = th.client_ctx(pki.cafile)
    for sni, want in (("localhost", "localhost"), ("x.example.org", "example"),
                      ("example.com", "example")):
        r, der = th.tls_get(port, ctx, server_hostname=sni)
        assert r.status == 200 and der == pki[want].der, sni


def test_handshake_outlives_its_configuration(warren, pki):
    """A connection accepted under one configuration whose handshake comes
    after the next one is in place: its SNI (and ticket) callbacks still
    see the listener as it was when it was accepted (the router's TLS
    state of a configuration lives as long as a connection of it; the
    sanitizer build would abort on a freed one), and it is served."""
    th.store(warren, pki, "localhost", "example")
    port = wh.free_port()
    key = base64.b64encode(os.urandom(48)).decode()
    th.tls_setup(warren, port, {"certificate": ["localhost", "example"],
                                "session": {"tickets": key}})
    ctx = th.client_ctx()
    raws = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    try:
        time.sleep(0.3)                     # accepted: each has its SSL now
        for i in range(4):                  # the old configuration is freed
            s, j = warren.put("/config/listeners/127.0.0.1:%d/tls/certificate" % port,
                              ["example", "localhost"] if i % 2 == 0 else "localhost")
            assert (s, j) == (200, SUCCESS), j
        for raw in raws:
            c = th.TLSConn(port, ctx, server_hostname="example.com", raw=raw)
            assert c.peer_der() == pki["example"].der
            assert c.request("GET", "/").status == 200
    finally:
        for raw in raws:
            raw.close()
    with th.TLSConn(port, ctx, server_hostname="example.com") as c:
        assert c.peer_der() == pki["localhost"].der     # the new one: no SNI list
        assert c.request("GET", "/").status == 200


# ================================================================ conf_commands

@pytest.mark.parametrize("name", ["minprotocol", "MinProtocol"])
def test_conf_minprotocol(warren, pki, name):
    th.store(warren, pki, "localhost")
    p_default, p13 = wh.free_port(), wh.free_port()
    cfg = {"listeners": {
        addr(p_default): {"pass": "routes", "tls": {"certificate": "localhost"}},
        addr(p13): {"pass": "routes", "tls": {"certificate": "localhost",
                                              "conf_commands": {name: "TLSv1.3"}}}},
        "routes": [{"action": {"return": 200}}]}
    assert warren.put("/config", cfg) == (200, SUCCESS)
    ctx12 = th.client_ctx(pki.cafile, maximum=TLS12)
    assert handshake_error(p_default, ctx12) is None   # TLS 1.2 is allowed by default
    err = handshake_error(p13, ctx12)
    assert err is not None, "a TLS 1.2 client completed its handshake"
    with th.TLSConn(p13, th.client_ctx(pki.cafile)) as c:
        assert c.s.version() == "TLSv1.3"
        assert c.request().status == 200


def test_conf_ciphersuites(warren, pki):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost", "conf_commands": {
        "CipherSuites": "TLS_CHACHA20_POLY1305_SHA256"}})
    with th.TLSConn(port, th.client_ctx(pki.cafile, minimum=TLS13)) as c:
        assert c.s.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256", c.s.cipher()
        assert c.request().status == 200


BAD_CONF = [
    ("unknown-command", {"nosuchcommand": "x"}, "nosuchcommand"),
    ("bad-protocol", {"minprotocol": "TLSv9"}, "minprotocol"),
    ("bad-cipherstring", {"ciphersuites": "TLS_AES_128_GCM_SHA256",
                          "CipherString": "NO-SUCH-CIPHER"}, "CipherString"),
]


@pytest.mark.parametrize("commands,bad", [b[1:] for b in BAD_CONF],
                         ids=[b[0] for b in BAD_CONF])
def test_conf_commands_invalid(warren, pki, commands, bad):
    th.store(warren, pki, "localhost")
    hh.setup(warren, [{"action": {"return": 200}}])
    before = warren.config_bytes()
    port = wh.free_port()
    s, j = warren.put("/config", {
        "listeners": {addr(port): {"pass": "routes", "tls": {
            "certificate": "localhost", "conf_commands": commands}}},
        "routes": [{"action": {"return": 200}}]})
    assert s == 400, j
    assert isinstance(j.get("error"), str), j
    assert j.get("location") == {
        "path": "/listeners/%s/tls/conf_commands/%s" % (addr(port), bad)}, j
    assert warren.config_bytes() == before
    assert not wh.tcp_connect(port)


# ================================================================ sessions

def resumed(port, ctx):
    """Connect and read a response (a TLS 1.3 ticket arrives after the
    handshake), then connect again with the session while the first
    connection is still open: was the session resumed?"""
    with th.TLSConn(port, ctx) as c:
        r = c.request("GET", "/")
        assert r.status == 200, r
        sess = c.s.session
        assert not c.s.session_reused
        if sess is None:
            return False
        with th.TLSConn(port, ctx, session=sess) as c2:
            assert c2.request().status == 200
            return c2.s.session_reused


def test_session_tickets_resume(warren, pki):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost", "session": {"tickets": True}})
    ctx = th.client_ctx(pki.cafile, minimum=TLS13)
    assert resumed(port, ctx) is True


def test_session_no_resumption_by_default(warren, pki):
    th.store(warren, pki, "localhost")
    p_default, p_off = wh.free_port(), wh.free_port()
    cfg = {"listeners": {
        addr(p_default): {"pass": "routes", "tls": {"certificate": "localhost"}},
        addr(p_off): {"pass": "routes", "tls": {"certificate": "localhost", "session": {
            "cache_size": 0, "tickets": False}}}},
        "routes": [{"action": {"return": 200}}]}
    assert warren.put("/config", cfg) == (200, SUCCESS)
    for port in (p_default, p_off):
        assert resumed(port, th.client_ctx(pki.cafile, minimum=TLS13)) is False, port
        assert resumed(port, th.client_ctx(pki.cafile, maximum=TLS12)) is False, port


def test_session_cache_resumes_tls12(warren, pki):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost", "session": {
        "cache_size": 100, "timeout": 300, "tickets": False}})
    ctx = th.client_ctx(pki.cafile, maximum=TLS12)
    assert resumed(port, ctx) is True


# ================================================================ hostile clients

def https_ok(port, pki):
    r, der = th.tls_get(port, th.client_ctx(pki.cafile))
    return r.status == 200 and der == pki["localhost"].der


def test_plain_http_to_tls_listener(warren, pki):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"})
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            try:
                data = th.read_until_closed(s, 5.0)
            except socket.timeout:
                pytest.fail("a plain HTTP request on the TLS listener was not closed")
        finally:
            s.close()
        assert b"HTTP/1.1 200" not in data, data[:200]
    assert https_ok(port, pki)


def test_silent_clients_closed(warren, pki):
    """A client that sends nothing, and one that completes the handshake
    and then sends nothing: both are closed by the server."""
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"},
                 settings={"http": {"header_read_timeout": 1, "idle_timeout": 1}})
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        try:
            data = th.read_until_closed(s, 6.0)
        except socket.timeout:
            pytest.fail("a silent TCP client was not closed")
        assert not data.startswith(b"HTTP/"), data[:200]
    finally:
        s.close()
    with th.TLSConn(port, th.client_ctx(pki.cafile), timeout=6) as c:
        try:
            while c._fill():
                pass
        except socket.timeout:
            pytest.fail("a silent TLS client was not closed")
        assert c.eof
    assert https_ok(port, pki)


def test_client_vanishes_mid_large_file(warren, pki, root):
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"}, routes=share_routes(root))
    ctx = th.client_ctx(pki.cafile)
    for i in range(6):
        c = th.TLSConn(port, ctx, timeout=10)
        try:
            c.send(hh.build("GET", "/big.bin"))
            while len(c.buf) < 200000 and c._fill():
                pass
            assert c.buf.startswith(b"HTTP/1.1 200"), c.buf[:200]
            if i % 2:
                # abort: RST instead of FIN
                c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            c.close()
    data = big(root)
    with th.TLSConn(port, ctx, timeout=30) as c:
        r = c.request("GET", "/big.bin")
        assert r.status == 200 and sha(r.body) == sha(data)


def client_hello(ctx, server_hostname="localhost"):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def bio_handshake(port, ctx, server_hostname="localhost"):
    """A TLS handshake driven by hand over a plain socket: (sock, sslobj,
    incoming BIO, outgoing BIO), so that raw record bytes can be cut short."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    sock.sendall(pending)
                d = sock.recv(65536)
                if not d:
                    raise ConnectionError("closed during the handshake")
                inc.write(d)
        pending = out.read()
        if pending:
            sock.sendall(pending)
    except BaseException:
        sock.close()
        raise
    return sock, obj, inc, out


def test_truncated_records_then_disconnect(warren, pki):
    """Half a record header, half a ClientHello, a whole ClientHello and
    gone, half an application-data record after the handshake: the server
    keeps serving."""
    th.store(warren, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"})
    ctx = th.client_ctx(pki.cafile)
    hello = client_hello(ctx)
    assert hello[:1] == b"\x16", hello[:10]
    for payload in (b"\x16\x03", hello[:5], hello[:len(hello) // 2], hello,
                    b"\x16\x03\x01\x40\x00" + b"\x01" * 100):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(payload)
        s.close()
    for maximum in (None, TLS12):
        sock, obj, _inc, out = bio_handshake(port, th.client_ctx(pki.cafile, maximum=maximum))
        try:
            obj.write(hh.build("GET", "/") * 3)
            rec = out.read()
            assert len(rec) > 10
            sock.sendall(rec[:len(rec) // 2])
        finally:
            sock.close()
    assert https_ok(port, pki)
    # and the hand-driven client is a real one: a whole record is answered
    sock, obj, inc, out = bio_handshake(port, ctx)
    try:
        obj.write(hh.build("GET", "/", {"Connection": "close"}))
        sock.sendall(out.read())
        plain = b""
        while b"\r\n\r\n" not in plain:
            d = sock.recv(65536)
            if not d:
                break
            plain += _feed(obj, inc, d)
        assert plain.startswith(b"HTTP/1.1 200"), plain[:200]
    finally:
        sock.close()


def _feed(obj, inc, data):
    """Decrypt what arrived for a wrap_bio object."""
    inc.write(data)
    out = b""
    while True:
        try:
            d = obj.read(65536)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            return out
        if not d:
            return out
        out += d


# ================================================================ live changes

def test_switch_certificate_keeps_established_connection(warren, pki):
    th.store(warren, pki, "localhost", "example")
    port = wh.free_port()
    th.tls_setup(warren, port, {"certificate": "localhost"})
    anyc = th.client_ctx()
    with th.TLSConn(port, anyc) as old:
        assert old.request().status == 200
        assert old.peer_der() == pki["localhost"].der
        assert warren.put("/config/listeners/%s/tls/certificate" % addr(port),
                          "example") == (200, SUCCESS)
        r, der = th.tls_get(port, anyc)
        assert r.status == 200 and der == pki["example"].der
        for _ in range(3):
            assert old.request().status == 200
        assert old.peer_der() == pki["localhost"].der
    # "localhost" is no longer used: it can be deleted
    assert warren.delete("/certificates/localhost") == (200, th.DELETED)
    r, der = th.tls_get(port, anyc)
    assert r.status == 200 and der == pki["example"].der


def test_websocket_over_tls(warren_factory, pki):
    """An ASGI WebSocket on a TLS listener: the upgrade, then frames both
    ways through OpenSSL on the router's tunnel (wss scheme for the app),
    a message larger than a TLS record, the close handshake."""
    w, plain, events, dirs = pws.start(warren_factory)
    try:
        th.store(w, pki, "localhost")
        port = wh.free_port()
        s, j = w.put("/config/listeners/127.0.0.1:%d" % port,
                     {"pass": "routes", "tls": {"certificate": "localhost"}})
        assert (s, j) == (200, SUCCESS), j
        conn = th.TLSConn(port, th.client_ctx(pki.cafile), timeout=10)
        ws = pws.WS(port, "/chat?room=2", conn=conn)
        try:
            assert ws.r.status == 101, (ws.r, ws.r.body)
            assert ws.r.header("X-Scope") == "wss /chat room=2  False"
            ws.send(pws.TEXT, "over tls")
            assert ws.recv() == (True, pws.TEXT, b"slt revo")
            big_msg = os.urandom(70000)
            ws.send(pws.BINARY, big_msg)
            assert ws.recv() == (True, pws.BINARY, big_msg)
            ws.send(pws.CLOSE, struct.pack("!H", 1000))
            assert ws.close_code() == (1000, b"")
        finally:
            ws.close()
        assert wh.wait_for(lambda: "/chat disconnect 1000" in pws.events(events), 5.0)
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable"


def test_router_memory_closed_to_its_own_user(warren_factory, pki):
    """The router holds the private keys: a process of its user (as an
    application run as nobody would be) can read neither its memory nor
    its environment, even where fs.suid_dumpable would leave it open (the
    test sets 1 while warrend starts, when it can)."""
    try:
        with open(SUID_DUMPABLE) as f:
            saved = f.read().strip()
        with open(SUID_DUMPABLE, "w") as f:
            f.write("1")
    except OSError:
        saved = None                        # read-only here: the default (0) stays
    try:
        w = warren_factory()
    finally:
        if saved is not None:
            with open(SUID_DUMPABLE, "w") as f:
                f.write(saved)
    th.store(w, pki, "localhost")
    port = wh.free_port()
    th.tls_setup(w, port, {"certificate": "localhost"})
    for role in ("router", "controller"):
        pid = w.pid(role)
        assert os.stat("/proc/%d/mem" % pid).st_uid == 0, role     # not dumpable
        probe = ("import sys\n"
                 "for n in ('mem', 'environ'):\n"
                 "    try:\n"
                 "        open('/proc/%d/' + n, 'rb').read(1)\n"
                 "        sys.exit('read ' + n)\n"
                 "    except PermissionError:\n"
                 "        pass\n" % pid)
        r = subprocess.run(["/usr/bin/python3", "-c", probe], user=65534, group=65534,
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, (role, r.stdout, r.stderr)
    assert th.tls_get(port, th.client_ctx(pki.cafile))[0].status == 200
