package warren;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UnsupportedEncodingException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.Charset;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;

import javax.servlet.ServletOutputStream;
import javax.servlet.WriteListener;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletResponse;

/*
 * A response: status and fields until committed, the body buffered up to
 * the buffer size. Committing sends the head (Native.start) and what is
 * buffered; the rest streams at the client's pace. A response the servlet
 * finished within its buffer leaves with Content-Length, head, body and
 * end in one message (finish).
 */
final class Response implements HttpServletResponse {
    /* Jetty's default: most answers fit, and leave with Content-Length. */
    static final int DEFAULT_BUFFER = 32768;

    private final long handle;
    private final Request request;
    private int status = SC_OK;
    private final List<String[]> fields = new ArrayList<>();
    private String contentType;         // without its charset
    private String charset;             // explicit, or null
    private Locale locale;
    private long contentLength = -1;

    private byte[] buf = new byte[DEFAULT_BUFFER];
    private int used;
    private long written;               // body bytes that left
    private boolean committed;
    private boolean done;               // nothing more goes out (sendError, sendRedirect, forward)
    private boolean ended;              // the end was sent
    boolean broken;                     // the client or the channel failed

    /* After sendError, the container renders the error page. */
    int errorStatus;
    String errorMessage;

    private Output output;
    private BodyWriter writer;

    Response(long handle, Request request) {
        this.handle = handle;
        this.request = request;
        String enc = request.app.responseEncoding;
        if (enc != null)
            charset = enc;
    }

    // ---- the body

    private final class Output extends ServletOutputStream {
        @Override
        public void write(int b) throws IOException {
            write(new byte[] { (byte) b }, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (off < 0 || len < 0 || off > b.length - len)
                throw new IndexOutOfBoundsException();
            append(b, off, len);
        }

        @Override
        public void flush() throws IOException {
            flushBuffer();
        }

        @Override
        public void close() throws IOException {
            complete();
        }

        @Override
        public boolean isReady() {
            return true;
        }

        @Override
        public void setWriteListener(WriteListener l) {
            throw new IllegalStateException("Warren: non-blocking writes need async servlets, which are not supported");
        }
    }

    private void append(byte[] b, int off, int len) throws IOException {
        if (broken)             // a servlet writing on after the client left: stop it soon
            throw new IOException("warren: the response cannot go out: the client or the channel failed");
        if (done || ended)
            return;             // the specification: later writes are ignored
        if (contentLength >= 0 && written + used + len >= contentLength) {
            // The last bytes announced: they go with the end, not after it.
            endWith(b, off, (int) Math.max(0, contentLength - written - used));
            return;
        }
        if (used + len <= buf.length) {
            System.arraycopy(b, off, buf, used, len);
            used += len;
        } else {
            send();
            if (len <= buf.length) {
                System.arraycopy(b, off, buf, 0, len);
                used = len;
            } else {
                transmit(b, off, len);
            }
        }
    }

    /* The response ends with b[off..off+len): with what is buffered, in one
     * message when it fits (head too, if not sent yet). */
    private void endWith(byte[] b, int off, int len) throws IOException {
        if (used + len <= buf.length) {
            System.arraycopy(b, off, buf, used, len);
            used += len;
            end();
            return;
        }
        ended = true;
        if (used > 0) {
            transmit(buf, 0, used);
            used = 0;
        }
        commit();
        call(() -> Native.writeEnd(handle, b, off, len));
        written += len;
    }

    /* The head (once) and the buffer go out. */
    private void send() throws IOException {
        commit();
        if (used > 0) {
            transmit(buf, 0, used);
            used = 0;
        }
    }

    private void transmit(byte[] b, int off, int len) throws IOException {
        commit();
        call(() -> Native.write(handle, b, off, len));
        written += len;
    }

    private interface NativeCall {
        void run() throws IOException;
    }

    /* A call to the channel; a failure marks the request broken (the
     * client or the channel is gone: nothing more can be answered). */
    private void call(NativeCall c) throws IOException {
        try {
            c.run();
        } catch (IOException e) {
            broken = true;
            throw e;
        }
    }

    private void commit() throws IOException {
        if (committed)
            return;
        committed = true;
        call(() -> Native.start(handle, status, head()));
    }

    /* An upgrade: the 101 head goes out now, with no body (what the
     * servlet wrote is dropped); the request becomes a tunnel. */
    void switchProtocols() throws IOException {
        used = 0;
        contentLength = -1;
        commit();
        ended = true;
        call(() -> Native.sendHead(handle));
    }

    /* The fields as "name\0value\0...", the framing fields left to the router
     * but for a known Content-Length. */
    private byte[] head() {
        StringBuilder b = new StringBuilder();
        String type = getContentType();
        if (type != null)
            b.append("Content-Type\0").append(type).append('\0');
        if (locale != null && getHeader("Content-Language") == null)
            b.append("Content-Language\0").append(locale.toLanguageTag()).append('\0');
        if (contentLength >= 0)
            b.append("Content-Length\0").append(contentLength).append('\0');
        for (String[] f : fields)
            b.append(f[0]).append('\0').append(f[1]).append('\0');
        return b.toString().getBytes(Http.LATIN1);
    }

    /* The response is over: the writer's last characters, then what is
     * buffered goes with the end. */
    void complete() throws IOException {
        if (errorStatus != 0)
            return;             // sendError: the container's error page ends it
        if (writer != null && !ended)
            writer.sink.finish();   // may itself reach Content-Length and end
        end();
    }

    /* A response not committed yet has its whole body here: it gets
     * Content-Length (not for HEAD, whose body the servlet may not make). */
    private void end() throws IOException {
        if (ended)
            return;
        ended = true;
        if (!committed) {
            if (contentLength < 0 && !request.method.equals("HEAD")
                && status >= 200 && status != SC_NO_CONTENT && status != SC_NOT_MODIFIED)
                contentLength = used;
            commit();
        }
        call(() -> Native.writeEnd(handle, buf, 0, used));
        written += used;
        used = 0;
    }

    /* Where the writer's encoder puts its bytes: the body buffer. */
    private final class Sink extends java.io.OutputStream {
        @Override
        public void write(int b) throws IOException {
            append(new byte[] { (byte) b }, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            append(b, off, len);
        }
    }

    /*
     * Encodes characters straight into the body buffer. An OutputStreamWriter
     * would keep up to 8 KB of encoded text of its own, which resetBuffer()
     * could not drop and isCommitted() would not see; here only a high
     * surrogate waiting for its pair is held back.
     */
    private final class CharSink extends java.io.Writer {
        private final CharsetEncoder encoder;
        private final ByteBuffer out = ByteBuffer.allocate(4096);
        private char pending;           // a high surrogate, or 0

        CharSink(Charset cs) {
            encoder = cs.newEncoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
        }

        @Override
        public void write(char[] c, int off, int len) throws IOException {
            CharBuffer in = CharBuffer.wrap(c, off, len);
            if (pending != 0) {
                in = CharBuffer.allocate(len + 1).put(pending).put(c, off, len).flip();
                pending = 0;
            }
            encode(in, false);
            if (in.hasRemaining())
                pending = in.get();     // the encoder waits for the low surrogate
        }

        @Override
        public void write(String s, int off, int len) throws IOException {
            char[] c = new char[len];
            s.getChars(off, off + len, c, 0);
            write(c, 0, len);
        }

        /* The response ends: a lone surrogate becomes the replacement, a
         * stateful encoding returns to its initial state. */
        void finish() throws IOException {
            CharBuffer in = CharBuffer.wrap(pending != 0 ? new char[] { pending } : new char[0]);
            pending = 0;
            encode(in, true);
            while (encoder.flush(out).isOverflow())
                emit();
            emit();
            encoder.reset();
        }

        /* resetBuffer(): nothing written so far survives. */
        void discard() {
            pending = 0;
            encoder.reset();
        }

        private void encode(CharBuffer in, boolean last) throws IOException {
            while (encoder.encode(in, out, last).isOverflow())
                emit();
            emit();
        }

        private void emit() throws IOException {
            if (out.position() > 0)
                Response.this.append(out.array(), 0, out.position());
            out.clear();
        }

        @Override
        public void flush() {
            // nothing held: every complete character is in the body buffer
        }

        @Override
        public void close() {
            // the PrintWriter's close() ends the response itself
        }
    }

    /* The servlet's writer; its flush() commits, as the specification asks,
     * and its close() ends the response. */
    private final class BodyWriter extends PrintWriter {
        final CharSink sink;

        BodyWriter(CharSink sink) {
            super(sink, false);
            this.sink = sink;
        }

        @Override
        public void flush() {
            try {
                if (!done && !ended)
                    send();
            } catch (IOException e) {
                setError();     // PrintWriter's way: checkError() says so
            }
        }

        @Override
        public void close() {
            try {
                complete();
            } catch (IOException e) {
                setError();
            }
        }
    }

    @Override
    public ServletOutputStream getOutputStream() {
        if (writer != null)
            throw new IllegalStateException("getWriter() was called for this response");
        if (output == null)
            output = new Output();
        return output;
    }

    @Override
    public PrintWriter getWriter() throws UnsupportedEncodingException {
        if (writer == null) {
            if (output != null)
                throw new IllegalStateException("getOutputStream() was called for this response");
            if (charset == null)
                charset = "ISO-8859-1";
            Charset cs;
            try {
                cs = Charset.forName(charset);
            } catch (IllegalArgumentException e) {
                throw new UnsupportedEncodingException(charset);
            }
            writer = new BodyWriter(new CharSink(cs));
            writerUsed = true;
        }
        return writer;
    }

    private boolean writerUsed;

    @Override
    public void flushBuffer() throws IOException {
        if (!done && !ended)
            send();
    }

    @Override
    public int getBufferSize() {
        return buf.length;
    }

    @Override
    public void setBufferSize(int size) {
        if (used > 0 || committed)
            throw new IllegalStateException("the buffer size cannot change once content was written");
        buf = new byte[Math.max(size, 512)];
    }

    @Override
    public void resetBuffer() {
        if (committed)
            throw new IllegalStateException("the response is committed");
        used = 0;
        if (writer != null)
            writer.sink.discard();
    }

    @Override
    public void reset() {
        resetBuffer();
        status = SC_OK;
        fields.clear();
        contentType = null;
        charset = request.app.responseEncoding;
        locale = null;
        contentLength = -1;
        writer = null;
        output = null;
        writerUsed = false;
    }

    @Override
    public boolean isCommitted() {
        return committed || done;
    }

    boolean ended() {
        return ended;
    }

    // ---- status

    @Override
    public void setStatus(int sc) {
        if (!committed)
            status = sc;
    }

    @Override
    @Deprecated
    public void setStatus(int sc, String message) {
        setStatus(sc);
    }

    @Override
    public int getStatus() {
        return status;
    }

    @Override
    public void sendError(int sc, String msg) throws IOException {
        if (committed)
            throw new IllegalStateException("sendError: the response is committed");
        resetBuffer();
        status = sc;
        errorStatus = sc;
        errorMessage = msg;
        done = true;
    }

    @Override
    public void sendError(int sc) throws IOException {
        sendError(sc, null);
    }

    /* The head went out. isCommitted() also says true after sendError or
     * sendRedirect, whose response an error page can still replace. */
    boolean headSent() {
        return committed;
    }

    /* For an error page: the body so far is dropped and the servlet's
     * choice of writer or stream with it (the page may use either), the
     * fields stay (as in Tomcat). */
    void resetForError() {
        resetBuffer();
        writer = null;
        output = null;
        writerUsed = false;
    }

    /* The container's error page takes over the response sendError left. */
    void clearError() {
        done = false;
        errorStatus = 0;
    }

    @Override
    public void sendRedirect(String location) throws IOException {
        if (committed)
            throw new IllegalStateException("sendRedirect: the response is committed");
        resetBuffer();
        setStatus(SC_FOUND);
        setHeader("Location", absolute(location));
        done = true;
    }

    /* A relative Location made absolute (and its dot segments resolved),
     * as the specification asks. */
    private String absolute(String location) {
        if (location.matches("^[a-zA-Z][a-zA-Z0-9+.-]*:.*"))
            return location;
        try {
            return new java.net.URI(request.getRequestURL().toString()).resolve(location).toString();
        } catch (java.net.URISyntaxException | IllegalArgumentException e) {
            return location;    // not a URI reference: sent as given
        }
    }

    // ---- fields

    @Override
    public void addCookie(Cookie c) {
        addHeader("Set-Cookie", Http.setCookie(c));
    }

    @Override
    public boolean containsHeader(String name) {
        return getHeader(name) != null;
    }

    @Override
    public String encodeURL(String url) {
        return url;             // sessions live in cookies only
    }

    @Override
    public String encodeRedirectURL(String url) {
        return url;
    }

    @Override
    @Deprecated
    public String encodeUrl(String url) {
        return url;
    }

    @Override
    @Deprecated
    public String encodeRedirectUrl(String url) {
        return url;
    }

    @Override
    public void setDateHeader(String name, long date) {
        setHeader(name, Http.formatDate(date));
    }

    @Override
    public void addDateHeader(String name, long date) {
        addHeader(name, Http.formatDate(date));
    }

    /* Content-Type and Content-Length set through the field API land in
     * their own slots, as in every container. */
    private boolean special(String name, String value) {
        if (name.equalsIgnoreCase("Content-Type")) {
            setContentType(value);
            return true;
        }
        if (name.equalsIgnoreCase("Content-Length")) {
            try {
                setContentLengthLong(value == null ? -1 : Long.parseLong(value.trim()));
            } catch (NumberFormatException e) {
                // not a length: ignored
            }
            return true;
        }
        return name.equalsIgnoreCase("Transfer-Encoding") || name.equalsIgnoreCase("Connection");
    }

    @Override
    public void setHeader(String name, String value) {
        if (committed || name == null || special(name, value))
            return;
        fields.removeIf(f -> f[0].equalsIgnoreCase(name));
        if (value != null)
            fields.add(new String[] { name, clean(value) });
    }

    @Override
    public void addHeader(String name, String value) {
        if (committed || name == null || value == null || special(name, value))
            return;
        fields.add(new String[] { name, clean(value) });
    }

    /* A value with CR or LF would split the head: they become spaces. */
    private static String clean(String v) {
        return v.indexOf('\r') < 0 && v.indexOf('\n') < 0 ? v : v.replace('\r', ' ').replace('\n', ' ');
    }

    @Override
    public void setIntHeader(String name, int value) {
        setHeader(name, Integer.toString(value));
    }

    @Override
    public void addIntHeader(String name, int value) {
        addHeader(name, Integer.toString(value));
    }

    @Override
    public String getHeader(String name) {
        if (name.equalsIgnoreCase("Content-Type"))
            return getContentType();
        if (name.equalsIgnoreCase("Content-Length"))
            return contentLength >= 0 ? Long.toString(contentLength) : null;
        for (String[] f : fields)
            if (f[0].equalsIgnoreCase(name))
                return f[1];
        return null;
    }

    @Override
    public Collection<String> getHeaders(String name) {
        List<String> out = new ArrayList<>();
        String special = name.equalsIgnoreCase("Content-Type") || name.equalsIgnoreCase("Content-Length")
                         ? getHeader(name) : null;
        if (special != null)
            out.add(special);
        for (String[] f : fields)
            if (f[0].equalsIgnoreCase(name))
                out.add(f[1]);
        return out;
    }

    @Override
    public Collection<String> getHeaderNames() {
        LinkedHashSet<String> out = new LinkedHashSet<>();
        if (contentType != null)
            out.add("Content-Type");
        if (contentLength >= 0)
            out.add("Content-Length");
        for (String[] f : fields)
            out.add(f[0]);
        return out;
    }

    // ---- content type, encoding, length, locale

    @Override
    public String getCharacterEncoding() {
        return charset != null ? charset : "ISO-8859-1";
    }

    @Override
    public String getContentType() {
        if (contentType == null)
            return null;
        if (charset != null && (writerUsed || explicitCharset || contentType.startsWith("text/")))
            return contentType + ";charset=" + charset;
        return contentType;
    }

    private boolean explicitCharset;

    @Override
    public void setContentType(String type) {
        if (committed)
            return;
        if (type == null) {
            contentType = null;
            return;
        }
        String cs = Http.charsetOf(type);
        contentType = Http.withoutCharset(type);
        if (cs != null && !writerUsed) {
            charset = cs;
            explicitCharset = true;
        }
    }

    @Override
    public void setCharacterEncoding(String cs) {
        if (committed || writerUsed || cs == null)
            return;
        charset = cs;
        explicitCharset = true;
    }

    @Override
    public void setContentLength(int len) {
        setContentLengthLong(len);
    }

    @Override
    public void setContentLengthLong(long len) {
        if (!committed)
            contentLength = len;
    }

    @Override
    public void setLocale(Locale loc) {
        if (committed || loc == null)
            return;
        locale = loc;
    }

    @Override
    public Locale getLocale() {
        return locale != null ? locale : Locale.getDefault();
    }
}
