/* distill — a loaded pipeline's getters, the resolved config.yaml writer and
 * the one-line summary. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/options.h"
#include "config/schema.h"
#include "config/yaml_tree.h"
#include "distill/distill.h"
#include "run/pipeline_impl.h"

/* ---- getters ------------------------------------------------------------- */

const char *dd_pipeline_path(const dd_pipeline *p) {
    return p->path;
}
const char *dd_pipeline_dir(const dd_pipeline *p) {
    return p->dir;
}
const char *dd_pipeline_name(const dd_pipeline *p) {
    return dd_options_string(p->top, "name");
}

const char *dd_pipeline_description(const dd_pipeline *p) {
    const char *d = dd_options_string(p->top, "description");
    return d ? d : "";
}

uint64_t dd_pipeline_seed(const dd_pipeline *p) {
    return (uint64_t)dd_options_int(p->top, "seed");
}
size_t dd_pipeline_stage_count(const dd_pipeline *p) {
    return p->n_stages;
}
dd_stage dd_pipeline_stage(const dd_pipeline *p, size_t i) {
    return p->stages[i];
}

int dd_pipeline_has_stage(const dd_pipeline *p, dd_stage s) {
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i] == s) return 1;
    return 0;
}

static int kind_of(const char *section) {
    for (int k = DD_COMPONENT_DATASET; k <= DD_COMPONENT_OBJECTIVE; k++)
        if (strcmp(section, dd_section_name((dd_component_kind)k)) == 0) return k;
    return 0;
}

static int stage_index(const char *section) {
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        const char *sec = dd_stage_section((dd_stage)i);
        if (sec && strcmp(section, sec) == 0) return i;
    }
    return -1;
}

const dd_options *dd_pipeline_section(const dd_pipeline *p, const char *section) {
    if (!p || !section) return NULL;
    int k = kind_of(section);
    if (k) return p->comp_opts[k];
    int i = stage_index(section);
    return i >= 0 ? p->stage_opts[i] : NULL;
}

int dd_pipeline_section_present(const dd_pipeline *p, const char *section) {
    if (!p || !section) return 0;
    int k = kind_of(section);
    if (k) return p->comp_present[k] && p->comp[k];
    int i = stage_index(section);
    return i >= 0 && p->stage_present[i];
}

const dd_component *dd_pipeline_component(const dd_pipeline *p, dd_component_kind kind) {
    return p && (int)kind >= 1 && (int)kind < DD_PIPELINE_N_KINDS ? p->comp[kind] : NULL;
}

const dd_options *dd_pipeline_component_options(const dd_pipeline *p, dd_component_kind kind) {
    return p && (int)kind >= 1 && (int)kind < DD_PIPELINE_N_KINDS ? p->comp_opts[kind] : NULL;
}

size_t dd_pipeline_arch_count(const dd_pipeline *p) {
    return p->n_arch;
}

const dd_component *dd_pipeline_arch(const dd_pipeline *p, size_t i, const dd_options **options) {
    if (i >= p->n_arch) return NULL;
    if (options) *options = p->arch_opts[i];
    return p->arch_comp[i];
}

/* ---- writing ------------------------------------------------------------- */

// Writes the keys of o under `prefix` (dotted groups become nested mappings).
static void write_keys(FILE *f, const dd_options *o, const char *prefix, int indent) {
    size_t plen = strlen(prefix);
    size_t n = dd_options_count(o);
    for (size_t i = 0; i < n; i++) {
        const char *k = dd_options_spec(o, i)->name;
        if (strncmp(k, prefix, plen) != 0) continue;
        const char *rel = k + plen;
        const char *dot = strchr(rel, '.');
        if (dot) {
            size_t glen = (size_t)(dot - rel);
            int seen = 0;
            for (size_t j = 0; j < i && !seen; j++) {
                const char *kj = dd_options_spec(o, j)->name;
                seen = strncmp(kj, prefix, plen) == 0 && strncmp(kj + plen, rel, glen + 1) == 0;
            }
            if (seen) continue;
            fprintf(f, "%*s%.*s:\n", indent, "", (int)glen, rel);
            char sub[512];
            snprintf(sub, sizeof sub, "%s%.*s.", prefix, (int)glen, rel);
            write_keys(f, o, sub, indent + 2);
            continue;
        }
        char *v = dd_options_format(o, i);
        const char *w = dd_options_where_at(o, i);
        fprintf(f, "%*s%s: %s", indent, "", rel, v ? v : "null");
        if (w && strcmp(w, "<default>") != 0) fprintf(f, "  # %s", w);
        fputc('\n', f);
        free(v);
    }
}

dd_status dd_pipeline_write_config(const dd_pipeline *p, FILE *f) {
    fprintf(f, "# Resolved pipeline written by distill %s from %s.\n", dd_version(), p->path);
    fprintf(f,
            "# Every key with the value used; '# where' marks values not taken from defaults.\n");
    fprintf(f, "name: ");
    dd_yaml_write_scalar(f, dd_pipeline_name(p));
    fprintf(f, "\n");
    if (dd_options_has(p->top, "description")) {
        fprintf(f, "description: ");
        dd_yaml_write_scalar(f, dd_pipeline_description(p));
        fprintf(f, "\n");
    }
    fprintf(f, "seed: %llu\nstages: [", (unsigned long long)dd_pipeline_seed(p));
    for (size_t i = 0; i < p->n_stages; i++)
        fprintf(f, "%s%s", i ? ", " : "", dd_stage_name(p->stages[i]));
    fprintf(f, "]\n");
    for (int k = DD_COMPONENT_DATASET; k <= DD_COMPONENT_OBJECTIVE; k++) {
        if (!p->comp_opts[k]) continue;
        fprintf(f, "%s:\n", dd_section_name((dd_component_kind)k));
        write_keys(f, p->comp_opts[k], "", 2);
    }
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        const char *section = dd_stage_section((dd_stage)i);
        if (!section || (!p->stage_present[i] && !dd_pipeline_has_stage(p, (dd_stage)i))) continue;
        fprintf(f, "%s:\n", section);
        write_keys(f, p->stage_opts[i], "", 2);
        if (i == DD_STAGE_EVALUATE && p->n_arch) {
            fprintf(f, "  architectures:\n");
            for (size_t a = 0; a < p->n_arch; a++) {
                fprintf(f, "    -\n");
                write_keys(f, p->arch_opts[a], "", 6);
            }
        }
    }
    if (ferror(f))
        return dd_error_set(DD_ERR_IO, "writing the resolved pipeline: %s", strerror(errno));
    return DD_OK;
}

static void append(char *buf, size_t n, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t n, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (w > 0) *len = (size_t)w < n - *len ? *len + (size_t)w : n - 1;
}

void dd_pipeline_summary(const dd_pipeline *p, char *buf, size_t n) {
    size_t len = 0;
    if (!n) return;
    buf[0] = '\0';
    append(buf, n, &len, "%s:", dd_pipeline_name(p));
    const dd_options *d = p->comp_opts[DD_COMPONENT_DATASET];
    if (d)
        append(buf, n, &len, " dataset %s/%s", dd_options_string(d, "plugin"),
               dd_options_string(d, "name"));
    if (p->comp[DD_COMPONENT_MODEL])
        append(buf, n, &len, ", model %s", p->comp[DD_COMPONENT_MODEL]->name);
    if (p->comp[DD_COMPONENT_OBJECTIVE])
        append(buf, n, &len, ", objective %s", p->comp[DD_COMPONENT_OBJECTIVE]->name);
    append(buf, n, &len, "; seed %llu; stages:", (unsigned long long)dd_pipeline_seed(p));
    for (size_t i = 0; i < p->n_stages; i++)
        append(buf, n, &len, "%s %s", i ? "," : "", dd_stage_name(p->stages[i]));
}
