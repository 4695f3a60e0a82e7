package warren;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.servlet.DispatcherType;
import javax.servlet.FilterChain;
import javax.servlet.RequestDispatcher;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.HttpServletMapping;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletRequestWrapper;
import javax.servlet.http.HttpServletResponse;
import javax.servlet.http.HttpServletResponseWrapper;
import javax.servlet.http.MappingMatch;

/*
 * Running a servlet: the filter chain of a dispatch, and the
 * RequestDispatcher's forward and include (Servlet specification §9),
 * which run another path (or a named servlet) inside the same request.
 */
final class Dispatcher implements RequestDispatcher {
    private final WebApp app;
    private final String path;          // decoded, without the query
    private final String uri;           // the same as given (encoded)
    private final String query;
    private final ServletHolder named;

    Dispatcher(WebApp app, String pathAndQuery) {
        this.app = app;
        int q = pathAndQuery.indexOf('?');
        this.uri = q < 0 ? pathAndQuery : pathAndQuery.substring(0, q);
        this.path = Http.decode(uri, Http.UTF8, false);
        this.query = q < 0 ? null : pathAndQuery.substring(q + 1);
        this.named = null;
    }

    Dispatcher(WebApp app, ServletHolder named) {
        this.app = app;
        this.path = null;
        this.uri = null;
        this.query = null;
        this.named = named;
    }

    /* The filters that apply to a dispatch, then the servlet. */
    static void run(WebApp app, DispatcherType type, ServletRequest req, ServletResponse resp,
                    ServletHolder servlet, String path) throws IOException, ServletException {
        List<FilterHolder> filters = app.filtersFor(type, path, servlet.name);
        new Chain(filters, servlet).doFilter(req, resp);
    }

    private static final class Chain implements FilterChain {
        private final List<FilterHolder> filters;
        private final ServletHolder servlet;
        private int next;

        Chain(List<FilterHolder> filters, ServletHolder servlet) {
            this.filters = filters;
            this.servlet = servlet;
        }

        @Override
        public void doFilter(ServletRequest req, ServletResponse resp) throws IOException, ServletException {
            if (next < filters.size())
                filters.get(next++).instance.doFilter(req, resp, this);
            else
                servlet.get().service(req, resp);
        }
    }

    @Override
    public void forward(ServletRequest req, ServletResponse resp) throws ServletException, IOException {
        if (resp.isCommitted())
            throw new IllegalStateException("forward: the response is committed");
        resp.resetBuffer();
        dispatch(DispatcherType.FORWARD, req, resp);
        closeAfterForward(resp);
    }

    /* The specification: the response is sent and closed when forward
     * returns. Closed through the response the caller passed, as in
     * Tomcat: a filter's buffering wrapper keeps what it holds and copies
     * it out later, which ending the response beneath it would lose. */
    private static void closeAfterForward(ServletResponse resp) throws IOException {
        if (resp instanceof Response) {
            ((Response) resp).complete();
            return;
        }
        try {
            resp.getWriter().close();
        } catch (IllegalStateException e) {
            resp.getOutputStream().close();     // the forwarded-to servlet took the stream
        }
    }

    /* The container's error page: a forward that leaves the response open. */
    void error(ServletRequest req, ServletResponse resp, Map<String, Object> attrs)
            throws ServletException, IOException {
        Dispatched d = wrap(DispatcherType.ERROR, req);
        d.overlay.putAll(attrs);
        Dispatcher.run(app, DispatcherType.ERROR, d, resp, d.match.servlet, path);
    }

    @Override
    public void include(ServletRequest req, ServletResponse resp) throws ServletException, IOException {
        dispatch(DispatcherType.INCLUDE, req, new Included((HttpServletResponse) resp));
    }

    private void dispatch(DispatcherType type, ServletRequest req, ServletResponse resp)
            throws ServletException, IOException {
        if (named != null) {
            Dispatched d = new Dispatched((HttpServletRequest) req, type, null);
            Dispatcher.run(app, type, d, resp, named, null);
            return;
        }
        Dispatched d = wrap(type, req);
        if (d.match == null)
            throw new ServletException("no servlet maps " + path);
        Dispatcher.run(app, type, d, resp, d.match.servlet, path);
    }

    private Dispatched wrap(DispatcherType type, ServletRequest req) {
        HttpServletRequest h = (HttpServletRequest) req;
        Mapper.Match m = app.mapper.match(path);
        Dispatched d = new Dispatched(h, type, m);
        String prefix = type == DispatcherType.INCLUDE ? "javax.servlet.include." : "javax.servlet.forward.";
        if (type == DispatcherType.INCLUDE) {
            d.overlay.put(prefix + "request_uri", uri);
            d.overlay.put(prefix + "context_path", "");
            d.overlay.put(prefix + "servlet_path", m == null ? path : m.servletPath);
            if (m != null && m.pathInfo != null)
                d.overlay.put(prefix + "path_info", m.pathInfo);
            if (query != null)
                d.overlay.put(prefix + "query_string", query);
            if (m != null)
                d.overlay.put(prefix + "mapping", mappingOf(m));
        } else if (type == DispatcherType.FORWARD && h.getAttribute(prefix + "request_uri") == null) {
            // The original request's path, kept through chained forwards.
            d.overlay.put(prefix + "request_uri", h.getRequestURI());
            d.overlay.put(prefix + "context_path", "");
            d.overlay.put(prefix + "servlet_path", h.getServletPath());
            if (h.getPathInfo() != null)
                d.overlay.put(prefix + "path_info", h.getPathInfo());
            if (h.getQueryString() != null)
                d.overlay.put(prefix + "query_string", h.getQueryString());
            d.overlay.put(prefix + "mapping", h.getHttpServletMapping());
        }
        return d;
    }

    /* The request as the target of a forward, include or error dispatch. */
    private final class Dispatched extends HttpServletRequestWrapper {
        final DispatcherType type;
        final Mapper.Match match;
        final Map<String, Object> overlay = new LinkedHashMap<>();
        private Map<String, String[]> params;

        Dispatched(HttpServletRequest r, DispatcherType type, Mapper.Match match) {
            super(r);
            this.type = type;
            this.match = match;
        }

        private boolean moves() {
            return match != null && type != DispatcherType.INCLUDE;
        }

        @Override
        public DispatcherType getDispatcherType() {
            return type;
        }

        @Override
        public String getServletPath() {
            return moves() ? match.servletPath : super.getServletPath();
        }

        @Override
        public String getPathInfo() {
            return moves() ? match.pathInfo : super.getPathInfo();
        }

        @Override
        public String getRequestURI() {
            return moves() ? uri : super.getRequestURI();
        }

        @Override
        public StringBuffer getRequestURL() {
            if (!moves())
                return super.getRequestURL();
            StringBuffer b = super.getRequestURL();
            b.setLength(b.length() - super.getRequestURI().length());
            return b.append(uri);
        }

        @Override
        public String getQueryString() {
            return moves() && query != null ? query : super.getQueryString();
        }

        @Override
        public HttpServletMapping getHttpServletMapping() {
            return moves() ? mappingOf(match) : super.getHttpServletMapping();
        }

        @Override
        public Object getAttribute(String name) {
            Object v = overlay.get(name);
            return v != null ? v : super.getAttribute(name);
        }

        @Override
        public Enumeration<String> getAttributeNames() {
            List<String> names = new ArrayList<>(overlay.keySet());
            for (Enumeration<String> e = super.getAttributeNames(); e.hasMoreElements(); ) {
                String n = e.nextElement();
                if (!overlay.containsKey(n))
                    names.add(n);
            }
            return Collections.enumeration(names);
        }

        @Override
        public void setAttribute(String name, Object o) {
            overlay.remove(name);
            super.setAttribute(name, o);
        }

        @Override
        public void removeAttribute(String name) {
            overlay.remove(name);
            super.removeAttribute(name);
        }

        /* The dispatch's query parameters come first, then the request's. */
        private Map<String, String[]> params() {
            if (params != null)
                return params;
            Map<String, List<String>> p = new LinkedHashMap<>();
            Http.parseQuery(query, Http.UTF8, p);
            for (Map.Entry<String, String[]> e : super.getParameterMap().entrySet())
                Collections.addAll(p.computeIfAbsent(e.getKey(), k -> new ArrayList<>()), e.getValue());
            params = Collections.unmodifiableMap(Http.toArrays(p));
            return params;
        }

        @Override
        public String getParameter(String name) {
            String[] v = params().get(name);
            return v == null ? null : v[0];
        }

        @Override
        public Map<String, String[]> getParameterMap() {
            return params();
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
    }

    /* An included servlet writes the body but cannot change the head. */
    private static final class Included extends HttpServletResponseWrapper {
        Included(HttpServletResponse r) {
            super(r);
        }

        @Override public void setStatus(int sc) { }
        @Override @Deprecated public void setStatus(int sc, String m) { }
        @Override public void setHeader(String n, String v) { }
        @Override public void addHeader(String n, String v) { }
        @Override public void setIntHeader(String n, int v) { }
        @Override public void addIntHeader(String n, int v) { }
        @Override public void setDateHeader(String n, long v) { }
        @Override public void addDateHeader(String n, long v) { }
        @Override public void setContentType(String t) { }
        @Override public void setContentLength(int n) { }
        @Override public void setContentLengthLong(long n) { }
        @Override public void setCharacterEncoding(String c) { }
        @Override public void setLocale(java.util.Locale l) { }
        @Override public void addCookie(javax.servlet.http.Cookie c) { }
        @Override public void sendError(int sc) { }
        @Override public void sendError(int sc, String m) { }
        @Override public void sendRedirect(String l) { }
        @Override public void reset() { }
    }

    /* HttpServletMapping (Servlet 4.0) of a match. */
    static HttpServletMapping mappingOf(Mapper.Match m) {
        if (m == null)
            return null;
        final MappingMatch kind;
        final String value;
        if (m.pattern.isEmpty()) {
            kind = MappingMatch.CONTEXT_ROOT;
            value = "";
        } else if (m.pattern.equals("/")) {
            kind = MappingMatch.DEFAULT;
            value = "";
        } else if (m.pattern.endsWith("/*")) {
            kind = MappingMatch.PATH;
            value = m.pathInfo == null ? "" : m.pathInfo.substring(1);
        } else if (m.pattern.startsWith("*.")) {
            kind = MappingMatch.EXTENSION;
            String p = m.servletPath.substring(1);
            value = p.substring(0, p.length() - (m.pattern.length() - 1));
        } else {
            kind = MappingMatch.EXACT;
            value = m.servletPath.substring(1);
        }
        return new HttpServletMapping() {
            @Override public String getMatchValue() { return value; }
            @Override public String getPattern() { return m.pattern; }
            @Override public String getServletName() { return m.servlet.name; }
            @Override public MappingMatch getMappingMatch() { return kind; }
        };
    }
}
