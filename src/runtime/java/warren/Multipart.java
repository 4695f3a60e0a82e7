package warren;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;

import javax.servlet.MultipartConfigElement;
import javax.servlet.ServletException;
import javax.servlet.http.Part;

/*
 * multipart/form-data (RFC 7578) for servlets with a multipart
 * configuration: the body is read whole (it is bounded by the router's
 * settings.http.max_body_size and the servlet's maxRequestSize), once per
 * request, and split at its boundary.
 */
final class Multipart {
    private Multipart() {
    }

    /* The parts of the request's body; the Request keeps them (the body
     * can be read once). */
    static List<Part> parts(Request req) throws IOException, ServletException {
        String type = req.getContentType();
        String boundary = type == null ? null : parameter(type, "boundary");
        if (type == null || !type.toLowerCase(Locale.ROOT).startsWith("multipart/form-data") || boundary == null)
            throw new ServletException("the request is not multipart/form-data");
        MultipartConfigElement mc = req.match.servlet.multipart;
        byte[] body = readAll(req.getInputStream(), mc.getMaxRequestSize());
        return split(body, ("--" + boundary).getBytes(Http.LATIN1), mc, location(req, mc));
    }

    /* Where Part.write puts a relative name: the configured location, made
     * absolute against the webapp's temporary directory, as the
     * specification says. */
    private static File location(Request req, MultipartConfigElement mc) {
        File tmp = (File) req.app.context.getAttribute(javax.servlet.ServletContext.TEMPDIR);
        String l = mc.getLocation();
        if (l == null || l.isEmpty())
            return tmp;
        File f = new File(l);
        return f.isAbsolute() ? f : new File(tmp, l);
    }

    private static byte[] readAll(InputStream in, long max) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[65536];
        int n;
        while ((n = in.read(buf)) > 0) {
            out.write(buf, 0, n);
            if (max > 0 && out.size() > max)
                throw new IllegalStateException("multipart body over maxRequestSize (" + max + " bytes)");
        }
        return out.toByteArray();
    }

    /* The body is: preamble, "--boundary" CRLF part, (CRLF "--boundary"
     * CRLF part)*, CRLF "--boundary--"; a part is its fields, CRLF CRLF,
     * its bytes. */
    private static List<Part> split(byte[] body, byte[] delim, MultipartConfigElement mc, File location)
            throws ServletException {
        byte[] next = ("\r\n" + new String(delim, Http.LATIN1)).getBytes(Http.LATIN1);
        byte[] blank = "\r\n\r\n".getBytes(Http.LATIN1);
        List<Part> out = new ArrayList<>();
        int at = indexOf(body, delim, 0);
        while (at >= 0) {
            int start = at + delim.length;
            if (start + 1 < body.length && body[start] == '-' && body[start + 1] == '-')
                break;                          // the closing delimiter
            start += 2;                         // CRLF after the delimiter
            int end = indexOf(body, next, start);
            if (end < 0)
                throw new ServletException("multipart body without its closing boundary");
            int headEnd = indexOf(body, blank, start - 2);
            if (headEnd < 0 || headEnd > end)
                throw new ServletException("a multipart part without its header fields");
            String head = headEnd < start ? "" : new String(body, start, headEnd - start, Http.UTF8);
            FormPart p = new FormPart(head);
            p.data = java.util.Arrays.copyOfRange(body, headEnd + 4, Math.max(headEnd + 4, end));
            if (mc.getMaxFileSize() > 0 && p.data.length > mc.getMaxFileSize())
                throw new IllegalStateException("part \"" + p.name + "\" over maxFileSize");
            p.location = location;
            out.add(p);
            at = end + 2;                       // at the delimiter, after its CRLF
        }
        return out;
    }

    private static int indexOf(byte[] hay, byte[] needle, int from) {
        outer:
        for (int i = from; i <= hay.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++)
                if (hay[i + j] != needle[j])
                    continue outer;
            return i;
        }
        return -1;
    }

    /* A parameter of a field value (boundary=..., name="..."), or null. */
    static String parameter(String value, String name) {
        for (String part : value.split(";")) {
            String p = part.trim();
            int eq = p.indexOf('=');
            if (eq > 0 && p.substring(0, eq).trim().equalsIgnoreCase(name)) {
                String v = p.substring(eq + 1).trim();
                if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\""))
                    v = v.substring(1, v.length() - 1);
                return v;
            }
        }
        return null;
    }

    private static final class FormPart implements Part {
        final List<String[]> fields = new ArrayList<>();
        final String name, fileName;
        byte[] data;
        File location;

        FormPart(String head) {
            for (String line : head.split("\r\n")) {
                int colon = line.indexOf(':');
                if (colon > 0)
                    fields.add(new String[] { line.substring(0, colon).trim(), line.substring(colon + 1).trim() });
            }
            String cd = getHeader("Content-Disposition");
            name = cd == null ? "" : String.valueOf(parameter(cd, "name"));
            fileName = cd == null ? null : parameter(cd, "filename");
        }

        @Override
        public InputStream getInputStream() {
            return new ByteArrayInputStream(data);
        }

        @Override
        public String getContentType() {
            return getHeader("Content-Type");
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public String getSubmittedFileName() {
            return fileName;
        }

        @Override
        public long getSize() {
            return data.length;
        }

        @Override
        public void write(String file) throws IOException {
            File f = new File(file);
            if (!f.isAbsolute() && location != null)
                f = new File(location, file);
            Files.write(f.toPath(), data);
        }

        @Override
        public void delete() {
            data = new byte[0];
        }

        @Override
        public String getHeader(String n) {
            for (String[] f : fields)
                if (f[0].equalsIgnoreCase(n))
                    return f[1];
            return null;
        }

        @Override
        public Collection<String> getHeaders(String n) {
            List<String> out = new ArrayList<>();
            for (String[] f : fields)
                if (f[0].equalsIgnoreCase(n))
                    out.add(f[1]);
            return out;
        }

        @Override
        public Collection<String> getHeaderNames() {
            LinkedHashSet<String> out = new LinkedHashSet<>();
            for (String[] f : fields)
                out.add(f[0]);
            return out;
        }
    }
}
