package warren;

import java.util.HashMap;
import java.util.Map;

/*
 * URL patterns to servlets, by the Servlet specification's order (§12.1):
 * an exact path, then the longest "/prefix/*", then "*.ext", then the
 * default servlet ("/"). "" maps the context root alone.
 */
final class Mapper {
    /* What a path maps to: the servlet and how the path splits. */
    static final class Match {
        final ServletHolder servlet;
        final String servletPath;
        final String pathInfo;
        final String pattern;

        Match(ServletHolder servlet, String servletPath, String pathInfo, String pattern) {
            this.servlet = servlet;
            this.servletPath = servletPath;
            this.pathInfo = pathInfo;
            this.pattern = pattern;
        }
    }

    private final Map<String, ServletHolder> exact = new HashMap<>();
    private final Map<String, ServletHolder> prefix = new HashMap<>();   // without "/*"
    private final Map<String, ServletHolder> extension = new HashMap<>();
    private ServletHolder root;          // ""
    ServletHolder fallback;              // "/"

    boolean has(String p) {
        if (p.equals("/"))
            return fallback != null;
        if (p.isEmpty())
            return root != null;
        if (p.endsWith("/*"))
            return prefix.containsKey(p.substring(0, p.length() - 2));
        if (p.startsWith("*."))
            return extension.containsKey(p.substring(2));
        return exact.containsKey(p);
    }

    void add(String p, ServletHolder s) {
        if (p.equals("/"))
            fallback = s;
        else if (p.isEmpty())
            root = s;
        else if (p.endsWith("/*"))
            prefix.put(p.substring(0, p.length() - 2), s);
        else if (p.startsWith("*."))
            extension.put(p.substring(2), s);
        else if (p.startsWith("/"))
            exact.put(p, s);
        else
            throw new IllegalArgumentException("url-pattern \"" + p + "\" is not a servlet pattern");
    }

    /* The servlet for a (decoded) path; null only when nothing maps it and
     * there is no default servlet. */
    Match match(String path) {
        if (path.equals("/") && root != null)
            return new Match(root, "", "/", "");
        ServletHolder s = exact.get(path);
        if (s != null)
            return new Match(s, path, null, path);
        for (String p = path; ; ) {
            s = prefix.get(p);
            if (s != null) {
                String info = path.substring(p.length());
                return new Match(s, p, info.isEmpty() ? null : info, p + "/*");
            }
            if (p.isEmpty())
                break;
            p = p.substring(0, p.lastIndexOf('/'));
        }
        int slash = path.lastIndexOf('/'), dot = path.lastIndexOf('.');
        if (dot > slash) {
            s = extension.get(path.substring(dot + 1));
            if (s != null)
                return new Match(s, path, null, "*" + path.substring(dot));
        }
        return fallback == null ? null : new Match(fallback, path, null, "/");
    }

    /* A filter's url-pattern against a path (the same kinds of pattern). */
    static boolean matches(String pattern, String path) {
        if (pattern.equals("/*") || pattern.equals("/"))
            return true;
        if (pattern.endsWith("/*")) {
            String p = pattern.substring(0, pattern.length() - 2);
            return path.equals(p) || path.startsWith(p + "/");
        }
        if (pattern.startsWith("*."))
            return path.endsWith(pattern.substring(1)) && path.lastIndexOf('/') < path.lastIndexOf('.');
        return pattern.equals(path);
    }
}
