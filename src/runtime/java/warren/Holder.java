package warren;

import java.util.Collections;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

import javax.servlet.ServletContext;

/*
 * What a servlet and a filter share: a name, a class, init parameters, and
 * the parts of ServletConfig/FilterConfig and of the registration API
 * that read or set them.
 */
abstract class Holder {
    final WebApp app;
    final String name;
    final String className;
    final Map<String, String> params = new LinkedHashMap<>();

    Holder(WebApp app, String name, String className) {
        this.app = app;
        this.name = name;
        this.className = className;
    }

    public ServletContext getServletContext() {
        return app.context;
    }

    public String getInitParameter(String n) {
        return params.get(n);
    }

    public Enumeration<String> getInitParameterNames() {
        return Collections.enumeration(params.keySet());
    }

    public String getName() {
        return name;
    }

    public String getClassName() {
        return className;
    }

    public boolean setInitParameter(String n, String v) {
        if (n == null || v == null)
            throw new IllegalArgumentException("init parameter name and value must not be null");
        app.checkStarting();
        return params.putIfAbsent(n, v) == null;
    }

    public Set<String> setInitParameters(Map<String, String> p) {
        Set<String> clash = new HashSet<>();
        p.forEach((k, v) -> {
            if (!setInitParameter(k, v))
                clash.add(k);
        });
        return clash;
    }

    public Map<String, String> getInitParameters() {
        return Collections.unmodifiableMap(params);
    }
}
