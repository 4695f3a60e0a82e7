/*
 * The sandbox's pure parts: id map text, the capability and rlimit name
 * tables, the seccomp program (built, then run in a child: AF_ALG and
 * kexec refused, ordinary calls fine), and the isolation validation of
 * Warren's keys and impossible combinations (with the JSON pointer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <cmocka.h>

#include "conf/conf.h"
#include "sandbox/sandbox.h"

static void test_idmap_text(void **state)
{
    wr_sb_idmap_t m[] = { { 0, 1000, 1 }, { 1, 100000, 65536 } };
    char buf[64];

    assert_int_equal(wr_sb_idmap_text(m, 1, buf, sizeof(buf)), 9);
    assert_string_equal(buf, "0 1000 1\n");
    assert_true(wr_sb_idmap_text(m, 2, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "0 1000 1\n1 100000 65536\n");
    assert_int_equal(wr_sb_idmap_text(m, 2, buf, 12), -1);     /* does not fit */
    assert_int_equal(wr_sb_idmap_text(m, 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
}

static void test_idmap_has(void **state)
{
    wr_sb_idmap_t m[] = { { 0, 1000, 1 }, { 10, 5000, 5 } };

    assert_true(wr_sb_idmap_has(m, 2, 0));
    assert_false(wr_sb_idmap_has(m, 2, 1));
    assert_true(wr_sb_idmap_has(m, 2, 14));
    assert_false(wr_sb_idmap_has(m, 2, 15));
    assert_false(wr_sb_idmap_has(m, 0, 0));
}

static void test_cap_names(void **state)
{
    assert_int_equal(wr_sb_cap_from_name("net_bind_service"), CAP_NET_BIND_SERVICE);
    assert_int_equal(wr_sb_cap_parse("CAP_NET_BIND_SERVICE"), CAP_NET_BIND_SERVICE);
    assert_int_equal(wr_sb_cap_parse("Net_Raw"), CAP_NET_RAW);
    assert_int_equal(wr_sb_cap_parse("sys_admin"), CAP_SYS_ADMIN);
    assert_int_equal(wr_sb_cap_parse("bogus"), -1);
    assert_int_equal(wr_sb_cap_parse(""), -1);
    assert_int_equal(wr_sb_cap_parse("cap_"), -1);
    assert_int_equal(wr_sb_cap_parse("net_bind_service_and_a_very_long_tail_xxxx"), -1);
    /* every capability the headers know has a name that maps back */
    for (int c = 0; c <= CAP_LAST_CAP; c++) {
        const char *n = wr_sb_cap_name(c);
        assert_non_null(n);
        assert_int_equal(wr_sb_cap_from_name(n), c);
    }
    assert_null(wr_sb_cap_name(CAP_LAST_CAP + 1));
}

static void test_rlimit_table(void **state)
{
    static const struct { const char *name; int res; } want[] = {
        { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },
        { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU }, { "fsize", RLIMIT_FSIZE },
    };

    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int idx = wr_sb_rlim_index(want[i].name);
        assert_true(idx >= 0 && idx < WR_SB_RLIM_N);
        assert_int_equal(wr_sb_rlim_resource(idx), want[i].res);
        assert_string_equal(wr_sb_rlim_name(idx), want[i].name);
    }
    assert_int_equal(wr_sb_rlim_index("stack"), -1);
    assert_int_equal(wr_sb_rlim_resource(WR_SB_RLIM_N), -1);
}

static void test_conf_defaults(void **state)
{
    wr_sb_conf_t c;

    wr_sb_conf_init(&c);
    assert_true(c.lang_deps && c.procfs && c.tmpfs && c.seccomp);
    assert_false(c.on || c.new_privs || c.clone_flags);
    for (int i = 0; i < WR_SB_RLIM_N; i++)
        assert_true(c.rlim[i] == WR_SB_RLIM_UNSET);
    wr_sb_conf_free(&c);
}

/* In a child: install the program, report what the kernel answers. */
static int filtered_child(const wr_sb_filter_t *f)
{
    wr_sb_err_t err;
    int s;

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || wr_sb_seccomp_install(f, &err) < 0)
        return 10;
    s = socket(AF_ALG, SOCK_SEQPACKET, 0);
    if (s >= 0 || errno != EAFNOSUPPORT)
        return 11;
    if (syscall(SYS_kexec_load, 0, 0, NULL, 0) != -1 || errno != EPERM)
        return 12;
    if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
        return 13;
    if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
        return 14;
    s = socket(AF_UNIX, SOCK_STREAM, 0);       /* ordinary sockets still work */
    if (s < 0)
        return 15;
    close(s);
    if (getpid() <= 0)
        return 16;
    return 0;
}

static void test_seccomp_program(void **state)
{
    wr_sb_filter_t f;
    wr_sb_err_t err;
    int st;
    pid_t pid;

    assert_int_equal(wr_sb_seccomp_build(&f, &err), 0);
    assert_non_null(f.insns);
    assert_true(f.len > 4);
    /* starts with the architecture check: load seccomp_data.arch */
    assert_int_equal(f.insns[0].code, BPF_LD | BPF_W | BPF_ABS);
    assert_int_equal(f.insns[0].k, 4);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(filtered_child(&f));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    wr_sb_seccomp_free(&f);
    assert_null(f.insns);
}

/* The ELF deps of a dynamically linked host program: its interpreter as a
 * file, libc's real directory; a script has none. */
static void test_elf_deps(void **state)
{
    wr_sb_mount_t *v = NULL;
    size_t n = 0;
    wr_sb_err_t err;
    char real[PATH_MAX];
    int fd = open("/bin/true", O_RDONLY | O_CLOEXEC), found_interp = 0, found_libc = 0;

    assert_true(fd >= 0);
    assert_int_equal(wr_sb_elf_deps(fd, "/bin/true", &v, &n, &err), 0);
    close(fd);
    assert_true(n >= 2);
    assert_non_null(realpath("/lib/x86_64-linux-gnu/libc.so.6", real));
    *strrchr(real, '/') = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i].read_only);
        assert_string_equal(v[i].source, v[i].dest);
        if ((v[i].kind & ~WR_SB_IN_ROOT) == WR_SB_MNT_FILE
            && strstr(v[i].dest, "ld-linux") != NULL)
            found_interp = 1;
        if (strcmp(v[i].dest, real) == 0)
            found_libc = 1;
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(v[i].dest, v[j].dest);     /* no duplicates */
    }
    for (size_t i = 0; i < n; i++) {
        free(v[i].source);
        free(v[i].dest);
    }
    free(v);
    assert_true(found_interp && found_libc);

    v = NULL;
    n = 0;
    fd = open("/usr/bin/ldd", O_RDONLY | O_CLOEXEC);              /* a shell script */
    assert_true(fd >= 0);
    assert_int_equal(wr_sb_elf_deps(fd, "/usr/bin/ldd", &v, &n, &err), 0);
    close(fd);
    assert_int_equal(n, 0);
}

/* ---- validation of "isolation" */

typedef struct {
    const char *name, *iso, *path, *detail;
} bad_t;

#define PFX "/applications/a/isolation"

static const bad_t bad[] = {
    { "hostname-no-uts", "{\"hostname\": \"x\"}", PFX "/hostname", "\"uname\" namespace" },
    { "hostname-long", "{\"namespaces\": {\"uname\": true}, \"hostname\": "
      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
      PFX "/hostname", "longer than 64" },
    { "mounts-no-rootfs", "{\"mounts\": [{\"source\": \"/a\", \"destination\": \"/b\"}]}",
      PFX "/mounts", "needs \"rootfs\"" },
    { "mounts-dest-root", "{\"rootfs\": \"/r\", \"mounts\": [{\"source\": \"/a\", "
      "\"destination\": \"/\"}]}", PFX "/mounts/0/destination", "must not be \"/\"" },
    { "tmpfs-size-no-rootfs", "{\"tmpfs_size\": 1024}", PFX "/tmpfs_size", "needs \"rootfs\"" },
    { "tmpfs-size-zero", "{\"rootfs\": \"/r\", \"tmpfs_size\": 0}", PFX "/tmpfs_size",
      "greater than or equal to 1" },
    { "rootfs-dot-slash", "{\"rootfs\": \"/./\"}", PFX "/rootfs", "must not be \"/\"" },
    { "rootfs-double-slash", "{\"rootfs\": \"//\"}", PFX "/rootfs", "must not be \"/\"" },
    { "rootfs-credential", "{\"rootfs\": \"/r\", \"namespaces\": {\"credential\": true}}",
      PFX "/rootfs", "needs the \"mount\" namespace" },
    { "cap-unknown", "{\"capabilities\": [\"net_bind\"]}", PFX "/capabilities/0",
      "unknown" },
    { "seccomp-profile", "{\"seccomp\": \"strict\"}", PFX "/seccomp", "\"default\"" },
    { "seccomp-new-privs", "{\"new_privs\": true, \"seccomp\": true}", PFX "/seccomp",
      "no_new_privs" },
    { "rootfs-relative", "{\"rootfs\": \"srv\"}", PFX "/rootfs", "absolute path" },
};

static const char *const good[] = {
    "{\"namespaces\": {\"uname\": true}, \"hostname\": \"box\"}",
    "{\"rootfs\": \"/r\", \"tmpfs_size\": 1048576, \"mounts\": [{\"source\": \"/a\", "
    "\"destination\": \"/b\", \"read_only\": false}]}",
    "{\"capabilities\": [\"net_bind_service\", \"CAP_CHOWN\"]}",
    "{\"new_privs\": true}",
    "{\"new_privs\": true, \"seccomp\": false}",
    "{\"seccomp\": \"default\"}",
    "{\"rootfs\": \"/r\", \"namespaces\": {\"credential\": true, \"mount\": true}}",
    "{\"namespaces\": {\"ipc\": true, \"cgroup\": true}, \"cgroup\": {\"path\": \"a/b\"}}",
};

static json_t *iso_conf(const char *iso)
{
    char text[1024];
    wr_conf_error_t err;
    json_t *root;

    snprintf(text, sizeof(text), "{\"applications\": {\"a\": {\"type\": \"external\", "
             "\"executable\": \"/bin/true\", \"isolation\": %s}}}", iso);
    wr_conf_error_init(&err);
    root = wr_conf_parse(text, strlen(text), &err);
    if (root == NULL)
        fail_msg("does not parse: %s", text);
    wr_conf_error_clear(&err);
    return root;
}

static void test_validation(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wr_conf_error_t err;
        json_t *root = iso_conf(bad[i].iso);
        wr_conf_error_init(&err);
        if (wr_conf_validate(root, &err) != -1)
            fail_msg("%s: accepted", bad[i].name);
        if (err.path == NULL || strcmp(err.path, bad[i].path) != 0
            || strstr(err.detail, bad[i].detail) == NULL)
            fail_msg("%s: got %s: %s; want %s: ...%s...", bad[i].name,
                     err.path ? err.path : "(none)", err.detail, bad[i].path, bad[i].detail);
        wr_conf_error_clear(&err);
        json_decref(root);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        wr_conf_error_t err;
        json_t *root = iso_conf(good[i]);
        wr_conf_error_init(&err);
        if (wr_conf_validate(root, &err) != 0)
            fail_msg("refused %s at %s: %s", good[i], err.path, err.detail);
        wr_conf_error_clear(&err);
        json_decref(root);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_text),
        cmocka_unit_test(test_idmap_has),
        cmocka_unit_test(test_cap_names),
        cmocka_unit_test(test_rlimit_table),
        cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_seccomp_program),
        cmocka_unit_test(test_elf_deps),
        cmocka_unit_test(test_validation),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
