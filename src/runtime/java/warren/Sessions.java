package warren;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

import javax.servlet.SessionCookieConfig;
import javax.servlet.http.Cookie;
import javax.servlet.http.HttpSessionEvent;
import javax.servlet.http.HttpSessionIdListener;
import javax.servlet.http.HttpSessionListener;

/*
 * The sessions of this worker, by id. Ids are 128 random bits; a session
 * unused for its timeout is dropped when next looked up, and all expired
 * ones every SWEEP_EVERY new sessions, so idle ones do not pile up.
 */
final class Sessions {
    private static final int SWEEP_EVERY = 64;

    final WebApp app;
    private final Map<String, Session> all = new ConcurrentHashMap<>();
    private final SecureRandom random = new SecureRandom();
    private final AtomicInteger made = new AtomicInteger();
    int timeoutMinutes = 30;
    final CookieConfig cookieConfig = new CookieConfig();

    Sessions(WebApp app) {
        this.app = app;
    }

    String cookieName() {
        return cookieConfig.name;
    }

    Session find(String id) {
        Session s = all.get(id);
        if (s != null && s.expired(System.currentTimeMillis())) {
            remove(s);
            return null;
        }
        return s;
    }

    Session create() {
        if (made.incrementAndGet() % SWEEP_EVERY == 0)
            sweep();
        Session s = new Session(this, newId(), timeoutMinutes * 60);
        all.put(s.id, s);
        HttpSessionEvent e = new HttpSessionEvent(s);
        for (HttpSessionListener l : app.listeners(HttpSessionListener.class))
            l.sessionCreated(e);
        return s;
    }

    String changeId(Session s) {
        String old = s.id;
        all.remove(old);
        s.id = newId();
        all.put(s.id, s);
        HttpSessionEvent e = new HttpSessionEvent(s);
        for (HttpSessionIdListener l : app.listeners(HttpSessionIdListener.class))
            l.sessionIdChanged(e, old);
        return s.id;
    }

    void remove(Session s) {
        if (all.remove(s.id, s)) {
            HttpSessionEvent e = new HttpSessionEvent(s);
            for (HttpSessionListener l : app.listeners(HttpSessionListener.class))
                l.sessionDestroyed(e);
            s.end();
        }
    }

    private void sweep() {
        long now = System.currentTimeMillis();
        for (Session s : new ArrayList<>(all.values()))
            if (s.expired(now))
                remove(s);
    }

    /* When the webapp stops: every session ends, listeners told. */
    void closeAll() {
        for (Session s : new ArrayList<>(all.values()))
            remove(s);
    }

    private String newId() {
        byte[] b = new byte[16];
        random.nextBytes(b);
        StringBuilder s = new StringBuilder(32);
        for (byte x : b)
            s.append(String.format("%02X", x & 0xff));
        return s.toString();
    }

    /* The session's cookie; Secure also when the request came over TLS
     * (as in Tomcat), so that it is not sent back in clear. */
    Cookie cookie(String id, boolean tls) {
        Cookie c = new Cookie(cookieConfig.name, id);
        c.setPath(cookieConfig.path != null ? cookieConfig.path : "/");
        c.setHttpOnly(cookieConfig.httpOnly);
        c.setSecure(cookieConfig.secure || tls);
        if (cookieConfig.domain != null)
            c.setDomain(cookieConfig.domain);
        if (cookieConfig.maxAge >= 0)
            c.setMaxAge(cookieConfig.maxAge);
        return c;
    }

    /* ServletContext.getSessionCookieConfig: settable while the webapp starts. */
    final class CookieConfig implements SessionCookieConfig {
        String name = "JSESSIONID", domain, path, comment;
        boolean httpOnly = true, secure;
        int maxAge = -1;

        /* web.xml's cookie-config. */
        void configure(Map<String, String> c) {
            name = c.getOrDefault("name", name);
            domain = c.getOrDefault("domain", domain);
            path = c.getOrDefault("path", path);
            httpOnly = Boolean.parseBoolean(c.getOrDefault("http-only", Boolean.toString(httpOnly)));
            secure = Boolean.parseBoolean(c.getOrDefault("secure", Boolean.toString(secure)));
            maxAge = Integer.parseInt(c.getOrDefault("max-age", Integer.toString(maxAge)));
        }

        @Override
        public void setName(String n) {
            app.checkStarting();
            name = n;
        }

        @Override
        public String getName() {
            return name;
        }

        @Override
        public void setDomain(String d) {
            app.checkStarting();
            domain = d;
        }

        @Override
        public String getDomain() {
            return domain;
        }

        @Override
        public void setPath(String p) {
            app.checkStarting();
            path = p;
        }

        @Override
        public String getPath() {
            return path;
        }

        @Override
        public void setComment(String c) {
            app.checkStarting();
            comment = c;
        }

        @Override
        public String getComment() {
            return comment;
        }

        @Override
        public void setHttpOnly(boolean h) {
            app.checkStarting();
            httpOnly = h;
        }

        @Override
        public boolean isHttpOnly() {
            return httpOnly;
        }

        @Override
        public void setSecure(boolean s) {
            app.checkStarting();
            secure = s;
        }

        @Override
        public boolean isSecure() {
            return secure;
        }

        @Override
        public void setMaxAge(int m) {
            app.checkStarting();
            maxAge = m;
        }

        @Override
        public int getMaxAge() {
            return maxAge;
        }
    }
}
