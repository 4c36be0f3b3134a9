/* distill (internal to report/) — the report's figures drawn with cairo (the
 * only cairo user): line charts in stacked panels, a labelled image grid and
 * grouped bars, each written as a PNG atomically (base/fs.h). */
#ifndef DD_PLOT_H
#define DD_PLOT_H

#include <stdint.h>

#include "base/export.h"
#include "distill/status.h"

#define DD_PLOT_WIDTH 800        /**< width of a line or bar figure, in pixels */
#define DD_PLOT_PANEL_HEIGHT 300 /**< height of one line-chart panel */
#define DD_PLOT_BARS_HEIGHT 380  /**< height of a bar figure */
#define DD_PLOT_BACKGROUND 255   /**< the figures' background is white (every channel) */
#define DD_PLOT_N_COLORS 10      /**< series colours before they repeat */

/** Colour of series i (i mod DD_PLOT_N_COLORS), 8-bit RGB. */
DD_INTERNAL void dd_plot_color(int i, uint8_t rgb[3]);

/** One line of a chart: point i is at (x0 + i·dx, y[i]). NaN and infinite
 * points (and, on a log axis, points ≤ 0) are skipped: the line breaks
 * there. All arrays are borrowed. */
typedef struct dd_plot_series {
    const char *name; /**< legend entry (NULL: not in the legend) */
    const double *y;  /**< n values */
    /** Optional band around the line (both or neither): filled, lighter. */
    const double *lo, *hi;
    int n;
    double x0, dx;
} dd_plot_series;

/** One chart: axes with ticks and numeric labels, a title, axis labels and
 * a legend at its right. */
typedef struct dd_plot_panel {
    const char *title, *x_label, *y_label;
    int log_y;     /**< logarithmic y axis */
    int x_integer; /**< x ticks at whole numbers only (iterations, steps) */
    const dd_plot_series *series;
    int n_series; /**< series i gets dd_plot_color(i) */
} dd_plot_panel;

/** Writes n_panels charts stacked top to bottom as one PNG of
 * DD_PLOT_WIDTH × n_panels·DD_PLOT_PANEL_HEIGHT pixels. A panel without a
 * drawable point shows its axes and "no data". DD_ERR_IO names `path` and
 * cairo's reason. */
DD_INTERNAL dd_status dd_plot_lines(const char *path, const dd_plot_panel *panels, int n_panels);

/** A grid of images with a label left of each row and a header above each
 * group of `group` columns. */
typedef struct dd_plot_grid {
    const char *title;    /**< bold, above the headers (NULL: none) */
    const char *subtitle; /**< a line under the title (NULL: none) */
    const float *images;  /**< rows × cols images, row by row; each C×H×W, normalised */
    int rows, cols;
    int channels, height, width;   /**< channels 1 (gray) or 3 (RGB) */
    const float *mean, *std;       /**< per channel (NULL: 0 / 1): pixel = v·std + mean */
    int scale;                     /**< each image pixel becomes scale × scale (1..64) */
    const char *const *row_labels; /**< rows strings (NULL: no labels) */
    int group;                     /**< columns per header (≥ 1; cols a multiple of it) */
    /** (cols / group) × header_lines strings: line l of header g at
     * [g·header_lines + l] (NULL: no headers). */
    const char *const *headers;
    int header_lines;
    /** header_lines strings left of the header lines, in the row labels'
     * column (NULL: none). */
    const char *const *header_labels;
} dd_plot_grid;

#define DD_PLOT_GRID_MAX_SIDE 12288 /**< largest width or height of a grid figure */

/** Width and height of a grid's tiles alone (no labels, titles or
 * margins): rows × cols images of height × width magnified `scale` times,
 * with the separators. */
DD_INTERNAL void dd_plot_grid_tiles_size(int rows, int cols, int group, int height, int width,
                                         int scale, int64_t *w, int64_t *h);

/** Writes the grid as a PNG; images are de-normalised with mean/std,
 * clamped to [0, 1] and magnified without smoothing. The figure is as wide
 * as the grid and its labels, or as its titles (up to 720 pixels, then the
 * titles shrink to fit); the headers shrink to fit their group. *width and *height
 * (either may be NULL) receive the figure's size. DD_ERR_UNSUPPORTED for
 * other channel counts, DD_ERR_INVALID for bad sizes, DD_ERR_IO naming
 * `path`. */
DD_INTERNAL dd_status dd_plot_image_grid(const char *path, const dd_plot_grid *g, int *width,
                                         int *height);

/** Grouped bars: one group per label, one bar per series in each. */
typedef struct dd_plot_bar_chart {
    const char *title, *y_label;
    int n_groups;
    const char *const *group_labels; /**< n_groups (NULL: "0", "1", …) */
    int n_series;
    const char *const *series_names; /**< n_series, in the legend */
    const double *values;            /**< n_series × n_groups, series-major; NaN: no bar */
    double y_max;                    /**< top of the axis (0: from the data) */
} dd_plot_bar_chart;

/** Writes the bars as a PNG of DD_PLOT_WIDTH × DD_PLOT_BARS_HEIGHT pixels;
 * series i gets dd_plot_color(i). DD_ERR_IO names `path`. */
DD_INTERNAL dd_status dd_plot_bars(const char *path, const dd_plot_bar_chart *b);

#endif
