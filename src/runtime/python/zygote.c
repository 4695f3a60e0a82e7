/*
 * warren-python as a zygote (src/runtime/common/zygote.c): the application
 * is loaded once, then every worker is forked from this image, so its
 * modules are shared copy-on-write and a worker starts without importing
 * anything. The zygote waits for the prototype with the GIL released (the
 * application's own threads, if it started any, keep running; they are
 * not in the workers, as with any fork).
 *
 * ASGI: a worker returning from wpy_zygote_run() is a plain worker, free
 * to run an asyncio loop over the channel instead of the blocking request
 * loop; the zygote itself must stay loop-free (no loop may be running when
 * it forks).
 */
#include "app/zygote.h"
#include "runtime/common/zygote.h"
#include "runtime/python/wpy.h"

static void *wait_begin(void)
{
    return PyEval_SaveThread();
}

static void wait_end(void *state)
{
    PyEval_RestoreThread(state);
}

/* os.environ was copied when Python started (in the zygote): the worker's
 * own id goes there too, and the zygote's socket out. */
static void environ_update(const char *worker_id)
{
    PyObject *os = PyImport_ImportModule("os");
    PyObject *env = os != NULL ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *id = PyUnicode_FromString(worker_id);
    PyObject *gone;

    if (env == NULL || id == NULL
        || PyMapping_SetItemString(env, WARREN_ENV_WORKER_ID, id) < 0)
        wpy_log_exception("worker: cannot update os.environ");
    gone = env != NULL ? PyObject_CallMethod(env, "pop", "sO", WR_ZYGOTE_ENV_FD,
                                             Py_None) : NULL;
    if (env != NULL && gone == NULL)
        wpy_log_exception("worker: cannot update os.environ");
    Py_XDECREF(gone);
    Py_XDECREF(id);
    Py_XDECREF(env);
    Py_XDECREF(os);
}

static const wr_zygote_hooks_t hooks = {
    .zygote_comm = WPY_ZYGOTE_COMM,
    .worker_comm = WPY_WORKER_COMM,
    .wait_begin = wait_begin,
    .wait_end = wait_end,
    .before_fork = PyOS_BeforeFork,
    .after_fork_parent = PyOS_AfterFork_Parent,
    .after_fork_child = PyOS_AfterFork_Child,
    .worker_env = environ_update,
    .log = wpy_log,
};

int wpy_zygote_run(int fd)
{
    return wr_zygote_run(fd, &hooks);
}
