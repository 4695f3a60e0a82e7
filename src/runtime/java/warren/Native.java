package warren;

import java.io.IOException;

/*
 * The request's way to the channel: each method is one libwarren call in
 * warren-java (src/runtime/java/natives.c), which registers them. req is
 * the request's handle, valid during Container.serve only, or, for a
 * request that became a tunnel, until its Tunnel ends it (finish). A failure (the client went away, the channel broke) is an
 * IOException saying so.
 */
final class Native {
    private Native() {
    }

    /* The head as ISO-8859-1 fields, each ended by NUL: method, target,
     * path (decoded), query, version, remote address, remote port, local
     * address, local port, server name, scheme, then name and value of
     * every header field, in order. */
    static native byte[] head(long req);

    /* Up to len body bytes into buf[off..]; 0 at the end of the body. */
    static native int read(long req, byte[] buf, int off, int len) throws IOException;

    /* The response head: status and "name\0value\0..." fields. Sends nothing. */
    static native void start(long req, int status, byte[] fields) throws IOException;

    /* Body bytes; the first write sends the head. Blocks while the client is slow. */
    static native void write(long req, byte[] buf, int off, int len) throws IOException;

    /* The last body bytes and the end of the response (head, body and end
     * in one message when they fit). */
    static native void writeEnd(long req, byte[] buf, int off, int len) throws IOException;

    /* The head as it stands goes out now (a 101 opens the tunnel). */
    static native void sendHead(long req) throws IOException;

    /* The client asked to switch protocols (warren_req_upgrade). */
    static native boolean upgrade(long req);

    /* settings.http.websocket of an upgrade request, indexed by WS_*. */
    static final int WS_READ_TIMEOUT = 0, WS_KEEPALIVE_INTERVAL = 1, WS_MAX_FRAME_SIZE = 2;
    static native long[] websocket(long req) throws IOException;

    /* The end of a request a tunnel holds (warren_finish). */
    static native void finish(long req);
}
