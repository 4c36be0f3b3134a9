/* distill — progress bar: a redrawn line on a terminal (bar, count, rate,
 * ETA, status), periodic plain lines otherwise (logs, CI). */
#define _POSIX_C_SOURCE 200809L
#include "base/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct dd_progress {
    char *label;
    char unit[16];
    uint64_t total, done;
    char status[160];
    FILE *out;
    int tty, width, silent, finished, printed;
    double interval;
    double (*clock)(void *);
    void *clock_ctx;
    double start, last;
};

static double mono_clock(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void dd_format_duration(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void dd_format_amount(double x, const char *unit, char *buf, size_t n) {
    if (unit && strcmp(unit, "B") == 0) {
        static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        int k = 0;
        while (x >= 1024 && k < 4) {
            x /= 1024;
            k++;
        }
        if (k == 0)
            snprintf(buf, n, "%.0f B", x);
        else
            snprintf(buf, n, "%.1f %s", x, u[k]);
    } else if (x == floor(x) && x < 1e15) {
        snprintf(buf, n, "%.0f", x);
    } else {
        snprintf(buf, n, "%.3g", x);
    }
}

dd_status dd_progress_create_config(const char *label, uint64_t total, const char *unit,
                                    const dd_progress_config *cfg, dd_progress **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_progress_create: NULL argument");
    *out = NULL;
    dd_progress *p = calloc(1, sizeof *p);
    if (!p || !(p->label = strdup(label ? label : ""))) {
        free(p);
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    snprintf(p->unit, sizeof p->unit, "%s", unit && *unit ? unit : "it");
    p->total = total;
    p->out = cfg && cfg->out ? cfg->out : stderr;
    p->tty = cfg && cfg->tty >= 0 ? cfg->tty : isatty(fileno(p->out));
    p->interval = cfg && cfg->interval > 0 ? cfg->interval : (p->tty ? 0.1 : 5.0);
    p->width = cfg && cfg->width > 0 ? cfg->width : 0;
    if (p->width <= 0) {
        const char *cols = getenv("COLUMNS");
        p->width = cols ? atoi(cols) : 0;
        if (p->width < 40 || p->width > 500) p->width = 80;
    }
    p->clock = cfg && cfg->clock ? cfg->clock : mono_clock;
    p->clock_ctx = cfg ? cfg->clock_ctx : NULL;
    p->silent = !(cfg && cfg->force) && dd_log_get_level() < DD_LOG_INFO;
    p->start = p->clock(p->clock_ctx);
    p->last = p->start - 1e9; // the first update prints at once
    *out = p;
    return DD_OK;
}

dd_status dd_progress_create(const char *label, uint64_t total, const char *unit,
                             dd_progress **out) {
    dd_progress_config cfg = {.tty = -1};
    return dd_progress_create_config(label, total, unit, &cfg, out);
}

// Count, rate and ETA text: "45/100 12.3 it/s ETA 0:05".
static void numbers(const dd_progress *p, double now, int final, char *buf, size_t n) {
    double el = now - p->start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char done_s[32], total_s[32], rate_s[48], t[32];
    dd_format_amount((double)p->done, p->unit, done_s, sizeof done_s);
    dd_format_amount((double)p->total, p->unit, total_s, sizeof total_s);
    dd_format_amount(rate, p->unit, rate_s, sizeof rate_s);
    if (strcmp(p->unit, "B") == 0)
        strncat(rate_s, "/s", sizeof rate_s - strlen(rate_s) - 1);
    else if (rate < 10 && rate > 0)
        snprintf(rate_s, sizeof rate_s, "%.2f %s/s", rate, p->unit);
    else
        snprintf(rate_s, sizeof rate_s, "%.1f %s/s", rate, p->unit);
    int len =
        p->total ? snprintf(buf, n, "%s/%s", done_s, total_s) : snprintf(buf, n, "%s", done_s);
    if (len < 0 || (size_t)len >= n) return;
    if (final) {
        dd_format_duration(el, t, sizeof t);
        snprintf(buf + len, n - (size_t)len, " in %s (%s)", t, el > 0 ? rate_s : "-");
        return;
    }
    // a rate over a few milliseconds is noise ("31 GiB/s"): wait for a real one
    if (p->done == 0 || el < 0.25) {
        snprintf(buf + len, n - (size_t)len, " -");
        return;
    }
    if (p->total && p->done < p->total) {
        dd_format_duration((double)(p->total - p->done) / rate, t, sizeof t);
        snprintf(buf + len, n - (size_t)len, " %s ETA %s", rate_s, t);
    } else {
        snprintf(buf + len, n - (size_t)len, " %s", rate_s);
    }
}

static void draw(dd_progress *p, double now, int final) {
    char nums[160];
    numbers(p, now, final, nums, sizeof nums);
    double frac = p->total ? (double)p->done / (double)p->total : 0;
    if (frac > 1) frac = 1;
    char line[1024];
    if (p->tty) {
        int w = p->width - (int)strlen(p->label) - (int)strlen(nums) - 12;
        if (p->status[0]) w -= (int)strlen(p->status) + 2;
        if (w > 40) w = 40;
        char bar[48] = "";
        if (p->total && w >= 10) {
            int fill = (int)(frac * w);
            for (int i = 0; i < w; i++)
                bar[i] = i < fill ? '#' : '-';
            bar[w] = '\0';
        }
        int len;
        if (bar[0])
            len = snprintf(line, sizeof line, "\r%s [%s] %3.0f%% %s", p->label, bar, frac * 100,
                           nums);
        else if (p->total)
            len = snprintf(line, sizeof line, "\r%s %3.0f%% %s", p->label, frac * 100, nums);
        else
            len = snprintf(line, sizeof line, "\r%s %s", p->label, nums);
        if (p->status[0] && len > 0 && (size_t)len < sizeof line)
            snprintf(line + len, sizeof line - (size_t)len, "  %s", p->status);
        // clip to the terminal width so the line never wraps
        if ((int)strlen(line) > p->width) line[p->width] = '\0';
        fprintf(p->out, "%s\033[K%s", line, final ? "\n" : "");
    } else {
        int len = p->total
                      ? snprintf(line, sizeof line, "%s: %3.0f%% %s", p->label, frac * 100, nums)
                      : snprintf(line, sizeof line, "%s: %s", p->label, nums);
        if (p->status[0] && len > 0 && (size_t)len < sizeof line)
            snprintf(line + len, sizeof line - (size_t)len, "  %s", p->status);
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->printed = 1;
}

void dd_progress_update(dd_progress *p, uint64_t done, const char *status) {
    if (!p || p->finished) return;
    p->done = done;
    if (status) snprintf(p->status, sizeof p->status, "%s", status);
    if (p->silent) return;
    double now = p->clock(p->clock_ctx);
    if (now - p->last < p->interval) return;
    p->last = now;
    draw(p, now, 0);
}

void dd_progress_finish(dd_progress *p) {
    if (!p || p->finished) return;
    p->finished = 1;
    if (p->silent) return;
    draw(p, p->clock(p->clock_ctx), 1);
}

void dd_progress_destroy(dd_progress *p) {
    if (!p) return;
    dd_progress_finish(p);
    free(p->label);
    free(p);
}
