"""Java servlet web applications (`"type": "java"`) run by warrend through
build/warren-java (Debian's OpenJDK 17) and Warren's servlet container
(build/java/warren.jar), end to end (docs/applications.md#java-servlets).

One webapp, compiled once per module with javac against Debian's servlet
API, declares servlets, filters and a listener both in WEB-INF/web.xml and
by annotations; each test starts its own warrend (its --modulesdir a copy of
the runtimes, wh.runtimes_modulesdir) and talks HTTP to it:

  - loading: web.xml and annotations, init params, load-on-startup order,
    a context listener, filters of both kinds in order;
  - mapping: exact, /prefix/*, *.ext, the default servlet (files, welcome
    file, directory redirect, 404 page, WEB-INF hidden, 304, HEAD);
  - the request (parameters, fields, cookies, addresses), 5 MB uploads
    (Content-Length and chunked), multipart;
  - the response (status, fields, cookies, redirects, Content-Length of a
    small answer, a 10 MB streamed one, the writer's charset);
  - sessions, forward and include, error pages, exceptions (500 without
    the stack trace, the worker serves on);
  - a .war, "classpath", "options", "threads", restart, contextDestroyed,
    and webapps that cannot load (the PUT fails with the cause, the old
    configuration serves on);
  - the finer points (Probe, at /probe/*): header, date, int and locale
    accessors, the body's charset, exclusive streams, what is unsupported
    (async, login) and upgrade() on a plain request (refused: upgrades are
    test_java_websocket.py's), reset/resetBuffer/commit rules, the app's own
    Content-Length, HEAD, an exception once committed (the connection is
    cut), named dispatchers, FORWARD-only filters, an include that cannot
    set the status, error pages by exception class, the ServletContext,
    request/session/context-attribute listeners, changeSessionId, expiry;
  - a second webapp: a ServletContainerInitializer's servlet, filter and
    session cookie name, web.xml 4.0 encodings, a servlet as welcome
    file, metadata-complete;
  - removal: servlets' and filters' destroy(), then contextDestroyed.

"""

import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import time
import zipfile

import http_helpers as hh
import iso_helpers as ih
import java_helpers as jh
import warren_helpers as wh

import pytest

pytestmark = jh.needs_java

# ------------------------------------------------------------------ the webapp

WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="3.1">
  <display-name>shop</display-name>
  <context-param><param-name>greeting</param-name><param-value>bonjour</param-value></context-param>
  <listener><listener-class>test.Life</listener-class></listener>
  <servlet>
    <servlet-name>echo</servlet-name>
    <servlet-class>test.Echo</servlet-class>
    <init-param><param-name>mode</param-name><param-value>xml</param-value></init-param>
    <load-on-startup>2</load-on-startup>
  </servlet>
  <servlet-mapping><servlet-name>echo</servlet-name><url-pattern>/echo/*</url-pattern></servlet-mapping>
  <filter><filter-name>xml-filter</filter-name><filter-class>test.XmlFilter</filter-class></filter>
  <filter-mapping><filter-name>xml-filter</filter-name><url-pattern>/*</url-pattern></filter-mapping>
  <filter><filter-name>fwd-filter</filter-name><filter-class>test.FwdFilter</filter-class></filter>
  <filter-mapping><filter-name>fwd-filter</filter-name><url-pattern>/echo/*</url-pattern><dispatcher>FORWARD</dispatcher></filter-mapping>
  <welcome-file-list><welcome-file>index.html</welcome-file></welcome-file-list>
  <mime-mapping><extension>wrn</extension><mime-type>application/x-warren</mime-type></mime-mapping>
  <error-page><error-code>404</error-code><location>/errors/404.html</location></error-page>
  <error-page><exception-type>java.lang.IllegalStateException</exception-type><location>/act/errpage</location></error-page>
</web-app>
"""

JAVA = {}

JAVA["Registry.java"] = r"""
package test;
import java.util.*;
/* What the tests read back: the order servlets were initialized in. */
public final class Registry {
    public static final List<String> inits = Collections.synchronizedList(new ArrayList<>());

    /* A file beside -Dtest.marker (when given): what destroy() saw. */
    public static void leave(String suffix, String text) {
        String marker = System.getProperty("test.marker");
        if (marker == null)
            return;
        try { java.nio.file.Files.writeString(java.nio.file.Paths.get(marker + suffix), text); }
        catch (java.io.IOException x) { throw new java.io.UncheckedIOException(x); }
    }
}
"""

JAVA["Life.java"] = r"""
package test;
import java.nio.file.*;
import javax.servlet.*;
public class Life implements ServletContextListener {
    public void contextInitialized(ServletContextEvent e) {
        e.getServletContext().setAttribute("started", "yes");
    }
    public void contextDestroyed(ServletContextEvent e) {
        String marker = System.getProperty("test.marker");
        if (marker != null) {
            /* Servlets and filters are destroyed before the context: say if they were. */
            Registry.leave(".order", "servlet " + Files.exists(Paths.get(marker + ".servlet"))
                           + " filter " + Files.exists(Paths.get(marker + ".filter")));
            try { Files.writeString(Paths.get(marker), "destroyed " + ProcessHandle.current().pid()); }
            catch (Exception x) { throw new RuntimeException(x); }
        }
    }
}
"""

JAVA["XmlFilter.java"] = r"""
package test;
import java.io.IOException;
import javax.servlet.*;
import javax.servlet.http.*;
public class XmlFilter implements Filter {
    public void destroy() { Registry.leave(".filter", "xml-filter destroyed"); }
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        ((HttpServletResponse) r).addHeader("X-Chain", "xml");
        c.doFilter(q, r);
    }
}
"""

JAVA["AnnFilter.java"] = r"""
package test;
import java.io.IOException;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebFilter("/*")
public class AnnFilter implements Filter {
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        ((HttpServletResponse) r).addHeader("X-Chain", "ann");
        c.doFilter(q, r);
    }
}
"""

# Echo: the request as the servlet sees it, one "key=value" line each.
JAVA["Echo.java"] = r"""
package test;
import java.io.*;
import java.util.*;
import javax.servlet.*;
import javax.servlet.http.*;
public class Echo extends HttpServlet {
    public void init() { Registry.inits.add("echo"); }
    public void destroy() { Registry.leave(".servlet", "echo destroyed"); }
    protected void service(HttpServletRequest q, HttpServletResponse r) throws IOException {
        r.setContentType("text/plain; charset=UTF-8");
        PrintWriter w = r.getWriter();
        w.println("method=" + q.getMethod());
        w.println("uri=" + q.getRequestURI());
        w.println("url=" + q.getRequestURL());
        w.println("servletPath=" + q.getServletPath());
        w.println("pathInfo=" + q.getPathInfo());
        w.println("query=" + q.getQueryString());
        w.println("dispatch=" + q.getDispatcherType());
        w.println("mode=" + getInitParameter("mode"));
        w.println("greeting=" + getServletContext().getInitParameter("greeting"));
        w.println("started=" + getServletContext().getAttribute("started"));
        for (String n : Collections.list(q.getParameterNames()))
            w.println("param." + n + "=" + String.join(",", q.getParameterValues(n)));
        w.println("accept=" + String.join(",", Collections.list(q.getHeaders("X-Multi"))));
        if (q.getCookies() != null)
            for (Cookie c : q.getCookies())
                w.println("cookie." + c.getName() + "=" + c.getValue());
        w.println("remote=" + q.getRemoteAddr() + ":" + q.getRemotePort());
        w.println("local=" + q.getLocalAddr() + ":" + q.getLocalPort());
        w.println("server=" + q.getServerName() + ":" + q.getServerPort());
        w.println("scheme=" + q.getScheme() + " secure=" + q.isSecure() + " protocol=" + q.getProtocol());
        w.println("forward.uri=" + q.getAttribute("javax.servlet.forward.request_uri"));
        w.println("include.uri=" + q.getAttribute("javax.servlet.include.request_uri"));
        w.println("contentLength=" + q.getContentLengthLong());
    }
}
"""

JAVA["Ann.java"] = r"""
package test;
import java.io.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebServlet(urlPatterns = {"/ann", "*.do", "/exact/path"}, initParams = @WebInitParam(name = "greet", value = "hello"))
public class Ann extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException {
        r.setContentType("text/plain");
        r.getWriter().print("ann greet=" + getInitParameter("greet") + " servletPath=" + q.getServletPath()
                            + " pathInfo=" + q.getPathInfo());
    }
}
"""

JAVA["Multi.java"] = r"""
package test;
import java.io.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebServlet("/multi")
@MultipartConfig
public class Multi extends HttpServlet {
    protected void doPost(HttpServletRequest q, HttpServletResponse r) throws IOException, ServletException {
        r.setContentType("text/plain");
        PrintWriter w = r.getWriter();
        for (Part p : q.getParts())
            w.println(p.getName() + " " + p.getSubmittedFileName() + " " + p.getSize() + " "
                      + new String(p.getInputStream().readAllBytes(), "UTF-8"));
    }
}
"""

# Act: one action per path info; load-on-startup 1 (before Echo's 2).
JAVA["Act.java"] = r"""
package test;
import java.io.*;
import java.security.MessageDigest;
import java.util.concurrent.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebServlet(urlPatterns = "/act/*", loadOnStartup = 1)
public class Act extends HttpServlet {
    static final CountDownLatch LATCH = new CountDownLatch(4);

    public void init() { Registry.inits.add("act"); }

    /* The real uid, from the kernel (there is no /etc/passwd in a rootfs). */
    static String uid() throws IOException {
        for (String line : java.nio.file.Files.readAllLines(java.nio.file.Paths.get("/proc/self/status")))
            if (line.startsWith("Uid:"))
                return line.split("\\s+")[1];
        return "?";
    }

    protected void service(HttpServletRequest q, HttpServletResponse r) throws IOException, ServletException {
        String what = q.getPathInfo() == null ? "" : q.getPathInfo().substring(1);
        r.setContentType("text/plain");
        PrintWriter w;
        switch (what) {
        case "pid":
            r.getWriter().print(ProcessHandle.current().pid());
            return;
        case "order":
            r.getWriter().print(String.join(",", Registry.inits));
            return;
        case "fail":
            throw new RuntimeException("secret-detail-of-the-failure");
        case "ise":
            throw new IllegalStateException("mapped to an error page");
        case "errpage":
            r.getWriter().print("errpage status=" + q.getAttribute("javax.servlet.error.status_code")
                + " exception=" + q.getAttribute("javax.servlet.error.exception_type")
                + " uri=" + q.getAttribute("javax.servlet.error.request_uri")
                + " dispatch=" + q.getDispatcherType());
            return;
        case "err":
            r.sendError(Integer.parseInt(q.getParameter("code")), "told to");
            return;
        case "redir":
            r.sendRedirect(q.getParameter("to"));
            return;
        case "created":
            r.setStatus(201);
            r.setHeader("X-Thing", "made");
            r.addHeader("X-Thing", "twice");
            Cookie c = new Cookie("flavour", "oat");
            c.setMaxAge(60);
            c.setHttpOnly(true);
            c.setPath("/act");
            r.addCookie(c);
            r.getWriter().print("created");
            return;
        case "fwd":
            q.getRequestDispatcher("/echo/forwarded?x=1").forward(q, r);
            r.getWriter().print("NOT-AFTER-FORWARD");
            return;
        case "inc":
            w = r.getWriter();
            w.print("before|");
            q.getRequestDispatcher("/echo/included?y=2").include(q, r);
            w.print("|after");
            return;
        case "session": {
            HttpSession s = q.getSession();
            Integer n = (Integer) s.getAttribute("n");
            n = n == null ? 1 : n + 1;
            s.setAttribute("n", n);
            r.getWriter().print(n + " new=" + s.isNew());
            return;
        }
        case "invalidate":
            HttpSession s = q.getSession(false);
            if (s != null)
                s.invalidate();
            r.getWriter().print("gone");
            return;
        case "latch":
            LATCH.countDown();
            try {
                if (!LATCH.await(20, TimeUnit.SECONDS)) {
                    r.getWriter().print("timeout");
                    return;
                }
            } catch (InterruptedException e) {
                throw new ServletException(e);
            }
            r.getWriter().print("together " + ProcessHandle.current().pid());
            return;
        case "charset":
            r.setContentType("text/plain; charset=UTF-8");
            r.getWriter().print("h\u00e9llo \u20ac");
            return;
        case "big": {
            OutputStream o = r.getOutputStream();
            byte[] b = new byte[1 << 20];
            for (int i = 0; i < 10; i++) {
                java.util.Arrays.fill(b, (byte) ('a' + i));
                o.write(b);
                r.flushBuffer();
            }
            return;
        }
        case "upload":
            try {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                InputStream in = q.getInputStream();
                byte[] b = new byte[16384];
                long total = 0;
                int n;
                while ((n = in.read(b)) > 0) {
                    d.update(b, 0, n);
                    total += n;
                }
                StringBuilder hex = new StringBuilder();
                for (byte x : d.digest())
                    hex.append(String.format("%02x", x));
                r.getWriter().print(total + " " + hex);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new ServletException(e);
            }
            return;
        case "extra":
            try {
                ClassLoader cl = Thread.currentThread().getContextClassLoader();
                Object v = Class.forName("extra.Extra", true, cl).getMethod("hello").invoke(null);
                r.getWriter().print(v);
            } catch (ReflectiveOperationException e) {
                throw new ServletException(e);
            }
            return;
        case "probe": {
            StringBuilder b = new StringBuilder();
            try (java.util.stream.Stream<java.nio.file.Path> root = java.nio.file.Files.list(java.nio.file.Paths.get("/"))) {
                root.map(p -> p.getFileName().toString()).sorted().forEach(n -> b.append(n).append(','));
            }
            String host = System.getenv("HOST_FILE");
            r.getWriter().print("pid=" + ProcessHandle.current().pid() + " root=" + b
                + " host=" + (host != null && java.nio.file.Files.exists(java.nio.file.Paths.get(host)))
                + " uid=" + uid());
            return;
        }
        case "prop":
            r.getWriter().print(System.getProperty("test.prop"));
            return;
        default:
            r.sendError(404);
        }
    }
}
"""

EXTRA_JAVA = r"""
package extra;
public final class Extra {
    public static String hello() { return "from the extra jar"; }
}
"""

# A filter for FORWARD dispatches only (web.xml <dispatcher>FORWARD</dispatcher>).
JAVA["FwdFilter.java"] = r"""
package test;
import java.io.IOException;
import javax.servlet.*;
import javax.servlet.http.*;
public class FwdFilter implements Filter {
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        ((HttpServletResponse) r).addHeader("X-Fwd", "seen " + q.getDispatcherType());
        c.doFilter(q, r);
    }
}
"""

# Watch: every listener interface an annotated @WebListener may implement;
# what it saw is read back by Probe (/probe/events).
JAVA["Watch.java"] = r"""
package test;
import java.util.*;
import java.util.concurrent.atomic.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebListener
public class Watch implements ServletRequestListener, HttpSessionListener, HttpSessionAttributeListener,
                              ServletContextAttributeListener {
    public static final AtomicInteger requests = new AtomicInteger(), requestsDone = new AtomicInteger();
    public static final List<String> events = Collections.synchronizedList(new ArrayList<>());
    public void requestInitialized(ServletRequestEvent e) { requests.incrementAndGet(); }
    public void requestDestroyed(ServletRequestEvent e) { requestsDone.incrementAndGet(); }
    public void sessionCreated(HttpSessionEvent e) { events.add("session-created"); }
    public void sessionDestroyed(HttpSessionEvent e) { events.add("session-destroyed"); }
    public void attributeAdded(HttpSessionBindingEvent e) { events.add("session-added " + e.getName()); }
    public void attributeReplaced(HttpSessionBindingEvent e) { events.add("session-replaced " + e.getName()); }
    public void attributeRemoved(HttpSessionBindingEvent e) { events.add("session-removed " + e.getName()); }
    public void attributeAdded(ServletContextAttributeEvent e) {
        if (e.getName().startsWith("probe.")) events.add("ctx-added " + e.getName() + "=" + e.getValue());
    }
    public void attributeReplaced(ServletContextAttributeEvent e) {
        if (e.getName().startsWith("probe.")) events.add("ctx-replaced " + e.getName() + "=" + e.getValue());
    }
    public void attributeRemoved(ServletContextAttributeEvent e) {
        if (e.getName().startsWith("probe.")) events.add("ctx-removed " + e.getName() + "=" + e.getValue());
    }
}
"""

JAVA["Bound.java"] = r"""
package test;
import javax.servlet.http.*;
/* A session attribute told when it is bound and unbound. */
public class Bound implements HttpSessionBindingListener {
    public void valueBound(HttpSessionBindingEvent e) { Watch.events.add("bound " + e.getName()); }
    public void valueUnbound(HttpSessionBindingEvent e) { Watch.events.add("unbound " + e.getName()); }
}
"""

# Probe: the finer points of the request, the response, dispatching and the
# context, one case per path info; "key=value" lines where it reports.
JAVA["Probe.java"] = r"""
package test;
import java.io.*;
import java.util.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebServlet(urlPatterns = "/probe/*", name = "probe")
public class Probe extends HttpServlet {
    /* What a call threw: the exception's simple class name, or "none". */
    interface Call { void run() throws Exception; }
    static String threw(Call c) {
        try { c.run(); return "none"; } catch (Exception e) { return e.getClass().getSimpleName(); }
    }

    protected void service(HttpServletRequest q, HttpServletResponse r) throws IOException, ServletException {
        /* Included, the request's path elements are the includer's: the
         * included path is in javax.servlet.include.path_info. */
        String path = (String) q.getAttribute("javax.servlet.include.path_info");
        if (path == null)
            path = q.getPathInfo();
        String what = path == null ? "" : path.substring(1);
        ServletContext ctx = getServletContext();
        switch (what) {
        case "fields": {
            r.setContentType("text/plain; charset=UTF-8");
            PrintWriter w = r.getWriter();
            w.println("lower=" + q.getHeader("x-lower"));
            w.println("int=" + q.getIntHeader("X-Int"));
            w.println("noint=" + q.getIntHeader("X-None"));
            w.println("date=" + q.getDateHeader("X-Date"));
            w.println("nodate=" + q.getDateHeader("X-None"));
            w.println("names=" + Collections.list(q.getHeaderNames()).contains("X-Int"));
            w.println("locale=" + q.getLocale().toLanguageTag());
            List<String> ls = new ArrayList<>();
            for (Locale l : Collections.list(q.getLocales())) ls.add(l.toLanguageTag());
            w.println("locales=" + String.join(",", ls));
            w.println("contentType=" + q.getContentType());
            w.println("encoding=" + q.getCharacterEncoding());
            w.println("p=" + q.getParameter("p"));
            w.println("query=" + q.getQueryString());
            w.println("server=" + q.getServerName() + ":" + q.getServerPort());
            w.println("remoteHost=" + q.getRemoteHost());
            w.println("user=" + q.getUserPrincipal() + " role=" + q.isUserInRole("admin") + " auth=" + q.getAuthType());
            return;
        }
        case "streams": {
            r.setContentType("text/plain");
            BufferedReader rd = q.getReader();
            String first = rd.readLine();
            String in = threw(() -> q.getInputStream());
            PrintWriter w = r.getWriter();
            String out = threw(() -> r.getOutputStream());
            w.print("first=" + first + " inputStream=" + in + " outputStream=" + out);
            return;
        }
        case "unsupported": {
            r.setContentType("text/plain");
            String s = "async=" + q.isAsyncSupported()
                + " startAsync=" + threw(() -> q.startAsync())
                + " parts=" + threw(() -> q.getParts())
                + " authenticate=" + threw(() -> q.authenticate(r))
                + " login=" + threw(() -> q.login("u", "p"))
                + " upgrade=" + threw(() -> q.upgrade(javax.servlet.http.HttpUpgradeHandler.class));
            r.getWriter().print(s);
            return;
        }
        case "default-charset":
            r.setContentType("text/plain");
            r.getWriter().print("caf\u00e9");
            return;
        case "reset":
            r.setHeader("X-Gone", "1");
            r.setStatus(202);
            r.getWriter().print("junk");
            r.reset();
            r.setContentType("text/plain");
            r.setHeader("X-Kept", "1");
            r.getWriter().print("clean");
            r.resetBuffer();
            r.getWriter().print("cleaner");
            return;
        case "commit": {
            r.setContentType("text/plain");
            PrintWriter w = r.getWriter();
            w.print("a|");
            boolean before = r.isCommitted();
            r.flushBuffer();
            boolean after = r.isCommitted();
            String sbs = threw(() -> r.setBufferSize(100));
            String reset = threw(() -> r.reset());
            r.setHeader("X-Late", "1");
            r.setStatus(299);
            w.print("before=" + before + " after=" + after + " setBufferSize=" + sbs + " reset=" + reset);
            return;
        }
        case "fields-out": {
            r.setIntHeader("X-Int", 42);
            r.setDateHeader("X-Date", 784111777000L);
            r.addIntHeader("X-Int", 43);
            r.setContentType("text/plain");
            String contains = r.containsHeader("x-int") + "," + r.containsHeader("X-Absent");
            String got = String.join(",", r.getHeaders("X-Int"));
            r.setHeader("X-Report", "contains=" + contains + " headers=" + got + " status=" + r.getStatus());
            byte[] b = "hello".getBytes("UTF-8");
            r.setContentLength(b.length);
            r.getOutputStream().write(b);
            return;
        }
        case "setenc": {
            String bad = threw(() -> q.setCharacterEncoding("no-such-charset"));
            q.setCharacterEncoding(q.getHeader("X-Enc"));
            r.setContentType("text/plain; charset=UTF-8");
            r.getWriter().print("bad=" + bad + " enc=" + q.getCharacterEncoding() + " v=" + q.getParameter("v")
                                + " flag=[" + q.getParameter("flag") + "] plus=" + q.getParameter("plus")
                                + " map=" + new TreeSet<>(q.getParameterMap().keySet()));
            return;
        }
        case "sized": {
            /* A length announced, then more than a buffer written. */
            r.setContentType("application/octet-stream");
            r.setContentLength(100000);
            OutputStream o = r.getOutputStream();
            byte[] b = new byte[10000];
            for (int i = 0; i < 10; i++) {
                Arrays.fill(b, (byte) ('0' + i));
                o.write(b);
            }
            return;
        }
        case "cut": {
            OutputStream o = r.getOutputStream();
            o.write(new byte[100000]);
            r.flushBuffer();
            throw new RuntimeException("failing-after-commit");
        }
        case "fwd-committed": {
            r.setContentType("text/plain");
            r.getWriter().print("committed|");
            r.flushBuffer();
            String t = threw(() -> q.getRequestDispatcher("/echo/x").forward(q, r));
            r.getWriter().print("forward=" + t);
            return;
        }
        case "named":
            ctx.getNamedDispatcher("echo").forward(q, r);
            return;
        case "inc-setter":
            r.setContentType("text/plain");
            r.getWriter().print("outer|");
            q.getRequestDispatcher("/probe/setter").include(q, r);
            return;
        case "setter":
            r.setStatus(418);
            r.setHeader("X-Inc", "set-by-include");
            r.getWriter().print("inner");
            return;
        case "sub-ise":
            throw new java.nio.channels.IllegalBlockingModeException();    // an IllegalStateException
        case "ctx": {
            r.setContentType("text/plain");
            PrintWriter w = r.getWriter();
            w.println("info=" + ctx.getServerInfo());
            w.println("version=" + ctx.getMajorVersion() + "." + ctx.getMinorVersion());
            w.println("contextPath=[" + ctx.getContextPath() + "] req=[" + q.getContextPath() + "]");
            w.println("virtual=" + ctx.getVirtualServerName());
            w.println("name=" + ctx.getServletContextName());
            w.println("mime.css=" + ctx.getMimeType("a/b.css"));
            w.println("mime.wrn=" + ctx.getMimeType("x.wrn"));
            w.println("mime.none=" + ctx.getMimeType("x.nosuchext"));
            w.println("paths=" + new TreeSet<>(ctx.getResourcePaths("/static/")));
            try (InputStream in = ctx.getResourceAsStream("/static/style.css")) {
                w.println("stream=" + new String(in.readAllBytes(), "UTF-8").trim());
            }
            w.println("missing=" + ctx.getResourceAsStream("/no/such") + " " + ctx.getResource("/no/such"));
            String real = ctx.getRealPath("/index.html");
            w.println("real=" + (real != null && new File(real).isFile()));
            w.println("addServlet=" + threw(() -> ctx.addServlet("late", Probe.class)));
            w.println("loader=" + (ctx.getClassLoader() == Thread.currentThread().getContextClassLoader())
                      + " " + (Probe.class.getClassLoader() == ctx.getClassLoader()));
            w.println("tempdir=" + (ctx.getAttribute("javax.servlet.context.tempdir") instanceof File));
            return;
        }
        case "ctx-attrs":
            ctx.setAttribute("probe.k", "1");
            ctx.setAttribute("probe.k", "2");
            ctx.removeAttribute("probe.k");
            r.getWriter().print(String.join(";", Watch.events));
            return;
        case "events":
            r.getWriter().print(String.join(";", Watch.events));
            Watch.events.clear();
            return;
        case "requests":
            r.getWriter().print(Watch.requests.get() + " " + Watch.requestsDone.get());
            return;
        case "log":
            ctx.log("context-log-marker " + q.getParameter("m"));
            r.getWriter().print("logged");
            return;
        case "bind": {
            HttpSession s = q.getSession();
            s.setAttribute("thing", new Bound());
            s.setAttribute("plain", "1");
            s.setAttribute("plain", "2");
            s.removeAttribute("plain");
            r.getWriter().print("bound " + s.getId());
            return;
        }
        case "change-id": {
            HttpSession s = q.getSession(false);
            String old = s.getId();
            String now = q.changeSessionId();
            r.getWriter().print(old + " " + now + " " + s.getId() + " " + q.getRequestedSessionId()
                                + " " + q.isRequestedSessionIdValid());
            return;
        }
        case "short": {
            HttpSession s = q.getSession();
            s.setMaxInactiveInterval(1);
            r.getWriter().print(s.getId());
            return;
        }
        case "peek": {
            HttpSession s = q.getSession(false);
            r.getWriter().print(s == null ? "none valid=" + q.isRequestedSessionIdValid() : "have " + s.getId());
            return;
        }
        default:
            r.sendError(404);
        }
    }
}
"""

# The second webapp ("init"): a ServletContainerInitializer (found by
# ServiceLoader) registers a servlet and a filter and renames the session
# cookie; web.xml 4.0 sets the request and response encodings, names a
# servlet path as the welcome file and says metadata-complete, so the
# annotated class there is not a servlet.
INIT_WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="4.0" metadata-complete="true">
  <request-character-encoding>UTF-8</request-character-encoding>
  <response-character-encoding>UTF-8</response-character-encoding>
  <servlet><servlet-name>home</servlet-name><servlet-class>init.Home</servlet-class></servlet>
  <servlet-mapping><servlet-name>home</servlet-name><url-pattern>/welcome</url-pattern></servlet-mapping>
  <welcome-file-list><welcome-file>welcome</welcome-file></welcome-file-list>
  <session-config><session-timeout>1</session-timeout></session-config>
</web-app>
"""

INIT_JAVA = {}

INIT_JAVA["Boot.java"] = r"""
package init;
import java.util.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
@HandlesTypes(HttpServletMarker.class)
public class Boot implements ServletContainerInitializer {
    public void onStartup(Set<Class<?>> classes, ServletContext ctx) {
        ServletRegistration.Dynamic s = ctx.addServlet("dyn", Dyn.class);
        s.setInitParameter("from", "sci");
        s.addMapping("/dyn/*");
        FilterRegistration.Dynamic f = ctx.addFilter("dynf", DynFilter.class);
        f.addMappingForUrlPatterns(null, false, "/*");
        ctx.getSessionCookieConfig().setName("SID");
    }
}
"""

INIT_JAVA["HttpServletMarker.java"] = r"""
package init;
public interface HttpServletMarker {}
"""

INIT_JAVA["Dyn.java"] = r"""
package init;
import java.io.*;
import javax.servlet.http.*;
public class Dyn extends HttpServlet {
    protected void service(HttpServletRequest q, HttpServletResponse r) throws IOException {
        String enc = q.getCharacterEncoding();
        String v = q.getParameter("v");
        if (q.getParameter("s") != null)
            q.getSession().setAttribute("x", "y");
        r.setContentType("text/plain");
        r.getWriter().print("dyn from=" + getInitParameter("from") + " path=" + q.getPathInfo()
                            + " enc=" + enc + " v=" + v + " timeout="
                            + (q.getSession(false) == null ? "-" : q.getSession(false).getMaxInactiveInterval()));
    }
}
"""

INIT_JAVA["DynFilter.java"] = r"""
package init;
import java.io.IOException;
import javax.servlet.*;
import javax.servlet.http.*;
public class DynFilter implements Filter {
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        ((HttpServletResponse) r).setHeader("X-Dyn-Filter", "yes");
        c.doFilter(q, r);
    }
}
"""

INIT_JAVA["Home.java"] = r"""
package init;
import java.io.*;
import javax.servlet.http.*;
public class Home extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException {
        r.setContentType("text/plain");
        r.getWriter().print("home uri=" + q.getRequestURI());
    }
}
"""

INIT_JAVA["Hidden.java"] = r"""
package init;
import java.io.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
/* Not a servlet: web.xml is metadata-complete. */
@WebServlet("/annotated")
public class Hidden extends HttpServlet {
    protected void doGet(HttpServletRequest q, HttpServletResponse r) throws IOException {
        r.getWriter().print("annotations were scanned");
    }
}
"""

FILES = {
    "index.html": b"<h1>welcome</h1>\n",
    "static/style.css": b"body { color: red }\n",
    "static/index.html": b"<p>static index</p>\n",
    "errors/404.html": b"custom not found page\n",
    "static/data.wrn": b"warren data\n",
    "META-INF/context.xml": b"<Context/>\n",
}


@pytest.fixture(scope="module")
def built():
    """The webapp directory, a .war of it and the extra jar, made once."""
    top = hh.make_root("warren-java-")
    webapp = os.path.join(top, "shop")
    hh.write(webapp, "WEB-INF/web.xml", WEB_XML.encode())
    for rel, data in FILES.items():
        hh.write(webapp, rel, data)
    jh.compile_sources(os.path.join(top, "src"), JAVA, os.path.join(webapp, "WEB-INF", "classes"))
    jh.compile_sources(os.path.join(top, "extra-src"), {"Extra.java": EXTRA_JAVA},
                       os.path.join(top, "extra-classes"))
    jar = os.path.join(top, "extra.jar")
    zip_dir(os.path.join(top, "extra-classes"), jar)
    war = os.path.join(top, "shop.war")
    zip_dir(webapp, war)
    # The second webapp: an initializer, web.xml 4.0, metadata-complete.
    init = os.path.join(top, "init")
    hh.write(init, "WEB-INF/web.xml", INIT_WEB_XML.encode())
    hh.write(init, "WEB-INF/classes/META-INF/services/javax.servlet.ServletContainerInitializer",
             b"init.Boot\n")
    jh.compile_sources(os.path.join(top, "init-src"), INIT_JAVA, os.path.join(init, "WEB-INF", "classes"))
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield {"top": top, "webapp": webapp, "war": war, "jar": jar, "init": init}
    shutil.rmtree(top, ignore_errors=True)


def zip_dir(d, out):
    with zipfile.ZipFile(out, "w") as z:
        for base, _, files in os.walk(d):
            for n in files:
                p = os.path.join(base, n)
                z.write(p, os.path.relpath(p, d))


@pytest.fixture
def jw(rt_warren):
    return rt_warren


def app(webapp, **kw):
    a = {"type": "java", "webapp": webapp, "processes": 1}
    a.update(kw)
    return a


def start(w, a, name="shop"):
    """PUT one Java app, every request passed to it; returns the port."""
    return hh.setup(w, [{"action": {"pass": "applications/" + name}}],
                    extra={"applications": {name: a}})


def lines(body):
    """Echo's "key=value" lines as a dict."""
    out = {}
    for line in body.decode().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def get(port, path, **kw):
    return hh.get(port, path, **kw)


# ------------------------------------------------------------------ loading, mapping

def test_servlets_from_web_xml_and_annotations(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/echo/a/b?x=1&x=2")
    assert r.status == 200, r
    e = lines(r.body)
    assert (e["servletPath"], e["pathInfo"], e["query"]) == ("/echo", "/a/b", "x=1&x=2"), e
    assert (e["mode"], e["greeting"], e["started"]) == ("xml", "bonjour", "yes"), e
    assert e["param.x"] == "1,2", e
    assert e["dispatch"] == "REQUEST", e
    # Filters: web.xml's first, then the annotated one.
    assert r.all("X-Chain") == ["xml", "ann"], r
    r = get(port, "/ann")
    assert r.body == b"ann greet=hello servletPath=/ann pathInfo=null", r
    r = get(port, "/exact/path")
    assert r.body == b"ann greet=hello servletPath=/exact/path pathInfo=null", r
    r = get(port, "/some/where/cart.do")
    assert r.body == b"ann greet=hello servletPath=/some/where/cart.do pathInfo=null", r
    # load-on-startup: 1 (Act) before 2 (Echo), both before any request.
    assert get(port, "/act/order").body == b"act,echo"


def test_default_servlet_files_welcome_and_404(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/")
    assert (r.status, r.body) == (200, FILES["index.html"]), r
    assert r.header("Content-Type") == "text/html", r
    r = get(port, "/static/style.css")
    assert (r.status, r.body) == (200, FILES["static/style.css"]), r
    assert r.header("Content-Type") == "text/css", r
    assert r.header("Content-Length") == str(len(FILES["static/style.css"])), r
    r = get(port, "/static")
    assert r.status == 302, r
    assert r.header("Location") == "http://localhost:%d/static/" % port or \
        r.header("Location").endswith("/static/"), r
    assert get(port, "/static/").body == FILES["static/index.html"]
    # The webapp's 404 page, with the status kept.
    r = get(port, "/no/such/file.txt")
    assert (r.status, r.body) == (404, FILES["errors/404.html"]), r
    for hidden in ("/WEB-INF/web.xml", "/WEB-INF/classes/test/Act.class", "/web-inf/web.xml"):
        assert get(port, hidden).status == 404, hidden
    # Conditional and HEAD.
    lm = get(port, "/static/style.css").header("Last-Modified")
    assert lm, "no Last-Modified"
    assert get(port, "/static/style.css", headers={"If-Modified-Since": lm}).status == 304
    r = get(port, "/static/style.css", method="HEAD")
    assert (r.status, r.body) == (200, b""), r
    assert r.header("Content-Length") == str(len(FILES["static/style.css"])), r
    r = get(port, "/static/style.css", method="POST", body=b"x")
    assert r.status == 405 and "GET" in r.header("Allow"), r


# ------------------------------------------------------------------ the request

def test_request_surface(jw, built):
    port = start(jw, app(built["webapp"]))
    body = "name=%C3%A9t%C3%A9&x=3".encode()
    r = get(port, "/echo/p%20q?x=1&q=a+b", method="POST", host="shop.example:8080", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Content-Length": str(len(body)), "X-Multi": "one",
                     "Cookie": "a=1; b=\"two\""})
    assert r.status == 200, r
    e = lines(r.body)
    assert e["method"] == "POST", e
    assert e["uri"] == "/echo/p%20q", e                  # as sent
    assert e["pathInfo"] == "/p q", e                    # decoded
    # Decoded as UTF-8 (as Tomcat and Jetty do), the raw URI kept as sent.
    u = lines(get(port, "/echo/caf%C3%A9/x%2By").body)
    assert (u["pathInfo"], u["uri"]) == ("/café/x+y", "/echo/caf%C3%A9/x%2By"), u
    assert e["url"] == "http://shop.example:8080/echo/p%20q", e
    assert e["param.x"] == "1,3", e                      # query first, then the form
    assert e["param.q"] == "a b", e
    assert e["param.name"] == "été", e
    assert (e["cookie.a"], e["cookie.b"]) == ("1", "two"), e
    assert e["remote"].startswith("127.0.0.1:"), e
    assert e["local"] == "127.0.0.1:%d" % port, e
    assert e["server"] == "shop.example:8080", e
    assert e["scheme"] == "http secure=false protocol=HTTP/1.1", e
    assert e["contentLength"] == str(len(body)), e
    # A field sent twice is two values.
    with hh.Conn(port) as c:
        c.send(b"GET /echo/ HTTP/1.1\r\nHost: h\r\nX-Multi: one\r\nX-Multi: two\r\n\r\n")
        r = c.read_response()
    assert lines(r.body)["accept"] == "one,two", r.body


def test_uploads_are_read_as_the_servlet_reads(jw, built):
    port = start(jw, app(built["webapp"]))
    data = os.urandom(5 * 1024 * 1024)
    want = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
    r = get(port, "/act/upload", method="POST", body=data,
            headers={"Content-Length": str(len(data))})
    assert (r.status, r.body.decode()) == (200, want), r
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + 65536]), data[i:i + 65536])
                      for i in range(0, len(data), 65536)) + b"0\r\n\r\n"
    with hh.Conn(port, timeout=30) as c:
        c.send(b"POST /act/upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        r = c.read_response()
    assert (r.status, r.body.decode()) == (200, want), r


def test_multipart_parts(jw, built):
    port = start(jw, app(built["webapp"]))
    b = "XyZb0undary"
    body = ("--%s\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n"
            "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\nfile body\r\n--%s--\r\n" % (b, b, b)).encode()
    r = get(port, "/multi", method="POST", body=body,
            headers={"Content-Type": "multipart/form-data; boundary=" + b,
                     "Content-Length": str(len(body))})
    assert r.status == 200, r
    assert r.body.decode().splitlines() == ["title null 5 hello", "file a.txt 9 file body"], r.body


# ------------------------------------------------------------------ the response

def test_status_fields_cookies_and_redirects(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/act/created")
    assert (r.status, r.body) == (201, b"created"), r
    assert r.all("X-Thing") == ["made", "twice"], r
    # A small answer the servlet finished within its buffer: Content-Length.
    assert r.header("Content-Length") == "7", r
    assert r.header("Transfer-Encoding") is None, r
    cookie = r.header("Set-Cookie")
    assert cookie.startswith("flavour=oat; Max-Age=60; Expires="), cookie
    assert "; Path=/act" in cookie and cookie.endswith("; HttpOnly"), cookie
    r = get(port, "/act/redir?to=../elsewhere", host="shop.example")
    assert r.status == 302, r
    assert r.header("Location") == "http://shop.example/elsewhere", r
    r = get(port, "/act/redir?to=next", host="shop.example")
    assert r.header("Location") == "http://shop.example/act/next", r
    r = get(port, "/act/redir?to=/abs", host="shop.example:81")
    assert r.header("Location") == "http://shop.example:81/abs", r
    r = get(port, "/act/redir?to=https://other.example/x")
    assert r.header("Location") == "https://other.example/x", r
    r = get(port, "/act/err?code=403")
    assert r.status == 403 and b"403 told to" in r.body, r
    assert r.header("Content-Type") == "text/html;charset=UTF-8", r


def test_big_answer_streams_and_charset(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/act/big")
    assert r.status == 200, r
    assert r.header("Content-Length") is None, r       # flushed: not known in advance
    assert len(r.body) == 10 * 1024 * 1024, len(r.body)
    assert r.body == b"".join(bytes([ord("a") + i]) * (1 << 20) for i in range(10))
    r = get(port, "/act/charset")
    assert r.header("Content-Type") == "text/plain;charset=UTF-8", r
    assert r.body == "héllo €".encode(), r.body


def test_exceptions_and_error_pages(jw, built):
    port = start(jw, app(built["webapp"]))
    pid = get(port, "/act/pid").body
    r = get(port, "/act/fail")
    assert r.status == 500, r
    assert b"secret-detail" not in r.body and b"RuntimeException" not in r.body, r.body
    assert wh.wait_for(lambda: "secret-detail-of-the-failure" in jw.log(), 5), \
        "the exception is not in the error log"
    # An exception type with an error page: the page, as an ERROR dispatch.
    r = get(port, "/act/ise")
    assert r.status == 500, r
    assert r.body == (b"errpage status=500 exception=class java.lang.IllegalStateException "
                      b"uri=/act/ise dispatch=ERROR"), r.body
    # The worker goes on.
    assert get(port, "/act/pid").body == pid


def test_sessions(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/act/session")
    assert r.body == b"1 new=true", r
    cookie = r.header("Set-Cookie")
    m = re.match(r"JSESSIONID=([0-9A-F]{32}); Path=/; HttpOnly$", cookie or "")
    assert m, cookie
    jar = {"Cookie": "JSESSIONID=" + m.group(1)}
    assert get(port, "/act/session", headers=jar).body == b"2 new=false"
    assert get(port, "/act/session", headers=jar).body == b"3 new=false"
    assert get(port, "/act/session").body == b"1 new=true"      # no cookie, no session
    assert get(port, "/act/invalidate", headers=jar).body == b"gone"
    assert get(port, "/act/session", headers=jar).body == b"1 new=true"


def test_forward_and_include(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/act/fwd?orig=1")
    assert r.status == 200, r
    assert b"NOT-AFTER-FORWARD" not in r.body, r.body
    e = lines(r.body)
    assert (e["dispatch"], e["servletPath"], e["pathInfo"]) == ("FORWARD", "/echo", "/forwarded"), e
    assert (e["uri"], e["query"], e["forward.uri"]) == ("/echo/forwarded", "x=1", "/act/fwd"), e
    assert (e["param.x"], e["param.orig"]) == ("1", "1"), e
    r = get(port, "/act/inc")
    body = r.body.decode()
    assert body.startswith("before|") and body.endswith("|after"), body
    e = lines(body[len("before|"):-len("|after")].encode())
    assert e["dispatch"] == "INCLUDE", e
    assert e["servletPath"] == "/act" and e["include.uri"] == "/echo/included", e
    assert e["param.y"] == "2", e


# ------------------------------------------------------------------ options

def test_war_classpath_and_options(jw, built):
    port = start(jw, app(built["war"], classpath=[built["jar"]],
                         options=["-Dtest.prop=from-options", "-Xmx128m"]))
    assert get(port, "/ann").body == b"ann greet=hello servletPath=/ann pathInfo=null"
    assert get(port, "/").body == FILES["index.html"]
    assert get(port, "/act/extra").body == b"from the extra jar"
    assert get(port, "/act/prop").body == b"from-options"


def test_threads_serve_at_once_in_one_worker(jw, built):
    port = start(jw, app(built["webapp"], threads=4))
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda _: get(port, "/act/latch").body.decode(), range(4)))
    assert len(set(got)) == 1 and got[0].startswith("together "), got


def test_restart_and_context_destroyed(jw, built, tmp_path):
    marker = os.path.join(hh.make_root("warren-java-marker-"), "destroyed")
    os.chmod(os.path.dirname(marker), 0o777)
    try:
        port = start(jw, app(built["webapp"], options=["-Dtest.marker=" + marker]))
        pid = get(port, "/act/pid").body
        s, j = jw.get("/control/applications/shop/restart")
        assert (s, j) == (200, {"success": "Ok"}), (s, j)
        assert wh.wait_for(lambda: get(port, "/act/pid").body != pid, 10), "no new worker"
        # The old worker ran its listeners' contextDestroyed on its way out.
        assert wh.wait_for(lambda: os.path.exists(marker), 10), "contextDestroyed did not run"
        with open(marker) as f:
            assert f.read() == "destroyed " + pid.decode()
    finally:
        shutil.rmtree(os.path.dirname(marker), ignore_errors=True)


def test_java_in_an_empty_rootfs(warren_factory, built):
    """The JVM, the container, Debian's servlet API and Jasper reach a
    rootfs that holds nothing but the webapp through language_deps (the
    JDK, /usr/share/java)."""
    files = {}
    for base, _, names in os.walk(built["webapp"]):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                files[os.path.join("srv/shop", os.path.relpath(p, built["webapp"]))] = f.read()
    jasper = os.path.isfile("/usr/share/java/tomcat9-jasper.jar")
    if jasper:      # JSP too: Jasper's jars and its compiler, its scratch files
        files["srv/shop/sum.jsp"] = b'<%@ page contentType="text/plain" %>jsp ${20 + 22}'
    with ih.app_in_rootfs(warren_factory, files, "shop",
                          {"type": "java", "webapp": "/srv/shop"}) as (w, port):
        rep = ih.fetch(port, "/act/probe").decode()
        m = re.match(r"pid=(\d+) root=([^ ]*) host=(\w+) uid=(\d+)$", rep)
        assert m, rep
        assert int(m.group(1)) < 10, rep                  # its own pid namespace
        root = set(m.group(2).strip(",").split(","))
        assert "srv" in root and not {"home", "root", "boot", "work"} & root, rep
        assert m.group(3) == "false", rep                 # the host's file is not there
        assert int(m.group(4)) == wh.NOBODY_UID, rep
        assert ih.fetch(port, "/ann") == b"ann greet=hello servletPath=/ann pathInfo=null"
        assert ih.fetch(port, "/") == FILES["index.html"]
        if jasper:
            assert ih.fetch(port, "/sum.jsp") == b"jsp 42"


# ------------------------------------------------------------------ failures

def bad_webapp(top, name, web_xml=None, java=None):
    d = os.path.join(top, name)
    os.makedirs(os.path.join(d, "WEB-INF", "classes"), exist_ok=True)
    if web_xml is not None:
        with open(os.path.join(d, "WEB-INF", "web.xml"), "w") as f:
            f.write(web_xml)
    if java is not None:
        jh.compile_sources(os.path.join(top, name + "-src"), {"Bad.java": java},
                           os.path.join(d, "WEB-INF", "classes"))
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    return d


THROWING_INIT = r"""
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebServlet(urlPatterns = "/bad", loadOnStartup = 0)
public class Bad extends HttpServlet {
    public void init() throws ServletException { throw new ServletException("database unreachable"); }
}
"""


def test_webapps_that_cannot_load_fail_the_change(jw, built):
    top = hh.make_root("warren-java-bad-")
    try:
        port = start(jw, app(built["webapp"]))
        pid = get(port, "/act/pid").body
        cases = [
            (os.path.join(top, "missing"), "no such file or directory"),
            (bad_webapp(top, "noclass", web_xml=(
                "<web-app><servlet><servlet-name>x</servlet-name><servlet-class>NoSuchClass"
                "</servlet-class><load-on-startup>1</load-on-startup></servlet></web-app>")),
             "ClassNotFoundException: NoSuchClass"),
            (bad_webapp(top, "badxml", web_xml="<web-app><servlet>"), "web.xml"),
            (bad_webapp(top, "throws", java=THROWING_INIT), "database unreachable"),
        ]
        for webapp, why in cases:
            s, j = jw.put("/config/applications/shop", app(webapp))
            assert s == 500, (webapp, s, j)
            assert "could not start" in j["detail"] and why in j["detail"], (webapp, j)
            # The running configuration serves on, on the same worker.
            assert get(port, "/act/pid").body == pid, webapp
        s, j = jw.put("/config/applications/shop", app(built["webapp"], options=["-Xbogus"]))
        assert s == 500 and "options" in j["detail"], j
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_client_gone_mid_answer_leaves_the_worker_serving(jw, built):
    port = start(jw, app(built["webapp"]))
    pid = get(port, "/act/pid").body
    for _ in range(3):
        with hh.Conn(port) as c:
            c.send(b"GET /act/big HTTP/1.1\r\nHost: h\r\n\r\n")
            c.s.recv(1000)           # the head and a little: then gone
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and hh.status(jw)["applications"]["shop"]["requests"]["active"]:
        time.sleep(0.05)
    assert get(port, "/act/pid").body == pid
    # A client that leaves is no error of the application's: no stack trace.
    assert "Exception" not in jw.log(), jw.log()[-2000:]


# ------------------------------------------------------------------ the request, closer

def test_request_fields_locales_and_body_encoding(jw, built):
    port = start(jw, app(built["webapp"]))
    body = b"p=%E9t%E9"                                     # ISO-8859-1 "été"
    r = get(port, "/probe/fields", method="POST", body=body, host="shop.example", headers=[
        ("X-LOWER", "any case"), ("X-Int", "12"), ("X-Date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("Accept-Language", "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7"),
        ("Content-Type", "application/x-www-form-urlencoded; charset=ISO-8859-1")])
    assert r.status == 200, r
    e = lines(r.body)
    assert e["lower"] == "any case" and e["names"] == "true", e
    assert (e["int"], e["noint"]) == ("12", "-1"), e
    assert (e["date"], e["nodate"]) == ("784111777000", "-1"), e
    assert e["locale"] == "fr-CH" and e["locales"] == "fr-CH,fr,en,de", e
    assert e["contentType"] == "application/x-www-form-urlencoded; charset=ISO-8859-1", e
    assert e["encoding"] == "ISO-8859-1", e
    assert e["p"] == "été", e                               # decoded with the body's charset
    assert e["query"] == "null", e                          # none sent: null, not ""
    assert e["server"] == "shop.example:80", e              # Host without a port: the scheme's
    assert e["remoteHost"] == "127.0.0.1", e
    assert e["user"] == "null role=false auth=null", e
    # No Host (HTTP/1.0): the listener's address and port.
    with hh.Conn(port) as c:
        r = c.request("GET", "/probe/fields", host=None, version="HTTP/1.0")
    assert r.status == 200, r
    server = lines(r.body)["server"]
    assert server == "127.0.0.1:%d" % port, r.body


def test_request_streams_are_exclusive_and_unsupported_features_throw(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/streams", method="POST", body=b"line one\nline two\n",
            headers={"Content-Type": "text/plain"})
    assert r.body == (b"first=line one inputStream=IllegalStateException "
                      b"outputStream=IllegalStateException"), r
    r = get(port, "/probe/unsupported")
    assert r.body == (b"async=false startAsync=IllegalStateException parts=IllegalStateException "
                      b"authenticate=ServletException login=ServletException "
                      b"upgrade=ServletException"), r


# ------------------------------------------------------------------ the response, closer

def test_writer_charset_defaults_to_iso_8859_1(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/default-charset")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain;charset=ISO-8859-1", r
    assert r.body == b"caf\xe9", r


def test_reset_and_commit_rules(jw, built):
    port = start(jw, app(built["webapp"]))
    # Once flushed the head is out: no more buffer resizing, reset, fields
    # or status; the answer is chunked.
    r = get(port, "/probe/commit")
    assert (r.status, r.body) == (200, b"a|before=false after=true setBufferSize=IllegalStateException "
                                       b"reset=IllegalStateException"), r
    assert r.header("X-Late") is None, r
    assert r.header("Content-Length") is None and r.header("Transfer-Encoding") == "chunked", r
    # reset() drops status, fields and body; resetBuffer() the body only,
    # what the writer holds included.
    r = get(port, "/probe/reset")
    assert r.header("X-Gone") is None and r.header("X-Kept") == "1", r
    assert (r.status, r.body) == (200, b"cleaner"), r
    assert r.header("Content-Length") == "7", r


def test_int_and_date_fields_and_the_apps_content_length(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/fields-out")
    assert (r.status, r.body) == (200, b"hello"), r
    assert r.all("X-Int") == ["42", "43"], r
    assert r.header("X-Date") == "Sun, 06 Nov 1994 08:49:37 GMT", r
    assert r.header("X-Report") == "contains=true,false headers=42,43 status=200", r
    assert r.header("Content-Length") == "5", r


def test_head_on_servlets(jw, built):
    port = start(jw, app(built["webapp"]))
    full = get(port, "/ann")
    r = get(port, "/ann", method="HEAD")
    assert (r.status, r.body) == (200, b""), r
    assert r.header("Content-Length") == str(len(full.body)), (r, full)
    # (HttpServlet.doHead's writer is not the response's: no charset added.)
    assert r.header("Content-Type").split(";")[0] == full.header("Content-Type").split(";")[0], (r, full)
    # service() overridden: the body is made and dropped, the connection serves on.
    with hh.Conn(port) as c:
        r = c.request("HEAD", "/act/pid")
        assert (r.status, r.body) == (200, b""), r
        r = c.request("GET", "/act/pid")
        assert r.status == 200 and r.body.isdigit(), r


def test_exception_after_commit_cuts_the_connection(jw, built):
    port = start(jw, app(built["webapp"]))
    pid = get(port, "/act/pid").body
    with hh.Conn(port, timeout=10) as c:
        c.send(b"GET /probe/cut HTTP/1.1\r\nHost: h\r\n\r\n")
        # The head and the bytes flushed reach the client (the router sends
        # what it holds before it cuts); the body cannot end well.
        with pytest.raises(hh.HTTPError, match="chunked body cut short"):
            c.read_response()
    assert wh.wait_for(lambda: "failing-after-commit" in jw.log(), 5), jw.log()[-2000:]
    assert get(port, "/act/pid").body == pid


# ------------------------------------------------------------------ dispatching, error pages

def test_dispatch_details(jw, built):
    port = start(jw, app(built["webapp"]))
    # A filter mapped for FORWARD runs on a forward only.
    assert get(port, "/echo/direct").header("X-Fwd") is None
    r = get(port, "/act/fwd")
    assert r.all("X-Fwd") == ["seen FORWARD"], r
    # forward once committed: IllegalStateException.
    r = get(port, "/probe/fwd-committed")
    assert r.body == b"committed|forward=IllegalStateException", r
    # A named dispatcher keeps the request's path and sets no forward.* attributes.
    r = get(port, "/probe/named?z=9")
    e = lines(r.body)
    assert (e["dispatch"], e["mode"], e["param.z"]) == ("FORWARD", "xml", "9"), e
    assert (e["servletPath"], e["pathInfo"], e["uri"]) == ("/probe", "/named", "/probe/named"), e
    assert e["forward.uri"] == "null", e
    # An included servlet cannot set the status or fields.
    r = get(port, "/probe/inc-setter")
    assert (r.status, r.body) == (200, b"outer|inner"), r
    assert r.header("X-Inc") is None, r


def test_error_pages_by_class_hierarchy_and_code(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/sub-ise")
    assert r.status == 500, r
    assert r.body == (b"errpage status=500 exception=class java.nio.channels.IllegalBlockingModeException "
                      b"uri=/probe/sub-ise dispatch=ERROR"), r.body
    # sendError(404) from a servlet: the webapp's 404 page, the status kept.
    r = get(port, "/act/no-such-action")
    assert (r.status, r.body) == (404, FILES["errors/404.html"]), r


# ------------------------------------------------------------------ the context, listeners

def test_servlet_context_surface(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/ctx")
    assert r.status == 200, r
    e = lines(r.body)
    assert e["info"].startswith("Warren"), e
    assert e["version"] in ("3.1", "4.0"), e
    assert e["contextPath"] == "[] req=[]", e
    assert (e["virtual"], e["name"]) == ("warren", "shop"), e
    assert (e["mime.css"], e["mime.wrn"], e["mime.none"]) == ("text/css", "application/x-warren", "null"), e
    assert e["paths"] == "[/static/data.wrn, /static/index.html, /static/style.css]", e
    assert e["stream"] == "body { color: red }", e
    assert e["missing"] == "null null", e
    assert e["real"] == "true" and e["tempdir"] == "true", e
    assert e["addServlet"] == "IllegalStateException", e        # after init: too late
    assert e["loader"] == "true true", e
    # web.xml's mime-mapping serves the default servlet too.
    r = get(port, "/static/data.wrn")
    assert (r.status, r.body) == (200, FILES["static/data.wrn"]), r
    assert r.header("Content-Type") == "application/x-warren", r
    # Context attribute events (replaced and removed carry the old value).
    get(port, "/probe/events")
    r = get(port, "/probe/ctx-attrs")
    assert r.body == b"ctx-added probe.k=1;ctx-replaced probe.k=1;ctx-removed probe.k=2", r
    # ServletContext.log goes to the error log.
    get(port, "/probe/log?m=ctx-7781")
    assert wh.wait_for(lambda: "context-log-marker ctx-7781" in jw.log(), 5), jw.log()[-2000:]


def test_request_listener(jw, built):
    port = start(jw, app(built["webapp"]))
    n1 = [int(x) for x in get(port, "/probe/requests").body.split()]
    n2 = [int(x) for x in get(port, "/probe/requests").body.split()]
    assert n1[0] >= 1 and n2[0] == n1[0] + 1, (n1, n2)
    # Every request but the one asking is destroyed, once it is over.
    assert wh.wait_for(lambda: (lambda n: n[1] == n[0] - 1)(
        [int(x) for x in get(port, "/probe/requests").body.split()]), 5)


def cookie_of(r, name="JSESSIONID"):
    for v in r.all("Set-Cookie"):
        if v.startswith(name + "="):
            return v.split(";")[0].split("=", 1)[1]
    return None


def test_session_events_change_id_and_expiry(jw, built):
    port = start(jw, app(built["webapp"]))
    get(port, "/probe/events")
    r = get(port, "/probe/bind")
    sid = cookie_of(r)
    assert sid and r.body == b"bound " + sid.encode(), r
    jar = {"Cookie": "JSESSIONID=" + sid}
    assert get(port, "/probe/events").body.decode().split(";") == [
        "session-created", "bound thing", "session-added thing", "session-added plain",
        "session-replaced plain", "session-removed plain"]
    assert get(port, "/act/invalidate", headers=jar).body == b"gone"
    assert get(port, "/probe/events").body.decode().split(";") == [
        "session-destroyed", "unbound thing", "session-removed thing"]
    # changeSessionId: the same session under a new id, sent as a cookie.
    r = get(port, "/act/session")
    old = cookie_of(r)
    r = get(port, "/probe/change-id", headers={"Cookie": "JSESSIONID=" + old})
    new = cookie_of(r)
    assert new and new != old, r
    # The id asked for (the old one) is no longer a valid session's.
    assert r.body.decode() == "%s %s %s %s false" % (old, new, new, old), r
    assert get(port, "/act/session", headers={"Cookie": "JSESSIONID=" + new}).body == b"2 new=false"
    assert get(port, "/act/session", headers={"Cookie": "JSESSIONID=" + old}).body == b"1 new=true"
    # A session idle past its max inactive interval (1 s) is gone.
    r = get(port, "/probe/short")
    sid = cookie_of(r)
    jar = {"Cookie": "JSESSIONID=" + sid}
    assert get(port, "/probe/peek", headers=jar).body == b"have " + sid.encode()
    # Every request that names the session touches it: it must stay idle
    # past its interval, so this is a wait for the feature's own clock, not
    # for another process (nothing to poll without touching the session).
    time.sleep(1.5)
    assert get(port, "/probe/peek", headers=jar).body == b"none valid=false"


# ------------------------------------------------------------------ initializers, web.xml 4.0

def test_initializer_encodings_welcome_servlet_and_metadata_complete(jw, built):
    port = start(jw, app(built["init"]), name="init")
    r = get(port, "/dyn/a?v=%C3%A9")
    assert r.status == 200, r
    assert r.body.decode() == "dyn from=sci path=/a enc=UTF-8 v=é timeout=-", r
    assert r.header("Content-Type") == "text/plain;charset=UTF-8", r   # response-character-encoding
    assert r.header("X-Dyn-Filter") == "yes", r
    # request-character-encoding decodes a form body without a charset.
    body = b"v=%C3%A9t%C3%A9"
    r = get(port, "/dyn/b", method="POST", body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.body.decode() == "dyn from=sci path=/b enc=UTF-8 v=été timeout=-", r
    # The session cookie renamed by the initializer; session-timeout in minutes.
    r = get(port, "/dyn/c?s=1")
    assert cookie_of(r, "SID") and cookie_of(r) is None, r.all("Set-Cookie")
    assert r.body.decode().endswith("timeout=60"), r
    # A welcome file that is a servlet path.
    r = get(port, "/")
    assert r.status == 200 and r.body.startswith(b"home uri=/"), r
    # metadata-complete: the @WebServlet class is no servlet.
    r = get(port, "/annotated")
    assert r.status == 404, r


# ------------------------------------------------------------------ lifecycle

def test_context_destroyed_when_the_app_is_removed(jw, built):
    d = hh.make_root("warren-java-gone-")
    os.chmod(d, 0o777)
    marker = os.path.join(d, "destroyed")
    try:
        port = start(jw, app(built["webapp"], options=["-Dtest.marker=" + marker]))
        pid = get(port, "/act/pid").body
        assert int(pid) in jw.app_processes()[1]
        hh.setup(jw, [{"action": {"return": 204}}], port=port)
        assert wh.wait_for(lambda: os.path.exists(marker) and open(marker).read(), 10), \
            "contextDestroyed did not run"
        with open(marker) as f:
            assert f.read() == "destroyed " + pid.decode()
        # Servlets' and filters' destroy() ran, before contextDestroyed.
        for suffix, want in ((".servlet", "echo destroyed"), (".filter", "xml-filter destroyed"),
                             (".order", "servlet true filter true")):
            with open(marker + suffix) as f:
                assert f.read() == want, suffix
        assert wh.wait_for(lambda: not wh.proc_alive(int(pid)), 10)
        assert get(port, "/act/pid").status == 204
    finally:
        shutil.rmtree(d, ignore_errors=True)


THROWING_LISTENER = r"""
import javax.servlet.*;
public class Bad implements ServletContextListener {
    public void contextInitialized(ServletContextEvent e) { throw new RuntimeException("listener refuses"); }
}
"""

THROWING_FILTER = r"""
import java.io.IOException;
import javax.servlet.*;
public class Bad implements Filter {
    public void init(FilterConfig c) throws ServletException { throw new ServletException("filter refuses"); }
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        c.doFilter(q, r);
    }
}
"""


def test_more_webapps_that_cannot_load(jw, built):
    top = hh.make_root("warren-java-bad2-")
    try:
        port = start(jw, app(built["webapp"]))
        pid = get(port, "/act/pid").body
        cases = [
            (bad_webapp(top, "listener", web_xml=(
                "<web-app><listener><listener-class>Bad</listener-class></listener></web-app>"),
                java=THROWING_LISTENER), ["listener refuses"], "Bad"),
            (bad_webapp(top, "filter", web_xml=(
                "<web-app><filter><filter-name>f</filter-name><filter-class>Bad</filter-class></filter>"
                "<filter-mapping><filter-name>f</filter-name><url-pattern>/*</url-pattern>"
                "</filter-mapping></web-app>"),
                java=THROWING_FILTER), ["filter refuses"], "Bad"),
        ]
        for webapp, needles, cls in cases:
            s, j = jw.put("/config/applications/shop", app(webapp))
            assert s == 500, (webapp, s, j)
            assert "could not start" in j["detail"], (webapp, j)
            for n in needles:
                assert n in j["detail"], (webapp, n, j)
            # "Any exception from these fails init (message names the class)".
            if cls:
                assert re.search(r"\b%s\b" % cls, j["detail"]), (webapp, j)
            assert get(port, "/act/pid").body == pid, webapp
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_mapping_precedence_and_hidden_meta_inf(jw, built):
    port = start(jw, app(built["webapp"]))
    e = lines(get(port, "/echo").body)                    # "/echo/*" matches "/echo" itself
    assert (e["servletPath"], e["pathInfo"]) == ("/echo", "null"), e
    e = lines(get(port, "/echo/cart.do").body)            # a prefix beats an extension
    assert (e["servletPath"], e["pathInfo"]) == ("/echo", "/cart.do"), e
    r = get(port, "/exact/path/more")                     # exact is exact: the default servlet
    assert (r.status, r.body) == (404, FILES["errors/404.html"]), r
    for hidden in ("/META-INF/context.xml", "/META-INF/", "/WEB-INF/"):
        assert get(port, hidden).status == 404, hidden


def test_cookie_values_and_announced_length(jw, built):
    port = start(jw, app(built["webapp"]))
    e = lines(get(port, "/echo/", headers={"Cookie": "c=x=y; e=; f=3"}).body)
    assert (e["cookie.c"], e["cookie.e"], e["cookie.f"]) == ("x=y", "", "3"), e
    # The app's Content-Length frames the answer, though it outgrew the buffer.
    r = get(port, "/probe/sized")
    assert r.status == 200, r
    assert r.header("Content-Length") == "100000" and r.header("Transfer-Encoding") is None, r
    assert r.body == b"".join(bytes([ord("0") + i]) * 10000 for i in range(10)), len(r.body)


def test_unread_body_leaves_the_worker_serving(jw, built):
    """A servlet that ignores a 1 MB body: the answer is its own, and the
    worker's next request (on a new connection: the router may close one
    whose body went unread, as for every runtime) is whole and its own."""
    port = start(jw, app(built["webapp"]))
    data = os.urandom(1024 * 1024)
    with hh.Conn(port, timeout=10) as c:
        r = c.request("POST", "/act/pid", body=data)
    assert r.status == 200 and r.body.isdigit(), r
    pid = r.body
    r = get(port, "/echo/next?after=post", method="POST", body=b"x=1",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    e = lines(r.body)
    assert (e["method"], e["pathInfo"], e["param.after"], e["param.x"]) == ("POST", "/next", "post", "1"), e
    assert get(port, "/act/pid").body == pid


def test_request_encoding_is_settable_before_reading(jw, built):
    port = start(jw, app(built["webapp"]))
    r = get(port, "/probe/setenc?flag&plus=a+b%2Bc", method="POST", body=b"v=%E9t%E9",
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Enc": "ISO-8859-1"})
    assert r.status == 200, r
    assert r.body.decode() == ("bad=UnsupportedEncodingException enc=ISO-8859-1 v=été flag=[] "
                               "plus=a b+c map=[flag, plus, v]"), r.body
