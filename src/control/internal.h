/* The controller's context and what its files share. */
#ifndef WR_CONTROL_INTERNAL_H
#define WR_CONTROL_INTERNAL_H

#include <jansson.h>

#include "conf/conf.h"
#include "control/control.h"
#include "core/ev.h"
#include "core/ipc.h"
#include "http/http.h"

#define WR_CONTROL_READ_TIMEOUT_MS   30000   /* whole request must arrive by then */
#define WR_CONTROL_WRITE_TIMEOUT_MS  30000
#define WR_CONTROL_READ_CHUNK        16384
#define WR_CONTROL_LINGER_MS         1000    /* drain after an error answer */

typedef struct wr_ctl wr_ctl_t;
typedef struct wr_conn wr_conn_t;

typedef enum {
    WR_CONN_READ,        /* reading head and body */
    WR_CONN_QUEUED,      /* a change waiting for its turn */
    WR_CONN_APPLYING,    /* a change main is applying */
    WR_CONN_STATUS,      /* waiting for the router's counters */
    WR_CONN_WRITE,       /* sending the response, then close */
    WR_CONN_LINGER       /* after an error: drain what the client still sends */
} wr_conn_state_t;

struct wr_conn {
    wr_ctl_t        *ctl;
    wr_conn_t       *next, *prev;     /* all connections */
    wr_conn_t       *qnext;           /* change queue */
    wr_ev_t          ev;
    int              polled;          /* ev is in epoll */
    int              linger;          /* unread input may remain: drain, then close */
    wr_timer_t       timer;
    wr_conn_state_t  state;
    uint32_t         id;
    char            *buf;             /* request bytes, then response bytes */
    size_t           len, cap, sent;
    long             head_len;
    long long        body_need;       /* Content-Length, or -1 for chunked */
    wr_http_chunked_t chunked;
    size_t           body_len;        /* decoded body bytes at buf + head_len */
    char            *method;
    char            *path;            /* raw path, query stripped */
    json_t          *candidate;       /* the change main is applying (what
                                         GET shows of an item, for a PUT
                                         /certificates/NAME, /js_modules/NAME) */
    const struct wr_ctl_store *store; /* the store of such a change */
    char            *item;            /* NAME of a store change */
};

struct wr_ctl {
    const wr_controller_args_t *args;
    wr_ev_loop_t  loop;
    wr_chan_t     chan;
    wr_ev_t       sig;
    wr_ev_t       listen;
    int           listening;
    json_t       *conf;               /* running config, from main */
    json_t       *certs;              /* the bundles stored: {"name": description} */
    json_t       *js_modules;         /* the modules stored: {"name": source} */
    json_t       *modules;            /* /status "modules" (modules.c) */
    wr_conn_t    *conns;
    wr_conn_t    *qhead, *qtail;      /* changes, applied in arrival order */
    uint32_t      next_id;
};

/* conn.c */
void wr_conn_accept(wr_ctl_t *ctl);
void wr_conn_respond(wr_conn_t *c, int status, json_t *body);   /* steals body */
void wr_conn_respond_text(wr_conn_t *c, int status, const char *ctype, const char *body,
                          size_t len);
void wr_conn_respond_error(wr_conn_t *c, const wr_conf_error_t *e);
void wr_conn_close(wr_conn_t *c);
wr_conn_t *wr_conn_find(wr_ctl_t *ctl, uint32_t id);

/* api.c */
void wr_api_handle(wr_conn_t *c);             /* a whole request was read */
void wr_api_queue_next(wr_ctl_t *ctl);        /* start the next queued change */
void wr_api_applied(wr_conn_t *c, int ok, const char *reason);
void wr_api_status(wr_conn_t *c, const char *json, size_t len);
/* The one segment of the JSON pointer p (len bytes: "/NAME"), percent-
 * decoded as /config's are, malloc'ed; NULL if it is not exactly one. */
char *wr_api_segment(const char *p, size_t len);

/* store.c: /certificates and /js_modules, told apart by what differs. */
typedef struct wr_ctl_store {
    const char *prefix;                 /* "/certificates" */
    uint32_t    put_msg, delete_msg;    /* to main */
    int       (*name_ok)(const char *name);
    /* What GET shows of an item, once it is checked; NULL with why. */
    json_t   *(*check)(const char *data, size_t len, char *why, size_t whylen);
    const char *(*user)(json_t *conf, const char *name);   /* who names it */
    long        max;                    /* bytes of one item */
    const char *uploaded, *deleted, *bad_name, *bad_item, *name_rule, *put_hint,
               *too_large, *noun, *in_use, *user_pre, *user_post, *store_failed,
               *delete_failed;          /* the answers' texts */
} wr_ctl_store_t;

extern const wr_ctl_store_t wr_ctl_certs, wr_ctl_js_modules;
const wr_ctl_store_t *wr_ctl_store_of(const char *path);      /* NULL: not a store */
json_t **wr_ctl_store_items(wr_ctl_t *ctl, const wr_ctl_store_t *s);
void wr_ctl_store_take(wr_ctl_t *ctl, const wr_ctl_store_t *s, const char *data, size_t len);
/* A queued PUT or DELETE /STORE/NAME, at its turn: checked and sent to main
 * (0), or answered (-1). */
int  wr_ctl_store_start(wr_conn_t *c);
void wr_ctl_store_applied(wr_conn_t *c, int ok, const char *reason);

/* controller.c */
int  wr_ctl_send(wr_ctl_t *ctl, uint32_t type, uint32_t id, const void *data, size_t len);

/* modules.c: /status "modules", the runtimes in dir (NULL: none). */
json_t *wr_ctl_modules(const char *runtimes);

#endif
