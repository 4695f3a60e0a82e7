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
    configuration serves on).
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
import warren_helpers as wh

import pytest

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
JAVAC = os.path.join(JAVA_HOME, "bin", "javac")
SERVLET_JAR = "/usr/share/java/servlet-api.jar"

pytestmark = pytest.mark.skipif(
    not (os.access(JAVAC, os.X_OK) and os.path.isfile(SERVLET_JAR)),
    reason="javac (openjdk-17-jdk-headless) or the servlet API (libservlet-api-java) "
           "is not installed: scripts/deps.sh installs them")

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
  <welcome-file-list><welcome-file>index.html</welcome-file></welcome-file-list>
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

FILES = {
    "index.html": b"<h1>welcome</h1>\n",
    "static/style.css": b"body { color: red }\n",
    "static/index.html": b"<p>static index</p>\n",
    "errors/404.html": b"custom not found page\n",
}


def javac(dest, sources, classpath=SERVLET_JAR):
    os.makedirs(dest, exist_ok=True)
    out = subprocess.run([JAVAC, "--release", "17", "-nowarn", "-encoding", "UTF-8",
                          "-cp", classpath, "-d", dest] + sources,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def built():
    """The webapp directory, a .war of it and the extra jar, made once."""
    top = hh.make_root("warren-java-")
    src = os.path.join(top, "src")
    os.makedirs(src)
    for name, text in JAVA.items():
        with open(os.path.join(src, name), "w") as f:
            f.write(text)
    webapp = os.path.join(top, "shop")
    hh.write(webapp, "WEB-INF/web.xml", WEB_XML.encode())
    for rel, data in FILES.items():
        hh.write(webapp, rel, data)
    javac(os.path.join(webapp, "WEB-INF", "classes"),
          [os.path.join(src, n) for n in JAVA])
    extra_src = os.path.join(top, "extra-src")
    os.makedirs(extra_src)
    with open(os.path.join(extra_src, "Extra.java"), "w") as f:
        f.write(EXTRA_JAVA)
    javac(os.path.join(top, "extra-classes"), [os.path.join(extra_src, "Extra.java")])
    jar = os.path.join(top, "extra.jar")
    zip_dir(os.path.join(top, "extra-classes"), jar)
    war = os.path.join(top, "shop.war")
    zip_dir(webapp, war)
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield {"top": top, "webapp": webapp, "war": war, "jar": jar}
    shutil.rmtree(top, ignore_errors=True)


def zip_dir(d, out):
    with zipfile.ZipFile(out, "w") as z:
        for base, _, files in os.walk(d):
            for n in files:
                p = os.path.join(base, n)
                z.write(p, os.path.relpath(p, d))


@pytest.fixture
def jw(warren_factory):
    """warrend with the runtimes (warren-java and java/warren.jar) in its --modulesdir."""
    rt = wh.runtimes_modulesdir()
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w
    shutil.rmtree(rt, ignore_errors=True)


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
    """The JVM, the container and Debian's servlet API reach a rootfs that
    holds nothing but the webapp through language_deps (the JDK,
    /usr/share/java, and warren.jar's directory beside warren-java)."""
    files = {}
    for base, _, names in os.walk(built["webapp"]):
        for n in names:
            p = os.path.join(base, n)
            with open(p, "rb") as f:
                files[os.path.join("srv/shop", os.path.relpath(p, built["webapp"]))] = f.read()
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


# ------------------------------------------------------------------ failures

def bad_webapp(top, name, web_xml=None, java=None):
    d = os.path.join(top, name)
    os.makedirs(os.path.join(d, "WEB-INF", "classes"), exist_ok=True)
    if web_xml is not None:
        with open(os.path.join(d, "WEB-INF", "web.xml"), "w") as f:
            f.write(web_xml)
    if java is not None:
        src = os.path.join(top, name + "-src")
        os.makedirs(src, exist_ok=True)
        with open(os.path.join(src, "Bad.java"), "w") as f:
            f.write(java)
        javac(os.path.join(d, "WEB-INF", "classes"), [os.path.join(src, "Bad.java")])
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
