/* tests/support — loopback HTTP/1.1 server with Range support and fault
 * injection for the fetch tests (see fetch_httpd.h). */
#define _GNU_SOURCE
#include "fetch_httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct resource {
    char *path;
    unsigned char *data;
    size_t n;
    int has_data;
    fetch_httpd_fault fault;
    int hits;
} resource;

struct fetch_httpd {
    int listen_fd;
    int port;
    char url[64];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int stopping;
    int active;
    resource *res;
    size_t n_res, cap_res;
    fetch_httpd_request *log;
    size_t n_log, cap_log;
};

typedef struct conn {
    fetch_httpd *srv;
    int fd;
} conn;

static const char *norm(const char *path) {
    while (*path == '/')
        path++;
    return path;
}

/* Caller holds the mutex. Creates the entry if needed. */
static resource *find_res(fetch_httpd *s, const char *path, int create) {
    for (size_t i = 0; i < s->n_res; i++)
        if (strcmp(s->res[i].path, path) == 0) return &s->res[i];
    if (!create) return NULL;
    if (s->n_res == s->cap_res) {
        size_t nc = s->cap_res ? s->cap_res * 2 : 8;
        resource *nr = realloc(s->res, nc * sizeof *nr);
        if (!nr) return NULL;
        s->res = nr;
        s->cap_res = nc;
    }
    resource *r = &s->res[s->n_res];
    memset(r, 0, sizeof *r);
    if (!(r->path = strdup(path))) return NULL;
    s->n_res++;
    return r;
}

static int send_all(fetch_httpd *s, int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    (void)s;
    return 0;
}

static int is_stopping(fetch_httpd *s) {
    pthread_mutex_lock(&s->mu);
    int st = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* Appends to the log; returns the entry's index (or -1). */
static long log_request(fetch_httpd *s, const fetch_httpd_request *r) {
    long idx = -1;
    pthread_mutex_lock(&s->mu);
    if (s->n_log == s->cap_log) {
        size_t nc = s->cap_log ? s->cap_log * 2 : 32;
        fetch_httpd_request *nl = realloc(s->log, nc * sizeof *nl);
        if (nl) {
            s->log = nl;
            s->cap_log = nc;
        }
    }
    if (s->n_log < s->cap_log) {
        idx = (long)s->n_log;
        s->log[s->n_log++] = *r;
    }
    pthread_mutex_unlock(&s->mu);
    return idx;
}

static const char *reason(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 416:
        return "Range Not Satisfiable";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

static void handle(fetch_httpd *s, int fd) {
    char req[8192];
    size_t got = 0;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0) return;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n")) break;
    }
    fetch_httpd_request log = {.range_start = -1, .status = 400};
    char method[8] = "", target[1024] = "";
    if (sscanf(req, "%7s %1023s", method, target) != 2) {
        log_request(s, &log);
        const char *bad =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(s, fd, bad, strlen(bad));
        return;
    }
    char *q = strchr(target, '?');
    if (q) *q = '\0';
    snprintf(log.method, sizeof log.method, "%s", method);
    snprintf(log.path, sizeof log.path, "%s", norm(target));
    for (char *line = strstr(req, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Range:", 6) == 0) {
            long start;
            if (sscanf(line + 8, " bytes=%ld-", &start) == 1) log.range_start = start;
        }
    }

    // Decide the answer under the lock, then serve from a private copy.
    pthread_mutex_lock(&s->mu);
    resource *r = find_res(s, log.path, 0);
    fetch_httpd_fault fault = {0};
    unsigned char *body = NULL;
    size_t len = 0;
    int number = 0, found = r && r->has_data;
    if (r) {
        fault = r->fault;
        number = ++r->hits;
        if (found && (body = malloc(r->n ? r->n : 1))) {
            memcpy(body, r->data, r->n);
            len = r->n;
        }
    }
    pthread_mutex_unlock(&s->mu);

    int status;
    size_t start = 0;
    if (fault.status)
        status = fault.status;
    else if (!found || !body)
        status = 404;
    else if (number <= fault.fail_first)
        status = 500;
    else if (log.range_start >= 0 && !fault.ignore_range)
        status = (size_t)log.range_start >= len ? 416 : 206;
    else
        status = 200;
    if (status == 206) start = (size_t)log.range_start;
    int has_body = status == 200 || status == 206;
    size_t body_len = has_body ? len - start : 0;

    char head[512];
    int hl = snprintf(
        head, sizeof head,
        "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nAccept-Ranges: bytes\r\nConnection: close\r\n",
        status, reason(status), body_len);
    if (status == 206)
        hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Range: bytes %zu-%zu/%zu\r\n",
                       start, len - 1, len);
    else if (status == 416)
        hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Range: bytes */%zu\r\n", len);
    hl += snprintf(head + hl, sizeof head - (size_t)hl, "\r\n");
    log.status = status;
    long idx = log_request(s, &log);
    if (send_all(s, fd, head, (size_t)hl) == 0 && has_body && strcmp(method, "HEAD") != 0) {
        size_t limit = body_len;
        int served = number - fault.fail_first;
        if (fault.drop_after > 0 && (fault.drop_times == 0 || served <= fault.drop_times) &&
            (size_t)fault.drop_after < limit)
            limit = (size_t)fault.drop_after;
        if (fault.wrong_bytes)
            for (size_t i = start; i < len; i++)
                body[i] ^= 0xff;
        size_t piece = fault.trickle_bytes > 0 ? (size_t)fault.trickle_bytes : 65536;
        size_t sent = 0;
        while (sent < limit) {
            if (fault.trickle_bytes > 0) {
                if (is_stopping(s)) break;
                struct timespec ts = {fault.trickle_ms / 1000,
                                      (long)(fault.trickle_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            size_t n = limit - sent < piece ? limit - sent : piece;
            if (send_all(s, fd, body + start + sent, n) != 0) break;
            sent += n;
        }
        pthread_mutex_lock(&s->mu);
        // The log may have been cleared meanwhile; only touch a live entry.
        if (idx >= 0 && (size_t)idx < s->n_log) s->log[idx].bytes_sent = (long)sent;
        pthread_mutex_unlock(&s->mu);
    }
    free(body);
}

static void *conn_main(void *arg) {
    conn *c = arg;
    fetch_httpd *s = c->srv;
    handle(s, c->fd);
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&s->mu);
    if (--s->active == 0) pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void *accept_main(void *arg) {
    fetch_httpd *s = arg;
    while (!is_stopping(s)) {
        struct pollfd p = {s->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        conn *c = malloc(sizeof *c);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (c) {
            c->srv = s;
            c->fd = fd;
            pthread_mutex_lock(&s->mu);
            s->active++;
            pthread_mutex_unlock(&s->mu);
            if (pthread_create(&t, &attr, conn_main, c) != 0) {
                pthread_mutex_lock(&s->mu);
                s->active--;
                pthread_mutex_unlock(&s->mu);
                free(c);
                close(fd);
            }
        } else {
            close(fd);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

dd_status fetch_httpd_start(fetch_httpd **out) {
    fetch_httpd *s = calloc(1, sizeof *s);
    if (!s) return dd_error_set(DD_ERR_NOMEM, "fetch_httpd: out of memory");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        dd_status st =
            dd_error_set(DD_ERR_IO, "fetch_httpd: cannot listen on 127.0.0.1: %s", strerror(errno));
        if (fd >= 0) close(fd);
        free(s);
        return st;
    }
    s->listen_fd = fd;
    s->port = ntohs(a.sin_port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d/", s->port);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    if (pthread_create(&s->thread, NULL, accept_main, s) != 0) {
        close(fd);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->idle);
        free(s);
        return dd_error_set(DD_ERR_IO, "fetch_httpd: cannot start the server thread");
    }
    *out = s;
    return DD_OK;
}

void fetch_httpd_stop(fetch_httpd *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_lock(&s->mu);
    while (s->active > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    close(s->listen_fd);
    for (size_t i = 0; i < s->n_res; i++) {
        free(s->res[i].path);
        free(s->res[i].data);
    }
    free(s->res);
    free(s->log);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    free(s);
}

int fetch_httpd_port(const fetch_httpd *s) {
    return s->port;
}

const char *fetch_httpd_url(const fetch_httpd *s) {
    return s->url;
}

dd_status fetch_httpd_add(fetch_httpd *s, const char *path, const void *data, size_t n) {
    unsigned char *copy = malloc(n ? n : 1);
    if (!copy) return dd_error_set(DD_ERR_NOMEM, "fetch_httpd: out of memory");
    if (n) memcpy(copy, data, n);
    pthread_mutex_lock(&s->mu);
    resource *r = find_res(s, norm(path), 1);
    if (!r) {
        pthread_mutex_unlock(&s->mu);
        free(copy);
        return dd_error_set(DD_ERR_NOMEM, "fetch_httpd: out of memory");
    }
    free(r->data);
    r->data = copy;
    r->n = n;
    r->has_data = 1;
    pthread_mutex_unlock(&s->mu);
    return DD_OK;
}

dd_status fetch_httpd_add_file(fetch_httpd *s, const char *path, const char *file) {
    FILE *f = fopen(file, "rb");
    if (!f) return dd_error_set(DD_ERR_IO, "%s: %s", file, strerror(errno));
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return dd_error_set(DD_ERR_NOMEM, "fetch_httpd: out of memory");
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    dd_status st = fetch_httpd_add(s, path, buf, n);
    free(buf);
    return st;
}

void fetch_httpd_set_fault(fetch_httpd *s, const char *path, const fetch_httpd_fault *f) {
    pthread_mutex_lock(&s->mu);
    resource *r = find_res(s, norm(path), 1);
    if (r) {
        if (f)
            r->fault = *f;
        else
            memset(&r->fault, 0, sizeof r->fault);
        r->hits = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

size_t fetch_httpd_requests(fetch_httpd *s, const char *path, fetch_httpd_request *out,
                            size_t cap) {
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_log; i++) {
        if (path && strcmp(s->log[i].path, norm(path)) != 0) continue;
        if (out && n < cap) out[n] = s->log[i];
        n++;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

void fetch_httpd_wait_idle(fetch_httpd *s) {
    pthread_mutex_lock(&s->mu);
    while (s->active > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void fetch_httpd_clear_log(fetch_httpd *s) {
    pthread_mutex_lock(&s->mu);
    s->n_log = 0;
    pthread_mutex_unlock(&s->mu);
}
