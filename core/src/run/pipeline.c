/* distill — pipeline loading: YAML → validated sections, components and
 * stages, with --set overrides applied on top of the file. */
#define _GNU_SOURCE
#include "run/pipeline.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "distill/dataset.h"
#include "distill/model.h"
#include "distill/distill.h"
#include "config/options.h"
#include "config/schema.h"
#include "config/yaml_tree.h"
#include "data/manifest.h"
#include "model/model_impl.h"
#include "run/pipeline_impl.h"
#include "run/stage_table.h"

// One --set argument split into section and key.
typedef struct override {
    const char *orig; // "distill.steps=5"
    char section[64]; // "distill" (or a top-level key such as "seed")
    const char *key;  // "steps" inside orig (NULL for a top-level key)
    char keybuf[256];
    const char *value; // "5" inside orig
} override;

// Loading state shared by the helpers.
typedef struct loader {
    const char *file;
    const dd_ynode *root;
    override *ov;
    size_t n_ov;
} loader;

void dd_pipeline_destroy(dd_pipeline *p) {
    if (!p) return;
    dd_options_destroy(p->top);
    for (int i = 0; i < DD_STAGE_COUNT; i++)
        dd_options_destroy(p->stage_opts[i]);
    for (int i = 0; i < DD_PIPELINE_N_KINDS; i++)
        dd_options_destroy(p->comp_opts[i]);
    for (size_t i = 0; i < p->n_arch; i++)
        dd_options_destroy(p->arch_opts[i]);
    free(p->path);
    free(p->dir);
    free(p);
}

// The top-level keys: the scalar keys of dd_pipeline_top_spec(), the component sections,
// then the stage sections in the order the stages run.
static const char *top_key(int i) {
    int n = 0;
    while (dd_pipeline_top_spec()[n].name)
        n++;
    if (i < n) return dd_pipeline_top_spec()[i].name;
    i -= n;
    if (i < 3) return dd_section_name((dd_component_kind)(DD_COMPONENT_DATASET + i));
    i -= 3;
    for (int st = 0; st < DD_STAGE_COUNT; st++) {
        if (!dd_stage_section((dd_stage)st)) continue;
        if (i-- == 0) return dd_stage_section((dd_stage)st);
    }
    return NULL;
}

static int is_top_key(const char *k) {
    for (int i = 0; top_key(i); i++)
        if (strcmp(top_key(i), k) == 0) return 1;
    return 0;
}

static char *top_keys_list(void) {
    size_t len = 0;
    for (int i = 0; top_key(i); i++)
        len += strlen(top_key(i)) + 2;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    s[0] = '\0';
    for (int i = 0; top_key(i); i++) {
        if (i) strcat(s, ", ");
        strcat(s, top_key(i));
    }
    return s;
}

// Splits the --set arguments; errors for malformed ones and unknown sections.
static dd_status parse_overrides(const char *const *overrides, override **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    size_t n = 0;
    while (overrides && overrides[n])
        n++;
    if (!n) return DD_OK;
    override *ov = calloc(n, sizeof *ov);
    if (!ov) return dd_nomem();
    for (size_t i = 0; i < n; i++) {
        const char *s = overrides[i];
        const char *eq = strchr(s, '=');
        ov[i].orig = s;
        if (!eq || eq == s) {
            free(ov);
            return dd_error_set(DD_ERR_USAGE, "--set %s: expected KEY=VALUE (e.g. distill.steps=5)",
                                s);
        }
        size_t klen = (size_t)(eq - s);
        const char *dot = memchr(s, '.', klen);
        size_t slen = dot ? (size_t)(dot - s) : klen;
        if (slen >= sizeof ov[i].section || klen >= sizeof ov[i].keybuf) {
            free(ov);
            return dd_error_set(DD_ERR_INVALID, "--set %s: key too long", s);
        }
        memcpy(ov[i].section, s, slen);
        ov[i].section[slen] = '\0';
        if (dot) {
            memcpy(ov[i].keybuf, dot + 1, klen - slen - 1);
            ov[i].keybuf[klen - slen - 1] = '\0';
            ov[i].key = ov[i].keybuf;
        }
        ov[i].value = eq + 1;
        if (!is_top_key(ov[i].section)) {
            char *valid = top_keys_list();
            dd_status st =
                dd_error_set(DD_ERR_INVALID, "--set %s: unknown key '%s' (valid keys: %s)", s,
                             ov[i].section, valid ? valid : "?");
            free(valid);
            free(ov);
            return st;
        }
    }
    *out = ov;
    *n_out = n;
    return DD_OK;
}

// The top-level scalar keys are dd_pipeline_top_spec()'s.
static int is_scalar_key(const char *k) {
    for (const dd_param_spec *sp = dd_pipeline_top_spec(); sp->name; sp++)
        if (strcmp(k, sp->name) == 0) return 1;
    return 0;
}

// evaluate.architectures is not a key of the evaluate spec: its items are
// model components, loaded by load_architectures.
#define ARCH_KEY "architectures"

static int is_arch_key(const char *section, const char *key) {
    return section && key && strcmp(section, "evaluate") == 0 && strcmp(key, ARCH_KEY) == 0;
}

// Applies the overrides of `section` to o.
static dd_status apply_overrides(const loader *L, const char *section, dd_options *o) {
    for (size_t i = 0; i < L->n_ov; i++) {
        const override *v = &L->ov[i];
        if (strcmp(v->section, section) != 0 || is_arch_key(section, v->key)) continue;
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "--set %s", v->orig);
        const char *key = v->key;
        if (is_scalar_key(section)) {
            if (key)
                return dd_error_set(DD_ERR_INVALID,
                                    "%s: '%s' is not a section (use --set %s=VALUE)", prefix,
                                    section, section);
            key = section;
        } else if (!key || !*key) {
            return dd_error_set(DD_ERR_INVALID,
                                "%s: '%s' is a section; set one of its keys (%s.KEY=VALUE)", prefix,
                                section, section);
        }
        // paths given on the command line are relative to the current directory
        // where = "--set section.key": error messages and config.yaml's
        // comments name the override (its value can hold any character).
        char where[600];
        if (strcmp(key, section) == 0)
            snprintf(where, sizeof where, "--set %s", key);
        else
            snprintf(where, sizeof where, "--set %s.%s", section, key);
        DD_TRY(dd_options_set_yaml_text(o, key, v->value, where, prefix, NULL));
    }
    return DD_OK;
}

static int has_override(const loader *L, const char *section) {
    for (size_t i = 0; i < L->n_ov; i++)
        if (strcmp(L->ov[i].section, section) == 0) return 1;
    return 0;
}

// A section's mapping from the file: *map = NULL if absent or written empty.
static dd_status section_node(const loader *L, const char *section, const dd_yentry **entry,
                              const dd_ynode **map) {
    *map = NULL;
    *entry = dd_ynode_get(L->root, section);
    if (!*entry) return DD_OK;
    const dd_ynode *v = (*entry)->value;
    if (dd_ynode_is_null(v)) return DD_OK;
    if (v->kind != DD_YNODE_MAPPING)
        return dd_error_set(DD_ERR_INVALID,
                            "%s:%d:%d: section '%s' must be a mapping of keys, got %s", L->file,
                            v->line, v->col, section, dd_ynode_kind_str(v));
    *map = v;
    return DD_OK;
}

// Sets every entry of a section mapping into o (but evaluate.architectures).
static dd_status apply_yaml(const loader *L, const dd_ynode *map, dd_options *o,
                            const char *base_dir) {
    const char *section = dd_options_context(o);
    for (size_t i = 0; map && i < map->n; i++) {
        const dd_yentry *e = &map->entries[i];
        if (is_arch_key(section, e->key)) continue;
        DD_TRY(dd_options_set_node(o, e->key, e->value, L->file, e->line, e->col, base_dir));
    }
    return DD_OK;
}

// "file:line:col" of a section key, or of the document start when absent.
static void section_where(const loader *L, const dd_yentry *entry, char *buf, size_t n) {
    if (entry)
        snprintf(buf, n, "%s:%d:%d", L->file, entry->line, entry->col);
    else
        snprintf(buf, n, "%s:%d:%d", L->file, L->root->line, L->root->col);
}

static dd_status load_top(dd_pipeline *p, const loader *L) {
    const dd_param_spec *spec = dd_pipeline_top_spec();
    DD_TRY(dd_options_create(NULL, &spec, 1, &p->top));
    for (size_t i = 0; i < L->root->n; i++) {
        const dd_yentry *e = &L->root->entries[i];
        if (!is_scalar_key(e->key)) continue;
        DD_TRY(dd_options_set_node(p->top, e->key, e->value, L->file, e->line, e->col, p->dir));
    }
    for (const dd_param_spec *sp = dd_pipeline_top_spec(); sp->name; sp++)
        DD_TRY(apply_overrides(L, sp->name, p->top));
    char where[1100];
    section_where(L, NULL, where, sizeof where);
    DD_TRY(dd_options_finalize(p->top, where));
    if (!dd_options_has(p->top, "name")) {
        // default name: the file's basename without its extension
        const char *b = strrchr(p->path, '/');
        b = b ? b + 1 : p->path;
        char name[256];
        snprintf(name, sizeof name, "%s", b);
        char *ext = strrchr(name, '.');
        if (ext && ext != name) *ext = '\0';
        for (char *c = name; *c; c++)
            if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-')) *c = '_';
        DD_TRY(dd_options_set_default(p->top, "name", name));
    }
    const char *name = dd_options_string(p->top, "name");
    if (!name || !*name)
        return dd_error_set(DD_ERR_INVALID, "%s: invalid value for 'name': must not be empty",
                            dd_options_where(p->top, "name"));
    for (const char *c = name; *c; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '_' || *c == '-') ||
            (c == name && *c == '.'))
            return dd_error_set(
                DD_ERR_INVALID,
                "%s: invalid value for 'name': '%s' may only contain letters, digits, "
                "'.', '_' and '-' (it names the run directory)",
                dd_options_where(p->top, "name"), name);
    return DD_OK;
}

// Loads one component section (dataset/model/objective) if the file or the
// overrides mention it, or if `force` (then its default plugin is used).
// The plugin a component section selects, found before anything else since
// it decides the section's spec: --set, then the file, then the section's
// default. Errors point at whichever chose it.
static dd_status find_plugin(dd_pipeline *p, const loader *L, dd_component_kind kind,
                             const dd_ynode *map, const char *where) {
    const char *section = dd_section_name(kind);
    const dd_param_spec *core = dd_section_core_spec(kind);
    dd_options *probe = NULL;
    DD_TRY(dd_options_create(section, &core, 1, &probe));
    dd_status s = DD_OK;
    const dd_yentry *pe = dd_ynode_get(map, "plugin");
    const char *plugin_set = NULL; // the --set argument that chose the plugin, if any
    if (pe) s = dd_options_set_node(probe, "plugin", pe->value, L->file, pe->line, pe->col, p->dir);
    for (size_t i = 0; i < L->n_ov && s == DD_OK; i++) {
        const override *v = &L->ov[i];
        if (strcmp(v->section, section) != 0 || !v->key || strcmp(v->key, "plugin") != 0) continue;
        char prefix[1200];
        snprintf(prefix, sizeof prefix, "--set %s", v->orig);
        s = dd_options_set_yaml_text(probe, "plugin", v->value, "--set", prefix, NULL);
        plugin_set = v->orig;
    }
    if (s == DD_OK && !dd_options_has(probe, "plugin") && core[0].default_value)
        s = dd_options_set_default(probe, "plugin", core[0].default_value);
    if (s == DD_OK && !dd_options_has(probe, "plugin"))
        s = dd_error_set(DD_ERR_INVALID, "%s: missing required key 'plugin' in '%s'", where,
                         section);
    if (s == DD_OK) {
        const char *plugin = dd_options_string(probe, "plugin");
        s = dd_registry_find(p->reg, kind, plugin, &p->comp[kind]);
        if (s != DD_OK) {
            const char *pw = dd_options_where(probe, "plugin");
            if (plugin_set)
                dd_error_prefix("--set %s", plugin_set);
            else if (strcmp(pw, "<default>") == 0)
                dd_error_prefix("%s: %s.plugin defaults to '%s'", where, section, plugin);
            else
                dd_error_prefix("%s", pw);
        }
    }
    dd_options_destroy(probe);
    return s;
}

// Defaults that come from the plugin: the dataset reader's first dataset,
// the model's init scheme, the objective's own name.
static dd_status plugin_defaults(const dd_component *c, dd_component_kind kind, dd_options *o) {
    if (kind == DD_COMPONENT_DATASET) {
        const dd_dataset_ops *ops = c->ops;
        return dd_options_set_default(o, "name", ops->datasets[0]);
    }
    if (kind == DD_COMPONENT_MODEL) {
        const dd_model_ops *ops = c->ops;
        if (!ops->default_init) return DD_OK;
        dd_status s = dd_options_set_default(o, "init", ops->default_init);
        if (s != DD_OK) dd_error_prefix("model plugin '%s' has a bad default_init", c->name);
        return s;
    }
    if (kind == DD_COMPONENT_OBJECTIVE && !dd_options_is_set(o, "plugin"))
        return dd_options_set_default(o, "plugin", c->name);
    return DD_OK;
}

// A reader of the user's own files (DD_DATASET_LOCAL) has no manifest:
// dataset.path is required and dataset.name is only a label (it names the
// splits and the unpack directory in the cache, so it must be a plain name).
static dd_status check_local_dataset(const dd_component *c, const dd_options *o,
                                     const char *where) {
    const char *name = dd_options_string(o, "name");
    if (!name || !*name || name[0] == '.' || strlen(name) > 64)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: invalid value for 'dataset.name': '%s' must be a plain name of "
                            "at most 64 characters",
                            dd_options_where(o, "name"), name ? name : "");
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
            return dd_error_set(DD_ERR_INVALID,
                                "%s: invalid value for 'dataset.name': '%s' may only contain "
                                "letters, digits, '.', '_' and '-'",
                                dd_options_where(o, "name"), name);
    if (!dd_options_string(o, "path"))
        return dd_error_set(DD_ERR_INVALID,
                            "%s: missing required key 'dataset.path': plugin '%s' reads your own "
                            "files (a directory, or a .tar, .tar.gz or .zip of one); nothing is "
                            "downloaded",
                            where, c->name);
    return DD_OK;
}

// dataset.name must be one the reader reads.
static dd_status check_dataset_name(const dd_component *c, const dd_options *o, const char *where) {
    const dd_dataset_ops *ops = c->ops;
    if (ops->flags & DD_DATASET_LOCAL) return check_local_dataset(c, o, where);
    const char *name = dd_options_string(o, "name");
    int ok = 0;
    char list[512] = "";
    for (size_t i = 0; ops->datasets[i]; i++) {
        ok |= strcmp(ops->datasets[i], name) == 0;
        size_t len = strlen(list);
        snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", ops->datasets[i]);
    }
    if (ok) return DD_OK;
    return dd_error_set(DD_ERR_INVALID,
                        "%s: invalid value for 'dataset.name': plugin '%s' does not read '%s' "
                        "(it reads: %s)",
                        dd_options_where(o, "name"), c->name, name, list);
}

static dd_status load_component(dd_pipeline *p, const loader *L, dd_component_kind kind,
                                int force) {
    const char *section = dd_section_name(kind);
    const dd_yentry *entry;
    const dd_ynode *map;
    DD_TRY(section_node(L, section, &entry, &map));
    p->comp_present[kind] = entry != NULL || has_override(L, section) || force;
    if (!p->comp_present[kind]) return DD_OK;
    char where[1100];
    section_where(L, entry, where, sizeof where);
    DD_TRY(find_plugin(p, L, kind, map, where));
    const dd_component *c = p->comp[kind];
    const dd_param_spec *specs[2] = {dd_section_core_spec(kind), c->params};
    DD_TRY(dd_options_create(section, specs, 2, &p->comp_opts[kind]));
    dd_options *o = p->comp_opts[kind];
    DD_TRY(apply_yaml(L, map, o, p->dir));
    DD_TRY(apply_overrides(L, section, o));
    DD_TRY(plugin_defaults(c, kind, o));
    DD_TRY(dd_options_finalize(o, where));
    return kind == DD_COMPONENT_DATASET ? check_dataset_name(c, o, where) : DD_OK;
}

// One item of evaluate.architectures: a model plugin's name, or a mapping
// written like the model section ({plugin: NAME, its options...}).
static dd_status load_arch_item(dd_pipeline *p, const loader *L, const dd_ynode *item,
                                const char *file) {
    char where[1100];
    snprintf(where, sizeof where, "%s:%d:%d", file, item->line, item->col);
    if (p->n_arch >= DD_PIPELINE_MAX_ARCH)
        return dd_error_set(DD_ERR_INVALID, "%s: evaluate.architectures: at most %d networks",
                            where, DD_PIPELINE_MAX_ARCH);
    const char *plugin = NULL;
    if (item->kind == DD_YNODE_SCALAR) {
        plugin = item->scalar;
    } else if (item->kind == DD_YNODE_MAPPING) {
        const dd_yentry *pe = dd_ynode_get(item, "plugin");
        if (pe && pe->value->kind == DD_YNODE_SCALAR) plugin = pe->value->scalar;
    }
    if (!plugin || !*plugin)
        return dd_error_set(DD_ERR_INVALID,
                            "%s: evaluate.architectures: each item is a model plugin's name or a "
                            "mapping with 'plugin' and its options (like the model section), "
                            "got %s",
                            where, dd_ynode_kind_str(item));
    const dd_component *c;
    dd_status s = dd_registry_find(p->reg, DD_COMPONENT_MODEL, plugin, &c);
    if (s != DD_OK) {
        dd_error_prefix("%s: evaluate.architectures", where);
        return s;
    }
    const dd_param_spec *specs[2] = {dd_section_core_spec(DD_COMPONENT_MODEL), c->params};
    dd_options *o = NULL;
    DD_TRY(dd_options_create("evaluate.architectures", specs, 2, &o));
    p->arch_opts[p->n_arch] = o;
    p->arch_comp[p->n_arch] = c;
    p->n_arch++;
    if (item->kind == DD_YNODE_MAPPING) {
        for (size_t i = 0; i < item->n; i++) {
            const dd_yentry *e = &item->entries[i];
            DD_TRY(dd_options_set_node(o, e->key, e->value, file, e->line, e->col, p->dir));
        }
    } else {
        DD_TRY(dd_options_set_yaml_text(o, "plugin", plugin, where, where, NULL));
    }
    DD_TRY(plugin_defaults(c, DD_COMPONENT_MODEL, o));
    (void)L;
    return dd_options_finalize(o, where);
}

// evaluate.architectures from the file, or from --set evaluate.architectures=[...]
// (which replaces the file's list).
static dd_status load_architectures(dd_pipeline *p, const loader *L, const dd_ynode *eval_map) {
    const dd_ynode *list = NULL;
    const char *file = L->file;
    dd_ynode *parsed = NULL;
    const dd_yentry *e = eval_map ? dd_ynode_get(eval_map, ARCH_KEY) : NULL;
    if (e) list = e->value;
    char set_name[600] = "";
    for (size_t i = 0; i < L->n_ov; i++) {
        const override *v = &L->ov[i];
        if (strcmp(v->section, "evaluate") != 0 || !is_arch_key("evaluate", v->key)) continue;
        dd_ynode_destroy(parsed);
        parsed = NULL;
        snprintf(set_name, sizeof set_name, "--set evaluate.%s", ARCH_KEY);
        DD_TRY(dd_yaml_load_string(v->value, strlen(v->value), set_name, &parsed));
        list = parsed;
        file = set_name;
    }
    dd_status s = DD_OK;
    if (list && !dd_ynode_is_null(list)) {
        if (list->kind != DD_YNODE_SEQUENCE)
            s = dd_error_set(DD_ERR_INVALID,
                             "%s:%d:%d: evaluate.architectures must be a list of networks "
                             "(e.g. [convnet, {plugin: sequential, layers: [...]}]), got %s",
                             file, list->line, list->col, dd_ynode_kind_str(list));
        for (size_t i = 0; s == DD_OK && i < list->n; i++)
            s = load_arch_item(p, L, list->items[i], file);
    }
    dd_ynode_destroy(parsed);
    return s;
}

static dd_status load_stage_sections(dd_pipeline *p, const loader *L) {
    for (int i = 0; i < DD_STAGE_COUNT; i++) {
        const char *section = dd_stage_section((dd_stage)i);
        if (!section) continue;
        const dd_param_spec *spec = dd_stage_spec((dd_stage)i);
        const dd_yentry *entry;
        const dd_ynode *map;
        DD_TRY(section_node(L, section, &entry, &map));
        p->stage_present[i] = entry != NULL || has_override(L, section);
        DD_TRY(dd_options_create(section, &spec, 1, &p->stage_opts[i]));
        DD_TRY(apply_yaml(L, map, p->stage_opts[i], p->dir));
        DD_TRY(apply_overrides(L, section, p->stage_opts[i]));
        char where[1100];
        section_where(L, entry, where, sizeof where);
        DD_TRY(dd_options_finalize(p->stage_opts[i], where));
        if (i == DD_STAGE_EVALUATE) DD_TRY(load_architectures(p, L, map));
    }
    // pretrain.source_plugin names a dataset reader: check it exists now,
    // not after the fetch and load stages.
    const dd_options *pre = p->stage_opts[DD_STAGE_PRETRAIN];
    const char *src = dd_options_string(pre, "source_plugin");
    if (src) {
        const dd_component *c;
        dd_status s = dd_registry_find(p->reg, DD_COMPONENT_DATASET, src, &c);
        if (s != DD_OK) {
            dd_error_prefix("%s", dd_options_where(pre, "source_plugin"));
            return s;
        }
    }
    return DD_OK;
}

static dd_status resolve_stages(dd_pipeline *p, const loader *L) {
    const char *where = dd_options_where(p->top, "stages");
    if (dd_options_is_set(p->top, "stages")) {
        size_t n = dd_options_list_len(p->top, "stages");
        if (n == 0)
            return dd_error_set(DD_ERR_INVALID, "%s: invalid value for 'stages': the list is empty",
                                where);
        for (size_t i = 0; i < n; i++) {
            dd_stage s;
            DD_TRY(dd_stage_parse(dd_options_list_item(p->top, "stages", i), &s));
            if (p->n_stages && s <= p->stages[p->n_stages - 1])
                return dd_error_set(DD_ERR_INVALID,
                                    "%s: invalid value for 'stages': '%s' %s (stages run in the "
                                    "order fetch, load, pretrain, distill, evaluate, report)",
                                    where, dd_stage_name(s),
                                    s == p->stages[p->n_stages - 1] ? "is listed twice"
                                                                    : "must come earlier");
            p->stages[p->n_stages++] = s;
        }
    } else {
        int produces = 0;
        for (int i = 0; i < DD_STAGE_COUNT; i++) {
            const dd_stage_def *d = dd_stage_get((dd_stage)i);
            int run = d->when == DD_STAGE_ALWAYS || p->stage_present[i] ||
                      (d->when == DD_STAGE_IF_SECTION_OR_OUTPUT && produces);
            if (!run) continue;
            p->stages[p->n_stages++] = (dd_stage)i;
            produces |= (d->flags & DD_STAGE_PRODUCES_SET) != 0;
        }
    }
    char doc[1100];
    section_where(L, NULL, doc, sizeof doc);
    if (!p->comp_present[DD_COMPONENT_DATASET])
        return dd_error_set(DD_ERR_INVALID, "%s: missing required section 'dataset'", doc);
    for (size_t i = 0; i < p->n_stages; i++) {
        dd_stage s = p->stages[i];
        const unsigned needs = dd_stage_get(s)->flags;
        if ((needs & DD_STAGE_NEEDS_LOAD) && !dd_pipeline_has_stage(p, DD_STAGE_LOAD))
            return dd_error_set(DD_ERR_INVALID, "%s: stage '%s' needs the 'load' stage before it",
                                where, dd_stage_name(s));
        if ((needs & DD_STAGE_NEEDS_MODEL) && !p->comp_present[DD_COMPONENT_MODEL])
            return dd_error_set(DD_ERR_INVALID,
                                "%s: missing section 'model' (needed by stage '%s')", doc,
                                dd_stage_name(s));
    }
    return DD_OK;
}

static int needs_objective(const dd_pipeline *p) {
    for (size_t i = 0; i < p->n_stages; i++)
        if (dd_stage_get(p->stages[i])->flags & DD_STAGE_NEEDS_OBJECTIVE) return 1;
    return 0;
}

// The dataset's shape when it is known before anything is loaded: from the
// reader's probe for the user's own data (DD_DATASET_LOCAL; dataset.path as
// the reader gets it, not an archive the core would unpack first), else from
// the manifest's `input:`. Zeros when unknown.
static void known_shape(const dd_pipeline *p, dd_dataset_shape *sh) {
    memset(sh, 0, sizeof *sh);
    const dd_options *d = p->comp_opts[DD_COMPONENT_DATASET];
    const dd_component *dc = p->comp[DD_COMPONENT_DATASET];
    const dd_dataset_ops *ops = dc ? dc->ops : NULL;
    const char *name = dd_options_string(d, "name"), *path = dd_options_string(d, "path");
    int h = (int)dd_options_int(d, "height"), w = (int)dd_options_int(d, "width");
    if (ops && (ops->flags & DD_DATASET_LOCAL)) {
        struct stat st;
        if (!path || ops->struct_size < offsetof(dd_dataset_ops, probe) + sizeof ops->probe ||
            !ops->probe || stat(path, &st) != 0)
            return;
        // an archive the core unpacks first is checked when the model is built
        if (!S_ISDIR(st.st_mode) && (ops->flags & DD_DATASET_UNPACK_PATH)) return;
        dd_dataset_request req = {
            .struct_size = sizeof req,
            .dataset = name,
            .root = path,
            .options = d,
            .height = h,
            .width = w,
        };
        // a path that cannot be read yet is the fetch and load stages' error to report
        if (ops->probe(&req, sh) != DD_OK) {
            memset(sh, 0, sizeof *sh);
            dd_error_clear();
        }
        return;
    }
    dd_manifest *m = NULL;
    if (!name || dd_manifest_find(name, NULL, &m) != DD_OK) {
        dd_error_clear(); // a missing manifest is the fetch stage's error to report
        return;
    }
    *sh = (dd_dataset_shape){m->input_channels, h ? h : m->input_height, w ? w : m->input_width,
                             m->input_classes};
    dd_manifest_destroy(m);
}

// When the dataset's shape is known (known_shape), builds the network dry
// with dataset.height / width applied, so a layer stack that does not fit is
// an error when the pipeline is validated rather than when the model is
// built at run time (the same message either way).
static dd_status check_one_model(const dd_component *mc, const dd_options *mo,
                                 const dd_dataset_shape *shape);

static dd_status check_model_shape(const dd_pipeline *p) {
    const dd_options *mo = p->comp_opts[DD_COMPONENT_MODEL];
    if (!p->comp_opts[DD_COMPONENT_DATASET] || !mo || !p->comp[DD_COMPONENT_MODEL]) return DD_OK;
    dd_dataset_shape sh;
    known_shape(p, &sh);
    if (sh.channels <= 0 || sh.height <= 0 || sh.width <= 0 || sh.n_classes <= 0) return DD_OK;
    DD_TRY(check_one_model(p->comp[DD_COMPONENT_MODEL], mo, &sh));
    for (size_t i = 0; i < p->n_arch; i++) {
        dd_status s = check_one_model(p->arch_comp[i], p->arch_opts[i], &sh);
        if (s != DD_OK) {
            dd_error_prefix("evaluate.architectures[%zu]", i);
            return s;
        }
    }
    return DD_OK;
}

static dd_status check_one_model(const dd_component *mc, const dd_options *mo,
                                 const dd_dataset_shape *shape) {
    const dd_dataset_shape sh = *shape;
    dd_model_config cfg = {
        .struct_size = sizeof cfg,
        .plugin = mc,
        .options = mo,
        .channels = sh.channels,
        .height = sh.height,
        .width = sh.width,
        .n_outputs = sh.n_classes,
        .backend = DD_BACKEND_REFERENCE,
    };
    return dd_model_check(&cfg, NULL);
}

static dd_status load_all(dd_pipeline *p, loader *L) {
    DD_TRY(load_top(p, L));
    DD_TRY(load_component(p, L, DD_COMPONENT_DATASET, 0));
    DD_TRY(load_component(p, L, DD_COMPONENT_MODEL, 0));
    DD_TRY(load_stage_sections(p, L));
    DD_TRY(resolve_stages(p, L));
    // the objective section may be omitted: its plugin defaults to classification
    DD_TRY(load_component(p, L, DD_COMPONENT_OBJECTIVE, needs_objective(p)));
    return check_model_shape(p);
}

dd_status dd_pipeline_load(const char *path, const char *const *overrides, const dd_registry *reg,
                           dd_pipeline **out) {
    if (!path || !reg || !out)
        return dd_error_set(DD_ERR_INVALID, "dd_pipeline_load: NULL argument");
    *out = NULL;
    loader L = {.file = path};
    DD_TRY(parse_overrides(overrides, &L.ov, &L.n_ov));
    dd_ynode *root = NULL;
    dd_status s = dd_yaml_load_file(path, &root);
    if (s == DD_OK && !root)
        s = dd_error_set(DD_ERR_INVALID,
                         "%s: the pipeline is empty (expected a mapping with at least "
                         "a 'dataset' section)",
                         path);
    if (s == DD_OK && root->kind != DD_YNODE_MAPPING)
        s = dd_error_set(DD_ERR_INVALID, "%s:%d:%d: a pipeline must be a mapping of keys, got %s",
                         path, root->line, root->col, dd_ynode_kind_str(root));
    for (size_t i = 0; s == DD_OK && i < root->n; i++) {
        const dd_yentry *e = &root->entries[i];
        if (is_top_key(e->key)) continue;
        char *valid = top_keys_list();
        s = dd_error_set(DD_ERR_INVALID, "%s:%d:%d: unknown top-level key '%s' (valid keys: %s)",
                         path, e->line, e->col, e->key, valid ? valid : "?");
        free(valid);
    }
    dd_pipeline *p = NULL;
    if (s == DD_OK && !(p = calloc(1, sizeof *p))) s = dd_nomem();
    if (s == DD_OK) {
        p->reg = reg;
        char real[PATH_MAX];
        if (!(p->path = strdup(path)))
            s = dd_nomem();
        else if (!realpath(path, real))
            s = dd_error_set(DD_ERR_IO, "%s: %s", path, strerror(errno));
        else {
            char *slash = strrchr(real, '/');
            if (slash == real)
                slash[1] = '\0';
            else if (slash)
                *slash = '\0';
            if (!(p->dir = strdup(real))) s = dd_nomem();
        }
    }
    if (s == DD_OK) {
        L.root = root;
        s = load_all(p, &L);
    }
    dd_ynode_destroy(root);
    free(L.ov);
    if (s != DD_OK) {
        dd_pipeline_destroy(p);
        return s;
    }
    *out = p;
    return DD_OK;
}
