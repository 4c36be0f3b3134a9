/* tests/support — a tiny loopback HTTP/1.1 server for fetch and reader tests.
 *
 * It listens on 127.0.0.1 with an ephemeral port, serves in-memory files
 * (GET and HEAD, one request per connection, "Range: bytes=N-" supported),
 * can inject faults per path, and logs every request so a test can assert
 * what the client did (e.g. that the second request resumed with a Range).
 *
 *     fetch_httpd *srv;
 *     assert_int_equal(fetch_httpd_start(&srv), DD_OK);
 *     fetch_httpd_add(srv, "data.tar.gz", bytes, n);      // served at /data.tar.gz
 *     const char *base = fetch_httpd_url(srv);           // "http://127.0.0.1:PORT/"
 *     fetch_httpd_fault f = {.drop_after = 1000, .drop_times = 1};
 *     fetch_httpd_set_fault(srv, "data.tar.gz", &f);     // first GET dies after 1000 bytes
 *     ... fetch base + "data.tar.gz" ...
 *     fetch_httpd_wait_idle(srv);
 *     fetch_httpd_request log[8];
 *     size_t n = fetch_httpd_requests(srv, "data.tar.gz", log, 8);
 *     fetch_httpd_stop(srv);
 *
 * All functions are thread-safe. Paths are matched without their leading '/'
 * and without any "?query". */
#ifndef FETCH_HTTPD_H
#define FETCH_HTTPD_H

#include <stddef.h>

#include "distill/status.h"

typedef struct fetch_httpd fetch_httpd;

/** Faults for one path; a zeroed struct means "behave". Requests for a path
 * are numbered from 1 in arrival order. */
typedef struct fetch_httpd_fault {
    int fail_first;  /**< answer requests 1..fail_first with HTTP 500 */
    int status;      /**< nonzero: answer every request with this status and an empty body */
    long drop_after; /**< >0: close the connection after this many body bytes ... */
    int drop_times;  /**< ... on the first drop_times requests after the failed ones (0: on all) */
    int trickle_bytes; /**< >0: send the body in pieces of this many bytes ... */
    int trickle_ms;    /**< ... sleeping this many milliseconds before each piece */
    int wrong_bytes;   /**< send every body byte inverted (same length, wrong content) */
    int ignore_range;  /**< answer Range requests with 200 and the whole body */
} fetch_httpd_fault;

/** One logged request. */
typedef struct fetch_httpd_request {
    char path[256];   /**< as requested, without leading '/' and query */
    char method[8];   /**< "GET", "HEAD", ... */
    long range_start; /**< N of "Range: bytes=N-", or -1 without a Range header */
    int status;       /**< status code answered */
    long bytes_sent;  /**< body bytes actually written */
} fetch_httpd_request;

/** Starts the server thread. *out is owned by the caller (fetch_httpd_stop).
 * DD_ERR_IO if no socket can be bound. */
dd_status fetch_httpd_start(fetch_httpd **out);

/** Stops accepting, waits for open connections (trickles are cut short),
 * and frees everything. NULL is a no-op. */
void fetch_httpd_stop(fetch_httpd *s);

/** The port bound on 127.0.0.1. */
int fetch_httpd_port(const fetch_httpd *s);

/** "http://127.0.0.1:PORT/" — valid until fetch_httpd_stop. */
const char *fetch_httpd_url(const fetch_httpd *s);

/** Serves `n` bytes of `data` (copied) at `path`; replaces an existing file. */
dd_status fetch_httpd_add(fetch_httpd *s, const char *path, const void *data, size_t n);

/** Serves the contents of the local file `file` at `path`. */
dd_status fetch_httpd_add_file(fetch_httpd *s, const char *path, const char *file);

/** Sets (or with NULL clears) the faults for `path` and resets its request
 * numbering. The path need not be served yet. */
void fetch_httpd_set_fault(fetch_httpd *s, const char *path, const fetch_httpd_fault *f);

/** Copies up to `cap` logged requests for `path` (NULL: all paths), oldest
 * first, into `out` (may be NULL) and returns how many there are in total. */
size_t fetch_httpd_requests(fetch_httpd *s, const char *path, fetch_httpd_request *out, size_t cap);

/** Waits until no connection is open, so the log (bytes_sent included) is
 * complete for everything the client has finished. */
void fetch_httpd_wait_idle(fetch_httpd *s);

/** Forgets the request log (faults and their numbering are kept). */
void fetch_httpd_clear_log(fetch_httpd *s);

#endif
