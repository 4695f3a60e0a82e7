package warren;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UnsupportedEncodingException;
import java.nio.charset.Charset;
import java.security.Principal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.servlet.AsyncContext;
import javax.servlet.DispatcherType;
import javax.servlet.ReadListener;
import javax.servlet.RequestDispatcher;
import javax.servlet.ServletContext;
import javax.servlet.ServletException;
import javax.servlet.ServletInputStream;
import javax.servlet.ServletRequest;
import javax.servlet.ServletRequestAttributeEvent;
import javax.servlet.ServletRequestAttributeListener;
import javax.servlet.ServletResponse;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpSession;
import javax.servlet.http.HttpUpgradeHandler;
import javax.servlet.http.Part;

/*
 * A request as the servlet sees it, made from the head warren-java hands
 * over (Native.head). The body is read from the router as the servlet
 * reads it; form parameters read it whole, once, when first asked for.
 */
final class Request implements HttpServletRequest {
    final long handle;
    final WebApp app;
    Response response;

    final String method, target, uri, path, query, protocol, scheme, serverName;
    final String remoteAddr, localAddr;
    final int remotePort, localPort;
    private final List<String[]> fields = new ArrayList<>();

    /* The handler upgrade() made, for the container once the servlet returns. */
    HttpUpgradeHandler upgradeHandler;

    /* Set by the dispatch (Container, Dispatcher). */
    String servletPath = "", pathInfo;
    Mapper.Match match;

    private final Map<String, Object> attributes = new ConcurrentHashMap<>();
    private String encoding;
    private Map<String, String[]> params;
    private Input input;
    private BufferedReader reader;
    private List<Cookie> cookies;
    private List<Part> parts;           // multipart, read once
    private Exception partsFailure;     // ... or failed once
    private Session session;
    private String requestedSessionId;
    private boolean sessionFromCookie;

    Request(long handle, WebApp app) {
        this.handle = handle;
        this.app = app;
        String[] f = new String(Native.head(handle), Http.LATIN1).split("\0", -1);
        method = f[0];
        target = f[1];
        // libwarren decodes %XX into bytes; paths are UTF-8, as in Tomcat.
        uri = uriOf(target);
        path = mappedPath(f[2], uri);
        query = f[3].isEmpty() && target.indexOf('?') < 0 ? null : f[3];
        protocol = f[4];
        remoteAddr = f[5];
        remotePort = port(f[6]);
        localAddr = f[7];
        localPort = port(f[8]);
        // No Host (HTTP/1.0): the name is the address the client reached.
        serverName = !f[9].isEmpty() ? bracketed(f[9])
                     : localAddr.startsWith("unix:") ? "localhost" : bracketed(localAddr);
        scheme = f[10];
        for (int i = 11; i + 1 < f.length; i += 2)
            fields.add(new String[] { f[i], f[i + 1] });
        encoding = Http.charsetOf(getContentType());
        if (encoding == null)
            encoding = app.requestEncoding;
        findSession();
    }

    /* The target's path as sent, without the query; an absolute-form
     * target ("http://host/x") without its scheme and authority. */
    private static String uriOf(String target) {
        int q = target.indexOf('?');
        String u = q < 0 ? target : target.substring(0, q);
        if (u.startsWith("/"))
            return u;
        int authority = u.indexOf("://");
        int slash = authority < 0 ? -1 : u.indexOf('/', authority + 3);
        return slash < 0 ? "/" : u.substring(slash);
    }

    /*
     * The path servlets are mapped by. libwarren's is percent-decoded (to
     * bytes, read here as UTF-8, as Tomcat does) and normalized. Path
     * parameters (";jsessionid=...") are not part of it, as in Tomcat: when
     * the URI has some, they are dropped from it before decoding and
     * normalizing it the same way.
     */
    private static String mappedPath(String decoded, String uri) {
        if (uri.indexOf(';') < 0)
            return new String(decoded.getBytes(Http.LATIN1), Http.UTF8);
        String bare = uri.replaceAll(";[^/]*", "");
        String p = Http.normalize(Http.decode(bare, Http.UTF8, false).replaceAll("/{2,}", "/"));
        return p == null ? "/" : p;
    }

    /* A Unix socket has no ports: "" is 0 (its address is "unix:PATH"). */
    private static int port(String s) {
        return s.isEmpty() ? 0 : Integer.parseInt(s);
    }

    /* An IPv6 address as a host name: in brackets, so that name ":" port
     * and URLs made from it read right (as Tomcat's getServerName). */
    private static String bracketed(String host) {
        return host.indexOf(':') < 0 || host.startsWith("[") ? host : "[" + host + "]";
    }

    // ---- the body

    /*
     * The body as the servlet reads it. Small reads (read(), readLine(),
     * unbuffered parsers) are served from a buffer so that each is not a
     * call into warren-java; large ones go straight into the servlet's array.
     */
    private final class Input extends ServletInputStream {
        private static final int SMALL = 8192;
        private final long length = getContentLengthLong();
        private long read;                      // bytes the servlet has had
        private boolean eof;
        private byte[] buf;                     // made on the first small read
        private int pos, lim;

        @Override
        public int read() throws IOException {
            if (pos == lim && !fill())
                return -1;
            read++;
            return buf[pos++] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (off < 0 || len < 0 || off > b.length - len)
                throw new IndexOutOfBoundsException();
            if (len == 0)
                return 0;
            int n;
            if (pos < lim) {
                n = Math.min(len, lim - pos);
                System.arraycopy(buf, pos, b, off, n);
                pos += n;
            } else if (len >= SMALL) {
                n = from(b, off, len);
                if (n < 0)
                    return -1;
            } else {
                if (!fill())
                    return -1;
                n = Math.min(len, lim);
                System.arraycopy(buf, 0, b, off, n);
                pos = n;
            }
            read += n;
            return n;
        }

        @Override
        public int available() {
            return lim - pos;
        }

        /* The buffer refilled; false at the end of the body. */
        private boolean fill() throws IOException {
            if (buf == null)
                buf = new byte[SMALL];
            int n = from(buf, 0, buf.length);
            pos = 0;
            lim = Math.max(n, 0);
            return n > 0;
        }

        /* One read from the router: the count, or -1 at the end. */
        private int from(byte[] b, int off, int len) throws IOException {
            if (eof)
                return -1;
            int n;
            try {
                n = Native.read(handle, b, off, len);
            } catch (IOException e) {
                response.broken = true;
                throw e;
            }
            if (n == 0) {
                eof = true;
                return -1;
            }
            return n;
        }

        @Override
        public boolean isFinished() {
            return (eof && pos == lim) || (length >= 0 && read >= length);
        }

        @Override
        public boolean isReady() {
            return true;
        }

        @Override
        public void setReadListener(ReadListener l) {
            throw new IllegalStateException("Warren: non-blocking reads need async servlets, which are not supported");
        }
    }

    @Override
    public ServletInputStream getInputStream() {
        if (reader != null)
            throw new IllegalStateException("getReader() was called for this request");
        return body();
    }

    private Input body() {
        if (input == null)
            input = new Input();
        return input;
    }

    @Override
    public BufferedReader getReader() throws UnsupportedEncodingException {
        if (reader == null) {
            if (input != null)
                throw new IllegalStateException("getInputStream() was called for this request");
            reader = new BufferedReader(new InputStreamReader(body(), charset(Http.LATIN1)));
        }
        return reader;
    }

    private Charset charset(Charset dflt) throws UnsupportedEncodingException {
        if (encoding == null)
            return dflt;
        try {
            return Charset.forName(encoding);
        } catch (IllegalArgumentException e) {
            throw new UnsupportedEncodingException(encoding);
        }
    }

    // ---- parameters

    private Map<String, String[]> params() {
        if (params != null)
            return params;
        Map<String, List<String>> p = new LinkedHashMap<>();
        Http.parseQuery(query, Http.UTF8, p);
        String type = getContentType();
        if (("POST".equals(method) || "PUT".equals(method)) && type != null
            && Http.withoutCharset(type).equalsIgnoreCase("application/x-www-form-urlencoded")
            && input == null && reader == null) {
            try {
                Http.parseQuery(readAll(), charset(Http.UTF8), p);
            } catch (IOException e) {
                app.log("request parameters: the form body could not be read: " + e.getMessage());
            }
        } else if (multipart() && type != null && type.toLowerCase(Locale.ROOT).startsWith("multipart/form-data")
                   && (parts != null || (input == null && reader == null))) {
            formFields(p);
        }
        params = Collections.unmodifiableMap(Http.toArrays(p));
        return params;
    }

    /* A multipart form's fields that are not files are parameters too
     * (Servlet specification §3.2), in the request's encoding or UTF-8. */
    private void formFields(Map<String, List<String>> p) {
        try {
            Charset cs = charset(Http.UTF8);
            for (Part part : getParts())
                if (part.getSubmittedFileName() == null)
                    p.computeIfAbsent(part.getName(), k -> new ArrayList<>())
                     .add(new String(part.getInputStream().readAllBytes(), cs));
        } catch (IOException | ServletException | IllegalStateException e) {
            app.log("request parameters: the multipart body could not be read: " + e.getMessage());
        }
    }

    /* The form body, as ASCII (it is percent-encoded). */
    private String readAll() throws IOException {
        Input in = body();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[16384];
        int n;
        while ((n = in.read(buf, 0, buf.length)) > 0)
            out.write(buf, 0, n);
        return out.toString(Http.LATIN1);
    }

    @Override
    public String getParameter(String name) {
        String[] v = params().get(name);
        return v == null ? null : v[0];
    }

    @Override
    public Enumeration<String> getParameterNames() {
        return Collections.enumeration(params().keySet());
    }

    @Override
    public String[] getParameterValues(String name) {
        String[] v = params().get(name);
        return v == null ? null : v.clone();
    }

    @Override
    public Map<String, String[]> getParameterMap() {
        return params();
    }

    // ---- head fields

    @Override
    public String getHeader(String name) {
        for (String[] f : fields)
            if (f[0].equalsIgnoreCase(name))
                return f[1];
        return null;
    }

    List<String> headerList(String name) {
        List<String> out = new ArrayList<>();
        for (String[] f : fields)
            if (f[0].equalsIgnoreCase(name))
                out.add(f[1]);
        return out;
    }

    @Override
    public Enumeration<String> getHeaders(String name) {
        return Collections.enumeration(headerList(name));
    }

    @Override
    public Enumeration<String> getHeaderNames() {
        LinkedHashSet<String> names = new LinkedHashSet<>();
        LinkedHashSet<String> seen = new LinkedHashSet<>();
        for (String[] f : fields)
            if (seen.add(f[0].toLowerCase(Locale.ROOT)))
                names.add(f[0]);
        return Collections.enumeration(names);
    }

    @Override
    public long getDateHeader(String name) {
        String v = getHeader(name);
        if (v == null)
            return -1;
        long t = Http.parseDate(v);
        if (t < 0)
            throw new IllegalArgumentException(name + ": \"" + v + "\" is not a date");
        return t;
    }

    @Override
    public int getIntHeader(String name) {
        String v = getHeader(name);
        return v == null ? -1 : Integer.parseInt(v.trim());
    }

    @Override
    public String getContentType() {
        return getHeader("Content-Type");
    }

    @Override
    public int getContentLength() {
        long n = getContentLengthLong();
        return n > Integer.MAX_VALUE ? -1 : (int) n;
    }

    @Override
    public long getContentLengthLong() {
        String v = getHeader("Content-Length");
        try {
            return v == null ? -1 : Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    @Override
    public String getCharacterEncoding() {
        return encoding;
    }

    @Override
    public void setCharacterEncoding(String env) throws UnsupportedEncodingException {
        if (reader != null || params != null)
            return;             // too late, as the specification says: ignored
        if (!Charset.isSupported(env))
            throw new UnsupportedEncodingException(env);
        encoding = env;
    }

    @Override
    public Cookie[] getCookies() {
        if (cookies == null)
            cookies = Http.parseCookies(headerList("Cookie"));
        return cookies.isEmpty() ? null : cookies.toArray(new Cookie[0]);
    }

    @Override
    public Locale getLocale() {
        return getLocalesList().get(0);
    }

    @Override
    public Enumeration<Locale> getLocales() {
        return Collections.enumeration(getLocalesList());
    }

    /* Accept-Language by quality; the server's default when absent. */
    private List<Locale> getLocalesList() {
        List<Locale> out = new ArrayList<>();
        String v = getHeader("Accept-Language");
        if (v != null) {
            try {
                for (Locale.LanguageRange r : Locale.LanguageRange.parse(v))
                    if (!r.getRange().equals("*"))
                        out.add(Locale.forLanguageTag(r.getRange()));
            } catch (IllegalArgumentException e) {
                // a malformed field: as if absent
            }
        }
        if (out.isEmpty())
            out.add(Locale.getDefault());
        return out;
    }

    // ---- the request line and the connection

    @Override
    public String getMethod() {
        return method;
    }

    @Override
    public String getRequestURI() {
        return uri;
    }

    @Override
    public StringBuffer getRequestURL() {
        StringBuffer b = new StringBuffer();
        b.append(scheme).append("://").append(getServerName());
        int port = getServerPort();
        if (!(scheme.equals("http") && port == 80) && !(scheme.equals("https") && port == 443))
            b.append(':').append(port);
        return b.append(getRequestURI());
    }

    @Override
    public String getQueryString() {
        return query;
    }

    @Override
    public String getProtocol() {
        return protocol;
    }

    @Override
    public String getScheme() {
        return scheme;
    }

    @Override
    public boolean isSecure() {
        return scheme.equals("https");
    }

    @Override
    public String getServerName() {
        return serverName;
    }

    /* The port of the authority the client named (an absolute-form
     * target's, else the Host field's), else the scheme's when it named
     * none, else the listener's. */
    @Override
    public int getServerPort() {
        String host = authority();
        if (host == null)
            return localPort != 0 ? localPort : isSecure() ? 443 : 80;     // 0: a Unix socket
        int colon = host.lastIndexOf(':'), bracket = host.lastIndexOf(']');
        if (colon > bracket) {
            try {
                return Integer.parseInt(host.substring(colon + 1));
            } catch (NumberFormatException e) {
                return localPort;
            }
        }
        return isSecure() ? 443 : 80;
    }

    /* host[:port] as the client named it, or null. */
    private String authority() {
        if (target.startsWith("/"))
            return getHeader("Host");
        int start = target.indexOf("://");
        if (start < 0)
            return getHeader("Host");
        int end = start + 3;
        while (end < target.length() && "/?#".indexOf(target.charAt(end)) < 0)
            end++;
        String a = target.substring(start + 3, end);
        return a.substring(a.indexOf('@') + 1);     // no userinfo
    }

    @Override
    public String getRemoteAddr() {
        return remoteAddr;
    }

    @Override
    public String getRemoteHost() {
        return remoteAddr;
    }

    @Override
    public int getRemotePort() {
        return remotePort;
    }

    @Override
    public String getLocalName() {
        return localAddr;
    }

    @Override
    public String getLocalAddr() {
        return localAddr;
    }

    @Override
    public int getLocalPort() {
        return localPort;
    }

    // ---- paths

    @Override
    public String getContextPath() {
        return "";
    }

    @Override
    public String getServletPath() {
        return servletPath;
    }

    @Override
    public String getPathInfo() {
        return pathInfo;
    }

    @Override
    public String getPathTranslated() {
        return pathInfo == null ? null : app.context.getRealPath(pathInfo);
    }

    @Override
    public javax.servlet.http.HttpServletMapping getHttpServletMapping() {
        return Dispatcher.mappingOf(match);
    }

    // ---- attributes

    @Override
    public Object getAttribute(String name) {
        return attributes.get(name);
    }

    @Override
    public Enumeration<String> getAttributeNames() {
        return Collections.enumeration(new ArrayList<>(attributes.keySet()));
    }

    @Override
    public void setAttribute(String name, Object o) {
        if (o == null) {
            removeAttribute(name);
            return;
        }
        Object old = attributes.put(name, o);
        ServletRequestAttributeEvent e = new ServletRequestAttributeEvent(app.context, this, name, old != null ? old : o);
        for (ServletRequestAttributeListener l : app.listeners(ServletRequestAttributeListener.class)) {
            if (old != null)
                l.attributeReplaced(e);
            else
                l.attributeAdded(e);
        }
    }

    @Override
    public void removeAttribute(String name) {
        Object old = attributes.remove(name);
        if (old == null)
            return;
        ServletRequestAttributeEvent e = new ServletRequestAttributeEvent(app.context, this, name, old);
        for (ServletRequestAttributeListener l : app.listeners(ServletRequestAttributeListener.class))
            l.attributeRemoved(e);
    }

    // ---- sessions

    private void findSession() {
        for (Cookie c : Http.parseCookies(headerList("Cookie"))) {
            if (!c.getName().equals(app.sessions.cookieName()))
                continue;
            requestedSessionId = c.getValue();
            sessionFromCookie = true;
            Session s = app.sessions.find(c.getValue());
            if (s != null) {
                session = s;
                s.access();
                return;
            }
        }
    }

    @Override
    public HttpSession getSession(boolean create) {
        if (session != null && session.valid())
            return session;
        session = null;
        if (!create)
            return null;
        if (response.isCommitted())
            throw new IllegalStateException("a session cannot be made once the response is committed");
        session = app.sessions.create();
        response.addCookie(app.sessions.cookie(session.getId(), isSecure()));
        return session;
    }

    @Override
    public HttpSession getSession() {
        return getSession(true);
    }

    @Override
    public String changeSessionId() {
        if (session == null || !session.valid())
            throw new IllegalStateException("no session");
        String id = app.sessions.changeId(session);
        response.addCookie(app.sessions.cookie(id, isSecure()));
        return id;
    }

    @Override
    public String getRequestedSessionId() {
        return requestedSessionId;
    }

    @Override
    public boolean isRequestedSessionIdValid() {
        return requestedSessionId != null && session != null && session.valid()
               && session.getId().equals(requestedSessionId);
    }

    @Override
    public boolean isRequestedSessionIdFromCookie() {
        return sessionFromCookie;
    }

    @Override
    public boolean isRequestedSessionIdFromURL() {
        return false;
    }

    @Override
    @Deprecated
    public boolean isRequestedSessionIdFromUrl() {
        return false;
    }

    // ---- security: none configured

    @Override
    public String getAuthType() {
        return null;
    }

    @Override
    public String getRemoteUser() {
        return null;
    }

    @Override
    public boolean isUserInRole(String role) {
        return false;
    }

    @Override
    public Principal getUserPrincipal() {
        return null;
    }

    @Override
    public boolean authenticate(HttpServletResponse r) throws ServletException {
        throw new ServletException("Warren: authentication is not supported");
    }

    @Override
    public void login(String user, String password) throws ServletException {
        throw new ServletException("Warren: login is not supported");
    }

    @Override
    public void logout() throws ServletException {
        // nobody is logged in
    }

    // ---- multipart

    @Override
    public Collection<Part> getParts() throws IOException, ServletException {
        if (!multipart())
            throw new IllegalStateException("the servlet has no multipart configuration");
        if (partsFailure instanceof IOException)    // the body is gone: the same answer again
            throw (IOException) partsFailure;
        if (partsFailure instanceof ServletException)
            throw (ServletException) partsFailure;
        if (partsFailure != null)
            throw (RuntimeException) partsFailure;
        if (parts == null) {
            try {
                parts = Collections.unmodifiableList(Multipart.parts(this));
            } catch (IOException | ServletException | RuntimeException e) {
                partsFailure = e;
                throw e;
            }
        }
        return parts;
    }

    private boolean multipart() {
        return match != null && match.servlet.multipart != null;
    }

    @Override
    public Part getPart(String name) throws IOException, ServletException {
        for (Part p : getParts())
            if (p.getName().equals(name))
                return p;
        return null;
    }

    // ---- dispatching; what Warren does not do

    @Override
    public RequestDispatcher getRequestDispatcher(String p) {
        if (p == null)
            return null;
        if (!p.startsWith("/")) {
            String base = servletPath + (pathInfo == null ? "" : pathInfo);
            p = base.substring(0, base.lastIndexOf('/') + 1) + p;
        }
        return app.context.getRequestDispatcher(p);
    }

    @Override
    @Deprecated
    public String getRealPath(String p) {
        return app.context.getRealPath(p);
    }

    @Override
    public ServletContext getServletContext() {
        return app.context;
    }

    @Override
    public DispatcherType getDispatcherType() {
        return DispatcherType.REQUEST;
    }

    @Override
    public AsyncContext startAsync() {
        throw new IllegalStateException("Warren: asynchronous servlets are not supported");
    }

    @Override
    public AsyncContext startAsync(ServletRequest req, ServletResponse resp) {
        throw new IllegalStateException("Warren: asynchronous servlets are not supported");
    }

    @Override
    public boolean isAsyncStarted() {
        return false;
    }

    @Override
    public boolean isAsyncSupported() {
        return false;
    }

    @Override
    public AsyncContext getAsyncContext() {
        throw new IllegalStateException("Warren: asynchronous servlets are not supported");
    }

    /*
     * Servlet 3.1 HTTP upgrade: the handler is made here (its no-argument
     * constructor: no injection) and the status set to 101; the servlet
     * adds the fields the new protocol needs (Upgrade ...). Once it
     * returns with the status still 101, the container sends the head and
     * hands the tunnel to the handler (Tunnel). Tomcat's WebSocket
     * handler is asked for by its WebSocket filter: it gets Warren's
     * subclass (WsUpgrade), which speaks over the tunnel.
     */
    private static final String TOMCAT_WS_HANDLER = "org.apache.tomcat.websocket.server.WsHttpUpgradeHandler";
    private static final String WS_HANDLER = "warren.WsUpgrade";

    @Override
    public <T extends HttpUpgradeHandler> T upgrade(Class<T> c) throws ServletException {
        if (!Native.upgrade(handle))
            throw new ServletException("Warren: not an upgrade request (an HTTP/1.1 request "
                                       + "with Connection: upgrade and an Upgrade field, without a body)");
        if (response.isCommitted())
            throw new IllegalStateException("upgrade: the response is committed");
        if (upgradeHandler != null)
            throw new IllegalStateException("upgrade: the request is already being upgraded");
        if (!Tunnel.reserve())
            throw new javax.servlet.UnavailableException("Warren: this worker holds as many upgraded "
                                                         + "connections as it can");
        T h;
        try {
            // By name: the container loads and runs without Tomcat's jars.
            Class<?> made = c.getName().equals(TOMCAT_WS_HANDLER) ? Class.forName(WS_HANDLER) : c;
            h = c.cast(made.getDeclaredConstructor().newInstance());
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            Tunnel.unreserve();
            throw new ServletException("upgrade: " + c.getName() + " cannot be made: " + e, e);
        }
        upgradeHandler = h;
        response.setStatus(HttpServletResponse.SC_SWITCHING_PROTOCOLS);
        return h;
    }
}
