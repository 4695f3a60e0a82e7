"""
Helpers for the TLS tests (test_tls.py): a small PKI made with the openssl
CLI, TLS clients built on Python's ssl module (a subclass of http_helpers'
Conn, so responses are read exactly like on a plain listener), and the
certificate store of the control API.

Standard library only; Debian's /usr/bin/python3.
"""

import json
import os
import socket
import ssl
import subprocess

import http_helpers as hh
import warren_helpers as wh

# --------------------------------------------------------------------------
# the PKI

CNF = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = placeholder

[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[leaf_localhost]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost,IP:127.0.0.1

[leaf_example]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:example.com,DNS:*.example.org

[leaf_ec]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:ec.test

[leaf_chain]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:chain.test

[leaf_nosan]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

CA_SUBJECT = "/C=US/ST=California/L=San Francisco/O=Warren Test/OU=QA/CN=Warren Test CA"
CA_NAME = {"common_name": "Warren Test CA", "country": "US",
           "state_or_province": "California", "locality": "San Francisco",
           "organization": "Warren Test", "department": "QA"}
ROOT2_SUBJECT = "/O=Warren Test/CN=Warren Test Root 2"
INTER_SUBJECT = "/O=Warren Test/CN=Warren Test Intermediate"


def openssl(d, *args):
    r = subprocess.run(["openssl"] + list(args), cwd=d, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args),
                                                      r.stderr.decode(errors="replace")))
    return r.stdout.decode()


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read()


class Leaf:
    """A key and its certificate (and the intermediates to send with it)."""

    def __init__(self, d, name, intermediates=()):
        self.name = name
        self.key = read(d, name + ".key")
        self.cert = read(d, name + ".pem")
        self.intermediates = list(intermediates)
        self.der = ssl.PEM_cert_to_DER_cert(self.cert)
        dates = openssl(d, "x509", "-in", name + ".pem", "-noout",
                        "-startdate", "-enddate").splitlines()
        self.since = dates[0].split("=", 1)[1].strip()
        self.until = dates[1].split("=", 1)[1].strip()

    def bundle(self):
        """key, leaf, then the intermediates (the usual order)."""
        return self.key + self.cert + "".join(self.intermediates)


class PKI:
    """One CA signing the leaves "localhost" (DNS:localhost, IP:127.0.0.1),
    "example" (DNS:example.com, DNS:*.example.org), "ec" (P-256 key,
    DNS:ec.test), "nosan" (CN only: nosan.test); and a second root ->
    intermediate -> leaf "chain" (DNS:chain.test) chain."""

    def __init__(self, d):
        self.dir = d
        with open(os.path.join(d, "openssl.cnf"), "w") as f:
            f.write(CNF)
        self._selfsigned("ca", CA_SUBJECT)
        self._selfsigned("root2", ROOT2_SUBJECT)
        self._signed("inter", INTER_SUBJECT, "root2", "v3_ca", serial=100)
        self.cafile = os.path.join(d, "ca.pem")
        self.root2file = os.path.join(d, "root2.pem")
        self.ca_cert = read(d, "ca.pem")
        self.inter_cert = read(d, "inter.pem")
        self.leaves = {}
        specs = [("localhost", "/O=Warren Test/CN=localhost", "ca", "leaf_localhost", "rsa"),
                 ("example", "/O=Warren Test/CN=example.com", "ca", "leaf_example", "rsa"),
                 ("ec", "/O=Warren Test/CN=ec.test", "ca", "leaf_ec", "ec"),
                 ("nosan", "/O=Warren Test/CN=nosan.test", "ca", "leaf_nosan", "rsa"),
                 ("chain", "/O=Warren Test/CN=chain.test", "inter", "leaf_chain", "rsa")]
        for i, (name, subj, ca, ext, kind) in enumerate(specs):
            self._signed(name, subj, ca, ext, serial=200 + i, kind=kind)
            inter = [self.inter_cert] if ca == "inter" else []
            self.leaves[name] = Leaf(d, name, inter)

    def __getitem__(self, name):
        return self.leaves[name]

    def _newkey(self, kind):
        if kind == "ec":
            return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        return ["-newkey", "rsa:2048"]

    def _selfsigned(self, name, subj):
        openssl(self.dir, "req", "-x509", "-config", "openssl.cnf", "-extensions", "v3_ca",
                *self._newkey("rsa"), "-nodes", "-keyout", name + ".key",
                "-out", name + ".pem", "-days", "3650", "-subj", subj)

    def _signed(self, name, subj, ca, ext, serial, kind="rsa"):
        openssl(self.dir, "req", "-new", "-config", "openssl.cnf", *self._newkey(kind),
                "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj)
        openssl(self.dir, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                "-CAkey", ca + ".key", "-set_serial", str(serial), "-days", "825",
                "-out", name + ".pem", "-extfile", "openssl.cnf", "-extensions", ext)


# --------------------------------------------------------------------------
# the certificate store

def upload(w, name, bundle):
    """PUT /certificates/NAME with a PEM body: (status, json)."""
    return wh.put_raw(w, "/certificates/" + name, bundle)


UPLOADED = {"success": "Certificate chain uploaded."}
DELETED = {"success": "Certificate deleted."}


def store(w, pki, *names):
    for n in names:
        s, j = upload(w, n, pki[n].bundle())
        assert (s, j) == (200, UPLOADED), (n, s, j)


def tls_setup(w, port, tls, routes=None, plain_port=None, settings=None, extra=None):
    """PUT a config with a TLS listener 127.0.0.1:port (and a plain one on
    plain_port if given), both passing to routes."""
    listeners = {"127.0.0.1:%d" % port: {"pass": "routes", "tls": tls}}
    if plain_port:
        listeners["127.0.0.1:%d" % plain_port] = {"pass": "routes"}
    cfg = {"listeners": listeners,
           "routes": routes if routes is not None else [{"action": {"return": 200}}]}
    if settings is not None:
        cfg["settings"] = settings
    if extra:
        cfg.update(extra)
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, {"success": "Reconfiguration done."}), \
        "config refused: %r %r\n%s" % (s, j, json.dumps(cfg, indent=1))
    return cfg


# --------------------------------------------------------------------------
# clients

def client_ctx(cafile=None, maximum=None, minimum=None):
    """A client context: verifying against cafile (hostname checked), or,
    without a cafile, accepting any certificate (for SNI checks by
    fingerprint)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if maximum is not None:
        ctx.maximum_version = maximum
    if minimum is not None:
        ctx.minimum_version = minimum
    return ctx


EOF_ERRORS = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError,
              ssl.SSLZeroReturnError)


class TLSConn(hh.Conn):
    """hh.Conn over TLS: the handshake is done in the constructor (it raises
    ssl.SSLError and the like if it fails). raw: a TCP connection made
    earlier to shake hands on; rcvbuf: a receive buffer that small (a slow
    reader)."""

    EOF_ERRORS = EOF_ERRORS

    def __init__(self, port, ctx, server_hostname="localhost", session=None,
                 host="127.0.0.1", timeout=5.0, raw=None, rcvbuf=None):
        if raw is None:
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            raw.settimeout(timeout)
            try:
                raw.connect((host, port))
            except BaseException:
                raw.close()
                raise
        try:
            self.s = ctx.wrap_socket(raw, server_hostname=server_hostname,
                                     session=session)
        except BaseException:
            raw.close()
            raise
        self.buf = b""
        self.eof = False

    def peer_der(self):
        return self.s.getpeercert(binary_form=True)


def tls_get(port, ctx, path="/", server_hostname="localhost", **kw):
    """One request on a fresh TLS connection: (Resp, peer cert DER)."""
    with TLSConn(port, ctx, server_hostname=server_hostname) as c:
        r = c.request("GET", path, **kw)
        return r, c.peer_der()


def read_until_closed(sock, timeout=5.0):
    """Bytes received on a plain socket until EOF/reset; raises
    socket.timeout if the peer keeps it open past timeout."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            d = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not d:
            return out
        out += d
