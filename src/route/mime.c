/*
 * MIME types of static files. A built-in table of common web types, extended
 * and overridden by settings.http.static.mime_types, Unit's shape:
 *   { "text/x-foo": ".foo", "text/plain": [".log", "README"] }
 * A key with a leading dot is an extension; one without is a whole file name
 * (Unit's "readme" matches a file "README"). Matching is case-insensitive.
 *
 * The lookup key of a file is its extension from the last '.' of the last
 * path segment, or the whole segment when it has no '.', as Unit does. Keys
 * live lowercase in one sorted array, searched with bsearch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route.h"

#define WR_MIME_DEFAULT   "application/octet-stream"
#define WR_MIME_KEY_MAX   256      /* longer names never match anything */

typedef struct {
    const char *key;      /* lowercase: ".html" or "readme" */
    const char *type;
} wr_mime_entry_t;

struct wr_mime {
    wr_mime_entry_t *e;        /* sorted by key */
    size_t           n;
    size_t           key_max;  /* longest key: shorter lookups only */
    char           **owned;    /* strings copied from the config */
    size_t           nowned;
};

static const wr_mime_entry_t builtin[] = {
    { ".7z",    "application/x-7z-compressed" },
    { ".aac",   "audio/aac" },
    { ".apng",  "image/apng" },
    { ".atom",  "application/atom+xml" },
    { ".avi",   "video/x-msvideo" },
    { ".avif",  "image/avif" },
    { ".bin",   "application/octet-stream" },
    { ".bmp",   "image/bmp" },
    { ".br",    "application/x-brotli" },
    { ".bz2",   "application/x-bzip2" },
    { ".css",   "text/css" },
    { ".csv",   "text/csv" },
    { ".doc",   "application/msword" },
    { ".docx",  "application/vnd.openxmlformats-officedocument.wordprocessingml.document" },
    { ".eot",   "application/vnd.ms-fontobject" },
    { ".epub",  "application/epub+zip" },
    { ".flac",  "audio/flac" },
    { ".gif",   "image/gif" },
    { ".gz",    "application/gzip" },
    { ".heic",  "image/heic" },
    { ".htm",   "text/html" },
    { ".html",  "text/html" },
    { ".ico",   "image/x-icon" },
    { ".ics",   "text/calendar" },
    { ".jar",   "application/java-archive" },
    { ".jpeg",  "image/jpeg" },
    { ".jpg",   "image/jpeg" },
    { ".js",    "text/javascript" },
    { ".json",  "application/json" },
    { ".jsonld", "application/ld+json" },
    { ".m4a",   "audio/mp4" },
    { ".m4v",   "video/mp4" },
    { ".manifest", "text/cache-manifest" },
    { ".map",   "application/json" },
    { ".md",    "text/markdown" },
    { ".mid",   "audio/midi" },
    { ".midi",  "audio/midi" },
    { ".mjs",   "text/javascript" },
    { ".mkv",   "video/x-matroska" },
    { ".mov",   "video/quicktime" },
    { ".mp3",   "audio/mpeg" },
    { ".mp4",   "video/mp4" },
    { ".mpeg",  "video/mpeg" },
    { ".mpg",   "video/mpeg" },
    { ".oga",   "audio/ogg" },
    { ".ogg",   "audio/ogg" },
    { ".ogv",   "video/ogg" },
    { ".opus",  "audio/opus" },
    { ".otf",   "font/otf" },
    { ".pdf",   "application/pdf" },
    { ".png",   "image/png" },
    { ".ppt",   "application/vnd.ms-powerpoint" },
    { ".pptx",  "application/vnd.openxmlformats-officedocument.presentationml.presentation" },
    { ".rar",   "application/vnd.rar" },
    { ".rss",   "application/rss+xml" },
    { ".rtf",   "application/rtf" },
    { ".sh",    "application/x-sh" },
    { ".svg",   "image/svg+xml" },
    { ".svgz",  "image/svg+xml" },
    { ".tar",   "application/x-tar" },
    { ".tif",   "image/tiff" },
    { ".tiff",  "image/tiff" },
    { ".toml",  "application/toml" },
    { ".ts",    "video/mp2t" },
    { ".ttf",   "font/ttf" },
    { ".txt",   "text/plain" },
    { ".wasm",  "application/wasm" },
    { ".wav",   "audio/wav" },
    { ".weba",  "audio/webm" },
    { ".webm",  "video/webm" },
    { ".webmanifest", "application/manifest+json" },
    { ".webp",  "image/webp" },
    { ".woff",  "font/woff" },
    { ".woff2", "font/woff2" },
    { ".xhtml", "application/xhtml+xml" },
    { ".xls",   "application/vnd.ms-excel" },
    { ".xlsx",  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
    { ".xml",   "text/xml" },
    { ".yaml",  "application/yaml" },
    { ".yml",   "application/yaml" },
    { ".zip",   "application/zip" },
    { ".zst",   "application/zstd" },
};

#define BUILTIN_N  (sizeof(builtin) / sizeof(builtin[0]))

/* ASCII only: a file name's bytes must not depend on the process locale. */
static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const wr_mime_entry_t *) a)->key, ((const wr_mime_entry_t *) b)->key);
}

void wr_mime_free(wr_mime_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nowned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->e);
    free(m);
}

/* Keep a copy of s (lowercased if asked) for the life of m. */
static const char *own(wr_mime_t *m, const char *s, int to_lower)
{
    char *c = strdup(s);

    if (c == NULL)
        return NULL;
    if (to_lower) {
        for (char *p = c; *p; p++)
            *p = lower(*p);
    }
    m->owned[m->nowned++] = c;
    return c;
}

static wr_mime_entry_t *find_linear(wr_mime_entry_t *e, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].key, key) == 0)
            return &e[i];
    }
    return NULL;
}

/*
 * Add or override one key. from_conf marks keys set by the config so that
 * the same key given for two types is an error (Unit refuses it too).
 */
static int add_key(wr_mime_t *m, unsigned char *from_conf, const char *type_owned,
                   const char *key, char *err, size_t errlen)
{
    char low[WR_MIME_KEY_MAX];
    size_t len = strlen(key);
    wr_mime_entry_t *e;

    if (len == 0 || len >= sizeof(low)) {
        snprintf(err, errlen, "The MIME type \"%s\" has an empty or too long "
                 "extension.", type_owned);
        return -1;
    }
    for (size_t i = 0; i <= len; i++)
        low[i] = lower(key[i]);

    e = find_linear(m->e, m->n, low);
    if (e != NULL) {
        size_t i = (size_t) (e - m->e);
        if (from_conf[i] && strcmp(e->type, type_owned) != 0) {
            snprintf(err, errlen, "The \"%s\" extension is declared for both "
                     "\"%s\" and \"%s\" MIME types.", key, e->type, type_owned);
            return -1;
        }
        e->type = type_owned;
        from_conf[i] = 1;
        return 0;
    }
    e = &m->e[m->n];
    e->key = own(m, low, 1);
    if (e->key == NULL) {
        snprintf(err, errlen, "Out of memory.");
        return -1;
    }
    e->type = type_owned;
    from_conf[m->n++] = 1;
    return 0;
}

/* The number of keys and strings the config adds, to size the arrays once. */
static size_t conf_count(json_t *types)
{
    const char *type;
    json_t *v;
    size_t n = 0;

    json_object_foreach(types, type, v) {
        n += 1 + (json_is_array(v) ? json_array_size(v) : 1);
    }
    return n;
}

static int add_conf(wr_mime_t *m, unsigned char *from_conf, json_t *types,
                    char *err, size_t errlen)
{
    const char *type, *owned;
    json_t *v, *x;
    size_t i;

    json_object_foreach(types, type, v) {
        owned = own(m, type, 0);
        if (owned == NULL) {
            snprintf(err, errlen, "Out of memory.");
            return -1;
        }
        if (json_is_string(v)) {
            if (add_key(m, from_conf, owned, json_string_value(v), err, errlen) < 0)
                return -1;
            continue;
        }
        if (!json_is_array(v)) {
            snprintf(err, errlen, "The MIME type \"%s\" must map to a string or "
                     "an array of strings.", type);
            return -1;
        }
        json_array_foreach(v, i, x) {
            if (!json_is_string(x)) {
                snprintf(err, errlen, "The MIME type \"%s\" must map to a string "
                         "or an array of strings.", type);
                return -1;
            }
            if (add_key(m, from_conf, owned, json_string_value(x), err, errlen) < 0)
                return -1;
        }
    }
    return 0;
}

static json_t *conf_types(json_t *conf)
{
    json_t *t = json_object_get(conf, "settings");

    t = json_object_get(t, "http");
    t = json_object_get(t, "static");
    return json_object_get(t, "mime_types");
}

wr_mime_t *wr_mime_compile(json_t *conf, char *err, size_t errlen)
{
    json_t *types = conf_types(conf);
    size_t extra = json_is_object(types) ? conf_count(types) : 0;
    unsigned char *from_conf;
    wr_mime_t *m;

    if (errlen)
        err[0] = '\0';
    m = calloc(1, sizeof(*m));
    from_conf = calloc(BUILTIN_N + extra, 1);
    if (m == NULL || from_conf == NULL
        || (m->e = calloc(BUILTIN_N + extra, sizeof(*m->e))) == NULL
        || (extra && (m->owned = calloc(extra, sizeof(char *))) == NULL)) {
        snprintf(err, errlen, "Out of memory.");
        goto fail;
    }
    memcpy(m->e, builtin, sizeof(builtin));
    m->n = BUILTIN_N;
    if (types != NULL && !json_is_object(types)) {
        snprintf(err, errlen, "The \"mime_types\" setting must be an object.");
        goto fail;
    }
    if (types != NULL && add_conf(m, from_conf, types, err, errlen) < 0)
        goto fail;

    qsort(m->e, m->n, sizeof(*m->e), entry_cmp);
    for (size_t i = 0; i < m->n; i++) {
        size_t len = strlen(m->e[i].key);
        if (len > m->key_max)
            m->key_max = len;
    }
    free(from_conf);
    return m;

fail:
    free(from_conf);
    wr_mime_free(m);
    return NULL;
}

/* The lookup key of a name: ".ext" of the last segment, or the segment. */
static void name_key(const char *name, size_t len, const char **key, size_t *klen)
{
    const char *end = name + len, *p = end;

    while (p > name && p[-1] != '/') {
        p--;
        if (*p == '.') {
            *key = p;
            *klen = (size_t) (end - p);
            return;
        }
    }
    *key = p;
    *klen = (size_t) (end - p);
}

const char *wr_mime_type(const wr_mime_t *m, const char *name, size_t len)
{
    char low[WR_MIME_KEY_MAX];
    const char *key;
    size_t klen;
    wr_mime_entry_t want, *hit;

    name_key(name, len, &key, &klen);
    if (klen == 0 || klen >= sizeof(low) || (m != NULL && klen > m->key_max))
        return WR_MIME_DEFAULT;
    for (size_t i = 0; i < klen; i++)
        low[i] = lower(key[i]);
    low[klen] = '\0';

    if (m == NULL) {   /* no compiled table: built-ins, unsorted use */
        for (size_t i = 0; i < BUILTIN_N; i++) {
            if (strcmp(builtin[i].key, low) == 0)
                return builtin[i].type;
        }
        return WR_MIME_DEFAULT;
    }
    want.key = low;
    hit = bsearch(&want, m->e, m->n, sizeof(*m->e), entry_cmp);
    return hit != NULL ? hit->type : WR_MIME_DEFAULT;
}
