"""settings.telemetry with "protocol": "grpc": the same spans, exported as
OTLP/gRPC (HTTP/2, protobuf) to a collector (otlp_grpc.py decodes them)."""

import pytest

import http_helpers as hh
import otlp_grpc
import warren_helpers as wh

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def grpc_col():
    c = otlp_grpc.GrpcCollector()
    yield c
    c.close()


def tel(port, **kw):
    t = {"endpoint": "http://127.0.0.1:%d" % port, "protocol": "grpc", "batch_size": 1}
    t.update(kw)
    return t


def wait_spans(col, n, timeout=5.0):
    def got():
        with col.lock:
            spans = [s for call in col.calls for s in call[3]]
        return spans if len(spans) >= n else None
    spans = wh.wait_for(got, timeout)
    assert spans, "expected %d spans, have %r" % (n, col.calls)
    return spans


def attrs(span):
    return {a["key"]: list(a["value"].values())[0] for a in span["attributes"]}


def test_span_over_grpc(warren, grpc_col):
    port = hh.setup(warren, [{"match": {"uri": "/err"}, "action": {"return": 503}},
                             {"action": {"return": 200}}],
                    settings={"telemetry": tel(grpc_col.port)})
    assert hh.get(port, "/ok/p?x=1", {"traceparent": CALLER, "User-Agent": "ua/1"}).status == 200
    span = wait_spans(grpc_col, 1)[0]
    with grpc_col.lock:
        path, head, resource, _ = grpc_col.calls[0]
    assert path == "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    assert head["content-type"] == "application/grpc" and head["te"] == "trailers"
    assert {"key": "service.name", "value": {"stringValue": "warren"}} in resource
    assert span["traceId"] == CALLER.split("-")[1]
    assert span["parentSpanId"] == CALLER.split("-")[2]
    assert len(span["spanId"]) == 16 and span["spanId"] != CALLER.split("-")[2]
    assert span["name"] == "GET" and span["kind"] == 2
    assert int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"]) > 0
    a = attrs(span)
    assert a["http.request.method"] == "GET" and a["url.path"] == "/ok/p"
    assert a["url.query"] == "x=1" and a["user_agent.original"] == "ua/1"
    assert a["client.address"] == "127.0.0.1" and a["http.response.status_code"] == "200"
    assert span["status"] == {}
    assert hh.get(port, "/err").status == 503
    err = wait_spans(grpc_col, 2)[1]
    assert err["status"] == {"code": 2} and attrs(err)["http.response.status_code"] == "503"


def test_batch_in_one_export(warren, grpc_col):
    port = hh.setup(warren, [{"action": {"return": 204}}],
                    settings={"telemetry": tel(grpc_col.port, batch_size=3)})
    for i in range(3):
        hh.get(port, "/b%d" % i)
    spans = wait_spans(grpc_col, 3)
    with grpc_col.lock:
        assert len(grpc_col.calls) == 1, grpc_col.calls
    assert sorted(attrs(s)["url.path"] for s in spans) == ["/b0", "/b1", "/b2"]


def test_collector_away_is_logged_and_requests_go_on(warren):
    dead = wh.free_port()
    port = hh.setup(warren, [{"action": {"return": 200}}],
                    settings={"telemetry": tel(dead)})
    for _ in range(3):
        assert hh.get(port, "/").status == 200
    assert wh.wait_for(lambda: "telemetry: exporting" in warren.log(), 5), warren.log()[-2000:]
    assert "[alert]" not in warren.log()
