package warren;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;

import javax.servlet.DispatcherType;
import javax.servlet.Filter;
import javax.servlet.FilterConfig;
import javax.servlet.FilterRegistration;
import javax.servlet.ServletException;

/*
 * One filter: declaration, config, instance (made and initialized when the
 * webapp starts), and the registration object of the dynamic API. Its
 * mappings are FilterMap entries kept in the webapp's order.
 */
final class FilterHolder extends Holder implements FilterConfig, FilterRegistration.Dynamic {
    Class<? extends Filter> type;
    Filter instance;

    FilterHolder(WebApp app, String name, String className, Filter instance) {
        super(app, name, className);
        this.instance = instance;
    }

    void start() throws ServletException {
        if (instance == null) {
            try {
                Class<?> c = type != null ? type : app.loader.loadClass(className);
                instance = (Filter) c.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | ClassCastException | LinkageError e) {
                throw new ServletException("cannot create " + className + ": " + e, e);
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

        /* By one of its servlet names (byName) or of its url-patterns. */
        boolean applies(DispatcherType t, String path, String servletName, boolean byName) {
            if (!types.contains(t))
                return false;
            if (byName) {
                for (String s : servlets)
                    if (s.equals("*") || s.equals(servletName))
                        return true;
                return false;
            }
            for (String p : patterns)
                if (Mapper.matches(p, path))
                    return true;
            return false;
        }
    }

    // ---- FilterConfig (the rest is Holder's)

    @Override
    public String getFilterName() {
        return name;
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
    public void setAsyncSupported(boolean b) {
        // recorded nowhere: startAsync is refused in every case
    }
}
