/*
 * Config fuzzing: the whole input is parsed and validated as a document;
 * then, when it has a newline, the first line is used as a configuration
 * path and the rest as a value, and every edit is applied to a fixed base
 * configuration and validated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_text[] =
    "{\"listeners\": {\"*:80\": {\"pass\": \"routes\"},"
    " \"unix:/run/w.sock\": {\"pass\": \"applications/a\"}},"
    " \"routes\": [{\"match\": {\"uri\": \"/x\"}, \"action\": {\"return\": 200}},"
    "  {\"action\": {\"pass\": \"upstreams/u\"}}],"
    " \"applications\": {\"a\": {\"type\": \"external\", \"executable\": \"/x\"}},"
    " \"upstreams\": {\"u\": {\"servers\": {\"127.0.0.1:81\": {}}}},"
    " \"settings\": {\"http\": {\"idle_timeout\": 5}}}";

/* Uses every output of a config so the sanitizers see it all. */
static void
consume(json_t *root, wr_conf_error_t *err)
{
    wr_conf_listeners_t l;
    wr_conf_settings_t  s;
    json_t             *j;

    if (wr_conf_validate(root, err) < 0) {
        j = wr_conf_error_json(err);
        json_decref(j);
    } else if (wr_conf_listeners(root, &l) == 0) {
        wr_conf_listeners_free(&l);
    }
    wr_conf_settings(root, &s);
    wr_conf_error_clear(err);
}

static void
edits(const char *path, size_t path_len, const char *body, size_t body_len)
{
    wr_conf_error_t err;
    wr_ptr_t        p;
    json_t         *base, *value, *res;

    wr_conf_error_init(&err);
    if (wr_ptr_parse(path, path_len, &p, &err) < 0) {
        wr_conf_error_clear(&err);
        return;
    }
    base = wr_conf_parse(base_text, sizeof(base_text) - 1, &err);
    value = wr_conf_parse(body, body_len, &err);
    wr_conf_error_clear(&err);
    if (value == NULL) {
        value = json_null();
    }
    (void) wr_ptr_get(base, &p);

    res = wr_conf_put(base, &p, value, &err);
    if (res != NULL) {
        consume(res, &err);
        json_decref(res);
    }
    wr_conf_error_clear(&err);
    res = wr_conf_post(base, &p, value, &err);
    if (res != NULL) {
        consume(res, &err);
        json_decref(res);
    }
    wr_conf_error_clear(&err);
    res = wr_conf_delete(base, &p, &err);
    if (res != NULL) {
        consume(res, &err);
        json_decref(res);
    }
    wr_conf_error_clear(&err);
    json_decref(value);
    json_decref(base);
    wr_ptr_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char     *text = (const char *) data;
    const char     *nl = memchr(text, '\n', size);
    wr_conf_error_t err;
    json_t         *root;

    wr_conf_error_init(&err);
    root = wr_conf_parse(text, size, &err);
    if (root != NULL) {
        consume(root, &err);
        json_decref(root);
    }
    wr_conf_error_clear(&err);

    if (nl != NULL) {
        size_t path_len = (size_t) (nl - text);

        edits(text, path_len, nl + 1, size - path_len - 1);
    }
    return 0;
}
