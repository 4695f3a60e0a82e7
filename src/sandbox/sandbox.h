/*
 * sandbox: an application generation's isolation (DESIGN §4).
 *
 * conf/ validates the "isolation" object, app/ turns it into a wr_sb_conf_t;
 * nothing here parses JSON. The sequence:
 *
 *   main      wr_sb_prepare(): opens the rootfs dir, the runtime binary (when
 *             it lives outside the rootfs), the cgroup dir; resolves the
 *             language deps; creates missing mount points inside the rootfs
 *             (never following a symlink); without a mount namespace, mounts
 *             in the host namespace and remembers what it mounted.
 *   main      wr_sb_clone(): clone3() with the CLONE_NEW* flags, straight
 *             into the cgroup; writes uid_map/gid_map; lets the child go on.
 *   prototype wr_sb_enter(): "/" made private, mounts under the rootfs
 *             (targets resolved with openat2 RESOLVE_BENEATH|NO_SYMLINKS,
 *             mounted through their fd), pivot_root, hostname; or chroot;
 *             lo up in a network namespace; rlimits; capability bounding set.
 *   prototype wr_sb_creds_done(): after setresuid, only the kept caps.
 *   worker    wr_sb_exec_prepare(): ambient caps, no_new_privs, seccomp;
 *             right before exec (every exec path calls it).
 *   main      wr_sb_release(): after the prototype is reaped: host-side
 *             unmounts (chroot only), cgroup rmdir, fds closed.
 *
 * Every failing step fills a wr_sb_err_t: "call(object) failed: errno text".
 */
#ifndef WR_SANDBOX_H
#define WR_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#define WR_SB_ERR_MAX    512
#define WR_SB_RLIM_N     6         /* nofile nproc as core cpu fsize */
#define WR_SB_RLIM_UNSET (-1LL)
#define WR_SB_CAP_BITS   64        /* capabilities wr_sb_conf_t.caps can hold */

typedef struct {
    char text[WR_SB_ERR_MAX];
} wr_sb_err_t;

typedef struct {
    uint32_t container, host, size;
} wr_sb_idmap_t;

enum { WR_SB_MNT_DIR = 0, WR_SB_MNT_FILE = 1 };
/* Or-ed into wr_sb_resolve's kind: symlinks inside the rootfs are followed,
 * as if the rootfs were "/" (RESOLVE_IN_ROOT: they still cannot lead out).
 * For language deps, which a distro rootfs may hold behind /lib64 -> usr/lib64. */
#define WR_SB_IN_ROOT 2

typedef struct {
    char *source;            /* host path */
    char *dest;              /* absolute path inside the rootfs */
    int   read_only;
    int   kind;              /* WR_SB_MNT_DIR / FILE (| WR_SB_IN_ROOT for deps) */
} wr_sb_mount_t;

/* What "isolation" asks for. */
typedef struct {
    int            on;              /* anything at all */
    int            clone_flags;     /* CLONE_NEW* */
    wr_sb_idmap_t *uidmap, *gidmap;
    size_t         nuidmap, ngidmap;
    char          *rootfs;          /* NULL: none */
    int            lang_deps, procfs, tmpfs;
    long long      tmpfs_size;      /* bytes; 0: kernel default */
    wr_sb_mount_t *mounts;
    size_t         nmounts;
    char          *cgroup;          /* NULL: none */
    int            new_privs;
    int            seccomp;
    char          *hostname;        /* NULL: keep */
    long long      rlim[WR_SB_RLIM_N];
    uint64_t       caps;            /* bit n: capability n kept */
    const char    *lang_dirs;       /* colon-separated dirs the language runtime
                                     * reads (language_deps), or NULL: static */
} wr_sb_conf_t;

/* main's compiled seccomp program, built once, shared by every app. */
typedef struct {
    struct sock_filter *insns;
    unsigned short      len;
} wr_sb_filter_t;

/* A mount main made in the host namespace (chroot): found again at release
 * by its path under the rootfs, unmounted only if it still has this id. */
typedef struct {
    char     *dest;
    int       kind;                 /* WR_SB_MNT_DIR / FILE */
    uint64_t  id;                   /* statx STATX_MNT_ID */
    char     *sig;                  /* what it is: "proc", "tmpfs:OPTS", "bind:SRC:ro" */
} wr_sb_hostmnt_t;

typedef struct wr_sb_run wr_sb_run_t;

/* A generation's sandbox, main side; the prototype gets a copy at clone.
 * The fds and deps exist from wr_sb_prepare() to wr_sb_started(): main
 * holds nothing per generation while it runs but the host mount list. */
struct wr_sb_run {
    int            rootfs_fd;       /* -1 */
    int            exec_fd;         /* -1: exec by path */
    int            cgroup_fd;       /* -1 */
    char          *cgroup_dir;      /* absolute, to rmdir */
    int            cgroup_made;     /* warrend created the leaf: only then
                                     * is it removed (when empty) */
    wr_sb_mount_t *deps;            /* language deps: binds, read-only */
    size_t         ndeps;
    wr_sb_hostmnt_t *host_mnt;      /* chroot only: the mounts made */
    size_t         nhost_mnt;
    int            host_mounted;    /* made once for the generation */
    /* Set by the caller around wr_sb_prepare/release: the other running
     * generations on the same rootfs without a mount namespace. Their host
     * mounts are adopted (same dest and sig) rather than stacked on, and
     * not unmounted while one of them still holds them. */
    const wr_sb_run_t *const *peers;
    size_t         npeers;
    const wr_sb_filter_t *filter;   /* NULL: no seccomp */
};

/* ---- conf helpers (pure) ---- */
void wr_sb_conf_init(wr_sb_conf_t *c);
void wr_sb_conf_free(wr_sb_conf_t *c);
/* Capability name ("net_bind_service") -> number, -1 if unknown. */
int         wr_sb_cap_from_name(const char *name);
const char *wr_sb_cap_name(int cap);
/* A "capabilities" entry: "net_bind_service" or "CAP_NET_BIND_SERVICE". */
int         wr_sb_cap_parse(const char *name);
/* rlimits name -> index into rlim[] (-1 unknown); index -> RLIMIT_*. */
int         wr_sb_rlim_index(const char *name);
const char *wr_sb_rlim_name(int idx);
int         wr_sb_rlim_resource(int idx);
/* uid_map/gid_map text of a map ("0 1000 1\n..."); -1 if it does not fit. */
int         wr_sb_idmap_text(const wr_sb_idmap_t *m, size_t n, char *buf, size_t len);
/* Is id inside one of the container ranges? */
int         wr_sb_idmap_has(const wr_sb_idmap_t *m, size_t n, uint32_t id);

/* ---- main ---- */
int  wr_sb_seccomp_build(wr_sb_filter_t *f, wr_sb_err_t *err);
void wr_sb_seccomp_free(wr_sb_filter_t *f);
/* exec: the program workers run (host path). exec_in_rootfs: it is a path
 * inside the rootfs (external apps); else it is opened here (runtimes). */
int  wr_sb_prepare(const wr_sb_conf_t *c, wr_sb_run_t *r, const char *exec,
                   int exec_in_rootfs, wr_sb_err_t *err);
/* After the clone (or a failed one): main's fds closed, deps freed. */
void wr_sb_started(wr_sb_run_t *r);
/* The generation is gone: host mounts undone, cgroup removed if empty. */
void wr_sb_release(const wr_sb_conf_t *c, wr_sb_run_t *r);
/* Before the first wr_sb_prepare. */
void wr_sb_run_init(wr_sb_run_t *r);
/* ELF deps of the program at fd: binds for its interpreter and library dirs,
 * appended to *v (n entries). */
int  wr_sb_elf_deps(int fd, const char *what, wr_sb_mount_t **v, size_t *n,
                    wr_sb_err_t *err);
int  wr_sb_cgroup_open(const char *path, wr_sb_run_t *r, wr_sb_err_t *err);
void wr_sb_cgroup_close(wr_sb_run_t *r);
/* clone3 into the namespaces and cgroup; returns the child's pid in the
 * parent (after id maps are written and the child let go), 0 in the child,
 * -1 with err. */
pid_t wr_sb_clone(const wr_sb_conf_t *c, const wr_sb_run_t *r, uid_t uid, gid_t gid,
                  wr_sb_err_t *err);

/* ---- mounts (used by main for chroot, by the prototype otherwise) ---- */
/* Open dest (absolute, inside the rootfs) beneath rootfd, never following a
 * symlink; create missing parts when create (kind: of the last part). */
int  wr_sb_resolve(int rootfd, const char *rootfs, const char *dest, int create, int kind,
                   wr_sb_err_t *err);
/* The id of the mount fd is on: the unique 64-bit one where the kernel
 * has it (6.8+), else STATX_MNT_ID. -1 with errno. */
#define WR_STATX_MNT_ID_UNIQUE 0x4000U
int  wr_sb_mount_id(int fd, uint64_t *id);
/* Every mount of c + r->deps under rootfd. keep: record each mount in
 * r->host_mnt (host namespace: for release). */
int  wr_sb_mount_all(const wr_sb_conf_t *c, wr_sb_run_t *r, int rootfd, int keep,
                     wr_sb_err_t *err);

/* ---- the prototype ---- */
int  wr_sb_enter(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err);
int  wr_sb_rlimits_apply(const wr_sb_conf_t *c, wr_sb_err_t *err);
int  wr_sb_caps_bound(const wr_sb_conf_t *c, wr_sb_err_t *err);
/* In a new network namespace: lo up (net.c). */
int  wr_sb_loopback_up(wr_sb_err_t *err);
int  wr_sb_creds_done(const wr_sb_conf_t *c, wr_sb_err_t *err);

/* ---- a worker, right before exec ---- */
int  wr_sb_exec_prepare(const wr_sb_conf_t *c, const wr_sb_filter_t *f, wr_sb_err_t *err);
int  wr_sb_seccomp_install(const wr_sb_filter_t *f, wr_sb_err_t *err);

/* Fill err from errno: "call(object) failed: text"; returns -1. */
int  wr_sb_fail(wr_sb_err_t *err, const char *call, const char *object);

#endif
