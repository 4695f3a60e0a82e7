/*
 * Validation of "applications": the keys every type shares, the keys of each
 * language module, and isolation (namespaces, id maps, rootfs, Warren's
 * mounts / rlimits / capabilities / seccomp).
 */
#include <limits.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/validate_int.h"
#include "lib/proto.h"
#include "sandbox/sandbox.h"

#define THREAD_STACK_MIN   16384       /* PTHREAD_STACK_MIN on Linux */
#define TARGETS_MAX        254         /* as Unit */
#define ID_MAX             4294967294LL /* uid/gid: 32 bits, -1 reserved */
#define DEFAULT_MAX_PROCS  1           /* "max" when only "spare" is set */
#define IDLE_TIMEOUT_MAX   (INT_MAX / 1000)   /* seconds: milliseconds fit an int */
/* "pipeline" (Warren): requests queued on a worker beyond those it serves
 * at once. A queued request cannot go to another worker that frees up
 * meanwhile: a deep queue only adds waiting, so it stays short (the
 * channel itself would hold WR_APP_MAX_STREAMS). */
#define PIPELINE_MAX       7

/* ---------------------------------------------------------------- helpers */

static int
one_of(wr_vctx_t *c, json_t *v, const char *name, const char *a, const char *b)
{
    const char *s = json_string_value(v);

    if (strcmp(s, a) != 0 && strcmp(s, b) != 0) {
        return wr_v_error(c, "The \"%s\" value must be \"%s\" or \"%s\".",
                          name, a, b);
    }
    return 0;
}

static bool
has_dotdot(const char *path)
{
    const char *p = path;

    /* A ".." component anywhere: "..", "../x", "x/..", "x/../y". */
    while ((p = strstr(p, "..")) != NULL) {
        bool start = p == path || p[-1] == '/';
        bool end = p[2] == '\0' || p[2] == '/';

        if (start && end) {
            return true;
        }
        p += 2;
    }
    return false;
}

static int
check_no_dotdot(wr_vctx_t *c, json_t *v, const char *name)
{
    if (has_dotdot(json_string_value(v))) {
        return wr_v_error(c, "The \"%s\" value must not contain \"..\".", name);
    }
    return 0;
}

static const wr_vdesc_t threads = {
    .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = INT_MAX,
};

/*
 * What pthread_attr_setstacksize() takes, checked here so a bad value fails
 * the change with its JSON pointer instead of a worker that cannot start:
 * a multiple of the page size (as Unit requires), and not below the
 * system's minimum (THREAD_STACK_MIN on x86_64; more on some CPUs).
 */
static int
check_thread_stack_size(wr_vctx_t *c, json_t *v, const char *name)
{
    long long n = json_integer_value(v);
    long page = sysconf(_SC_PAGESIZE);
    long min = sysconf(_SC_THREAD_STACK_MIN);

    if (min > 0 && n < min) {
        return wr_v_error(c, "The \"%s\" value must be at least %ld bytes "
                          "(the smallest thread stack).", name, min);
    }
    if (page > 0 && n % page != 0) {
        return wr_v_error(c, "The \"%s\" value must be a multiple of the "
                          "page size (%ld bytes).", name, page);
    }
    return 0;
}

static const wr_vdesc_t thread_stack_size = {
    .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = THREAD_STACK_MIN,
    .max = INT_MAX, .check = check_thread_stack_size,
};
static const wr_vdesc_t str_array = { .types = WR_VT_ARR, .items = &wr_vd_str };

/* -------------------------------------------------------------- isolation */

static const wr_vmember_t namespaces_members[] = {
    { "cgroup", &wr_vd_bool, false },
    { "credential", &wr_vd_bool, false },
    { "mount", &wr_vd_bool, false },
    { "network", &wr_vd_bool, false },
    { "pid", &wr_vd_bool, false },
    { "uname", &wr_vd_bool, false },
    { "ipc", &wr_vd_bool, false },              /* Warren */
    { NULL, NULL, false },
};

static const wr_vdesc_t id = {
    .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = ID_MAX,
};

static const wr_vmember_t idmap_members[] = {
    { "container", &id, true },
    { "host", &id, true },
    { "size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = ID_MAX }, true },
    { NULL, NULL, false },
};

static const wr_vdesc_t idmap = {
    .types = WR_VT_ARR,
    .items = &(const wr_vdesc_t) { .types = WR_VT_OBJ, .members = idmap_members },
};

/* "/", "//", "/./": every component empty or "." */
static bool
is_root(const char *p)
{
    for (; *p; p++) {
        if (*p == '/') {
            continue;
        }
        if (*p == '.' && (p[1] == '/' || p[1] == '\0')) {
            continue;
        }
        return false;
    }
    return true;
}

static int
check_rootfs(wr_vctx_t *c, json_t *v, const char *name)
{
    if (is_root(json_string_value(v))) {
        return wr_v_error(c, "The \"rootfs\" value must not be \"/\".");
    }
    return check_no_dotdot(c, v, name);
}

/* The sandbox's capability names: "net_bind_service" or "CAP_NET_BIND_SERVICE". */
static int
check_capability(wr_vctx_t *c, json_t *v, const char *name)
{
    if (wr_sb_cap_parse(json_string_value(v)) < 0) {
        return wr_v_error(c, "The capability \"%s\" is unknown; use a name such "
                          "as \"net_bind_service\".", json_string_value(v));
    }
    return 0;
}

static const wr_vdesc_t capabilities = {
    .types = WR_VT_ARR,
    .items = &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_capability },
};

static int
check_seccomp(wr_vctx_t *c, json_t *v, const char *name)
{
    if (json_is_string(v) && strcmp(json_string_value(v), "default") != 0) {
        return wr_v_error(c, "The \"seccomp\" value must be true, false or "
                          "\"default\".");
    }
    return 0;
}

/* sethostname(2) takes at most HOST_NAME_MAX bytes. */
static int
check_hostname(wr_vctx_t *c, json_t *v, const char *name)
{
    if (strlen(json_string_value(v)) > HOST_NAME_MAX) {
        return wr_v_error(c, "The \"hostname\" value must not be longer than %d "
                          "bytes.", HOST_NAME_MAX);
    }
    return 0;
}

static const wr_vmember_t automount_members[] = {
    { "language_deps", &wr_vd_bool, false },
    { "procfs", &wr_vd_bool, false },
    { "tmpfs", &wr_vd_bool, false },
    { NULL, NULL, false },
};

static const wr_vmember_t cgroup_members[] = {
    /* relative paths are under warrend's own cgroup, as in Unit */
    { "path", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_no_dotdot },
        true },
    { NULL, NULL, false },
};

static int
check_mount_dest(wr_vctx_t *c, json_t *v, const char *name)
{
    if (is_root(json_string_value(v))) {
        return wr_v_error(c, "The \"destination\" value must not be \"/\" "
                          "(that is \"rootfs\" itself).");
    }
    return check_no_dotdot(c, v, name);
}

static const wr_vdesc_t mount_path = {
    .types = WR_VT_STR, .flags = WR_VF_NONEMPTY | WR_VF_ABSPATH,
    .check = check_mount_dest,
};

static const wr_vmember_t mount_members[] = {
    { "source", &wr_vd_abspath, true },
    { "destination", &mount_path, true },
    { "read_only", &wr_vd_bool, false },
    { NULL, NULL, false },
};

static const wr_vmember_t rlimits_members[] = {
    { "nofile", &wr_vd_uint, false },
    { "nproc", &wr_vd_uint, false },
    { "as", &wr_vd_uint, false },
    { "core", &wr_vd_uint, false },
    { "cpu", &wr_vd_uint, false },
    { "fsize", &wr_vd_uint, false },
    { NULL, NULL, false },
};

/* Is path (absolute, no "..") dir itself or beneath it? "." components and
 * repeated slashes are skipped, as the sandbox's resolution does. */
static bool
path_under(const char *path, const char *dir)
{
    for (;;) {
        size_t lp, ld;

        while (*path == '/' || (path[0] == '.' && (path[1] == '/' || path[1] == '\0'))) {
            path++;
        }
        while (*dir == '/') {
            dir++;
        }
        if (*dir == '\0') {
            return true;
        }
        lp = strcspn(path, "/");
        ld = strcspn(dir, "/");
        if (lp != ld || strncmp(path, dir, lp) != 0) {
            return false;
        }
        path += lp;
        dir += ld;
    }
}

/* A "mounts" destination where an automount goes (made after the binds)
 * would be hidden, or, for /proc, would put a host directory where the
 * app and its tools expect the kernel's view of the process. */
static int
check_mount_dests(wr_vctx_t *c, json_t *iso)
{
    json_t *am = json_object_get(iso, "automount"), *m;
    bool    proc = !json_is_false(json_object_get(am, "procfs"));
    bool    tmp = !json_is_false(json_object_get(am, "tmpfs"));
    size_t  i;

    json_array_foreach(json_object_get(iso, "mounts"), i, m) {
        const char *d = json_string_value(json_object_get(m, "destination"));
        const char *hit = d == NULL ? NULL
                          : proc && path_under(d, "/proc") ? "/proc"
                          : tmp && path_under(d, "/tmp") ? "/tmp" : NULL;

        if (hit != NULL && c->depth + 3 <= WR_V_MAX_PATH) {
            c->seg[c->depth++] = (wr_vseg_t) { .key = "mounts" };
            c->seg[c->depth++] = (wr_vseg_t) { .key = NULL, .index = i };
            wr_v_error_at(c, "destination", "The \"destination\" value must not be "
                          "at or under %s: \"automount\" mounts %s there after the "
                          "\"mounts\" (turn it off to bind something there).",
                          hit, strcmp(hit, "/proc") == 0 ? "procfs" : "a tmpfs");
            c->depth -= 2;
            return -1;
        }
    }
    return 0;
}

/* Without a mount namespace the rootfs is a chroot, and a process that
 * can call chroot() walks out of one (chroot a subdirectory, then ".."
 * past the old root): CAP_SYS_CHROOT there is an escape, not a grant. */
static int
check_chroot_caps(wr_vctx_t *c, json_t *iso)
{
    json_t *cap;
    size_t  i;

    json_array_foreach(json_object_get(iso, "capabilities"), i, cap) {
        if (json_is_string(cap) && wr_sb_cap_parse(json_string_value(cap)) == CAP_SYS_CHROOT
            && c->depth + 2 <= WR_V_MAX_PATH)
        {
            c->seg[c->depth++] = (wr_vseg_t) { .key = "capabilities" };
            c->seg[c->depth++] = (wr_vseg_t) { .key = NULL, .index = i };
            wr_v_error(c, "The \"sys_chroot\" capability would let the app leave "
                       "its \"rootfs\", a chroot without the \"mount\" namespace.");
            c->depth -= 2;
            return -1;
        }
    }
    return 0;
}

/* With a credential namespace and no mount namespace, warrend can neither
 * pivot_root (needs a mount namespace) nor chroot (needs host privilege).
 * Options that only mean something with another one need it. */
static int
check_isolation(wr_vctx_t *c, json_t *v, const char *name)
{
    json_t *ns = json_object_get(v, "namespaces");
    json_t *sc = json_object_get(v, "seccomp");
    bool    rootfs = json_object_get(v, "rootfs") != NULL;

    if (rootfs && json_is_true(json_object_get(ns, "credential"))
        && !json_is_true(json_object_get(ns, "mount")))
    {
        return wr_v_error_at(c, "rootfs", "The \"rootfs\" option needs the "
                             "\"mount\" namespace when the \"credential\" "
                             "namespace is enabled.");
    }
    if (!rootfs && json_array_size(json_object_get(v, "mounts")) > 0) {
        return wr_v_error_at(c, "mounts", "The \"mounts\" option needs "
                             "\"rootfs\": they are made inside it.");
    }
    if (!rootfs && json_object_get(v, "tmpfs_size") != NULL) {
        return wr_v_error_at(c, "tmpfs_size", "The \"tmpfs_size\" option needs "
                             "\"rootfs\" (it sizes the automounted /tmp).");
    }
    if (json_object_get(v, "hostname") != NULL
        && !json_is_true(json_object_get(ns, "uname")))
    {
        return wr_v_error_at(c, "hostname", "The \"hostname\" option needs the "
                             "\"uname\" namespace.");
    }
    if (rootfs && check_mount_dests(c, v) < 0) {
        return -1;
    }
    if (rootfs && !json_is_true(json_object_get(ns, "mount"))
        && check_chroot_caps(c, v) < 0)
    {
        return -1;
    }
    if (json_is_true(json_object_get(v, "new_privs")) && sc != NULL
        && !json_is_false(sc))
    {
        return wr_v_error_at(c, "seccomp", "The \"seccomp\" filter needs "
                             "no_new_privs: it cannot be used with \"new_privs\": "
                             "true.");
    }
    return 0;
}

static const wr_vmember_t isolation_members[] = {
    { "namespaces", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = namespaces_members }, false },
    { "uidmap", &idmap, false },
    { "gidmap", &idmap, false },
    { "rootfs", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY | WR_VF_ABSPATH,
        .check = check_rootfs }, false },
    { "automount", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = automount_members }, false },
    { "cgroup", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = cgroup_members }, false },
    { "new_privs", &wr_vd_bool, false },
    /* Warren additions */
    { "mounts", &(const wr_vdesc_t) {
        .types = WR_VT_ARR, .items = &(const wr_vdesc_t) {
            .types = WR_VT_OBJ, .members = mount_members } }, false },
    { "rlimits", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = rlimits_members }, false },
    { "capabilities", &capabilities, false },
    { "seccomp", &(const wr_vdesc_t) {
        .types = WR_VT_BOOL | WR_VT_STR, .flags = WR_VF_NONEMPTY,
        .check = check_seccomp }, false },
    { "tmpfs_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = LLONG_MAX }, false },
    { "hostname", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_hostname }, false },
    { NULL, NULL, false },
};

/* ------------------------------------------------------------ common keys */

static int
check_processes(wr_vctx_t *c, json_t *v, const char *name)
{
    json_t    *max = json_object_get(v, "max"), *spare = json_object_get(v, "spare");
    json_int_t nmax = max != NULL ? json_integer_value(max) : DEFAULT_MAX_PROCS;

    if (json_is_object(v) && spare != NULL && json_integer_value(spare) > nmax) {
        return wr_v_error_at(c, "spare", "The \"spare\" value must not be "
                             "greater than \"max\" (%lld).", (long long) nmax);
    }
    return 0;
}

static const wr_vmember_t processes_members[] = {
    { "max", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = INT_MAX }, false },
    { "spare", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = INT_MAX }, false },
    { "idle_timeout", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = IDLE_TIMEOUT_MAX }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t limits_members[] = {
    { "timeout", &wr_vd_uint, false },
    { "requests", &wr_vd_uint, false },
    { NULL, NULL, false },
};

static int
check_env_name(wr_vctx_t *c, const char *key)
{
    if (key[0] == '\0' || strchr(key, '=') != NULL) {
        return wr_v_error(c, "The environment variable name \"%s\" must not be "
                          "empty or contain \"=\".", key);
    }
    return 0;
}

static int
check_scheduling(wr_vctx_t *c, json_t *v, const char *name)
{
    return one_of(c, v, name, "batch", "normal");
}

static const wr_vmember_t common_members[] = {
    { "type", &wr_vd_name, true },
    { "limits", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = limits_members }, false },
    { "processes", &(const wr_vdesc_t) {
        .types = WR_VT_INT | WR_VT_OBJ, .flags = WR_VF_RANGE, .min = 0,
        .max = INT_MAX, .members = processes_members,
        .check = check_processes }, false },
    { "pipeline", &(const wr_vdesc_t) {                 /* Warren */
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0,
        .max = PIPELINE_MAX }, false },
    { "scheduling", &(const wr_vdesc_t) {               /* Warren */
        .types = WR_VT_STR, .check = check_scheduling }, false },
    { "user", &wr_vd_name, false },
    { "group", &wr_vd_name, false },
    { "working_directory", &wr_vd_name, false },
    { "environment", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .key_check = check_env_name,
        .values = &wr_vd_str }, false },
    { "isolation", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = isolation_members,
        .check = check_isolation }, false },
    { "stdout", &wr_vd_name, false },
    { "stderr", &wr_vd_name, false },
    { NULL, NULL, false },
};

/* --------------------------------------------------------------- external */

static int
check_external_protocol(wr_vctx_t *c, json_t *v, const char *name)
{
    return one_of(c, v, name, "warren", "http");
}

/* The router reaches an http app's workers through abstract unix sockets,
 * which belong to a network namespace: a worker in its own cannot be
 * reached. Said now rather than found out as a hung start. */
static int
check_external(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *proto = json_string_value(json_object_get(v, "protocol"));
    json_t     *ns = json_object_get(json_object_get(v, "isolation"), "namespaces");
    int         http = proto != NULL && strcmp(proto, "http") == 0;

    /* A libwarren worker says itself how many requests it takes at once. */
    if (!http && json_object_get(v, "concurrency") != NULL) {
        return wr_v_error_at(c, "concurrency", "The \"concurrency\" key applies "
                             "only to an application with \"protocol\": \"http\".");
    }

    if (http && json_is_true(json_object_get(ns, "network")))
    {
        return wr_v_error_at(c, "protocol", "An application with \"protocol\": "
                             "\"http\" cannot have its own \"network\" namespace: "
                             "the router could not reach it.");
    }
    return 0;
}

static const wr_vmember_t external_members[] = {
    { "executable", &wr_vd_name, true },
    { "arguments", &str_array, false },
    { "protocol", &(const wr_vdesc_t) {                 /* Warren */
        .types = WR_VT_STR, .check = check_external_protocol }, false },
    { "concurrency", &(const wr_vdesc_t) {              /* Warren */
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1,
        .max = WR_APP_MAX_STREAMS }, false },
    { NULL, NULL, false },
};

/* ----------------------------------------------------------------- python */

static int
check_prefix(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *s = json_string_value(v);
    size_t      len = strlen(s);

    /* Empty means no prefix; "/" alone would end with "/". */
    if (len > 0 && (s[0] != '/' || s[len - 1] == '/')) {
        return wr_v_error(c, "The \"prefix\" value must start with \"/\" and "
                          "must not end with \"/\".");
    }
    return 0;
}

static int
check_python_protocol(wr_vctx_t *c, json_t *v, const char *name)
{
    return one_of(c, v, name, "wsgi", "asgi");
}

static int
check_target_name(wr_vctx_t *c, const char *key)
{
    if (key[0] == '\0') {
        return wr_v_error(c, "A target name must not be empty.");
    }
    return 0;
}

static int
check_targets_count(wr_vctx_t *c, json_t *v, const char *name)
{
    if (json_object_size(v) == 0 || json_object_size(v) > TARGETS_MAX) {
        return wr_v_error(c, "The \"targets\" object must have between 1 and "
                          "%d members.", TARGETS_MAX);
    }
    return 0;
}

static const wr_vdesc_t prefix = { .types = WR_VT_STR, .check = check_prefix };

static const wr_vmember_t python_target_members[] = {
    { "module", &wr_vd_name, true },
    { "callable", &wr_vd_name, false },
    { "factory", &wr_vd_bool, false },
    { "prefix", &prefix, false },
    { NULL, NULL, false },
};

static const wr_vmember_t python_members[] = {
    { "module", &wr_vd_name, false },
    { "callable", &wr_vd_name, false },
    { "factory", &wr_vd_bool, false },
    { "prefix", &prefix, false },
    { "home", &wr_vd_name, false },
    { "path", &wr_vd_names, false },
    { "protocol", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .check = check_python_protocol }, false },
    { "targets", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .key_check = check_target_name,
        .check = check_targets_count,
        .values = &(const wr_vdesc_t) {
            .types = WR_VT_OBJ, .members = python_target_members } }, false },
    { "threads", &threads, false },
    { "thread_stack_size", &thread_stack_size, false },
    { NULL, NULL, false },
};

/* With "targets", the per-target keys live in each target; without, the
 * application itself is the one target and its main key is required. */
static int
check_targets_or(wr_vctx_t *c, json_t *v, const char *const *per_target,
                 const char *required)
{
    if (json_object_get(v, "targets") == NULL) {
        if (json_object_get(v, required) == NULL) {
            return wr_v_error(c, "Required key \"%s\" is missing.", required);
        }
        return 0;
    }
    for (; *per_target != NULL; per_target++) {
        if (json_object_get(v, *per_target) != NULL) {
            return wr_v_error_at(c, *per_target, "The \"%s\" key is not "
                                 "allowed with \"targets\"; set it in each "
                                 "target.", *per_target);
        }
    }
    return 0;
}

static int
check_python(wr_vctx_t *c, json_t *v, const char *name)
{
    static const char *const per_target[] = {
        "module", "callable", "factory", "prefix", NULL,
    };

    return check_targets_or(c, v, per_target, "module");
}

/* -------------------------------------------------------------------- php */

static const wr_vmember_t php_target_members[] = {
    { "root", &wr_vd_name, true },
    { "script", &wr_vd_name, false },
    { "index", &wr_vd_name, false },
    { NULL, NULL, false },
};

static const wr_vdesc_t php_ini = { .types = WR_VT_OBJ, .values = &wr_vd_str };

static const wr_vmember_t php_options_members[] = {
    { "file", &wr_vd_name, false },
    { "admin", &php_ini, false },
    { "user", &php_ini, false },
    { NULL, NULL, false },
};

static const wr_vmember_t php_members[] = {
    { "root", &wr_vd_name, false },
    { "script", &wr_vd_name, false },
    { "index", &wr_vd_name, false },
    { "options", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = php_options_members }, false },
    { "targets", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .key_check = check_target_name,
        .check = check_targets_count,
        .values = &(const wr_vdesc_t) {
            .types = WR_VT_OBJ, .members = php_target_members } }, false },
    { NULL, NULL, false },
};

static int
check_php(wr_vctx_t *c, json_t *v, const char *name)
{
    static const char *const per_target[] = { "root", "script", "index", NULL };

    return check_targets_or(c, v, per_target, "root");
}

/* -------------------------------------------------- perl, ruby, java, wasm */

static const wr_vmember_t perl_members[] = {
    { "script", &wr_vd_name, true },
    { "threads", &threads, false },
    { "thread_stack_size", &thread_stack_size, false },
    { NULL, NULL, false },
};

static const wr_vmember_t ruby_members[] = {
    { "script", &wr_vd_name, true },
    { "threads", &threads, false },
    { "hooks", &wr_vd_name, false },
    { NULL, NULL, false },
};

static const wr_vmember_t java_members[] = {
    { "webapp", &wr_vd_name, true },
    { "classpath", &wr_vd_name_array, false },
    { "options", &wr_vd_name_array, false },
    { "threads", &threads, false },
    { "thread_stack_size", &thread_stack_size, false },
    { NULL, NULL, false },
};

static const wr_vmember_t access_members[] = {
    { "filesystem", &wr_vd_name_array, false },
    { NULL, NULL, false },
};

static const wr_vdesc_t wasm_access = {
    .types = WR_VT_OBJ, .members = access_members,
};

static const wr_vmember_t wasm_members[] = {
    { "module", &wr_vd_name, true },
    { "request_handler", &wr_vd_name, true },
    { "malloc_handler", &wr_vd_name, true },
    { "free_handler", &wr_vd_name, true },
    { "module_init_handler", &wr_vd_name, false },
    { "module_end_handler", &wr_vd_name, false },
    { "request_init_handler", &wr_vd_name, false },
    { "request_end_handler", &wr_vd_name, false },
    { "response_end_handler", &wr_vd_name, false },
    { "access", &wasm_access, false },
    { NULL, NULL, false },
};

static const wr_vmember_t wasi_members[] = {
    { "component", &wr_vd_name, true },
    { "access", &wasm_access, false },
    { NULL, NULL, false },
};

/* ------------------------------------------------------------ application */

static const struct {
    const char         *name;
    const wr_vmember_t *members;
    wr_vcheck_t         check;
} languages[] = {
    { "external", external_members, check_external },
    { "go", external_members, check_external },           /* Unit's aliases of external */
    { "nodejs", external_members, check_external },
    { "python", python_members, check_python },
    { "php", php_members, check_php },
    { "perl", perl_members, NULL },
    { "ruby", ruby_members, NULL },
    { "java", java_members, NULL },
    { "wasm", wasm_members, NULL },
    { "wasm-wasi-component", wasi_members, NULL },
};

#define N_LANGUAGES (sizeof(languages) / sizeof(languages[0]))

/* "python", or "python 3.11": a module name and an optional version. */
static int
find_language(const char *type)
{
    const char *space = strchr(type, ' ');
    size_t      len = space != NULL ? (size_t) (space - type) : strlen(type);
    size_t      i;

    if (space != NULL) {
        const char *ver = space + 1;

        if (ver[0] < '0' || ver[0] > '9' || ver[strspn(ver, "0123456789.")] != '\0') {
            return -1;
        }
    }
    for (i = 0; i < N_LANGUAGES; i++) {
        if (strlen(languages[i].name) == len
            && strncmp(languages[i].name, type, len) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}

static int
check_application(wr_vctx_t *c, json_t *v, const char *name)
{
    json_t             *type = json_object_get(v, "type");
    const wr_vmember_t *tabs[2] = { common_members, NULL };
    int                 lang;

    if (type == NULL) {
        return wr_v_error(c, "Required key \"type\" is missing.");
    }
    if (!json_is_string(type)) {
        return wr_v_error_at(c, "type", "The \"type\" value must be a string.");
    }
    lang = find_language(json_string_value(type));
    if (lang < 0) {
        return wr_v_error_at(c, "type", "The application type \"%s\" is not "
                             "supported; use \"external\", \"python\", \"php\", "
                             "\"perl\", \"ruby\", \"java\", \"wasm\", or "
                             "\"wasm-wasi-component\", optionally followed by "
                             "a version.", json_string_value(type));
    }
    tabs[1] = languages[lang].members;
    if (wr_v_members(c, v, tabs, 2) < 0) {
        return -1;
    }
    return languages[lang].check != NULL ? languages[lang].check(c, v, name) : 0;
}

static int
check_app_name(wr_vctx_t *c, const char *key)
{
    if (key[0] == '\0') {
        return wr_v_error(c, "An application name must not be empty.");
    }
    return 0;
}

const wr_vdesc_t wr_vd_applications = {
    .types = WR_VT_OBJ, .key_check = check_app_name,
    .values = &(const wr_vdesc_t) { .types = WR_VT_OBJ, .check = check_application },
};
