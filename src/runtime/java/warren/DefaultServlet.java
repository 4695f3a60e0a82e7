package warren;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Locale;

import javax.servlet.RequestDispatcher;
import javax.servlet.ServletException;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

/*
 * The container's default servlet ("/" unless the webapp maps it): the
 * webapp's own files (one byte range when asked for), never what is under
 * WEB-INF/ or META-INF/ to a client (forwards and includes reach them, as
 * the specification allows). A directory asked for without its '/' is
 * redirected to it; with it, its first welcome file that exists or that a
 * servlet maps is served; else 404 (no listings). JSP pages are not files
 * to send: 404.
 */
final class DefaultServlet extends HttpServlet {
    private static final long serialVersionUID = 1L;
    private static final int CHUNK = 65536;

    private final WebApp app;

    DefaultServlet(WebApp app) {
        this.app = app;
    }

    @Override
    protected void service(HttpServletRequest req, HttpServletResponse resp) throws ServletException, IOException {
        String m = req.getMethod();
        // A POST forwarded to a page, or answered by an error page, gets the
        // file (as in Tomcat); asked for directly, files only GET and HEAD.
        boolean direct = req.getDispatcherType() == javax.servlet.DispatcherType.REQUEST;
        if (direct && !m.equals("GET") && !m.equals("HEAD")) {
            resp.setHeader("Allow", "GET, HEAD");
            resp.sendError(HttpServletResponse.SC_METHOD_NOT_ALLOWED);
            return;
        }
        String path = pathOf(req);
        File f = app.file(path);
        // WEB-INF and META-INF are hidden from clients, not from the webapp:
        // a forward to /WEB-INF/views/page.html is served (as in Tomcat).
        if (f == null || (direct && hidden(path)) || jsp(path)) {
            resp.sendError(HttpServletResponse.SC_NOT_FOUND);
            return;
        }
        if (f.isDirectory()) {
            directory(req, resp, path);
            return;
        }
        if (!f.isFile() || !f.canRead()) {
            resp.sendError(HttpServletResponse.SC_NOT_FOUND);
            return;
        }
        file(req, resp, f, m.equals("HEAD"));
    }

    /* The path asked for, also when the default servlet is included. */
    private static String pathOf(HttpServletRequest req) {
        Object inc = req.getAttribute(RequestDispatcher.INCLUDE_SERVLET_PATH);
        if (inc != null) {
            Object info = req.getAttribute(RequestDispatcher.INCLUDE_PATH_INFO);
            return inc + (info == null ? "" : info.toString());
        }
        String info = req.getPathInfo();
        return req.getServletPath() + (info == null ? "" : info);
    }

    /* A JSP page's source is never sent as a file: it may hold what only
     * the server should see. (With Jasper, *.jsp maps to the "jsp" servlet
     * and comes here only when a webapp maps it away.) */
    private boolean jsp(String path) {
        String p = path.toLowerCase(Locale.ROOT);
        if (!p.endsWith(".jsp") && !p.endsWith(".jspx"))
            return false;
        app.log("warren: " + path + ": a JSP page, not served as a file"
                + (Jsp.available(app.loader) ? "" : " (JSP needs Apache Jasper: libtomcat9-java)"));
        return true;
    }

    /* /WEB-INF, /META-INF and what is under them, in any case. */
    static boolean hidden(String path) {
        String p = path.toUpperCase(Locale.ROOT);
        return p.equals("/WEB-INF") || p.startsWith("/WEB-INF/")
               || p.equals("/META-INF") || p.startsWith("/META-INF/");
    }

    private void directory(HttpServletRequest req, HttpServletResponse resp, String path)
            throws ServletException, IOException {
        if (!path.endsWith("/")) {
            String q = req.getQueryString();
            resp.sendRedirect(req.getRequestURI() + "/" + (q == null ? "" : "?" + q));
            return;
        }
        for (String w : app.welcomeFiles) {
            String candidate = path + w;
            File f = app.file(candidate);
            Mapper.Match m = app.mapper.match(candidate);
            boolean servlet = m != null && m.servlet != app.defaultServlet;
            if (servlet || (f != null && f.isFile() && !jsp(candidate))) {
                app.context.getRequestDispatcher(candidate).forward(req, resp);
                return;
            }
        }
        resp.sendError(HttpServletResponse.SC_NOT_FOUND);
    }

    private void file(HttpServletRequest req, HttpServletResponse resp, File f, boolean head)
            throws IOException {
        long modified = f.lastModified() / 1000 * 1000;     // HTTP dates have seconds
        long since;
        try {
            since = req.getDateHeader("If-Modified-Since");
        } catch (IllegalArgumentException e) {
            since = -1;
        }
        resp.setDateHeader("Last-Modified", modified);
        if (since >= 0 && modified <= since) {
            resp.setStatus(HttpServletResponse.SC_NOT_MODIFIED);
            return;
        }
        String type = app.context.getMimeType(f.getName());
        resp.setContentType(type != null ? type : "application/octet-stream");
        resp.setHeader("Accept-Ranges", "bytes");
        long size = f.length();
        long[] range = range(req, size, modified);
        if (range == UNSATISFIABLE) {
            resp.setHeader("Content-Range", "bytes */" + size);
            resp.sendError(HttpServletResponse.SC_REQUESTED_RANGE_NOT_SATISFIABLE);
            return;
        }
        long from = 0, length = size;
        if (range != null) {
            from = range[0];
            length = range[1] - range[0] + 1;
            resp.setStatus(HttpServletResponse.SC_PARTIAL_CONTENT);
            resp.setHeader("Content-Range", "bytes " + range[0] + "-" + range[1] + "/" + size);
        }
        resp.setContentLengthLong(length);
        if (!head)
            copy(f, from, length, resp.getOutputStream());
    }

    private static void copy(File f, long from, long length, OutputStream out) throws IOException {
        try (InputStream in = new FileInputStream(f)) {
            in.skipNBytes(from);
            byte[] buf = new byte[CHUNK];
            int n;
            while (length > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, length))) > 0) {
                out.write(buf, 0, n);
                length -= n;
            }
        }
    }

    private static final long[] UNSATISFIABLE = new long[0];

    /*
     * One byte range of the Range field (RFC 9110 §14): {first, last}; null
     * for the whole file (no Range, several ranges, a malformed one, or an
     * If-Range that no longer holds); UNSATISFIABLE when it starts past
     * the end.
     */
    private static long[] range(HttpServletRequest req, long size, long modified) {
        String v = req.getHeader("Range");
        if (v == null || !v.startsWith("bytes=") || v.indexOf(',') >= 0 || !ifRange(req, modified))
            return null;
        if (size == 0)
            return UNSATISFIABLE;                       // no byte to give
        String spec = v.substring(6).trim();
        int dash = spec.indexOf('-');
        if (dash < 0)
            return null;
        try {
            String a = spec.substring(0, dash).trim(), b = spec.substring(dash + 1).trim();
            if (a.isEmpty()) {                          // the last b bytes
                long n = Long.parseLong(b);
                if (n <= 0)
                    return UNSATISFIABLE;
                return new long[] { Math.max(0, size - n), size - 1 };
            }
            long first = Long.parseLong(a);
            long last = b.isEmpty() ? size - 1 : Math.min(Long.parseLong(b), size - 1);
            if (first >= size)
                return UNSATISFIABLE;
            return first <= last ? new long[] { first, last } : null;
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /* If-Range with a date: the range holds only for that version of the
     * file; an entity tag never matches (none are made). */
    private static boolean ifRange(HttpServletRequest req, long modified) {
        String v = req.getHeader("If-Range");
        return v == null || Http.parseDate(v) == modified;
    }
}
