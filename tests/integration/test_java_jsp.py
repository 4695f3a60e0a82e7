"""
JSP pages on Apache Jasper (Debian's libtomcat9-java), as Unit's Java
module runs them: warren-java puts Jasper on its class path, the container
declares the "jsp" servlet for *.jsp and *.jspx (Tomcat's defaults) and
jsp-file servlets, index.jsp is a welcome file, and Jasper compiles each
page in the worker's scratch directory with the Eclipse compiler.
"""

import os
import shutil
import subprocess

import http_helpers as hh
import java_helpers as jh
import warren_helpers as wh

import pytest

pytestmark = [jh.needs_java, pytest.mark.skipif(
    not os.path.isfile(jh.JASPER_JAR),
    reason="Apache Jasper (libtomcat9-java) is not installed: scripts/deps.sh installs it")]

WEB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<web-app xmlns="http://xmlns.jcp.org/xml/ns/javaee" version="3.1">
  <servlet><servlet-name>hello</servlet-name><jsp-file>/WEB-INF/hello.jsp</jsp-file>
    <init-param><param-name>who</param-name><param-value>config</param-value></init-param></servlet>
  <servlet-mapping><servlet-name>hello</servlet-name><url-pattern>/hello</url-pattern></servlet-mapping>
  <servlet-mapping><servlet-name>jsp</servlet-name><url-pattern>*.page</url-pattern></servlet-mapping>
  <error-page><exception-type>java.lang.IllegalStateException</exception-type><location>/oops.jsp</location></error-page>
</web-app>
"""

BEAN = r"""
package t;
public class Counter {
    private int n;
    public int getNext() { return ++n; }
    public String getName() { return "counter"; }
}
"""

FILES = {
    "index.jsp": """<%@ page contentType="text/plain; charset=UTF-8" %>
<% int n = 6 * 7; %>answer=<%= n %> x=${param.x} path=${pageContext.request.servletPath}
""",
    "bean.jsp": """<%@ page contentType="text/plain" %><jsp:useBean id="c" class="t.Counter" scope="session"/>
${c.name} ${c.next} ${c.next}
""",
    "parts.jsp": """<%@ page contentType="text/plain" %><%@ include file="/WEB-INF/head.jspf" %>
body <jsp:include page="/WEB-INF/inc.jsp"><jsp:param name="p" value="v"/></jsp:include>""",
    "WEB-INF/head.jspf": "head ",
    "WEB-INF/inc.jsp": "<%@ page contentType=\"text/plain\" %>included p=${param.p}",
    "WEB-INF/hello.jsp": """<%@ page contentType="text/plain" %>hello from <%= config.getInitParameter("who") %>""",
    "fwd.jsp": """<jsp:forward page="/WEB-INF/inc.jsp"><jsp:param name="p" value="fwd"/></jsp:forward>""",
    "throws.jsp": """<% if (true) throw new IllegalStateException("page failed on purpose"); %>""",
    "oops.jsp": """<%@ page isErrorPage="true" contentType="text/plain" %>oops: <%= exception.getMessage() %>""",
    "broken.jsp": """<% this is not java %>""",
    "doc.jspx": """<jsp:root xmlns:jsp="http://java.sun.com/JSP/Page" version="2.0">
<jsp:directive.page contentType="text/plain"/><jsp:text>xml syntax ${1 + 2}</jsp:text></jsp:root>""",
    "other.page": """<%@ page contentType="text/plain" %>mapped by web.xml ${2 * 21}""",
    "utf8.jsp": """<%@ page contentType="text/plain; charset=UTF-8" pageEncoding="UTF-8" %>café ☕""",
}


@pytest.fixture(scope="module")
def webapp():
    top = hh.make_root("warren-jsp-")
    root = os.path.join(top, "webapp")
    hh.write(root, "WEB-INF/web.xml", WEB_XML.encode())
    for rel, text in FILES.items():
        hh.write(root, rel, text.encode())
    jh.compile_sources(os.path.join(top, "src"), {"Counter.java": BEAN},
                       os.path.join(root, "WEB-INF", "classes"))
    subprocess.run(["chmod", "-R", "a+rX", top], check=True)
    yield root
    shutil.rmtree(top, ignore_errors=True)


def start(w, root):
    return hh.setup(w, [{"action": {"pass": "applications/jsp"}}],
                    extra={"applications": {"jsp": {"type": "java", "webapp": root, "processes": 1}}})


def get(port, path, headers=None):
    with hh.Conn(port, timeout=60) as c:      # the first request of a page compiles it
        return c.request("GET", path, headers)


def text(port, path):
    r = get(port, path)
    return r.status, r.body.decode().strip()


def test_pages_compile_and_run(rt_warren, webapp):
    port = start(rt_warren, webapp)
    assert text(port, "/index.jsp?x=%C3%A9t%C3%A9") == (200, "answer=42 x=\u00e9t\u00e9 path=/index.jsp")
    # index.jsp is a welcome file when Jasper is there (Tomcat's list).
    assert text(port, "/?x=1") == (200, "answer=42 x=1 path=/index.jsp")
    assert text(port, "/doc.jspx") == (200, "xml syntax 3")
    assert text(port, "/other.page") == (200, "mapped by web.xml 42")
    assert text(port, "/utf8.jsp") == (200, "caf\u00e9 \u2615")
    # Static include, dynamic include with a parameter, forward.
    assert text(port, "/parts.jsp") == (200, "head \nbody included p=v")
    assert text(port, "/fwd.jsp") == (200, "included p=fwd")
    # A jsp-file servlet: its init parameters reach the page's config.
    assert text(port, "/hello") == (200, "hello from config")
    # JSP fragments and WEB-INF pages are not reachable directly.
    assert hh.get(port, "/WEB-INF/hello.jsp").status == 404
    assert hh.get(port, "/missing.jsp").status == 404


def test_beans_live_in_the_session(rt_warren, webapp):
    port = start(rt_warren, webapp)
    r = get(port, "/bean.jsp")
    assert (r.status, r.body.strip()) == (200, b"counter 1 2"), r
    cookie = r.header("Set-Cookie").split(";")[0]
    assert cookie.startswith("JSESSIONID="), r
    r = get(port, "/bean.jsp", headers={"Cookie": cookie})
    assert r.body.strip() == b"counter 3 4", r


def test_failing_pages(rt_warren, webapp):
    port = start(rt_warren, webapp)
    pid = text(port, "/hello")
    # An exception goes to the webapp's error page, with the exception.
    assert text(port, "/throws.jsp") == (500, "oops: page failed on purpose")
    # A page that does not compile: 500, the compiler's complaint in the
    # error log and not to the client; the worker serves on.
    r = get(port, "/broken.jsp")
    assert r.status == 500 and b"not java" not in r.body, r
    assert wh.wait_for(lambda: "broken.jsp" in rt_warren.log(), 5), rt_warren.log()[-3000:]
    assert text(port, "/hello") == pid
