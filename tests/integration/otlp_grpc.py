"""A minimal OTLP/gRPC trace collector for tests: HTTP/2 (h2), protobuf decoded by hand."""
import socket
import threading

import h2.config
import h2.connection
import h2.events


def pb_decode(data):
    """protobuf wire format: {field: [values]} (LEN as bytes, VARINT/FIXED64 as int)."""
    out, i = {}, 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(data, i)
        elif wire == 1:
            v, i = int.from_bytes(data[i:i + 8], "little"), i + 8
        elif wire == 2:
            n, i = _varint(data, i)
            v, i = data[i:i + n], i + n
        elif wire == 5:
            v, i = int.from_bytes(data[i:i + 4], "little"), i + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(field, []).append(v)
    return out


def _varint(data, i):
    shift = v = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def _value(any_bytes):
    a = pb_decode(any_bytes)
    if 1 in a:
        return {"stringValue": a[1][0].decode()}
    if 3 in a:
        return {"intValue": str(a[3][0])}
    return {}


def spans_of(message):
    """An ExportTraceServiceRequest as OTLP/JSON's shape (the parts tests read)."""
    req = pb_decode(message)
    spans, resource = [], []
    for rs_b in req.get(1, []):
        rs = pb_decode(rs_b)
        for kv_b in pb_decode(rs.get(1, [b""])[0]).get(1, []):
            kv = pb_decode(kv_b)
            resource.append({"key": kv[1][0].decode(), "value": _value(kv.get(2, [b""])[0])})
        for ss_b in rs.get(2, []):
            for sp_b in pb_decode(ss_b).get(2, []):
                sp = pb_decode(sp_b)
                attrs = []
                for kv_b in sp.get(9, []):
                    kv = pb_decode(kv_b)
                    attrs.append({"key": kv[1][0].decode(), "value": _value(kv.get(2, [b""])[0])})
                status = pb_decode(sp.get(15, [b""])[0])
                spans.append({
                    "traceId": sp[1][0].hex(), "spanId": sp[2][0].hex(),
                    "parentSpanId": sp.get(4, [b""])[0].hex(),
                    "name": sp.get(5, [b""])[0].decode(), "kind": sp.get(6, [0])[0],
                    "startTimeUnixNano": str(sp.get(7, [0])[0]),
                    "endTimeUnixNano": str(sp.get(8, [0])[0]),
                    "attributes": attrs,
                    "status": {"code": status[3][0]} if 3 in status else {},
                })
    return resource, spans


class GrpcCollector:
    """Listens on 127.0.0.1 (h2c, prior knowledge); keeps what each Export carried."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.calls = []          # (path, headers, resource, spans)
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.sock.close()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn):
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        heads, bodies = {}, {}
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = {k.decode() if isinstance(k, bytes) else k:
                                               v.decode() if isinstance(v, bytes) else v
                                               for k, v in ev.headers}
                        bodies[ev.stream_id] = b""
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        self._answer(h2c, ev.stream_id, heads[ev.stream_id], bodies[ev.stream_id])
                conn.sendall(h2c.data_to_send())
        except OSError:
            return
        finally:
            conn.close()

    def _answer(self, h2c, sid, head, body):
        assert body[0] == 0 and int.from_bytes(body[1:5], "big") == len(body) - 5, body[:5]
        resource, spans = spans_of(body[5:])
        with self.lock:
            self.calls.append((head.get(":path"), head, resource, spans))
        h2c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
        h2c.send_data(sid, b"\x00\x00\x00\x00\x00")
        h2c.send_headers(sid, [("grpc-status", "0")], end_stream=True)
