package warren;

import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

import javax.servlet.http.HttpSession;
import javax.servlet.http.WebConnection;
import javax.websocket.CloseReason;
import javax.websocket.CloseReason.CloseCodes;
import javax.websocket.DeploymentException;
import javax.websocket.Endpoint;
import javax.websocket.Extension;
import javax.websocket.SendHandler;
import javax.websocket.SendResult;
import javax.websocket.server.ServerEndpointConfig;

import org.apache.juli.logging.Log;
import org.apache.juli.logging.LogFactory;
import org.apache.tomcat.websocket.Transformation;
import org.apache.tomcat.websocket.WsFrameBase;
import org.apache.tomcat.websocket.WsIOException;
import org.apache.tomcat.websocket.WsRemoteEndpointImplBase;
import org.apache.tomcat.websocket.WsSession;
import org.apache.tomcat.websocket.server.WsHandshakeRequest;
import org.apache.tomcat.websocket.server.WsHttpUpgradeHandler;
import org.apache.tomcat.websocket.server.WsServerContainer;

/*
 * JSR 356 WebSocket on Tomcat's implementation (Debian's libtomcat9-java,
 * on warren-java's class path when installed). Tomcat's initializer WsSci
 * makes the ServerContainer and its filter, whose handshake asks the
 * request for Tomcat's upgrade handler: it gets this subclass instead
 * (Request.upgrade). Tomcat's own handler needs Tomcat's sockets; this one
 * keeps what the handshake gave (preInit) and builds the session on the
 * tunnel: Tomcat's frame parser fed by a blocking read loop in the
 * tunnel's thread, frames written straight to the tunnel.
 *
 * settings.http.websocket, as Warren's other runtimes apply it: a frame
 * whose length is over max_frame_size is refused (close 1009) as soon as
 * its header arrives; a ping goes out every keepalive_interval seconds, so
 * the router does not close a quiet client's connection (read_timeout).
 *
 * Only Request.upgrade names this class, by reflection: without Tomcat's
 * jars it is never loaded.
 */
final class WsUpgrade extends WsHttpUpgradeHandler {
    private static final Log LOG = LogFactory.getLog(WsUpgrade.class);
    private static final ScheduledThreadPoolExecutor PINGER = pinger();
    private static final ByteBuffer NO_PAYLOAD = ByteBuffer.allocate(0);

    /* One thread pings every session of the worker; a closed session's
     * task leaves the queue at once. */
    private static ScheduledThreadPoolExecutor pinger() {
        ScheduledThreadPoolExecutor p = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "warren-websocket-ping");
            t.setDaemon(true);
            return t;
        });
        p.setRemoveOnCancelPolicy(true);
        return p;
    }

    private ServerEndpointConfig config;
    private WsServerContainer container;
    private WsHandshakeRequest handshake;
    private List<Extension> extensions;
    private String subProtocol;
    private Transformation transformation;
    private Map<String, String> pathParameters;
    private boolean secure;

    @Override
    public void preInit(ServerEndpointConfig config, WsServerContainer container, WsHandshakeRequest handshake,
                        List<Extension> extensions, String subProtocol, Transformation transformation,
                        Map<String, String> pathParameters, boolean secure) {
        super.preInit(config, container, handshake, extensions, subProtocol, transformation, pathParameters, secure);
        this.config = config;
        this.container = container;
        this.handshake = handshake;
        this.extensions = extensions;
        this.subProtocol = subProtocol;
        this.transformation = transformation;
        this.pathParameters = pathParameters;
        this.secure = secure;
    }

    /* In the tunnel's thread (Tunnel.run): the session lives here until it
     * ends, its messages read and dispatched in this thread. */
    @Override
    public void init(WebConnection connection) {
        Tunnel tunnel = (Tunnel) connection;
        Remote remote = new Remote(tunnel);
        WsSession session;
        try {
            session = new WsSession(remote, container, handshake.getRequestURI(), handshake.getParameterMap(),
                                    handshake.getQueryString(), handshake.getUserPrincipal(), httpSessionId(),
                                    extensions, subProtocol, pathParameters, secure, config);
        } catch (DeploymentException e) {
            tunnel.close();
            throw new IllegalArgumentException(e);
        }
        Frame frame = new Frame(session, transformation, tunnel, tunnel.websocket[Native.WS_MAX_FRAME_SIZE]);
        remote.transformation(frame.transformation());
        Endpoint endpoint = session.getLocal();
        ScheduledFuture<?> pings = null;
        try {
            endpoint.onOpen(session, config);
            register(session);
            pings = keepalive(session, tunnel.websocket[Native.WS_KEEPALIVE_INTERVAL]);
            frame.run(endpoint);
        } finally {
            if (pings != null)
                pings.cancel(false);
            tunnel.close();
        }
    }

    @Override
    public void destroy() {
        // the tunnel ends itself (Tunnel.run)
    }

    private String httpSessionId() {
        Object s = handshake.getHttpSession();
        return s instanceof HttpSession ? ((HttpSession) s).getId() : null;
    }

    /* The container's list of open sessions (Session.getOpenSessions, and
     * the close of every session when the webapp stops): Tomcat's method
     * for it is protected, so it is called as its own handler does, by
     * name. */
    private void register(WsSession session) {
        try {
            Method m = WsServerContainer.class.getDeclaredMethod("registerSession", Object.class, WsSession.class);
            m.setAccessible(true);
            m.invoke(container, config.getPath(), session);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("WebSocket: the session cannot be registered", e.getCause());
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("WebSocket: the session cannot be registered: " + e, e);
        }
    }

    /* A ping every keepalive_interval seconds while the session is open
     * (0: none). The pong is not awaited: the router's read_timeout ends
     * a client that sends nothing back. */
    private static ScheduledFuture<?> keepalive(WsSession session, long seconds) {
        if (seconds <= 0)
            return null;
        return PINGER.scheduleWithFixedDelay(() -> ping(session), seconds, seconds, TimeUnit.SECONDS);
    }

    private static void ping(WsSession session) {
        if (!session.isOpen())
            return;
        try {
            session.getBasicRemote().sendPing(NO_PAYLOAD.duplicate());
        } catch (IOException | RuntimeException e) {
            // the session is closing: its read loop ends it
        }
    }

    /* Tomcat's frame parser, fed from the tunnel. */
    private static final class Frame extends WsFrameBase {
        private final Tunnel tunnel;
        private final FrameLimit limit;

        Frame(WsSession session, Transformation t, Tunnel tunnel, long maxFrameSize) {
            super(session, t);
            this.tunnel = tunnel;
            this.limit = new FrameLimit(maxFrameSize);
        }

        Transformation transformation() {
            return getTransformation();
        }

        /*
         * Until the session ends: the client's bytes read and parsed, its
         * messages passed to the endpoint. The endings, as Tomcat's own
         * handler has them: a protocol error or an oversized frame closes
         * with its code; a client that left is a 1006 for onClose; an
         * error of the endpoint's is its onError, then a 1006.
         */
        void run(Endpoint endpoint) {
            try {
                while (isOpen()) {
                    if (!fill()) {
                        gone("the client went away");
                        return;
                    }
                    processInputBuffer();
                }
            } catch (WsIOException e) {
                wsSession.onClose(e.getCloseReason());
            } catch (ClientGone e) {
                gone(e.getMessage());
            } catch (IOException | RuntimeException e) {
                endpoint.onError(wsSession, e);
                wsSession.onClose(new CloseReason(CloseCodes.CLOSED_ABNORMALLY, e.getMessage()));
            }
        }

        private void gone(String why) {
            wsSession.doClose(new CloseReason(CloseCodes.GOING_AWAY, why),
                              new CloseReason(CloseCodes.CLOSED_ABNORMALLY, why));
        }

        /* More bytes after those not parsed yet; false at the end. */
        private boolean fill() throws IOException {
            ByteBuffer in = inputBuffer;
            in.mark();
            in.position(in.limit()).limit(in.capacity());
            int start = in.arrayOffset() + in.position(), n;
            try {
                n = tunnel.read(in.array(), start, in.remaining());
            } catch (IOException e) {
                throw new ClientGone(e.getMessage());
            }
            if (n > 0) {
                limit.check(in.array(), start, n);
                in.position(in.position() + n);
            }
            in.limit(in.position()).reset();
            return n > 0;
        }

        /* An exception of the endpoint's on a message (its onError has
         * heard of it) closes the session as Warren's other runtimes do,
         * with 1011, rather than Tomcat's 1006 (sent as 1002). */
        @Override
        protected void sendMessageText(boolean last) throws WsIOException {
            try {
                super.sendMessageText(last);
            } catch (WsIOException e) {
                throw internalError(e);
            }
        }

        @Override
        protected void sendMessageBinary(ByteBuffer msg, boolean last) throws WsIOException {
            try {
                super.sendMessageBinary(msg, last);
            } catch (WsIOException e) {
                throw internalError(e);
            }
        }

        private static WsIOException internalError(WsIOException e) {
            CloseReason r = e.getCloseReason();
            if (r.getCloseCode() != CloseCodes.CLOSED_ABNORMALLY)
                return e;
            return new WsIOException(new CloseReason(CloseCodes.UNEXPECTED_CONDITION, r.getReasonPhrase()));
        }

        @Override
        protected boolean isMasked() {
            return true;        // a client's frames are
        }

        @Override
        protected Log getLog() {
            return LOG;
        }

        @Override
        protected void resumeProcessing() {
            // reads are never suspended here
        }
    }

    /* The tunnel failed under a read: the client, or the channel, is gone. */
    private static final class ClientGone extends IOException {
        private static final long serialVersionUID = 1L;

        ClientGone(String why) {
            super(why);
        }
    }

    /*
     * The length of every frame the client sends, seen as its header goes
     * by (the parser itself has no limit per frame): over the limit, the
     * session closes with 1009 before the payload is read.
     */
    private static final class FrameLimit {
        private static final int BASE_HEADER = 2, MASK_KEY = 4, LENGTH_16 = 2, LENGTH_64 = 8;
        private static final int LEN_7_MAX = 125, LEN_16_MARK = 126;
        private static final int MAX_HEADER = BASE_HEADER + LENGTH_64 + MASK_KEY;
        private final long max;         // 0: none
        private final byte[] header = new byte[MAX_HEADER];
        private int have, need = BASE_HEADER;
        private long payloadLeft;

        FrameLimit(long max) {
            this.max = max;
        }

        void check(byte[] b, int off, int len) throws WsIOException {
            while (len > 0 && max > 0) {
                if (payloadLeft > 0) {
                    int k = (int) Math.min(payloadLeft, len);
                    payloadLeft -= k;
                    off += k;
                    len -= k;
                    continue;
                }
                header[have++] = b[off++];
                len--;
                if (have == BASE_HEADER)
                    need = BASE_HEADER + lengthBytes(header[1] & 0x7f) + ((header[1] & 0x80) != 0 ? MASK_KEY : 0);
                if (have == need)
                    frame();
            }
        }

        private static int lengthBytes(int len7) {
            return len7 <= LEN_7_MAX ? 0 : len7 == LEN_16_MARK ? LENGTH_16 : LENGTH_64;
        }

        /* A whole header: its payload length against the limit. */
        private void frame() throws WsIOException {
            int len7 = header[1] & 0x7f, n = lengthBytes(len7);
            long length = n == 0 ? len7 : 0;
            for (int i = 0; i < n; i++)
                length = (length << 8) | (header[BASE_HEADER + i] & 0xff);
            if (length < 0 || length > max)
                throw new WsIOException(new CloseReason(CloseCodes.TOO_BIG,
                    "a frame of " + (length < 0 ? "more than 2^63" : length) + " bytes is over max_frame_size ("
                    + max + ")"));
            payloadLeft = length;
            have = 0;
            need = BASE_HEADER;
        }
    }

    /* Frames to the client, written whole to the tunnel (each send blocks
     * while the client is slow; Tomcat orders them). */
    private static final class Remote extends WsRemoteEndpointImplBase {
        private final Tunnel tunnel;

        Remote(Tunnel tunnel) {
            this.tunnel = tunnel;
        }

        void transformation(Transformation t) {
            setTransformation(t);
        }

        @Override
        protected void doWrite(SendHandler handler, long blockingWriteTimeoutExpiry, ByteBuffer... data) {
            SendResult result = SENDRESULT_OK;
            try {
                byte[] all = gather(data);
                tunnel.write(all, 0, all.length);
            } catch (IOException e) {
                result = new SendResult(e);
            }
            handler.onResult(result);
        }

        /* The header and payload in one write: one message to the router. */
        private static byte[] gather(ByteBuffer[] data) {
            int total = 0;
            for (ByteBuffer b : data)
                total += b.remaining();
            byte[] all = new byte[total];
            int at = 0;
            for (ByteBuffer b : data) {
                int n = b.remaining();
                b.get(all, at, n);
                at += n;
            }
            return all;
        }

        @Override
        protected boolean isMasked() {
            return false;       // a server's frames are not
        }

        @Override
        protected void doClose() {
            tunnel.close();
        }
    }
}
