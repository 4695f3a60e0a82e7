// make run's Java demo: a servlet as Unit runs them ("type": "java"), in
// Warren's servlet container. The Makefile compiles it into
// build/demo/java/WEB-INF/classes, the demo's webapp directory.
import java.io.IOException;
import javax.servlet.annotation.WebServlet;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

@WebServlet("/java/*")
public class Hello extends HttpServlet {
    @Override
    protected void doGet(HttpServletRequest req, HttpServletResponse resp) throws IOException {
        String query = req.getQueryString();
        resp.setContentType("text/plain");
        resp.getWriter().printf("Hello from a Warren Java worker (Java %s, pid %d)%n%s %s%s%n",
                                System.getProperty("java.version"), ProcessHandle.current().pid(),
                                req.getMethod(), req.getRequestURI(), query != null ? "?" + query : "");
    }
}
