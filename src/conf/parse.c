/*
 * JSON text -> jansson tree, with Warren's limits.
 *
 * jansson parses recursively, so a body of a million '[' would use a lot of
 * stack before it could fail. A cheap pre-scan over the raw text (outside
 * string literals) checks nesting depth and counts values first; only text
 * within limits reaches jansson.
 */
#include <stdbool.h>
#include <string.h>

#include "conf/conf.h"

#define INVALID_JSON   "Invalid JSON."
#define STATUS_BAD     400

/* Position in the text, reported as Unit does: offset 0-based, line and
 * column 1-based, column counted in characters (UTF-8 aware, as jansson). */
typedef struct {
    size_t offset;
    long   line;
    long   column;
} text_pos_t;

typedef struct {
    const char *text;
    size_t      len;
    text_pos_t  pos;
    int         depth;
    long        values;     /* values seen so far, see count_values() */
} scan_t;

static void
advance(scan_t *s)
{
    unsigned char c = (unsigned char) s->text[s->pos.offset];

    s->pos.offset++;
    if (c == '\n') {
        s->pos.line++;
        s->pos.column = 1;
    } else if ((c & 0xC0) != 0x80) {    /* not a UTF-8 continuation byte */
        s->pos.column++;
    }
}

/* Adds the location to an error already set. */
static int
fail_at(wr_conf_error_t *err, const text_pos_t *pos)
{
    err->offset = (long) pos->offset;
    err->line = pos->line;
    err->column = pos->column;
    return -1;
}

/* Skips a string literal starting at the opening quote; escapes are opaque
 * here, jansson checks them later. Stops at the end of text if unterminated. */
static void
skip_string(scan_t *s)
{
    advance(s);
    while (s->pos.offset < s->len) {
        char c = s->text[s->pos.offset];

        if (c == '\\' && s->pos.offset + 1 < s->len) {
            advance(s);
        } else if (c == '"') {
            advance(s);
            return;
        }
        advance(s);
    }
}

/* True when the next non-blank character after an opening bracket closes it,
 * i.e. the container is empty and holds no values. */
static bool
container_is_empty(const scan_t *s)
{
    size_t i;

    for (i = s->pos.offset + 1; i < s->len; i++) {
        char c = s->text[i];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return c == ']' || c == '}';
        }
    }
    return false;
}

/*
 * In valid JSON, values = 1 (the top) + commas + non-empty containers, since
 * a non-empty container holds one more value than it has commas. Counting
 * this way needs no parse and gives the position where the limit is crossed.
 */
static int
count_value(scan_t *s, long more, wr_conf_error_t *err)
{
    s->values += more;
    if (s->values > WR_CONF_MAX_ELEMENTS) {
        wr_conf_error_set(err, STATUS_BAD, INVALID_JSON, NULL,
                          "The JSON document has more than %d values.",
                          WR_CONF_MAX_ELEMENTS);
        return fail_at(err, &s->pos);
    }
    return 0;
}

static int
prescan(const char *text, size_t len, wr_conf_error_t *err)
{
    scan_t s = { .text = text, .len = len, .pos = { 0, 1, 1 }, .values = 1 };

    while (s.pos.offset < len) {
        char c = text[s.pos.offset];

        if (c == '"') {
            skip_string(&s);
            continue;
        }
        if (c == '[' || c == '{') {
            if (++s.depth > WR_CONF_MAX_DEPTH) {
                wr_conf_error_set(err, STATUS_BAD, INVALID_JSON, NULL,
                                  "The JSON value is nested more than %d "
                                  "levels deep.", WR_CONF_MAX_DEPTH);
                return fail_at(err, &s.pos);
            }
            if (!container_is_empty(&s) && count_value(&s, 1, err) < 0) {
                return -1;
            }
        } else if (c == ']' || c == '}') {
            s.depth--;
        } else if (c == ',' && count_value(&s, 1, err) < 0) {
            return -1;
        }
        advance(&s);
    }
    return 0;
}

/* jansson says "end of file expected near 'x'"; Unit users read sentences. */
static void
set_jansson_error(wr_conf_error_t *err, const json_error_t *jerr)
{
    if (json_error_code(jerr) == json_error_duplicate_key) {
        const char *near = strstr(jerr->text, "near ");

        wr_conf_error_set(err, STATUS_BAD, INVALID_JSON, NULL,
                          "Duplicate object member%s%s; JSON object members "
                          "must have unique names.", near != NULL ? " " : "",
                          near != NULL ? near : "");
    } else {
        const char *t = jerr->text;
        size_t      n = strlen(t);
        char        first = t[0];

        if (first >= 'a' && first <= 'z') {
            first = (char) (first - 'a' + 'A');
        }
        wr_conf_error_set(err, STATUS_BAD, INVALID_JSON, NULL, "%c%s%s",
                          first != '\0' ? first : '?', n > 0 ? t + 1 : "",
                          n > 0 && t[n - 1] == '.' ? "" : ".");
    }
    err->offset = jerr->position;
    err->line = jerr->line;
    /* jansson says column 0 before the first character; Unit counts from 1. */
    err->column = jerr->column > 0 ? jerr->column : 1;
    err->line = jerr->line > 0 ? jerr->line : 1;
}

json_t *
wr_conf_parse(const char *text, size_t len, wr_conf_error_t *err)
{
    json_error_t jerr;
    json_t      *root;

    if (text == NULL) {
        text = "";
        len = 0;
    }
    if (prescan(text, len, err) < 0) {
        return NULL;
    }
    /* Unit refuses duplicate members too; silently keeping one would hide a
     * typo'd config. NUL in strings stays refused (no JSON_ALLOW_NUL). */
    root = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        set_jansson_error(err, &jerr);
        return NULL;
    }
    return root;
}
