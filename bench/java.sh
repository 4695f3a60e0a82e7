#!/bin/bash
# bench/java.sh: one servlet (10 KB text/plain answers) in a webapp
# directory, served by Warren ("type": "java": warren-java's JVMs on the
# worker channel) and by Jetty 9 (Debian's libjetty9-java, the servlet
# container Unit's Java module was built from), wrk alternately in one run.
# See bench/README.md. As root: bench/java.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]
#   PROCESSES [2]: Warren's worker processes (JVMs); Jetty is one JVM
#   THREADS [1]: Warren's "threads" per worker (1 is the fastest here: bench/README.md)
#   WARMUP [5s]: wrk against each server before the rounds (the JIT)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-2}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-5s}
NPROC=$(nproc)
BODY_LEN=10240
JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
SERVLET_JAR=/usr/share/java/servlet-api.jar
JETTY_JARS="/usr/share/java/jetty9-server.jar:/usr/share/java/jetty9-servlet.jar:/usr/share/java/jetty9-http.jar:/usr/share/java/jetty9-io.jar:/usr/share/java/jetty9-util.jar:/usr/share/java/jetty9-security.jar"

. "$top/bench/common.sh"     # pids, cleanup, install_missing, free_port, start_warrend, bench_world, run_wrk ...
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x "$JAVA_HOME/bin/javac" ] || missing+=(openjdk-17-jdk-headless)
[ -f "$SERVLET_JAR" ] || missing+=(libservlet-api-java)
[ -f /usr/share/java/jetty9-server.jar ] || missing+=(libjetty9-java)
install_missing "${missing[@]}"
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

bench_world java
make -C "$top" --no-print-directory -s build/warren-java build/java/warren.jar
mkdir -p "$app/src" "$app/webapp/WEB-INF/classes" "$app/jetty"
cat > "$app/src/Hello.java" <<JAVA
import java.io.IOException;
import java.util.Arrays;
import javax.servlet.annotation.WebServlet;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

@WebServlet("/")
public class Hello extends HttpServlet {
    private static final byte[] BODY = new byte[$BODY_LEN];
    static { Arrays.fill(BODY, (byte) 'x'); }

    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        resp.setContentType("text/plain");
        resp.setContentLength(BODY.length);
        resp.getOutputStream().write(BODY);
    }
}
JAVA
# Jetty embedded the plain way: one connector, one servlet context.
cat > "$app/src/JettyMain.java" <<'JAVA'
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.servlet.ServletContextHandler;

public class JettyMain {
    public static void main(String[] args) throws Exception {
        Server server = new Server();
        ServerConnector c = new ServerConnector(server);
        c.setHost("127.0.0.1");
        c.setPort(Integer.parseInt(args[0]));
        server.addConnector(c);
        ServletContextHandler ctx = new ServletContextHandler();
        ctx.addServlet(Hello.class, "/");
        server.setHandler(ctx);
        server.start();
        server.join();
    }
}
JAVA
"$JAVA_HOME/bin/javac" --release 17 -nowarn -cp "$SERVLET_JAR" -d "$app/webapp/WEB-INF/classes" "$app/src/Hello.java"
"$JAVA_HOME/bin/javac" --release 17 -nowarn -cp "$SERVLET_JAR:$JETTY_JARS:$app/webapp/WEB-INF/classes" \
    -d "$app/jetty" "$app/src/JettyMain.java"
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() med=()
servers=()
port[warren]=$(free_port)
port[jetty]=$(free_port)
start_warrend "$work/logs/warren.log"
warren_apply "$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren]}": {"pass": "applications/java"}},
 "applications": {"java": {"type": "java", "webapp": "$app/webapp",
                           "processes": $PROCESSES, "threads": $THREADS}}}
JSON
)"
"$JAVA_HOME/bin/java" -cp "$SERVLET_JAR:$JETTY_JARS:$app/webapp/WEB-INF/classes:$app/jetty" \
    JettyMain "${port[jetty]}" </dev/null >"$work/logs/jetty.log" 2>&1 &
pids+=($!)
servers+=(jetty)
keep_answering /

echo "== $(uname -r), $NPROC CPUs, $("$JAVA_HOME/bin/java" -version 2>&1 | head -1); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== one servlet, $BODY_LEN-byte answers: warren = $PROCESSES JVM worker(s) x $THREADS" \
     "thread(s) on the channel; jetty = Jetty 9.4 embedded, one JVM, its default thread pool;" \
     "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds alternating, after $WARMUP" \
     "of warm-up each; no access log"
for s in "${servers[@]}"; do
    wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WARMUP" "http://127.0.0.1:${port[$s]}/" >/dev/null 2>&1 || true
done
rounds_and_medians /
warren_ratios jetty
echo "== done (stopping pids ${pids[*]})"
