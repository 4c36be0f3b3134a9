/* distill — downloads over libcurl (http, https, ftp, ftps, file): one URL
 * into a partial file, resumed, retried with backoff, its failure explained. */
#define _GNU_SOURCE
#include "data/transport.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "distill/log.h"

typedef struct xfer {
    CURL *curl;
    FILE *fp;
    curl_off_t offset; // bytes already in the .part file when the request started
    int checked;       // response code inspected
    int restarted;     // server ignored Range: the .part was truncated
    int write_failed;
    int quiet;
    const char *label;
    uint64_t hint; // manifest size, for the bar when the server sends no length
    dd_progress *bar;
} xfer;

typedef enum { GET_OK, GET_RETRY, GET_RESTART, GET_NEXT_MIRROR, GET_FATAL } get_result;

static size_t on_write(char *data, size_t size, size_t nmemb, void *user) {
    xfer *x = user;
    size_t n = size * nmemb;
    if (!x->checked) {
        x->checked = 1;
        long code = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 400) return 0; // do not store an error page
        if (x->offset > 0 && code == 200) {
            // The server ignored the Range request and sends the whole file.
            if (fflush(x->fp) != 0 || ftruncate(fileno(x->fp), 0) != 0 ||
                fseeko(x->fp, 0, SEEK_SET) != 0) {
                x->write_failed = 1;
                return 0;
            }
            dd_debug("%s: server ignored the range request, restarting from 0", x->label);
            x->offset = 0;
            x->restarted = 1;
        }
    }
    if (fwrite(data, 1, n, x->fp) != n) {
        x->write_failed = 1;
        return 0;
    }
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer *x = user;
    if (x->quiet || dlnow <= 0) return 0;
    if (!x->bar) {
        uint64_t total = dltotal > 0 ? (uint64_t)(x->offset + dltotal) : x->hint;
        if (dd_progress_create(x->label, total, "B", &x->bar) != DD_OK) x->bar = NULL;
    }
    if (x->bar) dd_progress_update(x->bar, (uint64_t)(x->offset + dlnow), NULL);
    (void)ultotal;
    (void)ulnow;
    return 0;
}

/* Failures that say the host itself is unreachable: later files of the same
 * dataset skip that host instead of waiting out the same timeouts again. */
static int host_unreachable(CURLcode rc) {
    return rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
           rc == CURLE_COULDNT_CONNECT;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_failed;
static void init_curl(void) {
    curl_init_failed = curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK;
}

static void set_options(CURL *c, xfer *x, const char *url, const dd_transport_cfg *cfg,
                        char *errbuf) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps,file");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https,ftp,ftps");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "distill/" DD_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, cfg->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, cfg->low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, cfg->low_speed_time_s);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (x->offset > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, x->offset);
}

/* What to do after a transfer that libcurl ended with `rc` (HTTP `code`). */
static get_result classify(CURLcode rc, long code, curl_off_t offset, curl_off_t connect_us,
                           const char *part, const char *errbuf, int *unreachable, char *why,
                           size_t why_cap) {
    if (code == 416 && offset > 0) {
        // Nothing left to send: the partial file may already be complete;
        // verification decides, and a failed resumed file is fetched afresh.
        return GET_OK;
    }
    if ((rc == CURLE_RANGE_ERROR || rc == CURLE_BAD_DOWNLOAD_RESUME) && offset > 0) {
        // libcurl refuses a 200 answer to a resume request, or the partial
        // file is longer than the source (file://, ftp://): start over.
        if (truncate(part, 0) != 0) {
            snprintf(why, why_cap, "cannot truncate %s: %s", part, strerror(errno));
            return GET_FATAL;
        }
        snprintf(why, why_cap, "server does not support resuming, restarting from the beginning");
        return GET_RESTART;
    }
    if (code >= 400) {
        snprintf(why, why_cap, "HTTP %ld", code);
        return code >= 500 || code == 408 || code == 429 ? GET_RETRY : GET_NEXT_MIRROR;
    }
    if (rc == CURLE_OK) return GET_OK;
    snprintf(why, why_cap, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    // A timeout before the connection was made is an unreachable host too.
    *unreachable = host_unreachable(rc) || (rc == CURLE_OPERATION_TIMEDOUT && connect_us == 0);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP_RETURNED_ERROR:
        return GET_RETRY;
    default:
        return GET_NEXT_MIRROR;
    }
}

/* One attempt to fetch the URL into the part file, resuming from what it
 * already holds. On failure `why` describes it (without the URL). */
static get_result get_once(const dd_transport_req *rq, const dd_transport_cfg *cfg, int *resumed,
                           int *unreachable, char *why, size_t why_cap) {
    why[0] = '\0';
    *unreachable = 0;
    pthread_once(&curl_once, init_curl);
    if (curl_init_failed) {
        snprintf(why, why_cap, "cannot initialise libcurl");
        return GET_FATAL;
    }
    FILE *fp = fopen(rq->part, "ab");
    if (!fp) {
        snprintf(why, why_cap, "%s: %s", rq->part, strerror(errno));
        return GET_FATAL;
    }
    xfer x = {.fp = fp, .quiet = cfg->quiet, .label = rq->label, .hint = rq->size_hint};
    x.offset = (curl_off_t)ftello(fp);
    if (x.offset < 0) x.offset = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        fclose(fp);
        snprintf(why, why_cap, "cannot initialise libcurl");
        return GET_FATAL;
    }
    x.curl = c;
    char errbuf[CURL_ERROR_SIZE] = "";
    set_options(c, &x, rq->url, cfg, errbuf);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_cleanup(c);
    dd_progress_destroy(x.bar);
    int close_failed = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0) close_failed = 1;
    *resumed = x.offset > 0 && !x.restarted;
    if (x.write_failed || (rc == CURLE_OK && close_failed)) {
        snprintf(why, why_cap, "cannot write %s: %s", rq->part, strerror(errno));
        return GET_FATAL;
    }
    return classify(rc, code, x.offset, connect_us, rq->part, errbuf, unreachable, why, why_cap);
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void backoff(const char *url, const dd_transport_cfg *cfg, int attempt) {
    long wait = cfg->backoff_ms << (attempt - 1 < 16 ? attempt - 1 : 16);
    if (wait > 60000) wait = 60000;
    dd_info("retrying %s in %.1f s", url, (double)wait / 1000.0);
    sleep_ms(wait);
}

dd_status dd_transport_download(const dd_transport_req *rq, const dd_transport_cfg *cfg,
                                dd_transport_result *res) {
    memset(res, 0, sizeof *res);
    // One restart from byte 0 per URL, for a range the server cannot serve
    // or a resumed file that failed its check; it does not use up an attempt.
    int fresh_retry_done = 0;
    for (int attempt = 0; attempt < cfg->attempts; attempt++) {
        if (attempt > 0) backoff(rq->url, cfg, attempt);
        dd_info("downloading %s", rq->url);
        int resumed = 0;
        get_result r = get_once(rq, cfg, &resumed, &res->unreachable, res->why, sizeof res->why);
        if (r == GET_FATAL) return dd_error_set(DD_ERR_IO, "%s: %s", rq->url, res->why);
        if (r == GET_RESTART && !fresh_retry_done) {
            dd_info("%s: %s", rq->url, res->why);
            fresh_retry_done = 1;
            attempt--;
            continue;
        }
        if (r != GET_OK) {
            dd_warn("%s: %s", rq->url, res->why);
            if (r == GET_RETRY && attempt + 1 < cfg->attempts) continue;
            return DD_OK;
        }
        dd_status vs = rq->check ? rq->check(rq->check_ctx, rq->part, rq->url) : DD_OK;
        if (vs == DD_OK) {
            res->ok = 1;
            return DD_OK;
        }
        // Never keep bytes that failed verification.
        unlink(rq->part);
        if (vs != DD_ERR_CHECKSUM) return vs;
        dd_warn("%s", dd_error_message());
        if (resumed && !fresh_retry_done) {
            fresh_retry_done = 1;
            attempt--;
            continue;
        }
        res->rejected = 1;
        return DD_OK;
    }
    return DD_OK;
}
