"""
The Java servlet container's finer points (src/runtime/java/warren), each
found wrong once, with real requests through warrend and warren-java:

  - sendError inside a forward, or before the stream is closed, still gets
    the webapp's error page; a failing ServletRequestListener answers 500
    and the worker serves on; UnavailableException answers 503;
  - the container's default servlet is "default" for web.xml mappings (as
    in Tomcat and Jetty); filters by url-pattern run before those by
    servlet-name; forwards and error pages reach static files whatever the
    method, and WEB-INF files (clients never); a forward closes the response
    through the caller's wrapper;
    JSP sources are never sent as files;
  - multipart form fields are parameters; a part over max-file-size fails
    getParts() every time it is asked;
  - the request line: a Unix-socket listener (no ports), an absolute-form
    target, path parameters (;jsessionid=...), a UTF-8 file name;
  - web.xml's session cookie-config;
  - byte ranges of static files.
"""

import os
import shutil
import subprocess

import http_helpers as hh
import java_helpers as jh
import warren_helpers as wh

import pytest

pytestmark = jh.needs_java

WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="3.1">
  <servlet><servlet-name>up</servlet-name><servlet-class>t.P</servlet-class>
    <multipart-config><max-file-size>1000</max-file-size></multipart-config></servlet>
  <servlet-mapping><servlet-name>up</servlet-name><url-pattern>/up/*</url-pattern></servlet-mapping>
  <servlet-mapping><servlet-name>default</servlet-name><url-pattern>/static/*</url-pattern></servlet-mapping>
  <filter><filter-name>byName</filter-name><filter-class>t.F</filter-class>
    <init-param><param-name>tag</param-name><param-value>name</param-value></init-param></filter>
  <filter><filter-name>byUrl</filter-name><filter-class>t.F</filter-class>
    <init-param><param-name>tag</param-name><param-value>url</param-value></init-param></filter>
  <filter-mapping><filter-name>byName</filter-name><servlet-name>up</servlet-name></filter-mapping>
  <filter-mapping><filter-name>byUrl</filter-name><url-pattern>/up/*</url-pattern></filter-mapping>
  <error-page><error-code>404</error-code><location>/err404.html</location></error-page>
  <session-config><cookie-config><name>SID</name><path>/p</path><max-age>600</max-age></cookie-config></session-config>
</web-app>
"""

JAVA = {}

JAVA["P.java"] = r"""
package t;
import java.io.*;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;

@WebServlet("/p/*")
@MultipartConfig
public class P extends HttpServlet {
    protected void service(HttpServletRequest q, HttpServletResponse r) throws ServletException, IOException {
        String w = String.valueOf(q.getPathInfo());
        switch (w) {
        case "/fwd404": q.getRequestDispatcher("/missing.txt").forward(q, r); return;
        case "/sendclose": r.sendError(404); r.getOutputStream().close(); return;
        case "/fwdstatic": q.getRequestDispatcher("/index.html").forward(q, r); return;
        case "/view": q.getRequestDispatcher("/WEB-INF/views/page.html").forward(q, r); return;
        case "/unavailable": throw new UnavailableException("down for a while", 5);
        case "/pid": r.getWriter().print(ProcessHandle.current().pid()); return;
        case "/fwdwrapped": {
            // A filter's buffering wrapper (as Spring's ContentCachingResponseWrapper): the
            // forward closes the wrapper's stream, the body is copied out after.
            final ByteArrayOutputStream cache = new ByteArrayOutputStream();
            final ServletOutputStream os = new ServletOutputStream() {
                public void write(int b) { cache.write(b); }
                public boolean isReady() { return true; }
                public void setWriteListener(WriteListener l) { }
            };
            HttpServletResponseWrapper wr = new HttpServletResponseWrapper(r) {
                public ServletOutputStream getOutputStream() { return os; }
                public PrintWriter getWriter() { return new PrintWriter(new OutputStreamWriter(os), true); }
                public void setContentLengthLong(long n) { }
            };
            q.getRequestDispatcher("/index.html").forward(q, wr);
            r.setHeader("X-Cached", String.valueOf(cache.size()));
            r.getOutputStream().write(cache.toByteArray());
            return;
        }
        case "/session": r.getWriter().print("new=" + q.getSession().isNew()); return;
        case "/info":
            r.getWriter().print("sp=" + q.getServletPath() + " pi=" + q.getPathInfo() + " uri=" + q.getRequestURI()
                                + " url=" + q.getRequestURL() + " server=" + q.getServerName() + ":" + q.getServerPort()
                                + " local=" + q.getLocalPort() + " remote=" + q.getRemotePort());
            return;
        case "/form":
            r.setContentType("text/plain;charset=UTF-8");
            String parts;
            try {
                parts = String.valueOf(q.getParts().size());
            } catch (IllegalStateException e) {
                parts = "IllegalStateException";
            }
            String again;
            try {
                again = String.valueOf(q.getPart("f").getSize());
            } catch (IllegalStateException e) {
                again = "IllegalStateException";
            }
            r.getWriter().print("a=" + q.getParameter("a") + " parts=" + parts + " again=" + again);
            return;
        default: r.sendError(404);
        }
    }
}
"""

JAVA["F.java"] = r"""
package t;
import java.io.IOException;
import javax.servlet.*;
import javax.servlet.http.*;
public class F implements Filter {
    private String tag;
    public void init(FilterConfig c) { tag = c.getInitParameter("tag"); }
    public void doFilter(ServletRequest q, ServletResponse r, FilterChain c) throws IOException, ServletException {
        ((HttpServletResponse) r).addHeader("X-Order", tag);
        c.doFilter(q, r);
    }
}
"""

JAVA["Boom.java"] = r"""
package t;
import javax.servlet.*;
import javax.servlet.annotation.*;
import javax.servlet.http.*;
@WebListener
public class Boom implements ServletRequestListener {
    public void requestInitialized(ServletRequestEvent e) {
        if (((HttpServletRequest) e.getServletRequest()).getRequestURI().equals("/listener-refuses"))
            throw new RuntimeException("listener refuses");
    }
}
"""

FILES = {
    "index.html": b"<h1>index</h1>\n",
    "err404.html": b"<p>our 404</p>\n",
    "static/a.css": b"body{}\n",
    "digits.txt": b"0123456789",
    "WEB-INF/views/page.html": b"<p>a view</p>\n",
    "page.jsp": b"<% String password = \"secret\"; %>\n",
    "caf\u00e9.txt".encode(): b"caf\xc3\xa9\n",
}


@pytest.fixture(scope="module")
def webapp():
    top = hh.make_root("warren-javac-")
    root = os.path.join(top, "webapp")
    hh.write(root, "WEB-INF/web.xml", WEB_XML.encode())
    for rel, data in FILES.items():
        hh.write(root, rel.decode() if isinstance(rel, bytes) else rel, data)
    jh.compile_sources(os.path.join(top, "src"), JAVA, os.path.join(root, "WEB-INF", "classes"))
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield root
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def jw(rt_warren):
    return rt_warren


def start(w, root, listeners=None, environment=None):
    a = {"type": "java", "webapp": root, "processes": 1}
    if environment is not None:
        a["environment"] = environment
    return hh.setup(w, [{"action": {"pass": "applications/c"}}], listeners=listeners,
                    extra={"applications": {"c": a}})


def test_error_pages_after_forward_close_and_listeners(jw, webapp):
    port = start(jw, webapp)
    pid = hh.get(port, "/p/pid").body
    for path in ("/p/fwd404", "/p/sendclose"):
        r = hh.get(port, path)
        assert (r.status, r.body) == (404, FILES["err404.html"]), (path, r)
    r = hh.get(port, "/listener-refuses")
    assert r.status == 500 and b"listener refuses" not in r.body, r
    r = hh.get(port, "/p/unavailable")
    assert r.status == 503, r
    assert hh.get(port, "/p/pid").body == pid


def test_default_servlet_by_name_filter_order_and_static_pages(jw, webapp):
    port = start(jw, webapp)
    r = hh.get(port, "/static/a.css")
    assert (r.status, r.body, r.header("Content-Type")) == (200, FILES["static/a.css"], "text/css"), r
    r = hh.get(port, "/up/info")
    assert r.status == 200 and r.all("X-Order") == ["url", "name"], r
    r = hh.get(port, "/p/fwdstatic", method="POST", body=b"x=1",
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.body) == (200, FILES["index.html"]), r
    r = hh.get(port, "/p/view")                 # WEB-INF is hidden from clients, not from forwards
    assert (r.status, r.body) == (200, FILES["WEB-INF/views/page.html"]), r
    assert hh.get(port, "/WEB-INF/views/page.html").status == 404
    r = hh.get(port, "/p/fwdwrapped")
    assert (r.status, r.body, r.header("X-Cached")) == (200, FILES["index.html"], str(len(FILES["index.html"]))), r
    # A JSP page runs (Jasper, test_java_jsp.py) or answers 404: its source
    # is never sent; *.jsp is case-sensitive, the default servlet's refusal not.
    for path in ("/page.jsp", "/PAGE.JSP"):
        r = hh.get(port, path)
        assert r.status in (200, 404) and b"secret" not in r.body, (path, r)
    assert hh.get(port, "/PAGE.JSP").status == 404


def multipart(fields):
    b = b"----warren-boundary"
    body = b""
    for name, filename, data in fields:
        body += b"--" + b + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\""
        if filename:
            body += b"; filename=\"" + filename.encode() + b"\"\r\nContent-Type: application/octet-stream"
        body += b"\r\n\r\n" + data + b"\r\n"
    body += b"--" + b + b"--\r\n"
    return body, {"Content-Type": "multipart/form-data; boundary=" + b.decode()}


def test_multipart_fields_are_parameters(jw, webapp):
    port = start(jw, webapp)
    body, headers = multipart([("a", None, "\u00e9t\u00e9".encode()), ("f", "x.bin", b"--x--" * 50)])
    r = hh.get(port, "/p/form", method="POST", body=body, headers=headers)
    assert (r.status, r.body.decode()) == (200, "a=\u00e9t\u00e9 parts=2 again=250"), r
    body, headers = multipart([("a", None, b"1"), ("f", "big.bin", b"x" * 2000)])
    r = hh.get(port, "/up/form", method="POST", body=body, headers=headers)
    assert (r.status, r.body.decode()) == (200, "a=null parts=IllegalStateException again=IllegalStateException"), r


def test_request_line_forms(jw, webapp):
    sock = os.path.join(hh.make_root("warren-javau-"), "s.sock")
    port = wh.free_port()
    start(jw, webapp, listeners={"127.0.0.1:%d" % port: {"pass": "routes"},
                                 "unix:" + sock: {"pass": "routes"}})
    r = hh.get(None, "/p/info", unix=sock, host="example.org")
    assert r.status == 200, r
    assert b"server=example.org:80 local=0 remote=0" in r.body, r
    with hh.Conn(port) as c:
        r = c.request("GET", "http://example.com:81/p/info?x=1", host="localhost")
    assert b" uri=/p/info url=http://example.com:81/p/info server=example.com:81" in r.body, r
    r = hh.get(port, "/p/info;jsessionid=1")
    assert b"sp=/p pi=/info uri=/p/info;jsessionid=1 " in r.body, r
    # warren-java gives the JVM LC_CTYPE=C.UTF-8 when the environment
    # names no locale: in the C locale its file names are ASCII.
    r = hh.get(port, "/caf%C3%A9.txt")
    assert (r.status, r.body) == (200, "caf\u00e9\n".encode()), r


def test_session_cookie_config(jw, webapp):
    port = start(jw, webapp)
    r = hh.get(port, "/p/session")
    cookie = r.header("Set-Cookie")
    assert r.body == b"new=true" and cookie.startswith("SID="), r
    assert "; Max-Age=600" in cookie and "; Path=/p" in cookie and "; HttpOnly" in cookie, cookie
    r = hh.get(port, "/p/session", headers={"Cookie": cookie.split(";")[0]})
    assert r.body == b"new=false", r


def test_static_byte_ranges(jw, webapp):
    port = start(jw, webapp)
    r = hh.get(port, "/digits.txt")
    assert (r.status, r.header("Accept-Ranges")) == (200, "bytes"), r
    lm = r.header("Last-Modified")
    for spec, body, crange in (("2-4", b"234", "bytes 2-4/10"), ("7-", b"789", "bytes 7-9/10"),
                               ("-2", b"89", "bytes 8-9/10"), ("8-20", b"89", "bytes 8-9/10")):
        r = hh.get(port, "/digits.txt", headers={"Range": "bytes=" + spec})
        assert (r.status, r.body, r.header("Content-Range")) == (206, body, crange), (spec, r)
        assert r.header("Content-Length") == str(len(body)), (spec, r)
    r = hh.get(port, "/digits.txt", headers={"Range": "bytes=10-"})
    assert (r.status, r.header("Content-Range")) == (416, "bytes */10"), r
    for fields in ({"Range": "bytes=0-1,4-5"}, {"Range": "bytes=x-y"},
                   {"Range": "bytes=1-2", "If-Range": "Sat, 01 Jan 2000 00:00:00 GMT"}):
        r = hh.get(port, "/digits.txt", headers=fields)
        assert (r.status, r.body) == (200, FILES["digits.txt"]), (fields, r)
    r = hh.get(port, "/digits.txt", headers={"Range": "bytes=1-2", "If-Range": lm})
    assert (r.status, r.body) == (206, b"12"), r


def test_a_locale_the_environment_names_is_kept(jw, webapp):
    """LC_ALL=C given on purpose: the JVM's file names are ASCII then, as
    with java run so (warren-java adds C.UTF-8 only where no locale is
    named), and the UTF-8 file name is not found."""
    port = start(jw, webapp, environment={"LC_ALL": "C"})
    assert hh.get(port, "/caf%C3%A9.txt").status == 404
    assert hh.get(port, "/digits.txt").status == 200
