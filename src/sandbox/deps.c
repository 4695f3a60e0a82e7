/*
 * "automount": {"language_deps"}: what the program needs from the host to
 * run inside an empty rootfs.
 *
 * For an ELF program: its interpreter (PT_INTERP) is bound as a file at the
 * same path, and every DT_NEEDED library (recursively) is looked up in the
 * standard library directories; the directory it really lives in (after
 * symlinks) is bound read-only at the same path. Binding directories rather
 * than single files keeps the mount count small (a Python runtime needs
 * dozens of libraries, nearly all from one directory); they are read-only,
 * nosuid and nodev. RPATH/RUNPATH and ld.so.conf directories are not
 * searched; a program that is not ELF gets no deps.
 *
 * For a language runtime, the directories it reads besides its libraries
 * (wr_sb_conf_t.lang_dirs, prepare.c): Python's stdlib and site
 * directories, PHP's extensions and ini files.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "sandbox/sandbox.h"

#if defined(__x86_64__)
#define WR_MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define WR_MULTIARCH "aarch64-linux-gnu"
#else
#define WR_MULTIARCH "unknown"
#endif

static const char *const lib_dirs[] = {
    "/lib/" WR_MULTIARCH, "/usr/lib/" WR_MULTIARCH, "/lib64", "/usr/lib64", "/lib", "/usr/lib",
};

#define WR_DEPS_MAX 256          /* libraries followed, at most */

typedef struct {
    char  *names[WR_DEPS_MAX];   /* DT_NEEDED seen, queue order */
    size_t n;
} wr_needed_t;

static int add_bind(wr_sb_mount_t **v, size_t *n, const char *path, int kind)
{
    wr_sb_mount_t *nv;

    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].dest, path) == 0)
            return 0;
    nv = realloc(*v, (*n + 1) * sizeof(**v));
    if (nv == NULL)
        return -1;
    *v = nv;
    nv[*n].source = strdup(path);
    nv[*n].dest = strdup(path);
    nv[*n].read_only = 1;
    nv[*n].kind = kind | WR_SB_IN_ROOT;
    if (nv[*n].source == NULL || nv[*n].dest == NULL) {
        free(nv[*n].source);
        free(nv[*n].dest);
        return -1;
    }
    (*n)++;
    return 0;
}

static int needed_add(wr_needed_t *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0)
            return 0;
    if (q->n == WR_DEPS_MAX)
        return 0;
    return (q->names[q->n++] = strdup(name)) == NULL ? -1 : 0;
}

/* File offset of a virtual address, through the PT_LOAD segments. */
static int vaddr_off(const Elf64_Phdr *ph, int phnum, Elf64_Addr va, size_t *off)
{
    for (int i = 0; i < phnum; i++) {
        if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr
            && va - ph[i].p_vaddr < ph[i].p_filesz) {
            *off = (size_t) (ph[i].p_offset + (va - ph[i].p_vaddr));
            return 0;
        }
    }
    return -1;
}

static const char *str_at(const char *base, size_t size, size_t off)
{
    if (off >= size || memchr(base + off, '\0', size - off) == NULL)
        return NULL;
    return base + off;
}

/* interp: filled when the file has one (NULL ok). Not ELF: 0, nothing. */
static int elf_parse(const char *b, size_t size, char *interp, size_t ilen, wr_needed_t *q)
{
    const Elf64_Ehdr *eh = (const void *) b;
    const Elf64_Phdr *ph;
    const Elf64_Dyn *dyn = NULL;
    size_t ndyn = 0, stroff = 0;
    int have_str = 0;

    if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0
        || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return 0;
    if (eh->e_phoff > size || eh->e_phnum > (size - eh->e_phoff) / sizeof(Elf64_Phdr))
        return 0;
    ph = (const void *) (b + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_offset > size || ph[i].p_filesz > size - ph[i].p_offset)
            continue;
        if (ph[i].p_type == PT_INTERP && interp) {
            const char *s = str_at(b, ph[i].p_offset + ph[i].p_filesz, ph[i].p_offset);
            if (s && strlen(s) < ilen && s[0] == '/')
                strcpy(interp, s);
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (const void *) (b + ph[i].p_offset);
            ndyn = ph[i].p_filesz / sizeof(Elf64_Dyn);
        }
    }
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++)
        if (dyn[i].d_tag == DT_STRTAB)
            have_str = vaddr_off(ph, eh->e_phnum, dyn[i].d_un.d_ptr, &stroff) == 0;
    if (!have_str)
        return 0;
    for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++) {
        const char *name;
        if (dyn[i].d_tag != DT_NEEDED)
            continue;
        name = str_at(b, size, stroff + dyn[i].d_un.d_val);
        if (name && strchr(name, '/') == NULL && needed_add(q, name) < 0)
            return -1;
    }
    return 0;
}

static int elf_fd(int fd, char *interp, size_t ilen, wr_needed_t *q)
{
    struct stat st;
    void *b;
    int rc;

    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        return 0;
    b = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (b == MAP_FAILED)
        return -1;
    rc = elf_parse(b, (size_t) st.st_size, interp, ilen, q);
    munmap(b, (size_t) st.st_size);
    return rc;
}

/* Find a library in the standard dirs; bind the dir it really is in. */
static int lib_find(const char *name, wr_needed_t *q, wr_sb_mount_t **v, size_t *n)
{
    char path[PATH_MAX], real[PATH_MAX];

    for (size_t i = 0; i < sizeof(lib_dirs) / sizeof(lib_dirs[0]); i++) {
        int fd;
        snprintf(path, sizeof(path), "%s/%s", lib_dirs[i], name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (realpath(path, real) == NULL || elf_fd(fd, NULL, 0, q) < 0
            || add_bind(v, n, dirname(real), WR_SB_MNT_DIR) < 0) {
            close(fd);
            return -1;
        }
        close(fd);
        return 0;
    }
    return 0;      /* not found: the loader will say so, in the worker */
}

int wr_sb_elf_deps(int fd, const char *what, wr_sb_mount_t **v, size_t *n,
                   wr_sb_err_t *err)
{
    wr_needed_t q = { .n = 0 };
    char interp[PATH_MAX] = "";
    int rc = 0;

    if (elf_fd(fd, interp, sizeof(interp), &q) < 0)
        return wr_sb_fail(err, "mmap", what);
    if (interp[0] && add_bind(v, n, interp, WR_SB_MNT_FILE) < 0)
        rc = wr_sb_fail(err, "language_deps", interp);
    /* q grows while it is walked: breadth first over the whole closure. */
    for (size_t i = 0; rc == 0 && i < q.n; i++)
        if (lib_find(q.names[i], &q, v, n) < 0)
            rc = wr_sb_fail(err, "language_deps", q.names[i]);
    for (size_t i = 0; i < q.n; i++)
        free(q.names[i]);
    return rc;
}
