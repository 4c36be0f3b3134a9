/* distill — dataset manifests: YAML (config/yaml_tree) to dd_manifest, with
 * every error reported as file:line:col. */
#define _GNU_SOURCE
#include "data/manifest.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/paths.h"
#include "config/yaml_tree.h"

typedef struct parse_ctx {
    const char *origin;
} parse_ctx;

static dd_status vat(const parse_ctx *c, int line, int col, dd_status s, const char *fmt,
                     va_list ap) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return dd_error_set(s, "%s:%d:%d: %s", c->origin, line, col, msg);
}

/* The error `s` at node n's position. */
static dd_status at(const parse_ctx *c, const dd_ynode *n, dd_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static dd_status at(const parse_ctx *c, const dd_ynode *n, dd_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dd_status r = vat(c, n->line, n->col, s, fmt, ap);
    va_end(ap);
    return r;
}

/* The error `s` at a mapping key's position. */
static dd_status at_key(const parse_ctx *c, const dd_yentry *e, dd_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static dd_status at_key(const parse_ctx *c, const dd_yentry *e, dd_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    dd_status r = vat(c, e->line, e->col, s, fmt, ap);
    va_end(ap);
    return r;
}

static const char *scalar(const dd_ynode *n) {
    return n && n->kind == DD_YNODE_SCALAR ? n->scalar : NULL;
}

static dd_status dup_into(const char *v, char **out) {
    char *d = strdup(v);
    if (!d) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    free(*out);
    *out = d;
    return DD_OK;
}

static dd_status get_string(const parse_ctx *c, const dd_ynode *n, const char *key, char **out) {
    const char *v = scalar(n);
    if (!v) return at(c, n, DD_ERR_PARSE, "'%s' must be a string", key);
    return dup_into(v, out);
}

static dd_status get_u64(const parse_ctx *c, const dd_ynode *n, const char *key, uint64_t *out) {
    const char *v = scalar(n);
    if (!v || !*v)
        return at(c, n, DD_ERR_PARSE, "'%s' must be a non-negative integer (bytes)", key);
    uint64_t x = 0;
    for (const char *p = v; *p; p++) {
        if (*p == '_') continue; // allow 47_040_016 for readability
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
            return at(c, n, DD_ERR_PARSE, "'%s' must be a non-negative integer (bytes), got '%s'",
                      key, v);
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *out = x;
    return DD_OK;
}

// `input: {channels: C, height: H, width: W, classes: K}`, each in [1, 65535].
static dd_status get_input(const parse_ctx *c, const dd_ynode *n, dd_manifest *m) {
    if (n->kind != DD_YNODE_MAPPING)
        return at(c, n, DD_ERR_PARSE,
                  "'input' must be a mapping {channels, height, width, classes}");
    static const char *const keys[] = {"channels", "height", "width", "classes"};
    int *dst[] = {&m->input_channels, &m->input_height, &m->input_width, &m->input_classes};
    for (size_t i = 0; i < n->n; i++) {
        const dd_yentry *e = &n->entries[i];
        size_t k = 0;
        while (k < 4 && strcmp(e->key, keys[k]) != 0)
            k++;
        if (k == 4)
            return at_key(c, e, DD_ERR_PARSE,
                          "unknown key '%s' in 'input' (expected channels, height, width, "
                          "classes)",
                          e->key);
        uint64_t x = 0;
        DD_TRY(get_u64(c, e->value, e->key, &x));
        if (x < 1 || x > 65535)
            return at(c, e->value, DD_ERR_PARSE, "input.%s must be in [1, 65535]", e->key);
        *dst[k] = (int)x;
    }
    for (size_t k = 0; k < 4; k++)
        if (!*dst[k]) return at(c, n, DD_ERR_PARSE, "'input' has no '%s'", keys[k]);
    return DD_OK;
}

static int hex_digit(char ch) {
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static dd_status get_hex(const parse_ctx *c, const dd_ynode *n, const char *key, uint8_t *out,
                         size_t nbytes) {
    const char *v = scalar(n);
    if (!v || strlen(v) != 2 * nbytes)
        return at(c, n, DD_ERR_PARSE, "'%s' must be %zu hex digits", key, 2 * nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        int hi = hex_digit(v[2 * i]), lo = hex_digit(v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return at(c, n, DD_ERR_PARSE, "'%s' must be %zu hex digits, got '%s'", key, 2 * nbytes,
                      v);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return DD_OK;
}

static dd_status push_str(char ***v, size_t *n, const char *s) {
    char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    *v = nv;
    nv[*n] = strdup(s);
    if (!nv[*n]) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    nv[++*n] = NULL;
    return DD_OK;
}

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static dd_status get_url_list(const parse_ctx *c, const dd_ynode *n, const char *key, char ***v,
                              size_t *cnt) {
    if (n->kind != DD_YNODE_SEQUENCE)
        return at(c, n, DD_ERR_PARSE, "'%s' must be a list of URLs", key);
    for (size_t i = 0; i < n->n; i++) {
        const dd_ynode *u = n->items[i];
        const char *s = scalar(u);
        if (!s || !strstr(s, "://"))
            return at(c, u, DD_ERR_PARSE, "'%s' entries must be URLs (scheme://...)", key);
        DD_TRY(push_str(v, cnt, s));
    }
    return DD_OK;
}

static int valid_file_name(const char *s) {
    if (!*s || s[0] == '.' || strchr(s, '/') || strchr(s, '\\')) return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) return 0;
    return 1;
}

static int valid_dataset_name(const char *s) {
    if (!*s || s[0] == '.' || strlen(s) >= 64) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.'))
            return 0;
    return 1;
}

static dd_status get_archive(const parse_ctx *c, const dd_ynode *v, dd_archive_kind *out) {
    const char *a = scalar(v);
    if (a && strcmp(a, "none") == 0)
        *out = DD_ARCHIVE_NONE;
    else if (a && strcmp(a, "gz") == 0)
        *out = DD_ARCHIVE_GZ;
    else if (a && strcmp(a, "tar") == 0)
        *out = DD_ARCHIVE_TAR;
    else if (a && (strcmp(a, "tar.gz") == 0 || strcmp(a, "tgz") == 0))
        *out = DD_ARCHIVE_TAR_GZ;
    else
        return at(c, v, DD_ERR_PARSE,
                  "unknown archive kind '%s' (expected none, gz, tar, tar.gz or tgz)", a ? a : "?");
    return DD_OK;
}

// The rules between a file entry's keys, checked once all are read.
static dd_status check_file(const parse_ctx *c, const dd_ynode *n, const dd_manifest_file *f,
                            const dd_ynode *archive_node, const dd_ynode *payload_node) {
    if (!f->name) return at(c, n, DD_ERR_PARSE, "file entry without 'name'");
    if (!archive_node)
        return at(c, n, DD_ERR_PARSE, "file '%s' has no 'archive' (none, gz, tar or tar.gz)",
                  f->name);
    if (!f->has_sha256 && !f->has_md5 && !f->has_payload_sha256)
        return at(c, n, DD_ERR_PARSE, "file '%s' has no checksum (sha256, md5 or payload_sha256)",
                  f->name);
    if (payload_node && f->archive != DD_ARCHIVE_GZ)
        return at(c, payload_node, DD_ERR_PARSE,
                  "payload_sha256 is only meaningful for archive: gz (file '%s')", f->name);
    if (f->archive == DD_ARCHIVE_GZ &&
        (strlen(f->name) < 4 || strcmp(f->name + strlen(f->name) - 3, ".gz") != 0))
        return at(c, archive_node, DD_ERR_PARSE,
                  "file '%s' is archive: gz but its name does not end in .gz", f->name);
    return DD_OK;
}

static dd_status parse_file(const parse_ctx *c, const dd_ynode *n, dd_manifest_file *f) {
    if (n->kind != DD_YNODE_MAPPING)
        return at(c, n, DD_ERR_PARSE, "each entry of 'files' must be a mapping");
    const dd_ynode *archive_node = NULL, *payload_node = NULL;
    for (size_t i = 0; i < n->n; i++) {
        const dd_yentry *e = &n->entries[i];
        const char *key = e->key;
        const dd_ynode *v = e->value;
        if (strcmp(key, "name") == 0) {
            DD_TRY(get_string(c, v, key, &f->name));
            if (!valid_file_name(f->name))
                return at(c, v, DD_ERR_PARSE,
                          "file name '%s' must be a plain name (no '/', not starting with '.')",
                          f->name);
        } else if (strcmp(key, "size") == 0) {
            DD_TRY(get_u64(c, v, key, &f->size));
        } else if (strcmp(key, "sha256") == 0) {
            DD_TRY(get_hex(c, v, key, f->sha256, DD_SHA256_SIZE));
            f->has_sha256 = 1;
        } else if (strcmp(key, "md5") == 0) {
            DD_TRY(get_hex(c, v, key, f->md5, DD_MD5_SIZE));
            f->has_md5 = 1;
        } else if (strcmp(key, "payload_sha256") == 0) {
            DD_TRY(get_hex(c, v, key, f->payload_sha256, DD_SHA256_SIZE));
            f->has_payload_sha256 = 1;
            payload_node = v;
        } else if (strcmp(key, "archive") == 0) {
            DD_TRY(get_archive(c, v, &f->archive));
            archive_node = v;
        } else if (strcmp(key, "mirrors") == 0) {
            DD_TRY(get_url_list(c, v, key, &f->mirrors, &f->n_mirrors));
        } else {
            return at_key(c, e, DD_ERR_PARSE,
                          "unknown key '%s' in a file entry (expected name, size, sha256, md5, "
                          "payload_sha256, archive, "
                          "mirrors)",
                          key);
        }
    }
    return check_file(c, n, f, archive_node, payload_node);
}

static dd_status parse_splits(const parse_ctx *c, const dd_ynode *n, dd_manifest *m) {
    if (n->kind != DD_YNODE_MAPPING)
        return at(c, n, DD_ERR_PARSE, "'splits' must map split names to lists of file names");
    m->splits = calloc(n->n ? n->n : 1, sizeof *m->splits);
    if (!m->splits) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const dd_ynode *v = n->entries[i].value;
        dd_manifest_split *s = &m->splits[m->n_splits++];
        DD_TRY(dup_into(n->entries[i].key, &s->name));
        if (v->kind != DD_YNODE_SEQUENCE)
            return at(c, v, DD_ERR_PARSE, "split '%s' must be a list of file names", s->name);
        for (size_t k = 0; k < v->n; k++) {
            const dd_ynode *fn = v->items[k];
            const char *name = scalar(fn);
            if (!name)
                return at(c, fn, DD_ERR_PARSE, "split '%s' entries must be file names", s->name);
            size_t j = 0;
            while (j < m->n_files && strcmp(m->files[j].name, name) != 0)
                j++;
            if (j == m->n_files)
                return at(c, fn, DD_ERR_PARSE, "split '%s' names '%s', which is not in 'files'",
                          s->name, name);
            DD_TRY(push_str(&s->files, &s->n_files, name));
        }
    }
    return DD_OK;
}

static dd_status parse_files(const parse_ctx *c, const dd_ynode *files_node, dd_manifest *m) {
    if (files_node->kind != DD_YNODE_SEQUENCE || files_node->n == 0)
        return at(c, files_node, DD_ERR_PARSE, "'files' must be a non-empty list");
    m->files = calloc(files_node->n, sizeof *m->files);
    if (!m->files) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < files_node->n; i++) {
        const dd_ynode *fn = files_node->items[i];
        dd_manifest_file *f = &m->files[m->n_files++];
        DD_TRY(parse_file(c, fn, f));
        for (size_t j = 0; j + 1 < m->n_files; j++)
            if (strcmp(m->files[j].name, f->name) == 0)
                return at(c, fn, DD_ERR_PARSE, "file '%s' is listed twice", f->name);
        if (f->n_mirrors == 0 && m->n_mirrors == 0)
            return at(c, fn, DD_ERR_PARSE,
                      "file '%s' has no mirrors (neither its own nor dataset-wide)", f->name);
    }
    return DD_OK;
}

// The top-level keys; files and splits are handed back to be parsed once
// the dataset-wide mirrors are known.
static dd_status parse_keys(const parse_ctx *c, const dd_ynode *root, dd_manifest *m,
                            const dd_ynode **files_node, const dd_ynode **splits_node,
                            const dd_ynode **limit_node) {
    for (size_t i = 0; i < root->n; i++) {
        const dd_yentry *e = &root->entries[i];
        const char *key = e->key;
        const dd_ynode *v = e->value;
        if (strcmp(key, "name") == 0) {
            DD_TRY(get_string(c, v, key, &m->name));
            if (!valid_dataset_name(m->name))
                return at(c, v, DD_ERR_PARSE,
                          "dataset name '%s' may only use a-z, 0-9, '-', '_', '.'", m->name);
        } else if (strcmp(key, "description") == 0) {
            DD_TRY(get_string(c, v, key, &m->description));
        } else if (strcmp(key, "reader") == 0) {
            DD_TRY(get_string(c, v, key, &m->reader));
        } else if (strcmp(key, "license") == 0) {
            DD_TRY(get_string(c, v, key, &m->license));
        } else if (strcmp(key, "homepage") == 0) {
            DD_TRY(get_string(c, v, key, &m->homepage));
        } else if (strcmp(key, "unpacked_limit") == 0) {
            DD_TRY(get_u64(c, v, key, &m->unpacked_limit));
            *limit_node = v;
        } else if (strcmp(key, "mirrors") == 0) {
            DD_TRY(get_url_list(c, v, key, &m->mirrors, &m->n_mirrors));
        } else if (strcmp(key, "files") == 0) {
            *files_node = v;
        } else if (strcmp(key, "splits") == 0) {
            *splits_node = v;
        } else if (strcmp(key, "input") == 0) {
            DD_TRY(get_input(c, v, m));
        } else {
            return at_key(
                c, e, DD_ERR_PARSE,
                "unknown key '%s' (expected name, description, reader, license, homepage, "
                "unpacked_limit, "
                "mirrors, files, splits, input)",
                key);
        }
    }
    return DD_OK;
}

static dd_status parse_root(const parse_ctx *c, const dd_ynode *root, dd_manifest *m) {
    if (!root) return dd_error_set(DD_ERR_PARSE, "%s: empty manifest", c->origin);
    if (root->kind != DD_YNODE_MAPPING)
        return at(c, root, DD_ERR_PARSE, "a manifest must be a mapping");
    const dd_ynode *files_node = NULL, *splits_node = NULL, *limit_node = NULL;
    DD_TRY(parse_keys(c, root, m, &files_node, &splits_node, &limit_node));
    if (!m->name) return at(c, root, DD_ERR_PARSE, "manifest has no 'name'");
    if (!m->reader) return at(c, root, DD_ERR_PARSE, "manifest '%s' has no 'reader'", m->name);
    if (!limit_node)
        return at(c, root, DD_ERR_PARSE,
                  "manifest '%s' has no 'unpacked_limit' (bytes any one archive may extract to)",
                  m->name);
    if (m->unpacked_limit == 0)
        return at(c, limit_node, DD_ERR_PARSE, "'unpacked_limit' must be positive");
    if (!files_node) return at(c, root, DD_ERR_PARSE, "manifest '%s' has no 'files'", m->name);
    DD_TRY(parse_files(c, files_node, m));
    if (splits_node) DD_TRY(parse_splits(c, splits_node, m));
    const char *empty[] = {"description", "license", "homepage"};
    char **fields[] = {&m->description, &m->license, &m->homepage};
    for (int i = 0; i < 3; i++) {
        if (!*fields[i] && !(*fields[i] = strdup("")))
            return dd_error_set(DD_ERR_NOMEM, "out of memory (%s)", empty[i]);
    }
    return DD_OK;
}

// Builds the manifest from a parsed tree; takes ownership of `tree`.
static dd_status from_tree(dd_ynode *tree, const char *origin, dd_manifest **out) {
    dd_manifest *m = calloc(1, sizeof *m);
    if (!m || !(m->origin = strdup(origin))) {
        free(m);
        dd_ynode_destroy(tree);
        return dd_error_set(DD_ERR_NOMEM, "out of memory");
    }
    parse_ctx c = {origin};
    dd_status s = parse_root(&c, tree, m);
    dd_ynode_destroy(tree);
    if (s != DD_OK) {
        dd_manifest_destroy(m);
        return s;
    }
    *out = m;
    return DD_OK;
}

dd_status dd_manifest_parse(const char *text, size_t len, const char *origin, dd_manifest **out) {
    if (!text || !out) return dd_error_set(DD_ERR_INVALID, "dd_manifest_parse: NULL argument");
    *out = NULL;
    if (!origin) origin = "<manifest>";
    dd_ynode *tree;
    DD_TRY(dd_yaml_load_string(text, len, origin, &tree));
    return from_tree(tree, origin, out);
}

dd_status dd_manifest_load(const char *path, dd_manifest **out) {
    if (!path || !out) return dd_error_set(DD_ERR_INVALID, "dd_manifest_load: NULL argument");
    *out = NULL;
    dd_ynode *tree;
    DD_TRY(dd_yaml_load_file(path, &tree));
    dd_manifest *m;
    DD_TRY(from_tree(tree, path, &m));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t blen = strlen(base);
    if (blen < 6 || strcmp(base + blen - 5, ".yaml") != 0 || strlen(m->name) != blen - 5 ||
        strncmp(base, m->name, blen - 5) != 0) {
        dd_status s = dd_error_set(
            DD_ERR_PARSE, "%s: manifest name '%s' does not match the file name (expected %s.yaml)",
            path, m->name, m->name);
        dd_manifest_destroy(m);
        return s;
    }
    *out = m;
    return DD_OK;
}

void dd_manifest_destroy(dd_manifest *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_files; i++) {
        free(m->files[i].name);
        free_strv(m->files[i].mirrors, m->files[i].n_mirrors);
    }
    free(m->files);
    for (size_t i = 0; i < m->n_splits; i++) {
        free(m->splits[i].name);
        free_strv(m->splits[i].files, m->splits[i].n_files);
    }
    free(m->splits);
    free_strv(m->mirrors, m->n_mirrors);
    free(m->origin);
    free(m->name);
    free(m->description);
    free(m->reader);
    free(m->license);
    free(m->homepage);
    free(m);
}

void dd_manifest_dirs_free(char **dirs) {
    if (!dirs) return;
    for (char **d = dirs; *d; d++)
        free(*d);
    free(dirs);
}

dd_status dd_manifest_dirs(const char *explicit_dir, char ***dirs) {
    char **v = NULL;
    size_t n = 0;
    dd_status s = DD_OK;
    if (explicit_dir && *explicit_dir) s = push_str(&v, &n, explicit_dir);
    const char *env = getenv("DISTILL_MANIFEST_PATH");
    while (s == DD_OK && env && *env) {
        const char *colon = strchr(env, ':');
        size_t len = colon ? (size_t)(colon - env) : strlen(env);
        if (len > 0) {
            char *d = strndup(env, len);
            if (!d) {
                s = dd_error_set(DD_ERR_NOMEM, "out of memory");
                break;
            }
            s = push_str(&v, &n, d);
            free(d);
        }
        env = colon ? colon + 1 : NULL;
    }
    // The source tree's manifests only for the build tree's library; an
    // installed one reads its own prefix (found from where it runs, so a
    // relocated install works), then the configured install prefix.
    if (s == DD_OK && dd_paths_in_build_tree()) s = push_str(&v, &n, DD_SOURCE_DIR "/datasets");
    char data[PATH_MAX];
    dd_paths_installed_data_dir(data, sizeof data);
    if (s == DD_OK && data[0]) {
        char d[PATH_MAX + 16];
        snprintf(d, sizeof d, "%s/datasets", data);
        s = push_str(&v, &n, d);
    }
    if (s == DD_OK) s = push_str(&v, &n, DD_INSTALL_DATA_DIR "/datasets");
    if (s != DD_OK) {
        free_strv(v, n);
        return s;
    }
    *dirs = v;
    return DD_OK;
}

dd_status dd_manifest_find(const char *name, const char *explicit_dir, dd_manifest **out) {
    if (!name || !out) return dd_error_set(DD_ERR_INVALID, "dd_manifest_find: NULL argument");
    *out = NULL;
    if (!valid_dataset_name(name))
        return dd_error_set(DD_ERR_INVALID,
                            "'%s' is not a valid dataset name (a-z, 0-9, '-', '_', '.')", name);
    char **dirs;
    DD_TRY(dd_manifest_dirs(explicit_dir, &dirs));
    char searched[2048] = "";
    size_t used = 0;
    for (char **d = dirs; *d; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.yaml", *d, name);
        struct stat st;
        if (stat(path, &st) == 0) {
            dd_status s = dd_manifest_load(path, out);
            dd_manifest_dirs_free(dirs);
            return s;
        }
        int w = snprintf(searched + used, sizeof searched - used, "%s%s", used ? ", " : "", *d);
        if (w > 0 && (size_t)w < sizeof searched - used) used += (size_t)w;
    }
    dd_manifest_dirs_free(dirs);
    return dd_error_set(DD_ERR_NOT_FOUND,
                        "no manifest for dataset '%s' (looked for %s.yaml in: %s)", name, name,
                        searched);
}

const char *dd_archive_kind_str(dd_archive_kind k) {
    switch (k) {
    case DD_ARCHIVE_NONE:
        return "none";
    case DD_ARCHIVE_GZ:
        return "gz";
    case DD_ARCHIVE_TAR:
        return "tar";
    case DD_ARCHIVE_TAR_GZ:
        return "tar.gz";
    }
    return "?";
}

const char *dd_manifest_file_output(const dd_manifest_file *f, char *buf, size_t cap) {
    if (f->archive == DD_ARCHIVE_NONE) {
        snprintf(buf, cap, "%s", f->name);
        return buf;
    }
    if (f->archive == DD_ARCHIVE_GZ) {
        size_t len = strlen(f->name) - 3;
        snprintf(buf, cap, "%.*s", (int)len, f->name);
        return buf;
    }
    return NULL;
}

dd_status dd_manifest_join_url(const char *mirror, int is_base, const char *file, char **out) {
    size_t ml = strlen(mirror);
    int full = !is_base && (ml == 0 || mirror[ml - 1] != '/');
    size_t need = ml + strlen(file) + 2;
    char *u = malloc(need);
    if (!u) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    if (full)
        snprintf(u, need, "%s", mirror);
    else
        snprintf(u, need, "%s%s%s", mirror, ml && mirror[ml - 1] == '/' ? "" : "/", file);
    *out = u;
    return DD_OK;
}

dd_status dd_manifest_urls(const dd_manifest *m, const dd_manifest_file *f, char ***urls) {
    char **v = NULL;
    size_t n = 0;
    for (int pass = 0; pass < 2; pass++) {
        char **src = pass == 0 ? f->mirrors : m->mirrors;
        size_t cnt = pass == 0 ? f->n_mirrors : m->n_mirrors;
        for (size_t i = 0; i < cnt; i++) {
            char *u;
            dd_status s = dd_manifest_join_url(src[i], pass == 1, f->name, &u);
            if (s == DD_OK) {
                s = push_str(&v, &n, u);
                free(u);
            }
            if (s != DD_OK) {
                free_strv(v, n);
                return s;
            }
        }
    }
    if (!v && push_str(&v, &n, "") == DD_OK) {
        // An empty list is still a valid NULL-terminated array.
        free(v[0]);
        v[0] = NULL;
    }
    if (!v) return dd_error_set(DD_ERR_NOMEM, "out of memory");
    *urls = v;
    return DD_OK;
}
