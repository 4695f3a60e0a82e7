package warren;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import javax.servlet.MultipartConfigElement;
import javax.servlet.Servlet;
import javax.servlet.ServletConfig;
import javax.servlet.ServletException;
import javax.servlet.ServletRegistration;
import javax.servlet.ServletSecurityElement;

/*
 * One servlet of the webapp: its declaration, its config (what init()
 * gets) and, once loaded, its instance. Also the registration object the
 * dynamic API hands out. A servlet is created and initialized once, on
 * startup (load-on-startup) or on its first request.
 */
final class ServletHolder extends Holder implements ServletConfig, ServletRegistration.Dynamic {
    Class<? extends Servlet> type;
    private Servlet instance;
    final List<String> patterns = new ArrayList<>();
    int loadOnStartup = -1;
    MultipartConfigElement multipart;
    boolean asyncSupported;

    ServletHolder(WebApp app, String name, String className, Servlet instance) {
        super(app, name, className);
        this.instance = instance;
    }

    /* The servlet, created (unless the webapp gave an instance) and
     * initialized on first use. */
    Servlet get() throws ServletException {
        if (ready)
            return instance;
        synchronized (this) {
            if (!ready) {
                if (instance == null)
                    instance = create();
                initialize(instance);
                ready = true;
            }
            return instance;
        }
    }

    private volatile boolean ready;

    private Servlet create() throws ServletException {
        try {
            Class<?> c = type != null ? type : app.loader.loadClass(className);
            return (Servlet) c.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | ClassCastException | LinkageError e) {
            throw new ServletException("cannot create " + className + ": " + e, e);
        }
    }

    private void initialize(Servlet s) throws ServletException {
        Thread t = Thread.currentThread();
        ClassLoader old = t.getContextClassLoader();
        t.setContextClassLoader(app.loader);
        try {
            s.init(this);
        } finally {
            t.setContextClassLoader(old);
        }
    }

    void destroy() {
        Servlet s = instance;
        if (s == null || !ready)
            return;
        try {
            s.destroy();
        } catch (RuntimeException e) {
            app.log("servlet \"" + name + "\": destroy() failed", e);
        }
    }

    // ---- ServletConfig (the rest is Holder's)

    @Override
    public String getServletName() {
        return name;
    }

    // ---- ServletRegistration.Dynamic

    @Override
    public Set<String> addMapping(String... urlPatterns) {
        app.checkStarting();
        Set<String> conflicts = new HashSet<>();
        for (String p : urlPatterns) {
            if (app.mapper.has(p))
                conflicts.add(p);
        }
        if (!conflicts.isEmpty())
            return conflicts;
        for (String p : urlPatterns) {
            patterns.add(p);
            app.mapper.add(p, this);
        }
        return conflicts;
    }

    @Override
    public Collection<String> getMappings() {
        return Collections.unmodifiableList(patterns);
    }

    @Override
    public String getRunAsRole() {
        return null;
    }

    @Override
    public void setLoadOnStartup(int n) {
        loadOnStartup = n;
    }

    @Override
    public Set<String> setServletSecurity(ServletSecurityElement e) {
        throw new UnsupportedOperationException("Warren: servlet security constraints are not supported");
    }

    @Override
    public void setMultipartConfig(MultipartConfigElement m) {
        multipart = m;
    }

    @Override
    public void setRunAsRole(String role) {
        throw new UnsupportedOperationException("Warren: run-as roles are not supported");
    }

    @Override
    public void setAsyncSupported(boolean b) {
        asyncSupported = b;     // recorded; startAsync is refused all the same
    }
}
