"""What the Java tests share: the JDK's javac, Debian's servlet API, a
skip marker for a machine without them, and compiling a webapp's sources."""

import os
import subprocess

import pytest

JAVA_HOME = "/usr/lib/jvm/java-17-openjdk-amd64"
JAVAC = os.path.join(JAVA_HOME, "bin", "javac")
SERVLET_JAR = "/usr/share/java/servlet-api.jar"
JASPER_JAR = "/usr/share/java/tomcat9-jasper.jar"
# Tomcat's JSR 356 (libtomcat9-java): the API webapps compile against, and
# the implementation warren-java runs them on.
WEBSOCKET_API_JAR = "/usr/share/java/tomcat9-websocket-api.jar"
WEBSOCKET_JAR = "/usr/share/java/tomcat9-websocket.jar"

needs_java = pytest.mark.skipif(
    not (os.access(JAVAC, os.X_OK) and os.path.isfile(SERVLET_JAR)),
    reason="javac (openjdk-17-jdk-headless) or the servlet API (libservlet-api-java) "
           "is not installed: scripts/deps.sh installs them")


def javac(dest, sources, classpath=SERVLET_JAR):
    """Compiles sources (paths) into the class directory dest."""
    os.makedirs(dest, exist_ok=True)
    out = subprocess.run([JAVAC, "--release", "17", "-nowarn", "-encoding", "UTF-8",
                          "-cp", classpath, "-d", dest] + sources,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def compile_sources(src, sources, dest, classpath=SERVLET_JAR):
    """Writes sources ({file name: text}) into the directory src and
    compiles them into the class directory dest."""
    os.makedirs(src, exist_ok=True)
    paths = []
    for name, text in sources.items():
        paths.append(os.path.join(src, name))
        with open(paths[-1], "w") as f:
            f.write(text)
    javac(dest, paths, classpath)
