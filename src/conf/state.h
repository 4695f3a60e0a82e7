/*
 * The state file <statedir>/conf.json: the running config, restored at start.
 * Written in two phases so a change is durable exactly when it is applied:
 * prepare (temp file, written and fsync'ed) before the router is asked,
 * commit (rename over conf.json, fsync the directory) once it agreed.
 */
#ifndef WR_STATE_H
#define WR_STATE_H

#include <stddef.h>

#define WR_STATE_FILE      "conf.json"
#define WR_STATE_TMP       "conf.json.tmp"
#define WR_STATE_BAD       "conf.json.bad"     /* + "-<unix time>" */
#define WR_STATE_MAX_SIZE  (64L * 1024 * 1024)

int  wr_state_prepare(const char *dir, const char *text, size_t len);
int  wr_state_commit(const char *dir);
void wr_state_abort(const char *dir);

/* dir/name holds text, durably (a temp file fsync'ed, renamed, the directory
 * fsync'ed): 0, or -1 logged. The certificate store's files. */
int  wr_state_write(const char *dir, const char *name, const char *text, size_t len);

/* Read dir/name (at most max bytes) as wr_state_read does. */
int  wr_state_read_file(const char *dir, const char *name, long max, char **text,
                        size_t *len);

/* Read conf.json into a malloc'ed NUL-terminated buffer: 1 read, 0 no file,
 * -1 unreadable (logged). */
int  wr_state_read(const char *dir, char **text, size_t *len);

/* Rename a bad conf.json aside (never deleted); the new name in out. */
int  wr_state_set_aside(const char *dir, char *out, size_t outsz);

#endif
