package warren;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import javax.servlet.ServletContext;
import javax.servlet.http.HttpSession;
import javax.servlet.http.HttpSessionAttributeListener;
import javax.servlet.http.HttpSessionBindingEvent;
import javax.servlet.http.HttpSessionBindingListener;

/* One session, in this worker's memory (Sessions keeps them). */
final class Session implements HttpSession {
    private final Sessions owner;
    volatile String id;
    private final long created = System.currentTimeMillis();
    private volatile long lastAccessed = created;
    private volatile long thisAccess = created;
    private volatile int maxInactive;
    private volatile boolean isNew = true;
    private volatile boolean invalid;
    private final Map<String, Object> attributes = new ConcurrentHashMap<>();

    Session(Sessions owner, String id, int maxInactive) {
        this.owner = owner;
        this.id = id;
        this.maxInactive = maxInactive;
    }

    /* A request that came with this session's cookie. */
    void access() {
        lastAccessed = thisAccess;
        thisAccess = System.currentTimeMillis();
        isNew = false;
    }

    boolean expired(long now) {
        return maxInactive > 0 && now - thisAccess > maxInactive * 1000L;
    }

    boolean valid() {
        return !invalid;
    }

    private void check() {
        if (invalid)
            throw new IllegalStateException("the session was invalidated");
    }

    @Override
    public long getCreationTime() {
        check();
        return created;
    }

    @Override
    public String getId() {
        return id;
    }

    @Override
    public long getLastAccessedTime() {
        check();
        return lastAccessed;
    }

    @Override
    public ServletContext getServletContext() {
        return owner.app.context;
    }

    @Override
    public void setMaxInactiveInterval(int seconds) {
        maxInactive = seconds;
    }

    @Override
    public int getMaxInactiveInterval() {
        return maxInactive;
    }

    @Override
    @Deprecated
    public javax.servlet.http.HttpSessionContext getSessionContext() {
        return null;
    }

    @Override
    public Object getAttribute(String name) {
        check();
        return attributes.get(name);
    }

    @Override
    @Deprecated
    public Object getValue(String name) {
        return getAttribute(name);
    }

    @Override
    public Enumeration<String> getAttributeNames() {
        check();
        return Collections.enumeration(new ArrayList<>(attributes.keySet()));
    }

    @Override
    @Deprecated
    public String[] getValueNames() {
        check();
        return attributes.keySet().toArray(new String[0]);
    }

    @Override
    public void setAttribute(String name, Object value) {
        check();
        if (value == null) {
            removeAttribute(name);
            return;
        }
        // The same object set again is not bound again (nor unbound), as in Tomcat.
        if (value instanceof HttpSessionBindingListener && attributes.get(name) != value)
            ((HttpSessionBindingListener) value).valueBound(new HttpSessionBindingEvent(this, name, value));
        Object old = attributes.put(name, value);
        if (old != null && old != value && old instanceof HttpSessionBindingListener)
            ((HttpSessionBindingListener) old).valueUnbound(new HttpSessionBindingEvent(this, name, old));
        HttpSessionBindingEvent e = new HttpSessionBindingEvent(this, name, old != null ? old : value);
        for (HttpSessionAttributeListener l : owner.app.listeners(HttpSessionAttributeListener.class)) {
            if (old != null)
                l.attributeReplaced(e);
            else
                l.attributeAdded(e);
        }
    }

    @Override
    @Deprecated
    public void putValue(String name, Object value) {
        setAttribute(name, value);
    }

    @Override
    public void removeAttribute(String name) {
        check();
        unbind(name);
    }

    private void unbind(String name) {
        Object old = attributes.remove(name);
        if (old == null)
            return;
        HttpSessionBindingEvent e = new HttpSessionBindingEvent(this, name, old);
        if (old instanceof HttpSessionBindingListener)
            ((HttpSessionBindingListener) old).valueUnbound(e);
        for (HttpSessionAttributeListener l : owner.app.listeners(HttpSessionAttributeListener.class))
            l.attributeRemoved(e);
    }

    @Override
    @Deprecated
    public void removeValue(String name) {
        removeAttribute(name);
    }

    @Override
    public void invalidate() {
        check();
        owner.remove(this);
    }

    /* Sessions.remove: listeners told, attributes unbound, then gone. */
    void end() {
        for (String name : new ArrayList<>(attributes.keySet()))
            unbind(name);
        invalid = true;
    }

    @Override
    public boolean isNew() {
        check();
        return isNew;
    }
}
