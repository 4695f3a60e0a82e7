package warren;

import java.io.File;
import java.io.FileInputStream;
import java.io.FileNotFoundException;
import java.io.InputStream;
import java.net.MalformedURLException;
import java.net.URL;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Enumeration;
import java.util.EventListener;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

import javax.servlet.Filter;
import javax.servlet.FilterRegistration;
import javax.servlet.RequestDispatcher;
import javax.servlet.Servlet;
import javax.servlet.ServletContext;
import javax.servlet.ServletContextAttributeEvent;
import javax.servlet.ServletContextAttributeListener;
import javax.servlet.ServletException;
import javax.servlet.ServletRegistration;
import javax.servlet.SessionCookieConfig;
import javax.servlet.SessionTrackingMode;
import javax.servlet.descriptor.JspConfigDescriptor;

/*
 * The webapp's ServletContext: its parameters, attributes, files and the
 * registration API (which only works while the webapp starts, as the
 * specification says). The state itself lives in WebApp.
 */
final class Context implements ServletContext {
    static final String SERVER_INFO = "Warren";

    private final WebApp app;
    final Map<String, String> initParams = new LinkedHashMap<>();
    private final Map<String, Object> attributes = new ConcurrentHashMap<>();

    Context(WebApp app) {
        this.app = app;
    }

    @Override
    public String getContextPath() {
        return "";
    }

    @Override
    public ServletContext getContext(String uri) {
        return uri != null && uri.startsWith("/") ? this : null;   // one webapp, at the root
    }

    /* Unit's Java module implements Servlet 3.1; the API classes are 4.0's. */
    @Override
    public int getMajorVersion() {
        return 3;
    }

    @Override
    public int getMinorVersion() {
        return 1;
    }

    @Override
    public int getEffectiveMajorVersion() {
        return 3;
    }

    @Override
    public int getEffectiveMinorVersion() {
        return 1;
    }

    @Override
    public String getMimeType(String file) {
        int dot = file.lastIndexOf('.');
        if (dot >= 0) {
            String t = app.mimeTypes.get(file.substring(dot + 1));
            if (t != null)
                return t;
        }
        return Http.mimeType(file);
    }

    @Override
    public Set<String> getResourcePaths(String path) {
        File dir = app.file(path);
        if (dir == null || !dir.isDirectory())
            return null;
        String base = path.endsWith("/") ? path : path + "/";
        Set<String> out = new TreeSet<>();
        String[] names = dir.list();
        if (names != null)
            for (String n : names)
                out.add(base + n + (new File(dir, n).isDirectory() ? "/" : ""));
        return out;
    }

    @Override
    public URL getResource(String path) throws MalformedURLException {
        if (path == null || !path.startsWith("/"))
            throw new MalformedURLException("a resource path starts with '/': " + path);
        File f = app.file(path);
        return f != null && f.exists() ? f.toURI().toURL() : null;
    }

    @Override
    public InputStream getResourceAsStream(String path) {
        File f = app.file(path);
        try {
            return f != null && f.isFile() ? new FileInputStream(f) : null;
        } catch (FileNotFoundException e) {
            return null;
        }
    }

    @Override
    public RequestDispatcher getRequestDispatcher(String path) {
        if (path == null || !path.startsWith("/"))
            return null;
        int q = path.indexOf('?');
        String p = Http.normalize(q < 0 ? path : path.substring(0, q));
        return p == null ? null : new Dispatcher(app, q < 0 ? p : p + path.substring(q));
    }

    @Override
    public RequestDispatcher getNamedDispatcher(String name) {
        ServletHolder s = app.servlets.get(name);
        return s == null ? null : new Dispatcher(app, s);
    }

    @Override
    @Deprecated
    public Servlet getServlet(String name) {
        return null;
    }

    @Override
    @Deprecated
    public Enumeration<Servlet> getServlets() {
        return Collections.emptyEnumeration();
    }

    @Override
    @Deprecated
    public Enumeration<String> getServletNames() {
        return Collections.emptyEnumeration();
    }

    @Override
    public void log(String msg) {
        app.log(msg);
    }

    @Override
    @Deprecated
    public void log(Exception e, String msg) {
        app.log(msg, e);
    }

    @Override
    public void log(String msg, Throwable t) {
        app.log(msg, t);
    }

    @Override
    public String getRealPath(String path) {
        if (path == null)
            return null;
        File f = app.file(path.startsWith("/") ? path : "/" + path);
        return f == null ? null : f.getPath();
    }

    @Override
    public String getServerInfo() {
        return SERVER_INFO;
    }

    @Override
    public String getInitParameter(String name) {
        return initParams.get(name);
    }

    @Override
    public Enumeration<String> getInitParameterNames() {
        return Collections.enumeration(initParams.keySet());
    }

    @Override
    public boolean setInitParameter(String name, String value) {
        app.checkStarting();
        return initParams.putIfAbsent(name, value) == null;
    }

    @Override
    public Object getAttribute(String name) {
        return attributes.get(name);
    }

    @Override
    public Enumeration<String> getAttributeNames() {
        return Collections.enumeration(new TreeSet<>(attributes.keySet()));
    }

    @Override
    public void setAttribute(String name, Object value) {
        if (value == null) {
            removeAttribute(name);
            return;
        }
        Object old = attributes.put(name, value);
        ServletContextAttributeEvent e = new ServletContextAttributeEvent(this, name, old != null ? old : value);
        for (ServletContextAttributeListener l : app.listeners(ServletContextAttributeListener.class)) {
            if (old != null)
                l.attributeReplaced(e);
            else
                l.attributeAdded(e);
        }
    }

    @Override
    public void removeAttribute(String name) {
        Object old = attributes.remove(name);
        if (old == null)
            return;
        ServletContextAttributeEvent e = new ServletContextAttributeEvent(this, name, old);
        for (ServletContextAttributeListener l : app.listeners(ServletContextAttributeListener.class))
            l.attributeRemoved(e);
    }

    @Override
    public String getServletContextName() {
        return app.displayName;
    }

    // ---- the registration API

    @Override
    public ServletRegistration.Dynamic addServlet(String name, String className) {
        return app.addServlet(name, className, null, null);
    }

    @Override
    public ServletRegistration.Dynamic addServlet(String name, Servlet servlet) {
        return app.addServlet(name, servlet.getClass().getName(), null, servlet);
    }

    @Override
    public ServletRegistration.Dynamic addServlet(String name, Class<? extends Servlet> c) {
        return app.addServlet(name, c.getName(), c, null);
    }

    @Override
    public ServletRegistration.Dynamic addJspFile(String name, String jspFile) {
        if (!Jsp.available(app.loader))
            throw new UnsupportedOperationException("Warren: JSP needs Apache Jasper (" + jspFile + ")");
        return Jsp.servlet(app, name, jspFile);
    }

    @Override
    public <T extends Servlet> T createServlet(Class<T> c) throws ServletException {
        return create(c);
    }

    @Override
    public ServletRegistration getServletRegistration(String name) {
        return app.servlets.get(name);
    }

    @Override
    public Map<String, ? extends ServletRegistration> getServletRegistrations() {
        return Collections.unmodifiableMap(app.servlets);
    }

    @Override
    public FilterRegistration.Dynamic addFilter(String name, String className) {
        return app.addFilter(name, className, null, null);
    }

    @Override
    public FilterRegistration.Dynamic addFilter(String name, Filter filter) {
        return app.addFilter(name, filter.getClass().getName(), null, filter);
    }

    @Override
    public FilterRegistration.Dynamic addFilter(String name, Class<? extends Filter> c) {
        return app.addFilter(name, c.getName(), c, null);
    }

    @Override
    public <T extends Filter> T createFilter(Class<T> c) throws ServletException {
        return create(c);
    }

    @Override
    public FilterRegistration getFilterRegistration(String name) {
        return app.filters.get(name);
    }

    @Override
    public Map<String, ? extends FilterRegistration> getFilterRegistrations() {
        return Collections.unmodifiableMap(app.filters);
    }

    @Override
    public SessionCookieConfig getSessionCookieConfig() {
        return app.sessions.cookieConfig;
    }

    @Override
    public void setSessionTrackingModes(Set<SessionTrackingMode> modes) {
        app.checkStarting();
        if (!modes.isEmpty() && !modes.equals(EnumSet.of(SessionTrackingMode.COOKIE)))
            throw new IllegalArgumentException("Warren tracks sessions with cookies only");
    }

    @Override
    public Set<SessionTrackingMode> getDefaultSessionTrackingModes() {
        return EnumSet.of(SessionTrackingMode.COOKIE);
    }

    @Override
    public Set<SessionTrackingMode> getEffectiveSessionTrackingModes() {
        return EnumSet.of(SessionTrackingMode.COOKIE);
    }

    @Override
    public void addListener(String className) {
        try {
            addListener(app.loader.loadClass(className).asSubclass(EventListener.class));
        } catch (ClassNotFoundException | ClassCastException e) {
            throw new IllegalArgumentException("listener " + className + ": " + e, e);
        }
    }

    @Override
    public <T extends EventListener> void addListener(T listener) {
        app.checkStarting();
        app.addListener(listener);
    }

    @Override
    public void addListener(Class<? extends EventListener> c) {
        try {
            addListener(create(c));
        } catch (ServletException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    @Override
    public <T extends EventListener> T createListener(Class<T> c) throws ServletException {
        return create(c);
    }

    private static <T> T create(Class<T> c) throws ServletException {
        try {
            return c.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new ServletException("cannot create " + c.getName() + ": " + e, e);
        }
    }

    @Override
    public JspConfigDescriptor getJspConfigDescriptor() {
        return null;
    }

    @Override
    public ClassLoader getClassLoader() {
        return app.loader;
    }

    @Override
    public void declareRoles(String... roles) {
        app.checkStarting();    // no security: the roles are not used
    }

    @Override
    public String getVirtualServerName() {
        return "warren";
    }

    @Override
    public int getSessionTimeout() {
        return app.sessions.timeoutMinutes;
    }

    @Override
    public void setSessionTimeout(int minutes) {
        app.checkStarting();
        app.sessions.timeoutMinutes = minutes;
    }

    @Override
    public String getRequestCharacterEncoding() {
        return app.requestEncoding;
    }

    @Override
    public void setRequestCharacterEncoding(String enc) {
        app.checkStarting();
        app.requestEncoding = enc;
    }

    @Override
    public String getResponseCharacterEncoding() {
        return app.responseEncoding;
    }

    @Override
    public void setResponseCharacterEncoding(String enc) {
        app.checkStarting();
        app.responseEncoding = enc;
    }
}
