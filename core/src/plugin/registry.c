/* distill — the plugin loader: dlopen()s shared objects, validates their
 * descriptors (ABI, names, vtables, parameter specs) and indexes components. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "distill/dataset.h"
#include "distill/log.h"
#include "distill/model.h"
#include "distill/objective.h"
#include "distill/plugin.h"
#include "config/options.h"
#include "base/paths.h"
#include "config/schema.h"

typedef struct loaded {
    void *handle;
    char *path;
    const dd_plugin_descriptor *desc;
} loaded;

typedef struct refused {
    char *path;
    char *reason;
} refused;

struct dd_registry {
    loaded *p;
    size_t n, cap;
    refused *bad;
    size_t n_bad;
};

dd_status dd_registry_create(dd_registry **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_registry_create: NULL argument");
    *out = calloc(1, sizeof **out);
    return *out ? DD_OK : dd_nomem();
}

void dd_registry_destroy(dd_registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        dlclose(r->p[i].handle);
        free(r->p[i].path);
    }
    for (size_t i = 0; i < r->n_bad; i++) {
        free(r->bad[i].path);
        free(r->bad[i].reason);
    }
    free(r->p);
    free(r->bad);
    free(r);
}

size_t dd_registry_plugin_count(const dd_registry *r) {
    return r ? r->n : 0;
}

const dd_plugin_descriptor *dd_registry_plugin(const dd_registry *r, size_t i) {
    return r && i < r->n ? r->p[i].desc : NULL;
}

const char *dd_registry_plugin_path(const dd_registry *r, size_t i) {
    return r && i < r->n ? r->p[i].path : NULL;
}

size_t dd_registry_refused_count(const dd_registry *r) {
    return r ? r->n_bad : 0;
}

const char *dd_registry_refused_path(const dd_registry *r, size_t i) {
    return r && i < r->n_bad ? r->bad[i].path : NULL;
}

const char *dd_registry_refused_reason(const dd_registry *r, size_t i) {
    return r && i < r->n_bad ? r->bad[i].reason : NULL;
}

// Finds a component already registered; *owner gets its plugin's path.
static const dd_component *find_component(const dd_registry *r, dd_component_kind kind,
                                          const char *name, const char **owner) {
    for (size_t i = 0; i < r->n; i++) {
        const dd_plugin_descriptor *d = r->p[i].desc;
        for (size_t c = 0; c < d->n_components; c++) {
            const dd_component *comp = &d->components[c];
            if (comp->kind == kind && strcmp(comp->name, name) == 0) {
                if (owner) *owner = r->p[i].path;
                return comp;
            }
        }
    }
    return NULL;
}

dd_status dd_registry_find(const dd_registry *r, dd_component_kind kind, const char *name,
                           const dd_component **out) {
    if (!r || !name || !out) return dd_error_set(DD_ERR_INVALID, "dd_registry_find: NULL argument");
    *out = find_component(r, kind, name, NULL);
    if (*out) return DD_OK;
    char names[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < r->n; i++) {
        const dd_plugin_descriptor *d = r->p[i].desc;
        for (size_t c = 0; c < d->n_components; c++) {
            if (d->components[c].kind != kind) continue;
            int w = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "",
                             d->components[c].name);
            if (w > 0 && (size_t)w < sizeof names - len) len += (size_t)w;
        }
    }
    return dd_error_set(DD_ERR_NOT_FOUND, "unknown %s plugin '%s' (available: %s)",
                        dd_component_kind_str(kind), name, len ? names : "none");
}

// Basename of `path` without a trailing ".so".
static void plugin_basename(const char *path, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t len = strlen(b);
    if (len > 3 && strcmp(b + len - 3, ".so") == 0) len -= 3;
    snprintf(buf, n, "%.*s", (int)len, b);
}

static dd_status refuse(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static dd_status refuse(const char *path, const char *fmt, ...) {
    char why[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dd_error_set(DD_ERR_PLUGIN, "%s: %s", path, why);
}

#define NEED(cond, what)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return refuse(path, "%s '%s': required member '%s' is NULL", kind_s, c->name, what);   \
    } while (0)

// Checks a component's vtable for its kind's required members.
static dd_status check_ops(const char *path, const dd_component *c) {
    const char *kind_s = dd_component_kind_str(c->kind);
    switch (c->kind) {
    case DD_COMPONENT_DATASET: {
        const dd_dataset_ops *ops = c->ops;
        if (ops->struct_size < offsetof(dd_dataset_ops, reserved))
            return refuse(path, "dataset '%s': ops struct_size %zu is too small", c->name,
                          ops->struct_size);
        NEED(ops->datasets, "datasets");
        NEED(ops->load, "load");
        if (!ops->datasets[0])
            return refuse(path, "dataset '%s': 'datasets' lists no dataset name", c->name);
        break;
    }
    case DD_COMPONENT_MODEL: {
        const dd_model_ops *ops = c->ops;
        if (ops->struct_size < offsetof(dd_model_ops, reserved))
            return refuse(path, "model '%s': ops struct_size %zu is too small", c->name,
                          ops->struct_size);
        NEED(ops->build, "build");
        break;
    }
    case DD_COMPONENT_OBJECTIVE: {
        const dd_objective_ops *ops = c->ops;
        if (ops->struct_size < offsetof(dd_objective_ops, reserved))
            return refuse(path, "objective '%s': ops struct_size %zu is too small", c->name,
                          ops->struct_size);
        NEED(ops->create, "create");
        NEED(ops->outer_loss, "outer_loss");
        NEED(ops->metric_names, "metric_names");
        NEED(ops->metrics, "metrics");
        if (!ops->metric_names[0])
            return refuse(path, "objective '%s': 'metric_names' lists no metric", c->name);
        break;
    }
    }
    return DD_OK;
}

// Validates a descriptor against the registry's current contents.
static dd_status check_descriptor(const dd_registry *r, const char *path,
                                  const dd_plugin_descriptor *d) {
    if (!d) return refuse(path, "entry symbol '%s' returned NULL", DD_PLUGIN_ENTRY_SYMBOL);
    if (d->abi_version != DD_PLUGIN_ABI_VERSION)
        return refuse(path,
                      "ABI version mismatch: plugin built for ABI %u, this distill uses ABI %u "
                      "(rebuild the plugin against this distill)",
                      (unsigned)d->abi_version, (unsigned)DD_PLUGIN_ABI_VERSION);
    if (d->struct_size < offsetof(dd_plugin_descriptor, reserved))
        return refuse(path, "descriptor struct_size %zu is too small (expected %zu)",
                      d->struct_size, sizeof *d);
    if (!d->name) return refuse(path, "required member 'name' is NULL");
    if (!d->version) return refuse(path, "required member 'version' is NULL");
    if (!d->description) return refuse(path, "required member 'description' is NULL");
    char base[256];
    plugin_basename(path, base, sizeof base);
    if (strcmp(d->name, base) != 0)
        return refuse(path, "plugin name '%s' does not match its file name '%s'", d->name, base);
    if (d->n_components == 0) return refuse(path, "plugin provides no components");
    if (!d->components) return refuse(path, "required member 'components' is NULL");
    for (size_t i = 0; i < d->n_components; i++) {
        const dd_component *c = &d->components[i];
        if (c->struct_size < offsetof(dd_component, reserved))
            return refuse(path, "component %zu: struct_size %zu is too small", i, c->struct_size);
        if (c->kind != DD_COMPONENT_DATASET && c->kind != DD_COMPONENT_MODEL &&
            c->kind != DD_COMPONENT_OBJECTIVE)
            return refuse(path, "component %zu: unknown kind %d", i, (int)c->kind);
        const char *kind_s = dd_component_kind_str(c->kind);
        if (!c->name || !*c->name)
            return refuse(path, "%s component %zu: required member 'name' is NULL", kind_s, i);
        if (!c->description)
            return refuse(path, "%s '%s': required member 'description' is NULL", kind_s, c->name);
        if (!c->ops) return refuse(path, "%s '%s': required member 'ops' is NULL", kind_s, c->name);
        DD_TRY(check_ops(path, c));
        for (size_t j = 0; j < i; j++)
            if (d->components[j].kind == c->kind && strcmp(d->components[j].name, c->name) == 0)
                return refuse(path, "duplicate %s '%s' within the plugin", kind_s, c->name);
        const char *owner = NULL;
        if (find_component(r, c->kind, c->name, &owner))
            return refuse(path, "duplicate %s '%s' (already provided by %s)", kind_s, c->name,
                          owner);
        char who[300];
        snprintf(who, sizeof who, "%s '%s'", kind_s, c->name);
        dd_status s = dd_param_spec_check(c->params, who);
        if (s != DD_OK) {
            dd_error_prefix("%s", path);
            return s;
        }
        const dd_param_spec *core = dd_section_core_spec(c->kind);
        for (const dd_param_spec *p = c->params; p && p->name; p++)
            for (const dd_param_spec *q = core; q && q->name; q++)
                if (strcmp(p->name, q->name) == 0 ||
                    (strncmp(p->name, q->name, strlen(q->name)) == 0 &&
                     p->name[strlen(q->name)] == '.'))
                    return refuse(path,
                                  "%s: parameter '%s' redefines the core key '%s' of section '%s'",
                                  who, p->name, q->name, dd_section_name(c->kind));
    }
    return DD_OK;
}

dd_status dd_registry_add_file(dd_registry *r, const char *path) {
    if (!r || !path) return dd_error_set(DD_ERR_INVALID, "dd_registry_add_file: NULL argument");
    char base[256];
    plugin_basename(path, base, sizeof base);
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->p[i].desc->name, base) == 0)
            return refuse(path, "a plugin named '%s' is already loaded from %s", base,
                          r->p[i].path);
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        if (!e) e = "unknown dlopen error";
        // dlerror() usually starts with the path itself; say it once
        size_t plen = strlen(path);
        if (strncmp(e, path, plen) == 0 && strncmp(e + plen, ": ", 2) == 0) e += plen + 2;
        return refuse(path, "cannot load: %s", e);
    }
    dd_plugin_entry_fn entry = NULL;
    // dlsym returns void*; POSIX guarantees it converts to a function pointer.
    *(void **)&entry = dlsym(h, DD_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        dlclose(h);
        return refuse(path, "not a distill plugin: missing entry symbol '%s'",
                      DD_PLUGIN_ENTRY_SYMBOL);
    }
    const dd_plugin_descriptor *d = entry();
    dd_status s = check_descriptor(r, path, d);
    if (s == DD_OK && r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 8;
        loaded *np = realloc(r->p, nc * sizeof *np);
        if (!np)
            s = dd_nomem();
        else {
            r->p = np;
            r->cap = nc;
        }
    }
    char *copy = NULL;
    if (s == DD_OK && !(copy = strdup(path))) s = dd_nomem();
    if (s != DD_OK) {
        dlclose(h);
        return s;
    }
    r->p[r->n++] = (loaded){h, copy, d};
    dd_debug("loaded plugin %s (%s %s)", path, d->name, d->version);
    return DD_OK;
}

static dd_status remember_refusal(dd_registry *r, const char *path, const char *reason) {
    refused *nb = realloc(r->bad, (r->n_bad + 1) * sizeof *nb);
    if (!nb) return dd_nomem();
    r->bad = nb;
    char *p = strdup(path), *why = strdup(reason);
    if (!p || !why) {
        free(p);
        free(why);
        return dd_nomem();
    }
    r->bad[r->n_bad++] = (refused){p, why};
    return DD_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Loads every *.so of one directory, in name order.
static dd_status load_dir(dd_registry *r, const char *dir, int lenient) {
    DIR *d = opendir(dir);
    if (!d) {
        dd_debug("plugin dir %s: %s (skipped)", dir, strerror(errno));
        return DD_OK;
    }
    char **names = NULL;
    size_t n = 0;
    dd_status s = DD_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0 || e->d_name[0] == '.') continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn || !(nn[n] = strdup(e->d_name))) {
            names = nn ? nn : names;
            s = dd_nomem();
            break;
        }
        names = nn;
        n++;
    }
    closedir(d);
    if (names) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && s == DD_OK; i++) {
        char path[PATH_MAX], base[256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        plugin_basename(path, base, sizeof base);
        int shadowed = 0;
        for (size_t k = 0; k < r->n && !shadowed; k++) {
            if (strcmp(r->p[k].desc->name, base) == 0) {
                dd_debug("plugin %s: skipped, '%s' already loaded from %s", path, base,
                         r->p[k].path);
                shadowed = 1;
            }
        }
        if (shadowed) continue;
        s = dd_registry_add_file(r, path);
        if (s != DD_OK && lenient && s != DD_ERR_NOMEM) {
            // the caller lists refusals (dd_registry_refused_*); no need to warn twice
            dd_debug("%s (plugin skipped)", dd_error_message());
            s = remember_refusal(r, path, dd_error_message());
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return s;
}

dd_status dd_registry_plugin_dirs(char ***out, size_t *n_out) {
    if (!out || !n_out)
        return dd_error_set(DD_ERR_INVALID, "dd_registry_plugin_dirs: NULL argument");
    *out = NULL;
    *n_out = 0;
    const char *env = getenv("DISTILL_PLUGIN_PATH");
    size_t cap = 3;
    for (const char *c = env; c && *c; c++)
        cap += *c == ':';
    char **dirs = calloc(cap + 1, sizeof *dirs);
    if (!dirs) return dd_nomem();
    size_t n = 0;
    for (const char *c = env; c && *c;) {
        size_t len = strcspn(c, ":");
        if (len && !(dirs[n++] = strndup(c, len))) goto oom;
        c += len;
        if (*c == ':') c++;
    }
    char libdir[PATH_MAX];
    dd_paths_library_dir(libdir, sizeof libdir);
    // The build tree's plugins only when running the build tree's library, so
    // an installed distill never picks up a stale build directory.
    if (libdir[0] && dd_paths_in_build_tree()) {
        if (!(dirs[n++] = strdup(DD_BUILD_PLUGIN_DIR))) goto oom;
    } else if (libdir[0]) {
        // installed layout: <libdir>/libdistill.so and <libdir>/distill/plugins
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/distill/plugins", libdir);
        if (!(dirs[n++] = strdup(p))) goto oom;
    }
    if (!(dirs[n++] = strdup(DD_INSTALL_PLUGIN_DIR))) goto oom;
    *out = dirs;
    *n_out = n;
    return DD_OK;
oom:
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
    return dd_nomem();
}

dd_status dd_registry_load(int lenient, dd_registry **out) {
    if (!out) return dd_error_set(DD_ERR_INVALID, "dd_registry_load: NULL argument");
    *out = NULL;
    char **dirs = NULL;
    size_t n = 0;
    DD_TRY(dd_registry_plugin_dirs(&dirs, &n));
    dd_registry *r = NULL;
    dd_status s = dd_registry_create(&r);
    for (size_t i = 0; i < n && s == DD_OK; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= strcmp(dirs[i], dirs[j]) == 0;
        if (!dup) s = load_dir(r, dirs[i], lenient);
    }
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
    if (s != DD_OK) {
        dd_registry_destroy(r);
        return s;
    }
    *out = r;
    return DD_OK;
}
