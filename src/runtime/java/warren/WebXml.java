package warren;

import java.io.File;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import javax.servlet.DispatcherType;
import javax.servlet.MultipartConfigElement;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;

import org.w3c.dom.Element;
import org.w3c.dom.Node;

/*
 * WEB-INF/web.xml, read into plain lists: what the webapp declares, not yet
 * loaded. Elements are matched by local name, so any version of the
 * schema (and none) reads the same.
 */
final class WebXml {
    static final class ServletDef {
        String name, className, jspFile;
        Map<String, String> params = new LinkedHashMap<>();
        int loadOnStartup = -1;
        MultipartConfigElement multipart;       // null without multipart-config
        List<String> patterns = new ArrayList<>();
    }

    static final class FilterDef {
        String name, className;
        Map<String, String> params = new LinkedHashMap<>();
    }

    static final class FilterMapDef {
        String filter;
        List<String> patterns = new ArrayList<>();
        List<String> servlets = new ArrayList<>();
        EnumSet<DispatcherType> types = EnumSet.noneOf(DispatcherType.class);
    }

    String displayName;
    boolean metadataComplete;
    Map<String, String> contextParams = new LinkedHashMap<>();
    List<String> listeners = new ArrayList<>();
    Map<String, ServletDef> servlets = new LinkedHashMap<>();
    /* Mappings of servlets web.xml does not declare: the container's
     * "default" (as Tomcat's and Jetty's), else an error. */
    Map<String, List<String>> otherMappings = new LinkedHashMap<>();
    Map<String, FilterDef> filters = new LinkedHashMap<>();
    List<FilterMapDef> filterMaps = new ArrayList<>();
    List<String> welcomeFiles = new ArrayList<>();
    Map<Integer, String> errorCodes = new LinkedHashMap<>();
    Map<String, String> errorTypes = new LinkedHashMap<>();
    String defaultErrorPage;
    Map<String, String> mimeTypes = new LinkedHashMap<>();
    int sessionTimeout = 30;
    /* session-config/cookie-config: name, domain, path, http-only, secure,
     * max-age, each null when not given. */
    Map<String, String> sessionCookie = new LinkedHashMap<>();
    String requestEncoding, responseEncoding;
    boolean welcomeGiven;

    /* The descriptor, or an empty one when the file is not there. */
    static WebXml read(File file) throws Exception {
        WebXml w = new WebXml();
        if (!file.isFile())
            return w;
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        f.setExpandEntityReferences(false);
        // No DTD or schema fetched from the network while a worker starts.
        f.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        DocumentBuilder b = f.newDocumentBuilder();
        b.setErrorHandler(null);
        Element root;
        try {
            root = b.parse(file).getDocumentElement();
        } catch (org.xml.sax.SAXException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
        try {
            w.declarations(root);
        } catch (IllegalArgumentException e) {
            // A bad number, dispatcher or reference: the file and what is wrong.
            throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
        }
        return w;
    }

    private void declarations(Element root) {
        metadataComplete = "true".equalsIgnoreCase(root.getAttribute("metadata-complete"));
        displayName = text(root, "display-name");
        for (Element e : children(root, "context-param"))
            contextParams.put(text(e, "param-name"), text(e, "param-value"));
        for (Element e : children(root, "listener"))
            listeners.add(text(e, "listener-class"));
        for (Element e : children(root, "servlet"))
            servlet(e);
        for (Element e : children(root, "servlet-mapping")) {
            String name = text(e, "servlet-name");
            ServletDef s = servlets.get(name);
            List<String> into = s != null ? s.patterns : otherMappings.computeIfAbsent(name, k -> new ArrayList<>());
            for (Element p : children(e, "url-pattern"))
                into.add(p.getTextContent().trim());
        }
        for (Element e : children(root, "filter"))
            filter(e);
        for (Element e : children(root, "filter-mapping"))
            filterMap(e);
        for (Element e : children(root, "welcome-file-list")) {
            welcomeGiven = true;
            for (Element f2 : children(e, "welcome-file"))
                welcomeFiles.add(f2.getTextContent().trim());
        }
        for (Element e : children(root, "error-page"))
            errorPage(e);
        for (Element e : children(root, "mime-mapping"))
            mimeTypes.put(text(e, "extension"), text(e, "mime-type"));
        for (Element e : children(root, "session-config")) {
            String t = text(e, "session-timeout");
            if (t != null)
                sessionTimeout = Integer.parseInt(t);
            for (Element c : children(e, "cookie-config"))
                for (String n : new String[] { "name", "domain", "path", "http-only", "secure", "max-age" })
                    if (text(c, n) != null)
                        sessionCookie.put(n, text(c, n));
            if (sessionCookie.containsKey("max-age"))
                Integer.parseInt(sessionCookie.get("max-age"));     // a bad number: an error naming this file
        }
        requestEncoding = text(root, "request-character-encoding");
        responseEncoding = text(root, "response-character-encoding");
    }

    private void servlet(Element e) {
        ServletDef s = new ServletDef();
        s.name = text(e, "servlet-name");
        s.className = text(e, "servlet-class");
        s.jspFile = text(e, "jsp-file");
        params(e, s.params);
        String los = text(e, "load-on-startup");
        if (los != null)
            s.loadOnStartup = los.isEmpty() ? 0 : Integer.parseInt(los);
        for (Element m : children(e, "multipart-config"))
            s.multipart = new MultipartConfigElement(orEmpty(text(m, "location")), number(m, "max-file-size"),
                                                     number(m, "max-request-size"),
                                                     (int) number(m, "file-size-threshold"));
        servlets.put(s.name, s);
    }

    private void filter(Element e) {
        FilterDef f = new FilterDef();
        f.name = text(e, "filter-name");
        f.className = text(e, "filter-class");
        params(e, f.params);
        filters.put(f.name, f);
    }

    private void filterMap(Element e) {
        FilterMapDef m = new FilterMapDef();
        m.filter = text(e, "filter-name");
        for (Element p : children(e, "url-pattern"))
            m.patterns.add(p.getTextContent().trim());
        for (Element p : children(e, "servlet-name"))
            m.servlets.add(p.getTextContent().trim());
        for (Element p : children(e, "dispatcher"))
            m.types.add(DispatcherType.valueOf(p.getTextContent().trim()));
        if (m.types.isEmpty())
            m.types.add(DispatcherType.REQUEST);
        filterMaps.add(m);
    }

    private void errorPage(Element e) {
        String code = text(e, "error-code"), type = text(e, "exception-type");
        String location = text(e, "location");
        if (code != null)
            errorCodes.put(Integer.valueOf(code), location);
        else if (type != null)
            errorTypes.put(type, location);
        else
            defaultErrorPage = location;
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }

    /* A number element, -1 when absent (the API's "no limit"). */
    private static long number(Element parent, String name) {
        String t = text(parent, name);
        return t == null || t.isEmpty() ? -1 : Long.parseLong(t);
    }

    private static void params(Element e, Map<String, String> into) {
        for (Element p : children(e, "init-param"))
            into.put(text(p, "param-name"), text(p, "param-value"));
    }

    static List<Element> children(Element parent, String name) {
        List<Element> out = new ArrayList<>();
        for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling())
            if (n instanceof Element && name.equals(localName(n)))
                out.add((Element) n);
        return out;
    }

    private static String localName(Node n) {
        return n.getLocalName() != null ? n.getLocalName() : n.getNodeName();
    }

    /* The trimmed text of the first child element called name, or null. */
    static String text(Element parent, String name) {
        List<Element> c = children(parent, name);
        return c.isEmpty() ? null : c.get(0).getTextContent().trim();
    }
}
