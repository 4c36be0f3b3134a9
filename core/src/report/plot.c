/* distill — the report's figures with cairo: line charts (linear or log y,
 * NaN points skipped), a labelled image grid and grouped bars, each written
 * to a temporary file beside the target and renamed (base/fs.h). */
#include "report/plot.h"

#include <cairo.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fs.h"
#include "distill/image.h"

#define FONT "sans"
#define PI 3.14159265358979323846

/* Ten colours that stay apart on white and from each other. */
static const uint8_t PALETTE[DD_PLOT_N_COLORS][3] = {
    {31, 90, 180}, {220, 100, 20}, {40, 150, 60},   {200, 40, 50},  {130, 80, 180},
    {120, 80, 60}, {210, 90, 170}, {110, 110, 110}, {170, 170, 30}, {20, 170, 190}};

void dd_plot_color(int i, uint8_t rgb[3]) {
    const uint8_t *c = PALETTE[(i % DD_PLOT_N_COLORS + DD_PLOT_N_COLORS) % DD_PLOT_N_COLORS];
    memcpy(rgb, c, 3);
}

static void set_color(cairo_t *cr, int i, double alpha) {
    uint8_t c[3];
    dd_plot_color(i, c);
    cairo_set_source_rgba(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0, alpha);
}

/* ---- output ------------------------------------------------------------- */

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int len) {
    FILE *f = closure;
    return fwrite(data, 1, len, f) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* The drawing's status, then the PNG through an atomic file. */
static dd_status finish(cairo_t *cr, cairo_surface_t *s, const char *path) {
    cairo_status_t cs = cr ? cairo_status(cr) : CAIRO_STATUS_SUCCESS;
    if (cs == CAIRO_STATUS_SUCCESS) cs = cairo_surface_status(s);
    if (cr) cairo_destroy(cr);
    if (cs != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return dd_error_set(DD_ERR_IO, "%s: cairo: %s", path, cairo_status_to_string(cs));
    }
    dd_fs_atomic a;
    dd_status st = dd_fs_atomic_open(&a, path);
    if (st != DD_OK) {
        cairo_surface_destroy(s);
        return st;
    }
    cs = cairo_surface_write_to_png_stream(s, write_chunk, a.f);
    cairo_surface_destroy(s);
    if (cs != CAIRO_STATUS_SUCCESS) {
        dd_fs_atomic_abort(&a);
        return dd_error_set(DD_ERR_IO, "%s: cairo: %s", path, cairo_status_to_string(cs));
    }
    return dd_fs_atomic_commit(&a);
}

/* A white canvas; a failed surface is reported by finish(). */
static cairo_t *canvas(int w, int h, cairo_surface_t **s) {
    *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return cr;
}

/* ---- text --------------------------------------------------------------- */

static double text_width(cairo_t *cr, const char *s) {
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    return te.x_advance;
}

/* Draws `s` with (x, y) at the fraction ha of its width (0 left, 0.5
 * centre, 1 right) and va of the font's height (0 top, 0.5 middle, 1
 * bottom), so that lines of one font line up whatever their letters. */
static void text(cairo_t *cr, double x, double y, const char *s, double ha, double va) {
    cairo_font_extents_t fe;
    cairo_font_extents(cr, &fe);
    const double h = fe.ascent + fe.descent;
    cairo_move_to(cr, x - ha * text_width(cr, s), y - va * h + fe.ascent);
    cairo_show_text(cr, s);
}

static void font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* ---- axes --------------------------------------------------------------- */

/* 1, 2 or 5 × 10^k, the nearest at or above `raw`. */
static double nice_step(double raw) {
    const double p = pow(10.0, floor(log10(raw)));
    const double f = raw / p;
    return (f <= 1.0 ? 1.0 : f <= 2.0 ? 2.0 : f <= 5.0 ? 5.0 : 10.0) * p;
}

/* An axis maps [lo, hi] (in log10 units for a log axis) onto pixels. */
typedef struct axis {
    double lo, hi;
    int log;
    double p0, p1; /* pixel of lo and of hi */
} axis;

static double axis_px(const axis *a, double v) {
    const double t = a->log ? log10(v) : v;
    return a->p0 + (t - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static int drawable(double v, int log) {
    return isfinite(v) && (!log || v > 0);
}

/* A tick value's label: as many decimals as the step needs. */
static void tick_label(char *buf, size_t n, double v, double step, int log) {
    if (log) {
        snprintf(buf, n, "%g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < step * 1e-6) v = 0; // no "-0.0"
    snprintf(buf, n, "%.*f", dec, v);
}

/* Ticks of a linear axis over [lo, hi]: count and the step. */
static double linear_ticks(double lo, double hi, int integer, double *first) {
    double step = nice_step((hi - lo) / 5.0);
    if (integer && step < 1) step = 1;
    *first = ceil(lo / step - 1e-9) * step;
    return step;
}

/* ---- line charts -------------------------------------------------------- */

#define L_LEFT 78
#define L_RIGHT 190
#define L_TOP 34
#define L_BOTTOM 50

static void series_range(const dd_plot_panel *p, double *xlo, double *xhi, double *ylo,
                         double *yhi) {
    *xlo = *ylo = DBL_MAX;
    *xhi = *yhi = -DBL_MAX;
    for (int i = 0; i < p->n_series; i++) {
        const dd_plot_series *s = &p->series[i];
        for (int j = 0; j < s->n; j++) {
            const double x = s->x0 + j * s->dx;
            const double v[3] = {s->y ? s->y[j] : NAN, s->lo ? s->lo[j] : NAN,
                                 s->hi ? s->hi[j] : NAN};
            for (int t = 0; t < 3; t++) {
                if (!drawable(v[t], p->log_y)) continue;
                *ylo = fmin(*ylo, v[t]);
                *yhi = fmax(*yhi, v[t]);
                *xlo = fmin(*xlo, x);
                *xhi = fmax(*xhi, x);
            }
        }
    }
}

/* Where a y axis has its ticks: multiples of a step in value units on a
 * linear axis or on a log axis spanning less than a decade, else powers of
 * ten (every `step`-th one; with 2× and 5× between on a single decade). */
typedef struct ticks {
    int decades;
    double first, step;
} ticks;

/* The y axis over [ylo, yhi] (positive on a log axis) and its ticks. */
static void y_axis(int log_y, double ylo, double yhi, axis *ay, ticks *t) {
    ay->log = log_y;
    if (log_y && log10(yhi) - log10(ylo) >= 1) {
        ay->lo = floor(log10(ylo));
        ay->hi = ceil(log10(yhi));
        t->decades = 1;
        t->step = ceil((ay->hi - ay->lo) / 6.0);
        t->first = ay->lo;
        return;
    }
    if (yhi - ylo < 1e-9 * fmax(1e-300, fabs(yhi))) {
        const double d = log_y ? 0.2 * yhi : 0.5;
        ylo -= d;
        yhi += d;
    }
    t->decades = 0;
    t->step = nice_step((yhi - ylo) / 5.0);
    double lo = floor(ylo / t->step + 1e-9) * t->step;
    double hi = ceil(yhi / t->step - 1e-9) * t->step;
    t->first = lo;
    if (log_y) {
        if (lo <= 0) lo = ylo * 0.9; // the axis starts below the data, not at 0
        if (t->first < lo) t->first += t->step;
        ay->lo = log10(lo);
        ay->hi = log10(hi);
    } else {
        ay->lo = lo;
        ay->hi = hi;
    }
}

static void y_tick(cairo_t *cr, const axis *ay, double v, double step, int decade, double x0,
                   double x1) {
    char buf[64];
    const double y = axis_px(ay, v);
    cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
    cairo_move_to(cr, x0, y);
    cairo_line_to(cr, x1, y);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    tick_label(buf, sizeof buf, v, step, decade);
    text(cr, x0 - 6, y, buf, 1.0, 0.5);
}

static void draw_y_ticks(cairo_t *cr, const axis *ay, const ticks *t, double x0, double x1) {
    font(cr, 11, 0);
    if (!t->decades) {
        const double top = ay->log ? pow(10.0, ay->hi) : ay->hi;
        for (int i = 0; i < 64; i++) {
            const double v = t->first + i * t->step;
            if (v > top + t->step * 1e-6) break;
            y_tick(cr, ay, v, t->step, 0, x0, x1);
        }
        return;
    }
    static const double mult[3] = {1, 2, 5};
    const int between = ay->hi - ay->lo <= 1; // one decade: 2× and 5× too
    for (double e = t->first; e <= ay->hi + 1e-9; e += t->step)
        for (int m = 0; m < (between ? 3 : 1); m++) {
            const double v = pow(10.0, e) * mult[m];
            if (log10(v) > ay->hi + 1e-9) break;
            y_tick(cr, ay, v, 0, 1, x0, x1);
        }
}

static void draw_x_ticks(cairo_t *cr, const axis *ax, int integer, double y0, double y1) {
    char buf[64];
    double first;
    const double step = linear_ticks(ax->lo, ax->hi, integer, &first);
    font(cr, 11, 0);
    for (double t = first; t <= ax->hi + step * 1e-6; t += step) {
        const double x = axis_px(ax, t);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, y0);
        cairo_line_to(cr, x, y1);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        tick_label(buf, sizeof buf, t, step, 0);
        text(cr, x, y0 + 5, buf, 0.5, 0.0);
    }
}

/* The band of series s: each run of points with both bounds, filled. */
static void draw_band(cairo_t *cr, const dd_plot_series *s, const axis *ax, const axis *ay,
                      int color) {
    set_color(cr, color, 0.22);
    int j = 0;
    while (j < s->n) {
        if (!drawable(s->lo[j], ay->log) || !drawable(s->hi[j], ay->log)) {
            j++;
            continue;
        }
        int end = j;
        while (end < s->n && drawable(s->lo[end], ay->log) && drawable(s->hi[end], ay->log))
            end++;
        for (int t = j; t < end; t++)
            cairo_line_to(cr, axis_px(ax, s->x0 + t * s->dx), axis_px(ay, s->lo[t]));
        for (int t = end - 1; t >= j; t--)
            cairo_line_to(cr, axis_px(ax, s->x0 + t * s->dx), axis_px(ay, s->hi[t]));
        cairo_close_path(cr);
        cairo_fill(cr);
        j = end;
    }
}

static void draw_series(cairo_t *cr, const dd_plot_series *s, const axis *ax, const axis *ay,
                        int color) {
    if (s->lo && s->hi) draw_band(cr, s, ax, ay, color);
    if (!s->y) return;
    set_color(cr, color, 1.0);
    cairo_set_line_width(cr, 2.5);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_new_path(cr);
    int pen = 0;
    for (int j = 0; j < s->n; j++) {
        if (!drawable(s->y[j], ay->log)) {
            pen = 0;
            continue;
        }
        const double x = axis_px(ax, s->x0 + j * s->dx), y = axis_px(ay, s->y[j]);
        if (pen)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        pen = 1;
    }
    cairo_stroke(cr);
    // Few points: mark each (a lone point would otherwise not show).
    if (s->n <= 40)
        for (int j = 0; j < s->n; j++) {
            if (!drawable(s->y[j], ay->log)) continue;
            cairo_arc(cr, axis_px(ax, s->x0 + j * s->dx), axis_px(ay, s->y[j]), 3.2, 0, 2 * PI);
            cairo_fill(cr);
        }
    cairo_set_line_width(cr, 1.0);
}

static double fit_font(cairo_t *cr, const char *const *s, int n, double room, double max);

/* The series' names right of the panel, in a font small enough that the
 * longest fits the canvas. */
static void draw_legend(cairo_t *cr, const dd_plot_panel *p, double x, double y) {
    font(cr, 11, 0);
    const char *names[64];
    int n = 0;
    for (int i = 0; i < p->n_series && n < 64; i++)
        if (p->series[i].name) names[n++] = p->series[i].name;
    if (n) cairo_set_font_size(cr, fit_font(cr, names, n, DD_PLOT_WIDTH - (x + 28) - 4, 11));
    for (int i = 0; i < p->n_series; i++) {
        if (!p->series[i].name) continue;
        set_color(cr, i, 1.0);
        cairo_rectangle(cr, x, y + 4, 22, 6);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text(cr, x + 28, y + 7, p->series[i].name, 0.0, 0.5);
        y += 17;
    }
}

static void draw_panel(cairo_t *cr, const dd_plot_panel *p, double top) {
    const double x0 = L_LEFT, x1 = DD_PLOT_WIDTH - L_RIGHT;
    const double y0 = top + DD_PLOT_PANEL_HEIGHT - L_BOTTOM, y1 = top + L_TOP;
    double xlo, xhi, ylo, yhi;
    series_range(p, &xlo, &xhi, &ylo, &yhi);
    const int empty = xlo > xhi;
    if (empty) {
        xlo = ylo = p->log_y ? 0.1 : 0;
        xhi = yhi = 1;
    }
    if (xhi <= xlo) {
        xlo -= 0.5;
        xhi += 0.5;
    }
    axis ax = {xlo, xhi, 0, x0, x1}, ay = {0, 1, 0, y0, y1};
    ticks yt;
    y_axis(p->log_y, ylo, yhi, &ay, &yt);
    cairo_set_line_width(cr, 1.0);
    draw_y_ticks(cr, &ay, &yt, x0, x1);
    draw_x_ticks(cr, &ax, p->x_integer, y0, y1);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
    cairo_stroke(cr);
    if (p->title) {
        font(cr, 13, 1);
        text(cr, (x0 + x1) / 2, top + 8, p->title, 0.5, 0.0);
    }
    font(cr, 12, 0);
    if (p->x_label) text(cr, (x0 + x1) / 2, y0 + 24, p->x_label, 0.5, 0.0);
    if (p->y_label) {
        cairo_save(cr);
        cairo_translate(cr, 16, (y0 + y1) / 2);
        cairo_rotate(cr, -PI / 2);
        text(cr, 0, 0, p->y_label, 0.5, 0.5);
        cairo_restore(cr);
    }
    if (empty) {
        text(cr, (x0 + x1) / 2, (y0 + y1) / 2, "no data", 0.5, 0.5);
    } else {
        cairo_save(cr);
        cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
        cairo_clip(cr);
        for (int i = 0; i < p->n_series; i++)
            draw_series(cr, &p->series[i], &ax, &ay, i);
        cairo_restore(cr);
    }
    draw_legend(cr, p, x1 + 14, y1);
}

dd_status dd_plot_lines(const char *path, const dd_plot_panel *panels, int n_panels) {
    if (!path || !panels || n_panels < 1 || n_panels > 16)
        return dd_error_set(DD_ERR_INVALID, "%s: plot: bad arguments (%d panels)",
                            path ? path : "?", n_panels);
    cairo_surface_t *s;
    cairo_t *cr = canvas(DD_PLOT_WIDTH, n_panels * DD_PLOT_PANEL_HEIGHT, &s);
    for (int i = 0; i < n_panels; i++)
        draw_panel(cr, &panels[i], (double)i * DD_PLOT_PANEL_HEIGHT);
    return finish(cr, s, path);
}

/* ---- the image grid ----------------------------------------------------- */

#define G_PAD 8
#define G_SEP DD_IMAGE_GRID_SEP
#define G_GROUP_SEP 8

/* The largest font size ≤ max at which every string is at most `room` wide. */
static double fit_font(cairo_t *cr, const char *const *s, int n, double room, double max) {
    cairo_set_font_size(cr, max);
    double w = 0;
    for (int i = 0; i < n; i++)
        if (s[i]) w = fmax(w, text_width(cr, s[i]));
    const double size = w > room && w > 0 ? max * room / w : max;
    return size < 6 ? 6 : size;
}

/* The grid's geometry: where column c and row r start, the fonts. */
typedef struct grid_layout {
    int tw, th, left, top, width, height;
    double row_font, head_font, title_font, sub_font;
    double title_h, sub_h, head_h; /* line heights */
} grid_layout;

static int col_x(const grid_layout *L, const dd_plot_grid *g, int c) {
    return L->left + c * (L->tw + G_SEP) + (c / g->group) * (G_GROUP_SEP - G_SEP);
}

static int row_y(const grid_layout *L, int r) {
    return L->top + r * (L->th + G_SEP);
}

void dd_plot_grid_tiles_size(int rows, int cols, int group, int height, int width, int scale,
                             int64_t *w, int64_t *h) {
    const int64_t groups = group > 0 ? (cols + group - 1) / group : cols;
    *w = (int64_t)cols * width * scale + (int64_t)(cols - 1) * G_SEP +
         (groups - 1) * (G_GROUP_SEP - G_SEP);
    *h = (int64_t)rows * height * scale + (int64_t)(rows - 1) * G_SEP;
}

static double line_height(cairo_t *cr, double size, int bold) {
    cairo_font_extents_t fe;
    font(cr, size, bold);
    cairo_font_extents(cr, &fe);
    return ceil(fe.ascent + fe.descent);
}

/* The widest of n strings at the current font (NULL entries skipped). */
static double widest(cairo_t *cr, const char *const *s, int n) {
    double w = 0;
    for (int i = 0; s && i < n; i++)
        if (s[i]) w = fmax(w, text_width(cr, s[i]));
    return w;
}

#define G_MIN_WIDTH 240   /* a small grid's figure */
#define G_TITLE_WIDTH 720 /* widest a figure grows for its titles */

static void grid_layout_make(cairo_t *cr, const dd_plot_grid *g, grid_layout *L) {
    L->tw = g->width * g->scale;
    L->th = g->height * g->scale;
    const int groups = g->cols / g->group;
    const int nh = g->headers ? g->header_lines : 0;
    const double group_w = g->group * L->tw + (g->group - 1) * G_SEP;
    L->row_font = fmin(13.0, fmax(6.0, 0.8 * L->th));
    font(cr, 12.0, 0);
    L->head_font =
        nh ? fit_font(cr, g->headers, groups * nh, group_w + G_GROUP_SEP - 4, 12.0) : 12.0;
    // The left column holds the row labels and the header lines' labels.
    font(cr, L->row_font, 0);
    double label_w = widest(cr, g->row_labels, g->row_labels ? g->rows : 0);
    font(cr, L->head_font, 0);
    label_w = fmax(label_w, widest(cr, g->header_labels, g->header_labels ? nh : 0));
    L->left = G_PAD + (label_w > 0 ? (int)ceil(label_w) + 8 : 0);
    const int grid_right = col_x(L, g, g->cols - 1) + L->tw;
    // The figure widens for its titles up to G_TITLE_WIDTH, then they shrink.
    font(cr, 14.0, 1);
    double want = g->title ? text_width(cr, g->title) : 0;
    font(cr, 11.0, 0);
    want = fmax(want, g->subtitle ? text_width(cr, g->subtitle) : 0);
    want = fmin(ceil(want) + 2 * G_PAD, G_TITLE_WIDTH);
    L->width = (int)fmax(fmax(grid_right + G_PAD, G_MIN_WIDTH), want);
    const double room = L->width - 2 * G_PAD;
    font(cr, 14.0, 1);
    L->title_font = g->title ? fit_font(cr, &g->title, 1, room, 14.0) : 0;
    font(cr, 11.0, 0);
    L->sub_font = g->subtitle ? fit_font(cr, &g->subtitle, 1, room, 11.0) : 0;
    L->title_h = g->title ? line_height(cr, L->title_font, 1) : 0;
    L->sub_h = g->subtitle ? line_height(cr, L->sub_font, 0) : 0;
    L->head_h = nh ? line_height(cr, L->head_font, 0) : 0;
    L->top = G_PAD + (int)(L->title_h + L->sub_h) + (g->title || g->subtitle ? 6 : 0) +
             (int)(nh * L->head_h) + (nh ? 4 : 0);
    L->height = row_y(L, g->rows - 1) + L->th + G_PAD;
}

/* One image into the tile surface (w × h, RGB24), de-normalised. */
static void fill_tile(cairo_surface_t *tile, const dd_plot_grid *g, const float *img,
                      uint8_t *rgb) {
    dd_image_denormalize(img, g->width, g->height, g->channels, g->mean, g->std, rgb);
    cairo_surface_flush(tile);
    unsigned char *data = cairo_image_surface_get_data(tile);
    const int stride = cairo_image_surface_get_stride(tile);
    const int c = g->channels;
    for (int y = 0; y < g->height; y++) {
        uint32_t *row = (uint32_t *)(void *)(data + (size_t)y * (size_t)stride);
        for (int x = 0; x < g->width; x++) {
            const uint8_t *p = rgb + ((size_t)y * (size_t)g->width + (size_t)x) * (size_t)c;
            const uint32_t r = p[0], gg = c == 3 ? p[1] : p[0], b = c == 3 ? p[2] : p[0];
            row[x] = (r << 16) | (gg << 8) | b;
        }
    }
    cairo_surface_mark_dirty(tile);
}

static void draw_grid_text(cairo_t *cr, const dd_plot_grid *g, const grid_layout *L) {
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    double y = G_PAD;
    if (g->title) {
        font(cr, L->title_font, 1);
        text(cr, G_PAD, y, g->title, 0.0, 0.0);
        y += L->title_h;
    }
    if (g->subtitle) {
        font(cr, L->sub_font, 0);
        text(cr, G_PAD, y, g->subtitle, 0.0, 0.0);
        y += L->sub_h;
    }
    if (g->title || g->subtitle) y += 6;
    if (g->headers && g->header_lines > 0) {
        font(cr, L->head_font, 0);
        for (int l = 0; l < g->header_lines; l++) {
            const double ly = y + l * L->head_h;
            if (g->header_labels && g->header_labels[l])
                text(cr, L->left - 8, ly, g->header_labels[l], 1.0, 0.0);
            for (int grp = 0; grp < g->cols / g->group; grp++) {
                const double x =
                    (col_x(L, g, grp * g->group) + col_x(L, g, (grp + 1) * g->group - 1) + L->tw) /
                    2.0;
                const char *h = g->headers[grp * g->header_lines + l];
                if (h) text(cr, x, ly, h, 0.5, 0.0);
            }
        }
    }
    if (g->row_labels) {
        font(cr, L->row_font, 0);
        for (int r = 0; r < g->rows; r++)
            if (g->row_labels[r])
                text(cr, L->left - 8, row_y(L, r) + L->th / 2.0, g->row_labels[r], 1.0, 0.5);
    }
}

dd_status dd_plot_image_grid(const char *path, const dd_plot_grid *g, int *width, int *height) {
    if (!path || !g || !g->images) return dd_error_set(DD_ERR_INVALID, "plot: NULL argument");
    if (g->channels != 1 && g->channels != 3)
        return dd_error_set(DD_ERR_UNSUPPORTED, "%s: cannot draw %d-channel images", path,
                            g->channels);
    if (g->rows < 1 || g->cols < 1 || g->height < 1 || g->width < 1 || g->scale < 1 ||
        g->scale > 64 || g->group < 1 || g->cols % g->group != 0 || g->height > DD_IMAGE_MAX_DIM ||
        g->width > DD_IMAGE_MAX_DIM || (g->headers && g->header_lines < 1))
        return dd_error_set(DD_ERR_INVALID,
                            "%s: image grid: bad arguments (%d×%d cells of %dx%d, scale %d, "
                            "groups of %d)",
                            path, g->rows, g->cols, g->width, g->height, g->scale, g->group);
    int64_t tiles_w, tiles_h;
    dd_plot_grid_tiles_size(g->rows, g->cols, g->group, g->height, g->width, g->scale, &tiles_w,
                            &tiles_h);
    if (tiles_w > DD_PLOT_GRID_MAX_SIDE || tiles_h > DD_PLOT_GRID_MAX_SIDE)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: image grid too large (%lldx%lld pixels of images, at most %d a "
                            "side)",
                            path, (long long)tiles_w, (long long)tiles_h, DD_PLOT_GRID_MAX_SIDE);
    // Measure the text on a scratch surface, then draw at the final size.
    cairo_surface_t *scratch;
    cairo_t *m = canvas(1, 1, &scratch);
    grid_layout L;
    grid_layout_make(m, g, &L);
    cairo_destroy(m);
    cairo_surface_destroy(scratch);
    if (L.width > DD_PLOT_GRID_MAX_SIDE || L.height > DD_PLOT_GRID_MAX_SIDE)
        return dd_error_set(DD_ERR_INVALID, "%s: image grid too large (%dx%d, at most %d a side)",
                            path, L.width, L.height, DD_PLOT_GRID_MAX_SIDE);
    const size_t D = (size_t)g->channels * (size_t)g->height * (size_t)g->width;
    uint8_t *rgb = malloc(D);
    if (!rgb) return dd_error_set(DD_ERR_NOMEM, "%s: out of memory for the image grid", path);
    cairo_surface_t *s;
    cairo_t *cr = canvas(L.width, L.height, &s);
    cairo_surface_t *tile = cairo_image_surface_create(CAIRO_FORMAT_RGB24, g->width, g->height);
    if (cairo_surface_status(tile) == CAIRO_STATUS_SUCCESS) {
        for (int r = 0; r < g->rows; r++)
            for (int c = 0; c < g->cols; c++) {
                fill_tile(tile, g, g->images + ((size_t)r * (size_t)g->cols + (size_t)c) * D, rgb);
                cairo_save(cr);
                cairo_translate(cr, col_x(&L, g, c), row_y(&L, r));
                cairo_scale(cr, g->scale, g->scale);
                cairo_set_source_surface(cr, tile, 0, 0);
                cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
                cairo_rectangle(cr, 0, 0, g->width, g->height);
                cairo_fill(cr);
                cairo_restore(cr);
            }
    }
    cairo_status_t ts = cairo_surface_status(tile);
    cairo_surface_destroy(tile);
    free(rgb);
    if (ts != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(s);
        return dd_error_set(DD_ERR_IO, "%s: cairo: %s", path, cairo_status_to_string(ts));
    }
    draw_grid_text(cr, g, &L);
    if (width) *width = L.width;
    if (height) *height = L.height;
    return finish(cr, s, path);
}

/* ---- grouped bars ------------------------------------------------------- */

#define B_LEFT 70
#define B_RIGHT 150
#define B_TOP 34
#define B_BOTTOM 96

dd_status dd_plot_bars(const char *path, const dd_plot_bar_chart *b) {
    if (!path || !b || !b->values || b->n_groups < 1 || b->n_series < 1 || b->n_series > 8)
        return dd_error_set(DD_ERR_INVALID, "%s: bar chart: bad arguments", path ? path : "?");
    double top = b->y_max;
    if (!(top > 0)) {
        top = 0;
        for (int i = 0; i < b->n_series * b->n_groups; i++)
            if (isfinite(b->values[i])) top = fmax(top, b->values[i]);
        if (!(top > 0)) top = 1;
    }
    const double x0 = B_LEFT, x1 = DD_PLOT_WIDTH - B_RIGHT;
    const double y0 = DD_PLOT_BARS_HEIGHT - B_BOTTOM, y1 = B_TOP;
    double step = nice_step(top / 5.0);
    top = ceil(top / step - 1e-9) * step;
    axis ay = {0, top, 0, y0, y1};
    cairo_surface_t *s;
    cairo_t *cr = canvas(DD_PLOT_WIDTH, DD_PLOT_BARS_HEIGHT, &s);
    cairo_set_line_width(cr, 1.0);
    const ticks yt = {0, 0, step};
    draw_y_ticks(cr, &ay, &yt, x0, x1);
    const double gw = (x1 - x0) / b->n_groups;
    const double bw = gw * 0.8 / b->n_series;
    for (int gi = 0; gi < b->n_groups; gi++)
        for (int si = 0; si < b->n_series; si++) {
            const double v = b->values[(size_t)si * (size_t)b->n_groups + (size_t)gi];
            if (!isfinite(v)) continue;
            const double x = x0 + gi * gw + gw * 0.1 + si * bw;
            const double y = axis_px(&ay, fmin(fmax(v, 0), top));
            set_color(cr, si, 1.0);
            cairo_rectangle(cr, x, y, bw, y0 - y);
            cairo_fill(cr);
        }
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_rectangle(cr, x0, y1, x1 - x0, y0 - y1);
    cairo_stroke(cr);
    // Group labels: level when they fit their group, else slanted.
    font(cr, 11, 0);
    char num[32];
    double widest = 0;
    for (int gi = 0; gi < b->n_groups; gi++) {
        snprintf(num, sizeof num, "%d", gi);
        const char *l = b->group_labels && b->group_labels[gi] ? b->group_labels[gi] : num;
        widest = fmax(widest, text_width(cr, l));
    }
    const int slant = widest > gw - 4;
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    for (int gi = 0; gi < b->n_groups; gi++) {
        snprintf(num, sizeof num, "%d", gi);
        const char *l = b->group_labels && b->group_labels[gi] ? b->group_labels[gi] : num;
        const double x = x0 + (gi + 0.5) * gw;
        if (!slant) {
            text(cr, x, y0 + 5, l, 0.5, 0.0);
            continue;
        }
        cairo_save(cr);
        cairo_translate(cr, x, y0 + 5);
        cairo_rotate(cr, -PI / 4);
        text(cr, 0, 0, l, 1.0, 0.5);
        cairo_restore(cr);
    }
    if (b->title) {
        font(cr, 13, 1);
        text(cr, (x0 + x1) / 2, 8, b->title, 0.5, 0.0);
    }
    if (b->y_label) {
        font(cr, 12, 0);
        cairo_save(cr);
        cairo_translate(cr, 16, (y0 + y1) / 2);
        cairo_rotate(cr, -PI / 2);
        text(cr, 0, 0, b->y_label, 0.5, 0.5);
        cairo_restore(cr);
    }
    font(cr, 11, 0);
    for (int si = 0; si < b->n_series; si++) {
        const double y = y1 + si * 17;
        set_color(cr, si, 1.0);
        cairo_rectangle(cr, x1 + 14, y + 2, 14, 10);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        if (b->series_names && b->series_names[si])
            text(cr, x1 + 34, y + 7, b->series_names[si], 0.0, 0.5);
    }
    return finish(cr, s, path);
}
