package warren;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.FilterConfig;
import javax.servlet.FilterRegistration;
import javax.servlet.ServletContext;
import javax.servlet.ServletException;

/*
 * One filter: declaration, config, instance (made and initialized when the
 * webapp starts), and the registration object of the dynamic API. Its
 * mappings are FilterMap entries kept in the webapp's order.
 */
final class FilterHolder implements FilterConfig, FilterRegistration.Dynamic {
    final WebApp app;
    final String name;
    final String className;
    Class<? extends Filter> type;
    Filter instance;
    final Map<String, String> params = new LinkedHashMap<>();

    FilterHolder(WebApp app, String name, String className, Filter instance) {
        this.app = app;
        this.name = name;
        this.className = className;
        this.instance = instance;
    }

    void start() throws ServletException {
        if (instance == null) {
            try {
                Class<?> c = type != null ? type : app.loader.loadClass(className);
                instance = (Filter) c.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | ClassCastException | LinkageError e) {
                throw new ServletException("filter \"" + name + "\": cannot create " + className + ": " + e, e);
            }
        }
        instance.init(this);
    }

    void destroy() {
        if (instance == null)
            return;
        try {
            instance.destroy();
        } catch (RuntimeException e) {
            app.log("filter \"" + name + "\": destroy() failed", e);
        }
    }

    /* One mapping of a filter, as web.xml's filter-mapping. */
    static final class FilterMap {
        final FilterHolder filter;
        final List<String> patterns = new ArrayList<>();
        final List<String> servlets = new ArrayList<>();
        final EnumSet<DispatcherType> types;

        FilterMap(FilterHolder filter, EnumSet<DispatcherType> types) {
            this.filter = filter;
            this.types = types == null || types.isEmpty() ? EnumSet.of(DispatcherType.REQUEST) : types;
        }

        boolean applies(DispatcherType t, String path, String servletName) {
            if (!types.contains(t))
                return false;
            for (String s : servlets)
                if (s.equals("*") || s.equals(servletName))
                    return true;
            for (String p : patterns)
                if (Mapper.matches(p, path))
                    return true;
            return false;
        }
    }

    // ---- FilterConfig

    @Override
    public String getFilterName() {
        return name;
    }

    @Override
    public ServletContext getServletContext() {
        return app.context;
    }

    @Override
    public String getInitParameter(String n) {
        return params.get(n);
    }

    @Override
    public Enumeration<String> getInitParameterNames() {
        return Collections.enumeration(params.keySet());
    }

    // ---- FilterRegistration.Dynamic

    @Override
    public void addMappingForServletNames(EnumSet<DispatcherType> types, boolean isMatchAfter, String... names) {
        app.checkStarting();
        FilterMap m = new FilterMap(this, types);
        Collections.addAll(m.servlets, names);
        app.addFilterMap(m, isMatchAfter);
    }

    @Override
    public Collection<String> getServletNameMappings() {
        List<String> out = new ArrayList<>();
        for (FilterMap m : app.filterMaps)
            if (m.filter == this)
                out.addAll(m.servlets);
        return out;
    }

    @Override
    public void addMappingForUrlPatterns(EnumSet<DispatcherType> types, boolean isMatchAfter, String... urls) {
        app.checkStarting();
        FilterMap m = new FilterMap(this, types);
        Collections.addAll(m.patterns, urls);
        app.addFilterMap(m, isMatchAfter);
    }

    @Override
    public Collection<String> getUrlPatternMappings() {
        List<String> out = new ArrayList<>();
        for (FilterMap m : app.filterMaps)
            if (m.filter == this)
                out.addAll(m.patterns);
        return out;
    }

    @Override
    public String getName() {
        return name;
    }

    @Override
    public String getClassName() {
        return className;
    }

    @Override
    public boolean setInitParameter(String n, String v) {
        if (n == null || v == null)
            throw new IllegalArgumentException("init parameter name and value must not be null");
        return params.putIfAbsent(n, v) == null;
    }

    @Override
    public Set<String> setInitParameters(Map<String, String> p) {
        Set<String> clash = new HashSet<>();
        p.forEach((k, v) -> {
            if (!setInitParameter(k, v))
                clash.add(k);
        });
        return clash;
    }

    @Override
    public Map<String, String> getInitParameters() {
        return Collections.unmodifiableMap(params);
    }

    @Override
    public void setAsyncSupported(boolean b) {
        // recorded nowhere: startAsync is refused in every case
    }
}
