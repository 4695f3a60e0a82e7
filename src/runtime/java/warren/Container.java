package warren;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.servlet.DispatcherType;
import javax.servlet.RequestDispatcher;
import javax.servlet.ServletException;
import javax.servlet.ServletRequestEvent;
import javax.servlet.ServletRequestListener;
import javax.servlet.http.HttpServletResponse;

/*
 * Warren's servlet container, as warren-java (src/runtime/java/jvm.c) calls
 * it: init once per worker, serve for every request (on any of the worker's
 * threads), destroy when the router lets the worker go.
 */
public final class Container {
    /* What serve says became of the request (src/runtime/java/wjv.h). */
    static final int ABORT = 0, FINISH = 1, TUNNEL = 2;

    private static WebApp app;

    private Container() {
    }

    public static void init(String webapp, String[] classpath, String tmpdir) throws Exception {
        app = WebApp.load(webapp, classpath, tmpdir);
    }

    /* The webapp may upgrade requests (WebApp.upgrades): warren-java then
     * opens the channel with room for tunnels beside its threads. */
    public static boolean upgrades() {
        return app.upgrades;
    }

    /* The channel is open with that many streams, for that many serving
     * threads: the tunnels have the rest (src/runtime/java/wjv.h). */
    public static void channel(int streams, int threads) {
        Tunnel.channel(streams, threads);
    }

    /* The channel ended: the tunnels let go of it before it is freed. */
    public static void drain() {
        Tunnel.drain();
    }

    /* The process exits right after: whatever fails here is logged, and
     * the output streams are flushed in every case. */
    public static void destroy() {
        try {
            if (app != null) {
                Thread.currentThread().setContextClassLoader(app.loader);
                app.stop();
            }
        } catch (RuntimeException | Error e) {
            System.err.println("warren: stopping the webapp failed");
            e.printStackTrace();
        } finally {
            System.out.flush();
            System.err.flush();
        }
    }

    /*
     * One request, start to end. FINISH when the response went out whole
     * (warren-java then finishes the request), ABORT when it must be cut:
     * the client or the channel failed, or an error came after the head;
     * TUNNEL when it was upgraded: its Tunnel's thread holds it now.
     */
    public static int serve(long handle) {
        Thread t = Thread.currentThread();
        t.setContextClassLoader(app.loader);
        Request req;
        try {
            req = new Request(handle, app);
        } catch (RuntimeException e) {
            app.log("warren: a request head that cannot be read", e);
            return ABORT;
        }
        Response resp = new Response(handle, req);
        req.response = resp;
        try {
            return exchange(req, resp);
        } catch (RuntimeException | Error e) {
            // A fault of the container or of a listener outside any servlet:
            // serve must not throw, the request is cut.
            app.log("warren: " + req.method + " " + req.target + ": " + e, e);
            return ABORT;
        }
    }

    /* The request listeners around the dispatch, the error page sendError
     * asked for, then the end of the response, or the upgrade. */
    private static int exchange(Request req, Response resp) {
        ServletRequestEvent event = new ServletRequestEvent(app.context, req);
        List<ServletRequestListener> told = new ArrayList<>();
        boolean upgrading = false;
        try {
            if (initialized(told, event, req, resp))
                dispatch(req, resp);
            upgrading = upgrades(req, resp);
            if (upgrading)
                return upgrade(req, resp);
            if (resp.errorStatus != 0 && !resp.broken) {
                errorPage(req, resp, resp.errorStatus, resp.errorMessage, null);
                resp.clearError();      // the error page's own sendError: its status, no page
            }
            if (!resp.broken)
                resp.complete();
        } catch (IOException e) {
            if (!resp.broken)
                app.log("warren: " + req.method + " " + req.target + ": the response failed", e);
            return ABORT;
        } finally {
            if (req.upgradeHandler != null && !upgrading)
                Tunnel.unreserve();     // upgrade() was called, but the answer is no 101
            destroyed(told, event);
        }
        return resp.broken ? ABORT : FINISH;
    }

    /* The servlet called upgrade() and left the status at 101. */
    private static boolean upgrades(Request req, Response resp) {
        return req.upgradeHandler != null && resp.getStatus() == HttpServletResponse.SC_SWITCHING_PROTOCOLS
               && resp.errorStatus == 0 && !resp.broken && !resp.headSent();
    }

    /* The 101 goes out and the handler's thread takes the tunnel. */
    private static int upgrade(Request req, Response resp) throws IOException {
        Tunnel t;
        try {
            t = new Tunnel(req.handle, app, req.method + " " + req.target, req.upgradeHandler);
            resp.switchProtocols();
        } catch (IOException e) {
            Tunnel.unreserve();
            throw e;
        }
        t.start();              // or, on a context of one thread, run here
        return TUNNEL;
    }

    /* requestInitialized for every request listener; false when one failed
     * (its 500 is then under way, the servlet is not run, as in Tomcat). */
    private static boolean initialized(List<ServletRequestListener> told, ServletRequestEvent event,
                                       Request req, Response resp) throws IOException {
        try {
            for (ServletRequestListener l : app.listeners(ServletRequestListener.class)) {
                l.requestInitialized(event);
                told.add(l);
            }
            return true;
        } catch (RuntimeException | Error e) {
            failed(req, resp, e);
            return false;
        }
    }

    /* requestDestroyed, in reverse order, for the listeners that were told
     * of the request; one failing does not keep the others from it. */
    private static void destroyed(List<ServletRequestListener> told, ServletRequestEvent event) {
        for (int i = told.size() - 1; i >= 0; i--) {
            try {
                told.get(i).requestDestroyed(event);
            } catch (RuntimeException | Error e) {
                app.log("warren: requestDestroyed failed", e);
            }
        }
    }

    /* The servlet and its filters; an exception becomes its error page. */
    private static void dispatch(Request req, Response resp) throws IOException {
        // WEB-INF and META-INF are the webapp's own: no client request
        // reaches them, whatever is mapped there (a *.jsp page under
        // WEB-INF is for forwards and includes only).
        if (DefaultServlet.hidden(req.path)) {
            resp.sendError(HttpServletResponse.SC_NOT_FOUND);
            return;
        }
        Mapper.Match m = app.mapper.match(req.path);
        req.match = m;
        req.servletPath = m.servletPath;
        req.pathInfo = m.pathInfo;
        try {
            Dispatcher.run(app, DispatcherType.REQUEST, req, resp, m.servlet, req.path);
        } catch (IOException | ServletException | RuntimeException | Error e) {
            failed(req, resp, e);
        }
    }

    /* An exception while serving: logged (never for a client that left),
     * then its error page, or the connection cut if a head went out. */
    private static void failed(Request req, Response resp, Throwable e) throws IOException {
        if (resp.broken)
            return;             // the client left: nothing to answer, nothing to log
        Throwable cause = rootOf(e);
        app.log("warren: " + req.method + " " + req.target + ": " + cause, cause);
        if (resp.headSent()) {
            resp.broken = true;         // a head went out: the connection is cut
            return;
        }
        resp.reset();
        resp.clearError();
        // UnavailableException: the servlet says so itself, 503 (as in Tomcat).
        int status = cause instanceof javax.servlet.UnavailableException
                     ? HttpServletResponse.SC_SERVICE_UNAVAILABLE : HttpServletResponse.SC_INTERNAL_SERVER_ERROR;
        errorPage(req, resp, status, null, cause);
    }

    /* ServletException wraps the servlet's own exception. */
    private static Throwable rootOf(Throwable e) {
        while (e instanceof ServletException && ((ServletException) e).getRootCause() != null)
            e = ((ServletException) e).getRootCause();
        return e;
    }

    /* The webapp's error page for the exception or status, else a short
     * page of ours. Never the stack trace: that is in the error log. */
    private static void errorPage(Request req, Response resp, int status, String message, Throwable cause)
            throws IOException {
        String location = cause != null ? locationFor(cause) : null;
        if (location == null)
            location = app.errorCodes.get(status);
        if (location == null)
            location = app.defaultErrorPage;
        resp.clearError();
        resp.resetForError();
        resp.setStatus(status);
        if (location != null && app.mapper.match(location.split("\\?")[0]) != null) {
            Map<String, Object> attrs = new LinkedHashMap<>();
            attrs.put(RequestDispatcher.ERROR_STATUS_CODE, status);
            attrs.put(RequestDispatcher.ERROR_REQUEST_URI, req.getRequestURI());
            if (req.match != null)      // null when a request listener failed
                attrs.put(RequestDispatcher.ERROR_SERVLET_NAME, req.match.servlet.name);
            if (message != null)
                attrs.put(RequestDispatcher.ERROR_MESSAGE, message);
            if (cause != null) {
                attrs.put(RequestDispatcher.ERROR_EXCEPTION, cause);
                attrs.put(RequestDispatcher.ERROR_EXCEPTION_TYPE, cause.getClass());
                attrs.put(RequestDispatcher.ERROR_MESSAGE, String.valueOf(cause.getMessage()));
            }
            try {
                new Dispatcher(app, location).error(req, resp, attrs);
                return;
            } catch (ServletException | RuntimeException e) {
                app.log("warren: the error page " + location + " failed", e);
                if (resp.headSent()) {
                    resp.broken = true;
                    return;
                }
                resp.reset();
                resp.setStatus(status);
            }
        }
        resp.setContentType("text/html;charset=UTF-8");
        PrintWriter w = resp.getWriter();
        String title = status + (message != null ? " " + Http.escapeHtml(message) : "");
        w.print("<!DOCTYPE html><html><head><title>" + title + "</title></head><body><h1>"
                + title + "</h1><hr><p>Warren</p></body></html>\n");
    }

    /* The error-page of the exception's class or its nearest superclass. */
    private static String locationFor(Throwable t) {
        for (Class<?> c = t.getClass(); c != null; c = c.getSuperclass()) {
            String l = app.errorTypes.get(c.getName());
            if (l != null)
                return l;
        }
        return null;
    }
}
