"""HTTP upgrade and WebSocket (JSR 356) in Java webapps: the Servlet 3.1
upgrade API on the tunnel the router opens after a 101, and javax.websocket
endpoints on Tomcat's implementation (Debian's libtomcat9-java), whose
sessions warren-java runs on that tunnel. One webapp, compiled once by
javac, a real warrend, and the hand-made RFC 6455 client of ws_helpers:

  - an annotated echo endpoint: text (UTF-8), binary, a large message, one
    in several frames with a ping among them, ping -> pong, the close
    handshake both ways (@OnClose hears the code), @OnError on an
    exception (then 1011), a client that vanishes (onClose 1006);
  - @PathParam, a programmatic endpoint from a ServerApplicationConfig and
    one added by a ServletContextListener, an encoder and a decoder;
  - settings.http.websocket: a frame over max_frame_size closed with 1009,
    pings every keepalive_interval keeping a client past read_timeout;
  - "threads": 1 still serves plain requests while WebSockets are open,
    and open WebSockets do not make a worker busy: /status counts it idle
    until its thread serves, and a dynamic pool grows when the thread is
    held, not for the tunnels (warren_init_tunnels);
  - a servlet's own HttpUpgradeHandler echoing raw bytes, and upgrade()
    refused on a plain request and once the response is committed;
  - a reconfiguration while a WebSocket is open: it goes on with the old
    worker, which leaves once it closes.
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib

import pytest

import http_helpers as hh
import iso_helpers as ih
import java_helpers as jh
import warren_helpers as wh
from ws_helpers import (BROKEN_FRAMES, BINARY, CLOSE, CONT, TEXT, WS, answer_pings, recv_past_pings,
                        reversing_echo)

pytestmark = [jh.needs_java, pytest.mark.skipif(
    not (os.path.isfile(jh.WEBSOCKET_API_JAR) and os.path.isfile(jh.WEBSOCKET_JAR)),
    reason="Tomcat's WebSocket jars (libtomcat9-java) are not installed: scripts/deps.sh installs them")]

JAVA = {}

JAVA["Events.java"] = r"""
package t;
import java.util.*;
/* What the endpoints saw, for the tests to read back (GET /events, and
 * the error log once the worker is gone). */
public final class Events {
    private static final List<String> list = Collections.synchronizedList(new ArrayList<>());
    public static void add(String e) { list.add(e); System.err.println("event: " + e); }
    public static String all() { synchronized (list) { return String.join("\n", list); } }
}
"""

JAVA["EventsServlet.java"] = r"""
package t;
import java.io.IOException;
import javax.servlet.annotation.WebServlet;
import javax.servlet.http.*;
@WebServlet("/events")
public class EventsServlet extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException {
        r.setContentType("text/plain;charset=UTF-8");
        r.getWriter().print("pid=" + ProcessHandle.current().pid() + "\n" + Events.all());
    }
}
"""

JAVA["Hold.java"] = r"""
package t;
import java.io.IOException;
import java.nio.file.*;
import javax.servlet.annotation.WebServlet;
import javax.servlet.http.*;
/* Keeps its serving thread until the file ?f= exists (at most a minute). */
@WebServlet("/hold")
public class Hold extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException {
        Path f = Paths.get(q.getParameter("f"));
        for (int i = 0; i < 3000 && !Files.exists(f); i++) {
            try { Thread.sleep(20); } catch (InterruptedException e) { break; }
        }
        r.setContentType("text/plain");
        r.getWriter().print("held pid=" + ProcessHandle.current().pid());
    }
}
"""

JAVA["Echo.java"] = r"""
package t;
import java.io.IOException;
import java.nio.ByteBuffer;
import javax.websocket.*;
import javax.websocket.server.ServerEndpoint;
/* Text comes back reversed, binary as it is; "close-me" and "throw" are
 * the server's close and an exception, "flood N" sends N messages. */
@ServerEndpoint("/echo")
public class Echo {
    @OnOpen
    public void open(Session s) { Events.add("open " + s.getRequestURI().getPath()); }

    @OnMessage(maxMessageSize = 1 << 20)
    public String text(String m, Session s) throws IOException {
        if (m.equals("close-me")) {
            s.close(new CloseReason(CloseReason.CloseCodes.getCloseCode(4001), "bye now"));
            return null;
        }
        if (m.equals("throw"))
            throw new IllegalStateException("boom on purpose");
        if (m.startsWith("flood ")) {           // n binary messages of 64 KiB
            int n = Integer.parseInt(m.substring(6));
            byte[] chunk = new byte[1 << 16];
            for (int i = 0; i < n; i++) {
                chunk[0] = (byte) i;
                s.getBasicRemote().sendBinary(ByteBuffer.wrap(chunk));
            }
            Events.add("flood sent " + n);
            return null;
        }
        return new StringBuilder(m).reverse().toString();
    }

    @OnMessage(maxMessageSize = 1 << 20)
    public ByteBuffer binary(ByteBuffer b) { return b; }

    @OnClose
    public void close(Session s, CloseReason r) {
        Events.add("close " + s.getRequestURI().getPath() + " " + r.getCloseCode().getCode());
    }

    @OnError
    public void error(Session s, Throwable t) {
        Events.add("error " + s.getRequestURI().getPath() + " " + t);
    }
}
"""

JAVA["Room.java"] = r"""
package t;
import javax.websocket.*;
import javax.websocket.server.*;
@ServerEndpoint("/rooms/{room}/{user}")
public class Room {
    @OnMessage
    public String say(String m, @PathParam("room") String room, @PathParam("user") String user) {
        return room + "/" + user + ": " + m;
    }
}
"""

JAVA["Point.java"] = r"""
package t;
import javax.websocket.*;
import javax.websocket.server.ServerEndpoint;
/* Points as "x,y" text, through a decoder and an encoder: the endpoint
 * gets and returns Point objects (swapped). */
@ServerEndpoint(value = "/point", decoders = Point.Dec.class, encoders = Point.Enc.class)
public class Point {
    public static final class P {
        final int x, y;
        P(int x, int y) { this.x = x; this.y = y; }
    }
    public static final class Dec implements Decoder.Text<P> {
        public P decode(String s) throws DecodeException {
            String[] a = s.split(",");
            return new P(Integer.parseInt(a[0].trim()), Integer.parseInt(a[1].trim()));
        }
        public boolean willDecode(String s) { return s.matches("-?\\d+,\\s*-?\\d+"); }
        public void init(EndpointConfig c) { }
        public void destroy() { }
    }
    public static final class Enc implements Encoder.Text<P> {
        public String encode(P p) { return "(" + p.x + ", " + p.y + ")"; }
        public void init(EndpointConfig c) { }
        public void destroy() { }
    }
    @OnMessage
    public P swap(P p) { return new P(p.y, p.x); }
}
"""

JAVA["Shout.java"] = r"""
package t;
import java.io.IOException;
import javax.websocket.*;
/* A programmatic endpoint: upper case back. */
public class Shout extends Endpoint {
    public void onOpen(Session s, EndpointConfig c) {
        String who = (String) c.getUserProperties().get("who");
        s.addMessageHandler(String.class, m -> {
            try { s.getBasicRemote().sendText(who + " " + m.toUpperCase()); }
            catch (IOException e) { throw new java.io.UncheckedIOException(e); }
        });
    }
}
"""

JAVA["Config.java"] = r"""
package t;
import java.util.*;
import javax.websocket.Endpoint;
import javax.websocket.server.*;
/* The webapp's ServerApplicationConfig: every annotated endpoint, and
 * Shout at /shout. */
public class Config implements ServerApplicationConfig {
    public Set<ServerEndpointConfig> getEndpointConfigs(Set<Class<? extends Endpoint>> scanned) {
        ServerEndpointConfig c = ServerEndpointConfig.Builder.create(Shout.class, "/shout").build();
        c.getUserProperties().put("who", "config");
        return Set.of(c);
    }
    public Set<Class<?>> getAnnotatedEndpointClasses(Set<Class<?>> scanned) { return scanned; }
}
"""

JAVA["Deploy.java"] = r"""
package t;
import javax.servlet.*;
import javax.servlet.annotation.WebListener;
import javax.websocket.server.*;
/* ServerContainer.addEndpoint from a context listener. */
@WebListener
public class Deploy implements ServletContextListener {
    public void contextInitialized(ServletContextEvent e) {
        ServerContainer sc = (ServerContainer) e.getServletContext().getAttribute(
            "javax.websocket.server.ServerContainer");
        ServerEndpointConfig c = ServerEndpointConfig.Builder.create(Shout.class, "/listener").build();
        c.getUserProperties().put("who", "listener");
        try { sc.addEndpoint(c); }
        catch (javax.websocket.DeploymentException x) { throw new RuntimeException(x); }
    }
}
"""

JAVA["Raw.java"] = r"""
package t;
import java.io.*;
import java.nio.charset.StandardCharsets;
import javax.servlet.*;
import javax.servlet.annotation.WebServlet;
import javax.servlet.http.*;
/* The Servlet upgrade API by hand: "Upgrade: echo" turns the request into
 * a line echo (RawEcho), or at /raw/greet a greeting written from a
 * WriteListener (Greet); /raw/plain and /raw/committed say what upgrade()
 * threw. */
@WebServlet("/raw/*")
public class Raw extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException, ServletException {
        if ("/committed".equals(q.getPathInfo())) {
            r.getWriter().print("committed ");
            r.flushBuffer();
        }
        try {
            if ("/greet".equals(q.getPathInfo()))
                q.upgrade(Greet.class);
            else
                q.upgrade(RawEcho.class);
        } catch (ServletException | IllegalStateException e) {
            r.getWriter().print(e.getClass().getSimpleName());
            return;
        }
        r.setHeader("Upgrade", "echo");
    }

    public static class RawEcho implements HttpUpgradeHandler {
        public void init(WebConnection wc) {
            Events.add("raw init");
            try {
                ServletInputStream in = wc.getInputStream();
                ServletOutputStream out = wc.getOutputStream();
                StringBuilder line = new StringBuilder();
                in.setReadListener(new ReadListener() {
                    public void onDataAvailable() throws IOException {
                        while (in.isReady() && !in.isFinished()) {
                            int c = in.read();
                            if (c < 0)
                                return;
                            if (c != '\n') {
                                line.append((char) c);
                                continue;
                            }
                            String l = line.toString();
                            line.setLength(0);
                            if (l.equals("bye")) {
                                out.write("bye\n".getBytes(StandardCharsets.UTF_8));
                                try { wc.close(); } catch (Exception x) { throw new IOException(x); }
                                return;
                            }
                            out.write(("echo: " + l + "\n").getBytes(StandardCharsets.UTF_8));
                        }
                    }
                    public void onAllDataRead() { Events.add("raw all read"); }
                    public void onError(Throwable t) { Events.add("raw error"); }
                });
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        public void destroy() { Events.add("raw destroyed"); }
    }

    /* Set in init, the WriteListener is called once init returned: it
     * writes, then ends the tunnel. */
    public static class Greet implements HttpUpgradeHandler {
        public void init(WebConnection wc) {
            try {
                ServletOutputStream out = wc.getOutputStream();
                out.setWriteListener(new WriteListener() {
                    public void onWritePossible() throws IOException {
                        Events.add("greet ready=" + out.isReady());
                        out.write("greetings\n".getBytes(StandardCharsets.UTF_8));
                        try { wc.close(); } catch (Exception x) { throw new IOException(x); }
                    }
                    public void onError(Throwable t) { Events.add("greet error"); }
                });
                Events.add("greet init");
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        public void destroy() { Events.add("greet destroyed"); }
    }
}
"""


@pytest.fixture(scope="module")
def webapp():
    top = hh.make_root("warren-jws-")
    root = os.path.join(top, "webapp")
    os.makedirs(os.path.join(root, "WEB-INF", "classes"))
    jh.compile_sources(os.path.join(top, "src"), JAVA, os.path.join(root, "WEB-INF", "classes"),
                       classpath=jh.SERVLET_JAR + ":" + jh.WEBSOCKET_API_JAR)
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield root
    shutil.rmtree(top, ignore_errors=True)


METADATA_COMPLETE = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="3.1" metadata-complete="true">
  <servlet><servlet-name>raw</servlet-name><servlet-class>t.Raw</servlet-class></servlet>
  <servlet-mapping><servlet-name>raw</servlet-name><url-pattern>/raw/*</url-pattern></servlet-mapping>
  <servlet><servlet-name>events</servlet-name><servlet-class>t.EventsServlet</servlet-class></servlet>
  <servlet-mapping><servlet-name>events</servlet-name><url-pattern>/events</url-pattern></servlet-mapping>
</web-app>
"""


@pytest.fixture(scope="module")
def unscanned(webapp):
    """The same classes under a metadata-complete web.xml: no endpoint, no
    class scanned, so the container does not know the webapp upgrades."""
    root = webapp + "-unscanned"
    shutil.copytree(webapp, root)
    hh.write(root, "WEB-INF/web.xml", METADATA_COMPLETE.encode())
    subprocess.run(["chmod", "-R", "a+rX", root], check=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def start(w, root, settings=None, **app):
    a = {"type": "java", "webapp": root, "processes": 1}
    a.update(app)
    return hh.setup(w, [{"action": {"pass": "applications/ws"}}], settings=settings,
                    extra={"applications": {"ws": a}})


def events(port):
    body = hh.get(port, "/events").body.decode()
    return body.splitlines()


def pid_of(port):
    return int(events(port)[0].split("=")[1])


def saw(port, line, timeout=10.0):
    assert wh.wait_for(lambda: line in events(port), timeout), events(port)


def opened(port, path):
    ws = WS(port, path)
    ws.c.s.settimeout(30.0)
    ws.check_accepted()
    return ws


# ------------------------------------------------------------ annotated endpoints

def test_echo_text_binary_fragments_ping_and_close(rt_warren, webapp):
    port = start(rt_warren, webapp)
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "\u65e5\u672c \U0001f389")               # 4-byte UTF-8 too
        assert ws.recv() == (True, TEXT, "\U0001f389 \u672c\u65e5".encode())
        parts = [os.urandom(30000) for _ in range(3)]           # one message, three frames
        ws.send(BINARY, parts[0], fin=False)
        ws.send(CONT, parts[1], fin=False)
        ws.send(CONT, parts[2])
        assert ws.recv_message() == (BINARY, b"".join(parts))
        reversing_echo(ws, reply_reason=b"done")     # as every runtime's echo
        assert ws.c.closed()
    saw(port, "open /echo")
    saw(port, "close /echo 1000")


def test_server_closes_with_a_code_and_reason(rt_warren, webapp):
    port = start(rt_warren, webapp)
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "close-me")
        assert ws.close_code() == (4001, b"bye now")
        ws.send(CLOSE, struct.pack("!H", 4001))
        assert ws.c.closed()
    saw(port, "close /echo 4001")


def test_an_exception_is_on_error_then_1011(rt_warren, webapp):
    port = start(rt_warren, webapp)
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "throw")
        assert ws.close_code()[0] == 1011
    saw(port, "error /echo java.lang.IllegalStateException: boom on purpose")
    saw(port, "close /echo 1011")


def test_client_vanishing_is_a_1006_and_the_worker_serves_on(rt_warren, webapp):
    port = start(rt_warren, webapp)
    ws = opened(port, "/echo")
    try:
        ws.send(TEXT, "still here")
        assert ws.recv() == (True, TEXT, b"ereh llits")
    finally:
        ws.c.s.shutdown(socket.SHUT_RDWR)
        ws.close()
    saw(port, "close /echo 1006")
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "again")
        assert ws.recv() == (True, TEXT, b"niaga")


def test_path_parameters_programmatic_endpoints_and_codecs(rt_warren, webapp):
    port = start(rt_warren, webapp)
    for path, send, want in [
            ("/rooms/kitchen/ann", "hi", "kitchen/ann: hi"),
            ("/shout", "hey", "config HEY"),                    # ServerApplicationConfig
            ("/listener", "yo", "listener YO"),                 # ServerContainer.addEndpoint
            ("/point", "3, -4", "(-4, 3)")]:                    # decoder and encoder
        with opened(port, path) as ws:
            ws.send(TEXT, send)
            assert ws.recv() == (True, TEXT, want.encode()), path
    # No endpoint there: the request is an ordinary one.
    with WS(port, "/nowhere") as r:
        assert r.r.status == 404


@pytest.mark.parametrize("headers,status", [
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Version": "8"}, 426),
])
def test_bad_handshakes_are_http_answers(rt_warren, webapp, headers, status):
    port = start(rt_warren, webapp)
    with WS(port, "/echo", headers=headers) as ws:
        assert ws.r.status == status, (ws.r, ws.r.body)
        if status == 426:
            assert ws.r.header("Sec-WebSocket-Version") == "13"
    assert "open /echo" not in events(port)


def test_whole_messages_are_bounded_by_tomcats_buffers(rt_warren, webapp):
    """An endpoint without maxMessageSize takes messages of Tomcat's 8 KiB
    buffer; a longer one closes with 1009 (max_frame_size is 1 MiB)."""
    port = start(rt_warren, webapp)
    with opened(port, "/rooms/r/u") as ws:
        ws.send(TEXT, "a" * 8000)
        assert ws.recv() == (True, TEXT, b"r/u: " + b"a" * 8000)
        ws.send(TEXT, "a" * 9000)
        assert ws.close_code()[0] == 1009


def test_permessage_deflate(rt_warren, webapp):
    """Tomcat offers permessage-deflate: compressed frames (RSV1) both ways."""
    port = start(rt_warren, webapp)
    with WS(port, "/echo", headers={"Sec-WebSocket-Extensions": "permessage-deflate"}) as ws:
        assert ws.r.status == 101, ws.r
        assert "permessage-deflate" in ws.r.header("Sec-WebSocket-Extensions")
        text = "squeeze me " * 50
        c = zlib.compressobj(wbits=-15)
        payload = c.compress(text.encode()) + c.flush(zlib.Z_SYNC_FLUSH)
        assert payload.endswith(b"\x00\x00\xff\xff")
        ws.send(TEXT, payload[:-4], rsv=0x40)
        b0, b1 = ws._take(2)
        assert b0 & 0x40 and b0 & 0x0F == TEXT, hex(b0)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", ws._take(2))[0]
        out = zlib.decompressobj(wbits=-15).decompress(ws._take(n) + b"\x00\x00\xff\xff")
        assert out == text[::-1].encode()


# ------------------------------------------------------------ settings.http.websocket

def test_a_frame_over_max_frame_size_is_refused(rt_warren, webapp):
    port = start(rt_warren, webapp, settings={"http": {"websocket": {"max_frame_size": 1000}}})
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "a" * 1000)
        assert ws.recv() == (True, TEXT, b"a" * 1000)
        ws.send(TEXT, "a" * 1001)
        assert ws.close_code()[0] == 1009
    saw(port, "close /echo 1009")


def test_a_client_that_does_not_read_holds_the_sender_back(rt_warren, webapp):
    """sendBinary blocks while the client reads nothing: 25 MiB wait in the
    endpoint, not in the router (flow control through the tunnel), and all
    of it arrives in order once the client reads."""
    port = start(rt_warren, webapp)
    n = 400
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "flood %d" % n)
        time.sleep(2.0)                         # time enough to send it all, unheld
        assert "flood sent %d" % n not in events(port)
        for i in range(n):
            fin, op, payload = ws.recv()
            assert (fin, op, len(payload), payload[0]) == (True, BINARY, 1 << 16, i & 0xff), i
    saw(port, "flood sent %d" % n)


def test_broken_frames_close_with_their_code(rt_warren, webapp):
    """Tomcat's parser judges each frame, Warren's tunnel carries its close
    and ends; each time the worker serves on, no fd left behind."""
    port = start(rt_warren, webapp)
    for frame, code in BROKEN_FRAMES:
        line = "close /echo %d" % code
        before = events(port).count(line)
        with opened(port, "/echo") as ws:
            ws.send(**frame)
            assert ws.close_code()[0] == code, frame
            assert wh.wait_for(ws.c.closed, 5.0), frame
        assert wh.wait_for(lambda: events(port).count(line) == before + 1, 10.0), \
            (frame, events(port))
        with opened(port, "/echo") as ws:       # the worker goes on
            ws.send(TEXT, "ok")
            assert ws.recv() == (True, TEXT, b"ko")


def test_keepalive_pings_keep_a_client_past_read_timeout(rt_warren, webapp):
    port = start(rt_warren, webapp, settings={"http": {"websocket": {
        "read_timeout": 2, "keepalive_interval": 1}}})
    with opened(port, "/echo") as ws:
        pings = answer_pings(ws, 4.5)           # past read_timeout twice
        assert pings >= 3, pings
        ws.send(TEXT, "alive")
        assert recv_past_pings(ws)[1:] == (TEXT, b"evila")


# ------------------------------------------------------------ threads and streams

def test_one_thread_serves_while_websockets_are_open(rt_warren, webapp):
    port = start(rt_warren, webapp, threads=1)
    socks = [opened(port, "/echo") for _ in range(3)]
    try:
        for _ in range(3):
            with hh.Conn(port, timeout=5.0) as c:
                assert c.request("GET", "/events").status == 200
        for i, ws in enumerate(socks):
            ws.send(TEXT, "n%d" % i)
            assert ws.recv() == (True, TEXT, ("%dn" % i).encode())
    finally:
        for ws in socks:
            ws.close()
    assert wh.wait_for(lambda: events(port).count("close /echo 1006") == 3, 10.0), events(port)


class Held:
    """GET /hold in a thread of its own, until release() (or the with
    block's end)."""

    def __init__(self, port):
        self.dir = hh.make_root("warren-jws-hold-")
        self.flag = os.path.join(self.dir, "go")
        self.answer = None
        self.t = threading.Thread(target=self._get, args=(port,))
        self.t.start()

    def _get(self, port):
        with hh.Conn(port, timeout=60.0) as c:
            self.answer = c.request("GET", "/hold?f=" + self.flag)

    def _free(self):
        if os.path.isdir(self.dir):
            open(self.flag, "w").close()
            self.t.join(60.0)
            shutil.rmtree(self.dir, ignore_errors=True)

    def release(self):
        """The held request's answer, once it is let go."""
        self._free()
        assert self.answer is not None and self.answer.status == 200, self.answer
        return self.answer.body.decode()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._free()


def wait_status(w, active=None, idle=None):
    """Waits until /status/applications/ws counts that many active requests
    and idle processes (None: any)."""
    def now():
        st = w.get("/status/applications/ws")[1]
        return st, ((active is None or st["requests"]["active"] == active)
                    and (idle is None or st["processes"]["idle"] == idle))
    assert wh.wait_for(lambda: now()[1], 10.0), now()[0]


def test_a_websocket_leaves_its_worker_idle_for_status(rt_warren, webapp):
    """The channel offers the serving thread apart from the room for
    tunnels: an open WebSocket is an active request but its worker still
    counts as idle; a request the thread serves makes it busy."""
    port = start(rt_warren, webapp, threads=1)
    with opened(port, "/echo") as ws:
        wait_status(rt_warren, active=1, idle=1)
        with Held(port) as held:
            wait_status(rt_warren, active=2, idle=0)
            held.release()
        wait_status(rt_warren, active=1, idle=1)
        ws.send(TEXT, "ab")
        assert ws.recv() == (True, TEXT, b"ba")


def test_a_busy_thread_beside_websockets_starts_another_worker(rt_warren, webapp):
    """Dynamic processes scale by the requests a worker serves, not by its
    tunnels: with the one thread held, the next request goes to a second
    worker at once, while the first still holds its WebSocket."""
    port = start(rt_warren, webapp, threads=1, pipeline=0,
                 processes={"max": 2, "spare": 0, "idle_timeout": 60})
    with opened(port, "/echo") as ws:
        first = pid_of(port)
        with Held(port) as held:
            wait_status(rt_warren, active=2)
            with hh.Conn(port, timeout=60.0) as c:
                r = c.request("GET", "/events")
            assert r.status == 200 and held.answer is None, (r, held.answer)
            assert int(r.body.decode().splitlines()[0].split("=")[1]) != first
            assert held.release() == "held pid=%d" % first
        ws.send(TEXT, "ab")
        assert ws.recv() == (True, TEXT, b"ba")


def test_requests_queued_behind_a_busy_thread_all_get_it(rt_warren, webapp):
    """A worker holding a WebSocket is never idle, so requests that waited
    for its thread, whichever router thread took them, are served once it
    is free again, one after another (not left queued for an idle worker
    that never comes)."""
    port = start(rt_warren, webapp, threads=1, pipeline=0)
    answers = []

    def get():
        with hh.Conn(port, timeout=30.0) as c:
            answers.append(c.request("GET", "/events").status)

    with opened(port, "/echo") as ws:
        with Held(port) as held:
            wait_status(rt_warren, active=2)
            waiting = [threading.Thread(target=get) for _ in range(16)]
            for t in waiting:
                t.start()
            wait_status(rt_warren, active=18)
            held.release()
            for t in waiting:
                t.join(60.0)
        assert answers == [200] * 16
        wait_status(rt_warren, active=1, idle=1)
        ws.send(TEXT, "ab")
        assert ws.recv() == (True, TEXT, b"ba")


def test_tunnels_are_capped_at_the_streams_the_threads_leave(rt_warren, webapp):
    """63 serving threads leave one of the channel's 64 streams to a
    tunnel: a second WebSocket is refused (503), the worker serves on."""
    port = start(rt_warren, webapp, threads=63)
    with opened(port, "/echo") as ws:
        second = WS(port, "/echo")
        try:
            assert second.r.status == 503, (second.r, second.r.body)
        finally:
            second.close()
        ws.send(TEXT, "ok")
        assert ws.recv() == (True, TEXT, b"ko")
    saw(port, "close /echo 1006")
    third = opened(port, "/echo")      # its place is free again
    third.close()


# ------------------------------------------------------------ the Servlet upgrade API

def test_servlet_upgrade_handler_echoes_raw_bytes(rt_warren, webapp):
    port = start(rt_warren, webapp, threads=1)
    with hh.Conn(port, timeout=10.0) as c:
        c.send(hh.build("GET", "/raw/x", {"Connection": "Upgrade", "Upgrade": "echo"}))
        r = c.read_response(head_only=True)
        assert r.status == 101, r
        assert (r.header("Upgrade"), r.header("Connection")) == ("echo", "Upgrade")
        c.send(b"hello\nwor")
        c.send(b"ld\n")
        want = b"echo: hello\necho: world\n"
        while len(c.buf) < len(want):
            assert c._fill(), c.buf
        assert c.buf == want
        # The worker's one thread is free meanwhile.
        assert hh.get(port, "/events").status == 200
        c.buf = b""
        c.send(b"bye\n")
        while c._fill():
            pass
        assert c.buf == b"bye\n"
    saw(port, "raw destroyed")
    assert "raw init" in events(port)


def test_a_write_listener_is_called_once_init_returned(rt_warren, webapp):
    port = start(rt_warren, webapp, threads=1)
    with hh.Conn(port, timeout=10.0) as c:
        c.send(hh.build("GET", "/raw/greet", {"Connection": "Upgrade", "Upgrade": "echo"}))
        assert c.read_response(head_only=True).status == 101
        while c._fill():
            pass
        assert c.buf == b"greetings\n"
    saw(port, "greet destroyed")
    seen = events(port)
    assert seen.index("greet init") < seen.index("greet ready=true") < seen.index("greet destroyed")


def test_a_router_restart_ends_open_websockets_and_their_worker(rt_warren, webapp):
    """The router killed with WebSockets open: their clients' connections go
    with it, the worker's channel ends, its tunnels are let go (the
    endpoints hear 1006) and the worker exits; the new router's workers
    take new WebSockets."""
    port = start(rt_warren, webapp, threads=2)
    socks = [opened(port, "/echo") for _ in range(2)]
    pid = pid_of(port)
    router = rt_warren.pid("router")
    try:
        os.kill(router, signal.SIGKILL)
        assert rt_warren.wait_new("router", router, 5.0)
        for ws in socks:
            assert ws.c.s.recv(1) == b""
    finally:
        for ws in socks:
            ws.close()
    assert wh.wait_for(lambda: not wh.proc_alive(pid), 15.0), rt_warren.children()
    assert rt_warren.log_has("event: close /echo 1006")
    ws = wh.wait_for(lambda: accepted(port, "/echo"), 30.0)
    assert ws, "no WebSocket accepted after the router's restart"
    try:
        ws.send(TEXT, "ab")
        assert ws.recv() == (True, TEXT, b"ba")
    finally:
        ws.close()
    assert pid_of(port) != pid
    rt_warren.baseline("router")


def accepted(port, path):
    """A WebSocket on path, or None if it was not accepted (yet)."""
    try:
        ws = WS(port, path)
    except (OSError, AssertionError):
        return None
    if ws.r.status == 101:
        return ws
    ws.close()
    return None


def raw_echo(port):
    with hh.Conn(port, timeout=10.0) as c:
        c.send(hh.build("GET", "/raw/x", {"Connection": "Upgrade", "Upgrade": "echo"}))
        r = c.read_response(head_only=True)
        assert r.status == 101, r
        c.send(b"one\nbye\n")
        while c._fill():
            pass
        assert c.buf == b"echo: one\nbye\n"


def test_upgrade_in_a_webapp_not_seen_to_upgrade(rt_warren, unscanned):
    """A webapp whose upgrades the container could not foresee keeps its
    "threads" streams (one here): its tunnel runs in the serving thread,
    which serves again once the tunnel ended."""
    port = start(rt_warren, unscanned)
    raw_echo(port)
    saw(port, "raw destroyed")
    raw_echo(port)


def test_upgrade_refused_on_a_plain_request_and_once_committed(rt_warren, webapp):
    port = start(rt_warren, webapp)
    r = hh.get(port, "/raw/plain")
    assert (r.status, r.body) == (200, b"ServletException"), r
    with hh.Conn(port, timeout=10.0) as c:
        r = c.request("GET", "/raw/committed", {"Connection": "Upgrade", "Upgrade": "echo"})
        assert (r.status, r.body) == (200, b"committed IllegalStateException"), r
    assert "raw init" not in events(port)


# ------------------------------------------------------------ reconfiguration

def test_open_websocket_outlives_a_reconfiguration(rt_warren, webapp):
    port = start(rt_warren, webapp)
    old = pid_of(port)
    with opened(port, "/echo") as ws:
        ws.send(TEXT, "before")
        assert ws.recv() == (True, TEXT, b"erofeb")
        s, j = rt_warren.put("/config/applications/ws/environment", {"GEN": "2"})
        assert s == 200, j
        assert wh.wait_for(lambda: pid_of(port) != old, 15.0)
        ws.send(TEXT, "after")
        assert ws.recv() == (True, TEXT, b"retfa")
        assert os.path.exists("/proc/%d" % old)
        ws.send(CLOSE, struct.pack("!H", 1000))
        assert ws.close_code()[0] == 1000
    # The old generation's worker leaves once its last socket closed.
    assert wh.wait_for(lambda: not os.path.exists("/proc/%d" % old)
                       or open("/proc/%d/stat" % old).read().split()[2] in "ZX", 15.0)


def test_websocket_in_an_empty_rootfs(warren_factory, webapp):
    """Tomcat's WebSocket jars reach a rootfs holding nothing but the
    webapp, through language_deps (/usr/share/java), as Jasper's do."""
    files = {}
    for base, _, names in os.walk(webapp):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                files[os.path.join("srv/ws", os.path.relpath(p, webapp))] = f.read()
    with ih.app_in_rootfs(warren_factory, files, "ws",
                          {"type": "java", "webapp": "/srv/ws"}) as (w, port):
        with opened(port, "/echo") as ws:
            ws.send(TEXT, "rootfs")
            assert ws.recv() == (True, TEXT, b"sftoor")
            ws.send(CLOSE, struct.pack("!H", 1000))
            assert ws.close_code()[0] == 1000
        saw(port, "close /echo 1000")
