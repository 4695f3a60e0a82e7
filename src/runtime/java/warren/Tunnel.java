package warren;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

import javax.servlet.ReadListener;
import javax.servlet.ServletInputStream;
import javax.servlet.ServletOutputStream;
import javax.servlet.WriteListener;
import javax.servlet.http.HttpUpgradeHandler;
import javax.servlet.http.WebConnection;

/*
 * An upgraded request (Servlet 3.1 HTTP upgrade): once its 101 went out,
 * the request is a tunnel to the client (warren.h, "Upgrades"), and the
 * handler the servlet asked for gets it as a WebConnection, in a thread of
 * its own: the serving thread goes back to take other requests, so a
 * worker with "threads": 1 still serves while WebSockets are open.
 *
 * Reads and writes may come from different threads at once (a WebSocket
 * reads in its tunnel's thread and is written to from anywhere); libwarren
 * serializes them on the context's lock (the worker's context is always
 * the threaded kind, main.c). What must never overlap a call is the end:
 * warren_finish frees the request. So every call holds the shared side of
 * `calls`, and the end takes the exclusive side, after ending the output,
 * which makes the router close the client's connection and so wakes a
 * read blocked on it.
 *
 * On a context of one thread (warren_init: one serving thread, and a
 * webapp not seen to upgrade, WebApp.upgrades) there is no room for that:
 * the tunnel runs in the serving thread, and its libwarren calls take
 * turns (a write waits while another thread's read is blocked).
 *
 * The streams block. A ReadListener is called from the tunnel's thread
 * when bytes arrived (isReady() is true while some are buffered); a
 * WriteListener is called once, as every write is possible at once (a
 * write blocks while the client is slow).
 */
final class Tunnel implements WebConnection, Runnable {
    /* Tunnels take at least one stream, even from the serving threads. */
    private static final int MIN_TUNNELS = 1;
    /* Upgraded requests each worker holds at most (channel). */
    private static Semaphore room = new Semaphore(MIN_TUNNELS);
    /* The context is the threaded kind: a tunnel has a thread of its own.
     * Else (one serving thread, a webapp not seen to upgrade: WebApp) the
     * tunnel runs in the serving thread, and its calls take turns. */
    private static boolean shared;
    private static final Set<Tunnel> open = ConcurrentHashMap.newKeySet();
    private static final byte[] NOTHING = new byte[0];
    /* How long the channel's end waits for the tunnels' threads, so their
     * handlers close (a WebSocket endpoint hears 1006) and are destroyed
     * before the webapp is; one that takes longer is left behind. */
    private static final long DRAIN_WAIT_MS = 5000;

    final long handle;
    final WebApp app;
    final long[] websocket;             // settings.http.websocket (Native.WS_*)
    private final String what;          // "GET /chat", for the log
    private final HttpUpgradeHandler handler;
    private final ReentrantReadWriteLock calls = new ReentrantReadWriteLock();
    private final Object writing = new Object();
    private boolean gone;               // no libwarren call any more (under calls, exclusive)
    private boolean outputEnded;        // under writing
    private boolean closed;             // close() asked, or the client left (under this)
    private volatile boolean eof;       // the client's side ended
    private boolean initDone;           // handler.init returned (under this)
    private final Input input = new Input();
    private final Output output = new Output();
    private volatile Thread thread;     // its own, on a shared context

    static void channel(int streams, int threads) {
        room = new Semaphore(Math.max(streams - threads, MIN_TUNNELS));
        shared = streams > 1;
    }

    /* A place for one more tunnel; false when the worker holds its most. */
    static boolean reserve() {
        return room.tryAcquire();
    }

    /* The place of an upgrade that did not happen (no 101 went out). */
    static void unreserve() {
        room.release();
    }

    Tunnel(long handle, WebApp app, String what, HttpUpgradeHandler handler) throws IOException {
        this.handle = handle;
        this.app = app;
        this.what = what;
        this.handler = handler;
        this.websocket = Native.websocket(handle);
    }

    /* The 101 is out: the handler's thread starts, the request is its own
     * (on a context of one thread, it runs in the caller's). */
    void start() {
        open.add(this);
        if (!shared) {
            run();
            return;
        }
        thread = new Thread(this, "warren-upgrade " + what);
        thread.setDaemon(true);
        thread.start();
    }

    /* The lock a libwarren call holds: shared, unless the context is not. */
    private Lock call() {
        return shared ? calls.readLock() : calls.writeLock();
    }

    @Override
    public void run() {
        Thread.currentThread().setContextClassLoader(app.loader);
        try {
            handler.init(this);
            listen();
        } catch (IOException | RuntimeException | Error e) {
            app.log("warren: upgraded " + what + ": the handler failed", e);
        } finally {
            close();
            end();
            try {
                handler.destroy();
            } catch (RuntimeException | Error e) {
                app.log("warren: upgraded " + what + ": destroy failed", e);
            }
            open.remove(this);
            room.release();
        }
    }

    /* After init: the listeners the handler set, until the tunnel ends. */
    private void listen() throws IOException {
        WriteListener w;
        synchronized (this) {
            initDone = true;
            w = output.listener;
        }
        if (w != null)
            w.onWritePossible();
        for (;;) {
            ReadListener r;
            synchronized (this) {
                while (!closed && input.listener == null) {
                    try {
                        wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                if (closed)
                    return;
                r = input.listener;
            }
            input.serve(r);
            if (!input.readable())
                return;
        }
    }

    /* The client's side ended or failed: nothing more will come. */
    private synchronized void clientGone() {
        eof = true;
        closed = true;
        notifyAll();
    }

    /* Up to len bytes the client sent; -1 once it ended its side (or the
     * tunnel is over). Blocks until some arrive. */
    int read(byte[] b, int off, int len) throws IOException {
        if (len == 0)
            return 0;
        Lock l = call();
        l.lock();
        try {
            if (gone || eof)
                return -1;
            int n = Native.read(handle, b, off, len);
            if (n == 0) {
                clientGone();
                return -1;
            }
            return n;
        } catch (IOException e) {
            clientGone();
            throw e;
        } finally {
            l.unlock();
        }
    }

    /* Bytes to the client, as they are; blocks while it is slow. */
    void write(byte[] b, int off, int len) throws IOException {
        synchronized (writing) {
            Lock l = call();
            l.lock();
            try {
                if (gone || outputEnded)
                    throw new IOException("warren: the upgraded connection is closed");
                Native.write(handle, b, off, len);
            } finally {
                l.unlock();
            }
        }
    }

    /* Our side ends: the router sends what it has and closes the client's
     * connection, which ends the client's side too. */
    private void endOutput() {
        synchronized (writing) {
            if (outputEnded)
                return;
            outputEnded = true;
            Lock l = call();
            l.lock();
            try {
                if (!gone)
                    Native.writeEnd(handle, NOTHING, 0, 0);
            } catch (IOException e) {
                // the client left first: nothing to end
            } finally {
                l.unlock();
            }
        }
    }

    /* WebConnection.close: the tunnel ends (the handler's destroy follows,
     * in the tunnel's thread). */
    @Override
    public void close() {
        endOutput();
        synchronized (this) {
            closed = true;
            notifyAll();
        }
    }

    /* Once no call is under way: the request ends (warren_finish). */
    private void end() {
        calls.writeLock().lock();
        try {
            if (!gone)
                Native.finish(handle);
            gone = true;
        } finally {
            calls.writeLock().unlock();
        }
    }

    /* The channel ended (the worker stops): no tunnel may touch the
     * context again, which is freed next. Calls under way return, as the
     * channel is gone; then each tunnel's thread sees its client gone and
     * ends, which this waits for (a while). */
    static void drain() {
        List<Tunnel> ending = new ArrayList<>(open);
        for (Tunnel t : ending) {
            t.calls.writeLock().lock();
            t.gone = true;
            t.calls.writeLock().unlock();
            t.clientGone();
        }
        long end = System.currentTimeMillis() + DRAIN_WAIT_MS;
        try {
            for (Tunnel t : ending) {
                long left = end - System.currentTimeMillis();
                if (t.thread != null && left > 0)
                    t.thread.join(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public ServletInputStream getInputStream() {
        return input;
    }

    @Override
    public ServletOutputStream getOutputStream() {
        return output;
    }

    /* The client's bytes. Reads of a few bytes are served from a buffer
     * (and a ReadListener is called when it has some). */
    private final class Input extends ServletInputStream {
        private static final int SIZE = 8192;
        private final byte[] buf = new byte[SIZE];
        private int pos, lim;
        ReadListener listener;

        @Override
        public int read() throws IOException {
            if (pos == lim && !fill())
                return -1;
            return buf[pos++] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (off < 0 || len < 0 || off > b.length - len)
                throw new IndexOutOfBoundsException();
            if (len == 0)
                return 0;
            if (pos < lim) {
                int n = Math.min(len, lim - pos);
                System.arraycopy(buf, pos, b, off, n);
                pos += n;
                return n;
            }
            return Tunnel.this.read(b, off, len);
        }

        private boolean fill() throws IOException {
            int n = Tunnel.this.read(buf, 0, buf.length);
            pos = 0;
            lim = Math.max(n, 0);
            return n > 0;
        }

        @Override
        public int available() {
            return lim - pos;
        }

        @Override
        public boolean isFinished() {
            return eof && pos == lim;
        }

        @Override
        public boolean isReady() {
            return pos < lim || eof;
        }

        boolean readable() {
            return pos < lim || !eof;
        }

        @Override
        public void setReadListener(ReadListener l) {
            if (l == null)
                throw new NullPointerException("setReadListener(null)");
            synchronized (Tunnel.this) {
                if (listener != null)
                    throw new IllegalStateException("a ReadListener is already set");
                listener = l;
                Tunnel.this.notifyAll();
            }
        }

        /* The listener's calls: onDataAvailable while bytes come (the
         * tunnel's thread waits for them), onAllDataRead at the end,
         * onError when the client's side failed. */
        void serve(ReadListener l) {
            try {
                while (true) {
                    if (pos == lim && !fill()) {
                        l.onAllDataRead();
                        return;
                    }
                    l.onDataAvailable();
                    synchronized (Tunnel.this) {
                        if (closed && !eof)
                            return;
                    }
                }
            } catch (IOException e) {
                l.onError(e);
            }
        }

        @Override
        public void close() {
            // the tunnel ends with WebConnection.close
        }
    }

    /* Bytes to the client: each write goes out at once. */
    private final class Output extends ServletOutputStream {
        WriteListener listener;

        @Override
        public void write(int b) throws IOException {
            write(new byte[] { (byte) b }, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (off < 0 || len < 0 || off > b.length - len)
                throw new IndexOutOfBoundsException();
            if (len > 0)
                Tunnel.this.write(b, off, len);
        }

        @Override
        public boolean isReady() {
            return true;
        }

        @Override
        public void setWriteListener(WriteListener l) {
            if (l == null)
                throw new NullPointerException("setWriteListener(null)");
            boolean now;
            synchronized (Tunnel.this) {
                if (listener != null)
                    throw new IllegalStateException("a WriteListener is already set");
                listener = l;
                now = initDone;
            }
            if (now) {
                try {
                    l.onWritePossible();
                } catch (IOException e) {
                    l.onError(e);
                }
            }
        }

        @Override
        public void close() {
            Tunnel.this.close();
        }
    }
}
