/*
 * Limits of the control plane. Unit has no settings for these, so they are
 * compile-time constants, documented in docs/control-api.md.
 */
#ifndef WR_CONF_LIMITS_H
#define WR_CONF_LIMITS_H

#define WR_CONTROL_MAX_BODY     (8L * 1024 * 1024)  /* bytes of one request body */
#define WR_CONTROL_MAX_HEADER   8192                /* bytes of one request head */
#define WR_CONF_MAX_DEPTH       64                  /* nesting of arrays/objects */
#define WR_CONF_MAX_ELEMENTS    100000              /* values in one document */
#define WR_CONF_PATH_MAX        4096                /* bytes of a settings path, with NUL (PATH_MAX) */

#endif
