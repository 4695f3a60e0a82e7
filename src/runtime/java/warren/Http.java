package warren;

import java.io.ByteArrayOutputStream;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import javax.servlet.http.Cookie;

/* HTTP's small formats: dates, percent-encoding, query strings, cookies. */
final class Http {
    private Http() {
    }

    /* RFC 9110's IMF-fixdate (two-digit day, unlike RFC_1123_DATE_TIME). */
    private static final DateTimeFormatter DATE =
        DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.US).withZone(ZoneOffset.UTC);

    static String formatDate(long millis) {
        return DATE.format(Instant.ofEpochMilli(millis));
    }

    /* The obsolete forms recipients must still read (RFC 9110 §5.6.7). */
    private static final DateTimeFormatter RFC850 = new java.time.format.DateTimeFormatterBuilder()
        .appendPattern("EEEE, dd-MMM-")
        .appendValueReduced(java.time.temporal.ChronoField.YEAR, 2, 2, 1970)   // "94" is 1994
        .appendPattern(" HH:mm:ss 'GMT'")
        .toFormatter(Locale.US).withZone(ZoneOffset.UTC);
    private static final DateTimeFormatter ASCTIME =
        DateTimeFormatter.ofPattern("EEE MMM ppd HH:mm:ss yyyy", Locale.US).withZone(ZoneOffset.UTC);

    /* Milliseconds, or -1 for a value that is not an HTTP date. */
    static long parseDate(String v) {
        for (DateTimeFormatter f : new DateTimeFormatter[] { DateTimeFormatter.RFC_1123_DATE_TIME, RFC850, ASCTIME }) {
            try {
                return ZonedDateTime.parse(v.trim(), f).toInstant().toEpochMilli();
            } catch (RuntimeException e) {
                // not this form
            }
        }
        return -1;
    }

    /* Percent-decoding; '+' is a space in forms and queries (plus true). A
     * malformed escape is kept as it is, as Tomcat does. */
    static String decode(String s, Charset cs, boolean plus) {
        if (s.indexOf('%') < 0 && !(plus && s.indexOf('+') >= 0))
            return s;
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '%' && i + 2 < s.length() && hex(s.charAt(i + 1)) >= 0 && hex(s.charAt(i + 2)) >= 0) {
                out.write(hex(s.charAt(i + 1)) * 16 + hex(s.charAt(i + 2)));
                i += 2;
            } else if (c == '+' && plus) {
                out.write(' ');
            } else {
                byte[] b = String.valueOf(c).getBytes(cs);
                out.write(b, 0, b.length);
            }
        }
        return new String(out.toByteArray(), cs);
    }

    private static int hex(char c) {
        return Character.digit(c, 16);
    }

    /* name=value&... into params (values appended, names in order). */
    static void parseQuery(String q, Charset cs, Map<String, List<String>> params) {
        if (q == null || q.isEmpty())
            return;
        for (String pair : q.split("&")) {
            if (pair.isEmpty())
                continue;
            int eq = pair.indexOf('=');
            String name = decode(eq < 0 ? pair : pair.substring(0, eq), cs, true);
            String value = eq < 0 ? "" : decode(pair.substring(eq + 1), cs, true);
            params.computeIfAbsent(name, k -> new ArrayList<>()).add(value);
        }
    }

    static Map<String, String[]> toArrays(Map<String, List<String>> params) {
        Map<String, String[]> out = new LinkedHashMap<>();
        params.forEach((k, v) -> out.put(k, v.toArray(new String[0])));
        return out;
    }

    /* The Cookie fields' "a=1; b=2" pairs (RFC 6265); quotes around a value
     * are dropped, a pair without '=' or with a name Cookie refuses is skipped. */
    static List<Cookie> parseCookies(List<String> fields) {
        List<Cookie> out = new ArrayList<>();
        for (String field : fields) {
            for (String pair : field.split(";")) {
                int eq = pair.indexOf('=');
                if (eq <= 0)
                    continue;
                String name = pair.substring(0, eq).trim();
                String value = pair.substring(eq + 1).trim();
                if (value.length() >= 2 && value.startsWith("\"") && value.endsWith("\""))
                    value = value.substring(1, value.length() - 1);
                try {
                    out.add(new Cookie(name, value));
                } catch (IllegalArgumentException e) {
                    // a reserved or invalid name: not a cookie the app can have
                }
            }
        }
        return out;
    }

    /* One Set-Cookie value. */
    static String setCookie(Cookie c) {
        StringBuilder b = new StringBuilder();
        b.append(c.getName()).append('=').append(c.getValue() == null ? "" : c.getValue());
        if (c.getMaxAge() >= 0) {
            b.append("; Max-Age=").append(c.getMaxAge());
            b.append("; Expires=").append(formatDate(System.currentTimeMillis() + c.getMaxAge() * 1000L));
        }
        if (c.getDomain() != null)
            b.append("; Domain=").append(c.getDomain());
        if (c.getPath() != null)
            b.append("; Path=").append(c.getPath());
        if (c.getSecure())
            b.append("; Secure");
        if (c.isHttpOnly())
            b.append("; HttpOnly");
        return b.toString();
    }

    /* A path with its "." and ".." segments resolved (and "//" kept as
     * they are), or null when ".." would climb above the root. */
    static String normalize(String path) {
        if (!path.contains("/."))
            return path;
        java.util.ArrayDeque<String> out = new java.util.ArrayDeque<>();
        String[] segs = path.split("/", -1);
        for (int i = 1; i < segs.length; i++) {
            String seg = segs[i];
            boolean last = i == segs.length - 1;
            if (seg.equals(".")) {
                if (last)
                    out.addLast("");
            } else if (seg.equals("..")) {
                if (out.pollLast() == null)
                    return null;
                if (last)
                    out.addLast("");
            } else {
                out.addLast(seg);
            }
        }
        return "/" + String.join("/", out);
    }

    static String escapeHtml(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
            case '<': b.append("&lt;"); break;
            case '>': b.append("&gt;"); break;
            case '&': b.append("&amp;"); break;
            case '"': b.append("&quot;"); break;
            default: b.append(c);
            }
        }
        return b.toString();
    }

    /* The charset parameter of a Content-Type, or null. */
    static String charsetOf(String contentType) {
        if (contentType == null)
            return null;
        for (String part : contentType.split(";")) {
            String p = part.trim();
            if (p.regionMatches(true, 0, "charset=", 0, 8)) {
                String v = p.substring(8).trim();
                if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\""))
                    v = v.substring(1, v.length() - 1);
                return v;
            }
        }
        return null;
    }

    /* A Content-Type without its charset parameter. */
    static String withoutCharset(String contentType) {
        StringBuilder b = new StringBuilder();
        for (String part : contentType.split(";")) {
            if (part.trim().regionMatches(true, 0, "charset=", 0, 8))
                continue;
            if (b.length() > 0)
                b.append(';');
            b.append(part);
        }
        return b.toString().trim();
    }

    static final Charset LATIN1 = StandardCharsets.ISO_8859_1;
    static final Charset UTF8 = StandardCharsets.UTF_8;

    private static final Map<String, String> TYPES = Map.ofEntries(
        Map.entry("html", "text/html"), Map.entry("htm", "text/html"),
        Map.entry("css", "text/css"), Map.entry("js", "text/javascript"),
        Map.entry("mjs", "text/javascript"), Map.entry("json", "application/json"),
        Map.entry("txt", "text/plain"), Map.entry("xml", "application/xml"),
        Map.entry("png", "image/png"), Map.entry("jpg", "image/jpeg"),
        Map.entry("jpeg", "image/jpeg"), Map.entry("gif", "image/gif"),
        Map.entry("svg", "image/svg+xml"), Map.entry("ico", "image/x-icon"),
        Map.entry("webp", "image/webp"), Map.entry("pdf", "application/pdf"),
        Map.entry("woff", "font/woff"), Map.entry("woff2", "font/woff2"),
        Map.entry("wasm", "application/wasm"), Map.entry("zip", "application/zip"),
        Map.entry("csv", "text/csv"), Map.entry("mp4", "video/mp4"));

    /* The built-in type of a file name's extension, or null. */
    static String mimeType(String name) {
        int dot = name.lastIndexOf('.');
        if (dot < 0 || name.indexOf('/', dot) >= 0)
            return null;
        return TYPES.get(name.substring(dot + 1).toLowerCase(Locale.ROOT));
    }
}
