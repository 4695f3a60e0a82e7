package warren;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.EventListener;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.Servlet;
import javax.servlet.ServletContainerInitializer;
import javax.servlet.ServletContextEvent;
import javax.servlet.ServletContextListener;
import javax.servlet.ServletException;
import javax.servlet.annotation.HandlesTypes;
import javax.servlet.annotation.MultipartConfig;
import javax.servlet.annotation.WebFilter;
import javax.servlet.annotation.WebInitParam;
import javax.servlet.annotation.WebListener;
import javax.servlet.annotation.WebServlet;
import javax.servlet.MultipartConfigElement;

/*
 * The webapp: where its files are, its class loader, and everything it
 * declares (web.xml, annotations, ServletContainerInitializers), started in
 * the specification's order: initializers, context listeners, filters,
 * load-on-startup servlets. Registration is open only until then.
 */
final class WebApp {
    final File root;
    final URLClassLoader loader;
    final Context context = new Context(this);
    final Mapper mapper = new Mapper();
    final Sessions sessions = new Sessions(this);
    final Map<String, ServletHolder> servlets = new LinkedHashMap<>();
    final Map<String, FilterHolder> filters = new LinkedHashMap<>();
    final List<FilterHolder.FilterMap> filterMaps = new CopyOnWriteArrayList<>();
    private final List<EventListener> listeners = new CopyOnWriteArrayList<>();
    final List<String> welcomeFiles = new ArrayList<>();
    final Map<Integer, String> errorCodes = new LinkedHashMap<>();
    final Map<String, String> errorTypes = new LinkedHashMap<>();
    String defaultErrorPage;
    final Map<String, String> mimeTypes = new LinkedHashMap<>();
    String displayName;
    String requestEncoding, responseEncoding;
    ServletHolder defaultServlet;       // what "/" maps to
    private ServletHolder staticFiles;  // the container's DefaultServlet, once made
    private volatile boolean started;
    /* Its requests may be upgraded: a WebSocket endpoint is deployed, or
     * a class of WEB-INF/classes is an HttpUpgradeHandler. */
    boolean upgrades;
    private int matchAfterStart;        // filterMaps index where "isMatchAfter" ones begin

    private WebApp(File root, URLClassLoader loader) {
        this.root = root;
        this.loader = loader;
    }

    /* Loads and starts the webapp; any failure is an exception naming its cause. */
    static WebApp load(String webapp, String[] classpath, String tmpdir) throws Exception {
        File root = unpacked(new File(webapp), new File(tmpdir));
        WebApp app = new WebApp(root, classLoader(root, classpath));
        File work = new File(tmpdir, "work");
        if (!work.mkdir())
            throw new IOException("mkdir " + work + " failed");
        app.context.setAttribute(javax.servlet.ServletContext.TEMPDIR, work);
        Thread t = Thread.currentThread();
        ClassLoader old = t.getContextClassLoader();
        t.setContextClassLoader(app.loader);
        try {
            app.declare(WebXml.read(new File(root, "WEB-INF/web.xml")));
            app.start();
            app.upgrades |= app.websocketEndpoints();
        } finally {
            t.setContextClassLoader(old);
        }
        return app;
    }

    /* A .war is unpacked into tmpdir; a directory is used in place. */
    private static File unpacked(File webapp, File tmpdir) throws IOException {
        if (webapp.isDirectory())
            return webapp.getCanonicalFile();
        if (!webapp.isFile())
            throw new java.io.FileNotFoundException("webapp " + webapp + ": no such file or directory");
        File dir = new File(tmpdir, "webapp");
        Path base = dir.toPath().toAbsolutePath().normalize();
        try (ZipFile zip = new ZipFile(webapp)) {
            for (ZipEntry e : java.util.Collections.list(zip.entries())) {
                Path to = base.resolve(e.getName()).normalize();
                if (!to.startsWith(base))
                    throw new IOException("webapp " + webapp + ": entry " + e.getName() + " leaves the webapp");
                if (e.isDirectory()) {
                    Files.createDirectories(to);
                    continue;
                }
                Files.createDirectories(to.getParent());
                try (InputStream in = zip.getInputStream(e)) {
                    Files.copy(in, to, StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (java.util.zip.ZipException e) {
            throw new IOException("webapp " + webapp + ": not a .war (zip) file: " + e.getMessage(), e);
        }
        return dir.getCanonicalFile();
    }

    /* WEB-INF/classes, WEB-INF/lib/*.jar, then "classpath". */
    private static URLClassLoader classLoader(File root, String[] classpath) throws IOException {
        List<URL> urls = new ArrayList<>();
        File classes = new File(root, "WEB-INF/classes");
        if (classes.isDirectory())
            urls.add(classes.toURI().toURL());
        File[] jars = new File(root, "WEB-INF/lib").listFiles((d, n) -> n.endsWith(".jar"));
        if (jars != null) {
            Arrays.sort(jars);
            for (File j : jars)
                urls.add(j.toURI().toURL());
        }
        for (String c : classpath)
            urls.add(new File(c).toURI().toURL());
        return new URLClassLoader("webapp", urls.toArray(new URL[0]), WebApp.class.getClassLoader());
    }

    // ---- declarations

    private void declare(WebXml w) throws Exception {
        displayName = w.displayName;
        context.initParams.putAll(w.contextParams);
        for (String l : w.listeners)
            context.addListener(l);
        boolean jasper = Jsp.available(loader);
        if (jasper)
            Jsp.prepare(context, loader);
        for (WebXml.ServletDef d : w.servlets.values()) {
            if (d.jspFile != null && !jasper)
                throw new ServletException("servlet \"" + d.name + "\": jsp-file " + d.jspFile
                                           + ": JSP needs Apache Jasper (Debian's libtomcat9-java)");
            ServletHolder s = d.jspFile != null ? Jsp.servlet(this, d.name, d.jspFile)
                                                : addServlet(d.name, d.className, null, null);
            s.params.putAll(d.params);
            s.loadOnStartup = d.loadOnStartup;
            s.multipart = d.multipart;
            for (String p : d.patterns)
                map(p, s);
        }
        ServletHolder jsp = servlets.get(Jsp.NAME);
        if (jasper && jsp == null) {
            jsp = Jsp.servlet(this, Jsp.NAME, null);
            jsp.loadOnStartup = Jsp.LOAD_ON_STARTUP;
        }
        for (Map.Entry<String, List<String>> m : w.otherMappings.entrySet()) {
            ServletHolder to = m.getKey().equals("default") ? staticFiles()
                             : m.getKey().equals(Jsp.NAME) && jasper ? jsp : null;
            if (to == null)
                throw new ServletException("WEB-INF/web.xml: servlet-mapping for undeclared servlet \""
                                           + m.getKey() + "\"");
            for (String p : m.getValue())
                map(p, to);
        }
        if (jasper)
            for (String p : Jsp.PATTERNS)
                if (!mapper.has(p))
                    map(p, jsp);
        for (WebXml.FilterDef d : w.filters.values())
            addFilter(d.name, d.className, null, null).params.putAll(d.params);
        for (WebXml.FilterMapDef d : w.filterMaps) {
            FilterHolder f = filters.get(d.filter);
            if (f == null)
                throw new ServletException("filter-mapping for undeclared filter \"" + d.filter + "\"");
            FilterHolder.FilterMap m = new FilterHolder.FilterMap(f, d.types);
            m.patterns.addAll(d.patterns);
            m.servlets.addAll(d.servlets);
            addFilterMap(m, false);
        }
        welcomeFiles.addAll(w.welcomeGiven ? w.welcomeFiles
                            : jasper ? List.of("index.html", "index.htm", "index.jsp")
                            : List.of("index.html", "index.htm"));
        errorCodes.putAll(w.errorCodes);
        errorTypes.putAll(w.errorTypes);
        defaultErrorPage = w.defaultErrorPage;
        mimeTypes.putAll(w.mimeTypes);
        sessions.timeoutMinutes = w.sessionTimeout;
        sessions.cookieConfig.configure(w.sessionCookie);
        requestEncoding = w.requestEncoding;
        responseEncoding = w.responseEncoding;
        List<Class<?>> classes = w.metadataComplete ? List.of() : scan();
        for (Class<?> c : classes)
            upgrades |= javax.servlet.http.HttpUpgradeHandler.class.isAssignableFrom(c);
        if (!websocketAvailable(loader))
            websocketMissing();
        if (!w.metadataComplete)
            annotations(classes);
        initializers(classes);
    }

    private void map(String pattern, ServletHolder s) throws ServletException {
        if (mapper.has(pattern))
            throw new ServletException("url-pattern \"" + pattern + "\" is mapped twice");
        s.patterns.add(pattern);
        mapper.add(pattern, s);
    }

    /* Every class under WEB-INF/classes, loaded (not initialized). */
    private List<Class<?>> scan() throws IOException {
        List<Class<?>> out = new ArrayList<>();
        Path classes = new File(root, "WEB-INF/classes").toPath();
        if (!Files.isDirectory(classes))
            return out;
        try (Stream<Path> files = Files.walk(classes)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                String rel = classes.relativize(p).toString();
                if (!rel.endsWith(".class") || rel.endsWith("module-info.class"))
                    continue;
                String name = rel.substring(0, rel.length() - 6).replace(File.separatorChar, '.');
                try {
                    out.add(Class.forName(name, false, loader));
                } catch (ClassNotFoundException | LinkageError e) {
                    log("annotation scan: class " + name + " cannot be loaded: " + e);
                }
            }
        }
        return out;
    }

    /* Tomcat's WebSocket initializer (WsUpgrade.java): on warren-java's
     * class path when Debian's libtomcat9-java is installed. */
    private static final String WEBSOCKET_SCI = "org.apache.tomcat.websocket.server.WsSci";
    private static final byte[] WEBSOCKET_API = "javax/websocket/".getBytes(Http.LATIN1);
    private static final String WEBSOCKET_CONTAINER = "javax.websocket.server.ServerContainer";
    private static final String WEBSOCKET_DEPLOYED = "areEndpointsRegistered";

    static boolean websocketAvailable(ClassLoader loader) {
        try {
            Class.forName(WEBSOCKET_SCI, false, loader);
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }

    /* Tomcat's ServerContainer has endpoints (its initializer or the
     * webapp's listeners deployed some). Asked by name: the container
     * is built and runs without Tomcat's jars. */
    private boolean websocketEndpoints() {
        Object sc = context.getAttribute(WEBSOCKET_CONTAINER);
        if (sc == null)
            return false;
        try {
            java.lang.reflect.Method m = sc.getClass().getDeclaredMethod(WEBSOCKET_DEPLOYED);
            m.setAccessible(true);
            return (Boolean) m.invoke(sc);
        } catch (ReflectiveOperationException | RuntimeException e) {
            log("warren: cannot tell whether WebSocket endpoints are deployed (" + e + "): assuming so");
            return true;
        }
    }

    /* Without Tomcat's WebSocket jars the webapp runs without its
     * endpoints: said once, when a class of its uses javax.websocket. */
    private void websocketMissing() throws IOException {
        Path classes = new File(root, "WEB-INF/classes").toPath();
        if (!Files.isDirectory(classes))
            return;
        try (Stream<Path> files = Files.walk(classes)) {
            for (Path p : (Iterable<Path>) files::iterator) {
                if (p.toString().endsWith(".class") && contains(Files.readAllBytes(p), WEBSOCKET_API)) {
                    log("warren: " + classes.relativize(p) + " uses javax.websocket, but WebSocket (JSR 356) "
                        + "is unavailable: Tomcat's WebSocket jars (Debian's libtomcat9-java) are not installed");
                    return;
                }
            }
        }
    }

    private static boolean contains(byte[] data, byte[] what) {
        outer:
        for (int i = 0; i + what.length <= data.length; i++) {
            for (int j = 0; j < what.length; j++)
                if (data[i + j] != what[j])
                    continue outer;
            return true;
        }
        return false;
    }

    private void annotations(List<Class<?>> classes) throws ServletException {
        for (Class<?> c : classes) {
            WebServlet ws = c.getAnnotation(WebServlet.class);
            if (ws != null && Servlet.class.isAssignableFrom(c))
                annotatedServlet(c.asSubclass(Servlet.class), ws);
            WebFilter wf = c.getAnnotation(WebFilter.class);
            if (wf != null && Filter.class.isAssignableFrom(c))
                annotatedFilter(c.asSubclass(Filter.class), wf);
            if (c.getAnnotation(WebListener.class) != null && EventListener.class.isAssignableFrom(c))
                context.addListener(c.asSubclass(EventListener.class));
        }
    }

    private void annotatedServlet(Class<? extends Servlet> c, WebServlet ws) throws ServletException {
        String name = ws.name().isEmpty() ? c.getName() : ws.name();
        if (servlets.containsKey(name))
            return;             // web.xml's declaration wins
        ServletHolder s = addServlet(name, c.getName(), c, null);
        for (WebInitParam p : ws.initParams())
            s.params.put(p.name(), p.value());
        s.loadOnStartup = ws.loadOnStartup();
        MultipartConfig mc = c.getAnnotation(MultipartConfig.class);
        if (mc != null)
            s.multipart = new MultipartConfigElement(mc);
        for (String p : ws.value().length > 0 ? ws.value() : ws.urlPatterns())
            map(p, s);
    }

    private void annotatedFilter(Class<? extends Filter> c, WebFilter wf) {
        String name = wf.filterName().isEmpty() ? c.getName() : wf.filterName();
        if (filters.containsKey(name))
            return;
        FilterHolder f = addFilter(name, c.getName(), c, null);
        for (WebInitParam p : wf.initParams())
            f.params.put(p.name(), p.value());
        FilterHolder.FilterMap m = new FilterHolder.FilterMap(f, EnumSet.copyOf(Arrays.asList(wf.dispatcherTypes())));
        m.patterns.addAll(Arrays.asList(wf.value().length > 0 ? wf.value() : wf.urlPatterns()));
        m.servlets.addAll(Arrays.asList(wf.servletNames()));
        addFilterMap(m, false);
    }

    /* The ServletContainerInitializers of the webapp's jars, each given the
     * scanned classes its @HandlesTypes asks for. */
    private void initializers(List<Class<?>> classes) throws ServletException {
        for (ServletContainerInitializer sci : ServiceLoader.load(ServletContainerInitializer.class, loader)) {
            Set<Class<?>> wanted = new HashSet<>();
            HandlesTypes ht = sci.getClass().getAnnotation(HandlesTypes.class);
            if (ht != null)
                for (Class<?> c : classes)
                    for (Class<?> t : ht.value())
                        if (c != t && (t.isAssignableFrom(c) || (t.isAnnotation()
                            && c.isAnnotationPresent(t.asSubclass(java.lang.annotation.Annotation.class)))))
                            wanted.add(c);
            Set<Class<?>> types = wanted.isEmpty() ? null : wanted;
            named("initializer " + sci.getClass().getName(), () -> sci.onStartup(types, context));
        }
    }

    ServletHolder addServlet(String name, String className, Class<? extends Servlet> c, Servlet instance) {
        checkStarting();
        if (name == null || name.isEmpty())
            throw new IllegalArgumentException("a servlet needs a name");
        if (servlets.containsKey(name))
            return null;
        ServletHolder s = new ServletHolder(this, name, className, instance);
        s.type = c;
        servlets.put(name, s);
        return s;
    }

    FilterHolder addFilter(String name, String className, Class<? extends Filter> c, Filter instance) {
        checkStarting();
        if (name == null || name.isEmpty())
            throw new IllegalArgumentException("a filter needs a name");
        if (filters.containsKey(name))
            return null;
        FilterHolder f = new FilterHolder(this, name, className, instance);
        f.type = c;
        filters.put(name, f);
        return f;
    }

    /* Mappings keep their order; "match after" ones stay after the others. */
    void addFilterMap(FilterHolder.FilterMap m, boolean after) {
        if (after) {
            filterMaps.add(m);
        } else {
            filterMaps.add(matchAfterStart, m);
            matchAfterStart++;
        }
    }

    void addListener(EventListener l) {
        listeners.add(l);
    }

    <T> List<T> listeners(Class<T> type) {
        List<T> out = new ArrayList<>();
        for (EventListener l : listeners)
            if (type.isInstance(l))
                out.add(type.cast(l));
        return out;
    }

    void checkStarting() {
        if (started)
            throw new IllegalStateException("the webapp has started: registration is closed");
    }

    /* The container's servlet of static files, named "default" as in
     * Tomcat and Jetty (web.xml files map extensions to it by that name),
     * unless the webapp took the name. */
    private ServletHolder staticFiles() {
        if (staticFiles == null) {
            String name = servlets.containsKey("default") ? "warren-default" : "default";
            staticFiles = new ServletHolder(this, name, DefaultServlet.class.getName(), new DefaultServlet(this));
            servlets.put(name, staticFiles);
        }
        return staticFiles;
    }

    // ---- start and stop

    private void start() throws ServletException {
        if (!mapper.has("/"))
            map("/", staticFiles());
        defaultServlet = mapper.fallback;
        ServletContextEvent e = new ServletContextEvent(context);
        for (ServletContextListener l : listeners(ServletContextListener.class))
            named("listener " + l.getClass().getName(), () -> l.contextInitialized(e));
        for (FilterHolder f : filters.values())
            named("filter \"" + f.name + "\" (" + f.className + ")", f::start);
        List<ServletHolder> early = new ArrayList<>();
        for (ServletHolder s : servlets.values())
            if (s.loadOnStartup >= 0)
                early.add(s);
        early.sort((a, b) -> Integer.compare(a.loadOnStartup, b.loadOnStartup));
        for (ServletHolder s : early)
            named("servlet \"" + s.name + "\" (" + s.className + ")", s::get);
        started = true;
    }

    private interface Step {
        void run() throws Exception;
    }

    /* A start-up step whose failure names the class that failed: the cause
     * the control API reports must say where to look. */
    private static void named(String what, Step step) throws ServletException {
        try {
            step.run();
        } catch (Exception | LinkageError x) {
            // A ServletException's own words, without its class once more.
            throw new ServletException(what + ": " + (x instanceof ServletException ? x.getMessage() : x), x);
        }
    }

    /* Servlets and filters destroyed, sessions ended, then the context's
     * listeners told, in reverse order (the specification's). */
    void stop() {
        for (ServletHolder s : servlets.values())
            s.destroy();
        for (FilterHolder f : filters.values())
            f.destroy();
        try {
            sessions.closeAll();
        } catch (RuntimeException x) {
            log("ending the sessions failed", x);      // the context's listeners still hear of the end
        }
        List<ServletContextListener> ls = listeners(ServletContextListener.class);
        ServletContextEvent e = new ServletContextEvent(context);
        for (int i = ls.size() - 1; i >= 0; i--) {
            try {
                ls.get(i).contextDestroyed(e);
            } catch (RuntimeException x) {
                log("contextDestroyed failed", x);
            }
        }
        try {
            loader.close();
        } catch (IOException x) {
            log("closing the webapp's class loader failed", x);
        }
    }

    // ---- what requests use

    /* The filters of a dispatch, each once: those whose url-pattern
     * matches, in mapping order, then those named for the servlet
     * (Servlet specification §6.2.4). */
    List<FilterHolder> filtersFor(DispatcherType type, String path, String servletName) {
        List<FilterHolder> out = new ArrayList<>();
        // The specification's order: url-pattern mappings, then servlet-name ones.
        for (boolean byName : new boolean[] { false, true })
            for (FilterHolder.FilterMap m : filterMaps)
                if (m.applies(type, path == null ? "" : path, servletName, byName) && !out.contains(m.filter))
                    out.add(m.filter);
        return out;
    }

    /* A webapp path's file, or null when it would leave the webapp. */
    File file(String path) {
        if (path == null || !path.startsWith("/"))
            return null;
        File f = new File(root, path);
        try {
            String canon = f.getCanonicalPath();
            String base = root.getPath();
            if (!canon.equals(base) && !canon.startsWith(base + File.separator))
                return null;
        } catch (IOException e) {
            return null;
        }
        return f;
    }

    void log(String msg) {
        System.err.println(msg);
    }

    void log(String msg, Throwable t) {
        System.err.println(msg);
        t.printStackTrace();
    }
}
