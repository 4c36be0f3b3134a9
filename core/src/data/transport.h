/* distill (internal) — the one libcurl boundary: downloading a URL into a
 * partial file with resume, timeouts and retries, curl's error buffer turned
 * into the reason a download failed. Mirrors and caching: data/fetch.c. */
#ifndef DD_TRANSPORT_H
#define DD_TRANSPORT_H

#include <stdint.h>

#include "distill/status.h"

/** Timeouts and retry policy; every field is set (data/fetch.c fills it
 * from dd_fetch_options and its defaults). */
typedef struct dd_transport_cfg {
    long connect_timeout_s; /**< to establish a connection */
    long low_speed_limit;   /**< bytes/s below which a transfer is too slow */
    long low_speed_time_s;  /**< seconds a transfer may stay too slow */
    int attempts;           /**< tries per URL, >= 1 */
    long backoff_ms;        /**< wait before the first retry, doubled each time (at most 60 s) */
    int quiet;              /**< no progress bar */
} dd_transport_cfg;

/** Judges a complete download at `part` (fetched from `url`): DD_OK accepts
 * it; DD_ERR_CHECKSUM, with its message set, rejects the bytes; any other
 * status ends the download with that error. */
typedef dd_status (*dd_transport_check)(void *ctx, const char *part, const char *url);

/** One download. Every pointer is borrowed for the call. */
typedef struct dd_transport_req {
    const char *url;
    const char *part;         /**< partial file: resumed if it holds bytes, removed if rejected */
    const char *label;        /**< name on the progress bar and in debug messages */
    uint64_t size_hint;       /**< size for the bar when the server sends none; 0: unknown */
    dd_transport_check check; /**< (optional) judges the complete file */
    void *check_ctx;          /**< passed to check */
} dd_transport_req;

/** How a download ended when no hard error stopped it. */
typedef struct dd_transport_result {
    int ok;          /**< `part` holds the whole file, and check accepted it */
    int rejected;    /**< check rejected it; the reason is dd_error_message() */
    int unreachable; /**< the host could not be reached (resolve, connect, connect timeout) */
    char why[512];   /**< otherwise: the last failure, without the URL */
} dd_transport_result;

/** Downloads rq->url into rq->part with up to cfg->attempts tries. HTTP 5xx,
 * 408 and 429, timeouts and dropped connections are retried after the
 * backoff; other failures end this URL at once. Bytes already in the part
 * file are resumed (and restarted from 0 when the server ignores or cannot
 * serve the range); a resumed file that check rejects is fetched once more
 * from scratch, since the stale prefix may be what is wrong. Progress and
 * retries are logged. Returns DD_OK with *res saying how it ended, or an
 * error no other mirror can cure: a local failure (DD_ERR_IO, "url: why")
 * or check's own. */
dd_status dd_transport_download(const dd_transport_req *rq, const dd_transport_cfg *cfg,
                                dd_transport_result *res);

#endif
