package warren;

import java.util.List;
import java.util.Map;

/*
 * JSP through Apache Jasper, when Debian's libtomcat9-java is installed
 * (warren-java puts its jars on the class path; without them JSP pages
 * answer 404 and are never sent as files). The container declares the
 * "jsp" servlet for *.jsp and *.jspx as Tomcat's conf/web.xml does, and
 * jsp-file servlets as that servlet with a "jspFile" parameter; Jasper's
 * own initializer (found through META-INF/services like any other) scans
 * the tag libraries. Jasper is reached by name only: the container builds
 * and runs without it.
 */
final class Jsp {
    static final String NAME = "jsp";
    static final String SERVLET = "org.apache.jasper.servlet.JspServlet";
    static final List<String> PATTERNS = List.of("*.jsp", "*.jspx");
    static final int LOAD_ON_STARTUP = 3;
    /* Compile in this JVM (no javac process), and no X-Powered-By. */
    static final Map<String, String> PARAMS = Map.of("fork", "false", "xpoweredBy", "false");

    private static final String INSTANCE_MANAGER = "org.apache.tomcat.InstanceManager";
    private static final String SIMPLE_INSTANCE_MANAGER = "org.apache.tomcat.SimpleInstanceManager";
    private static final String JAR_SCANNER_ATTR = "org.apache.tomcat.JarScanner";
    private static final String JAR_SCAN_FILTER = "org.apache.tomcat.JarScanFilter";
    private static final String JAR_SCANNER = "org.apache.tomcat.util.scan.StandardJarScanner";
    private static final String SCAN_FILTER = "org.apache.tomcat.util.scan.StandardJarScanFilter";
    /* warren-java's class path (jvm.c, Makefile JSP_JARS): no tag libraries. */
    private static final String CONTAINER_JARS =
        "warren.jar,servlet-api*.jar,tomcat9-*.jar,eclipse-jdt-core*.jar";

    private Jsp() {
    }

    /* A JspServlet: the "jsp" servlet (jspFile null) or a jsp-file one;
     * null when the name is taken. */
    static ServletHolder servlet(WebApp app, String name, String jspFile) {
        ServletHolder s = app.addServlet(name, SERVLET, null, null);
        if (s != null) {
            s.params.putAll(PARAMS);
            if (jspFile != null)
                s.params.put("jspFile", jspFile);
        }
        return s;
    }

    static boolean available(ClassLoader loader) {
        try {
            Class.forName(SERVLET, false, loader);
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /* Jasper makes tag handlers through the context's InstanceManager
     * (Tomcat sets one with injection; plain construction is enough here),
     * and finds tag libraries with the context's JarScanner: Tomcat's
     * standard one, told to skip the jars of the container itself. */
    static void prepare(Context context, ClassLoader loader) throws ReflectiveOperationException {
        Object m = Class.forName(SIMPLE_INSTANCE_MANAGER, true, loader).getDeclaredConstructor().newInstance();
        context.setAttribute(INSTANCE_MANAGER, m);
        Object filter = Class.forName(SCAN_FILTER, true, loader).getDeclaredConstructor().newInstance();
        filter.getClass().getMethod("setTldSkip", String.class).invoke(filter, CONTAINER_JARS);
        filter.getClass().getMethod("setPluggabilitySkip", String.class).invoke(filter, CONTAINER_JARS);
        Object scanner = Class.forName(JAR_SCANNER, true, loader).getDeclaredConstructor().newInstance();
        scanner.getClass().getMethod("setJarScanFilter", Class.forName(JAR_SCAN_FILTER, true, loader))
               .invoke(scanner, filter);
        context.setAttribute(JAR_SCANNER_ATTR, scanner);
    }
}
