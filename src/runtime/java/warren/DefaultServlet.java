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
 * webapp's own files, never what is under WEB-INF/ or META-INF/. A
 * directory asked for without its '/' is redirected to it; with it, its
 * first welcome file that exists or that a servlet maps is served; else
 * 404 (no listings). JSP pages are not files to send: 404.
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
        if (f == null || hidden(path) || jsp(path)) {
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

    /* JSP is not supported (no Jasper): a page's source is never sent as
     * a file, it may hold what only the server should see. */
    private boolean jsp(String path) {
        String p = path.toLowerCase(Locale.ROOT);
        if (!p.endsWith(".jsp") && !p.endsWith(".jspx"))
            return false;
        app.log("warren: " + path + ": JSP is not supported, the page is not served");
        return true;
    }

    static boolean hidden(String path) {
        String p = path.toUpperCase(Locale.ROOT);
        return p.startsWith("/WEB-INF") || p.startsWith("/META-INF");
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
            if ((f != null && f.isFile() && !jsp(candidate)) || servlet) {
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
        resp.setContentLengthLong(f.length());
        if (head)
            return;
        OutputStream out = resp.getOutputStream();
        try (InputStream in = new FileInputStream(f)) {
            byte[] buf = new byte[CHUNK];
            int n;
            while ((n = in.read(buf)) > 0)
                out.write(buf, 0, n);
        }
    }
}
