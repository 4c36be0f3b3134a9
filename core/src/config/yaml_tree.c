/* distill — YAML documents as position-annotated trees (libyaml event parser),
 * with duplicate keys, aliases and non-scalar keys rejected. */
#include "config/yaml_tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 64
#define MAX_FILE_BYTES (16u << 20)

typedef struct frame {
    dd_ynode *node;
    char *key; // pending mapping key waiting for its value
    int key_line, key_col;
} frame;

typedef struct builder {
    const char *name;
    frame stack[MAX_DEPTH];
    int depth;
    dd_ynode *root;
    int documents;
} builder;

void dd_ynode_destroy(dd_ynode *n) {
    if (!n) return;
    free(n->scalar);
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == DD_YNODE_SEQUENCE) dd_ynode_destroy(n->items[i]);
        if (n->kind == DD_YNODE_MAPPING) {
            free(n->entries[i].key);
            dd_ynode_destroy(n->entries[i].value);
        }
    }
    free(n->items);
    free(n->entries);
    free(n);
}

int dd_ynode_is_null(const dd_ynode *n) {
    if (!n || n->kind != DD_YNODE_SCALAR || !n->plain) return 0;
    const char *s = n->scalar;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *dd_ynode_kind_str(const dd_ynode *n) {
    if (!n) return "nothing";
    switch (n->kind) {
    case DD_YNODE_SCALAR:
        return "a scalar";
    case DD_YNODE_SEQUENCE:
        return "a list";
    case DD_YNODE_MAPPING:
        return "a mapping";
    }
    return "a node";
}

const dd_yentry *dd_ynode_get(const dd_ynode *map, const char *key) {
    if (!map || map->kind != DD_YNODE_MAPPING) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->entries[i].key, key) == 0) return &map->entries[i];
    return NULL;
}

static dd_status nomem(void) {
    return dd_error_set(DD_ERR_NOMEM, "out of memory reading YAML");
}

static dd_ynode *node_new(dd_ynode_kind kind, yaml_mark_t m) {
    dd_ynode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->line = (int)m.line + 1;
    n->col = (int)m.column + 1;
    return n;
}

// Attaches a finished node to its parent (or makes it the root). Takes
// ownership of `n` in every case.
static dd_status attach(builder *b, dd_ynode *n) {
    if (b->depth == 0) {
        b->root = n;
        return DD_OK;
    }
    frame *f = &b->stack[b->depth - 1];
    dd_ynode *p = f->node;
    if (p->kind == DD_YNODE_SEQUENCE) {
        dd_ynode **items = realloc(p->items, (p->n + 1) * sizeof *items);
        if (!items) {
            dd_ynode_destroy(n);
            return nomem();
        }
        p->items = items;
        p->items[p->n++] = n;
        return DD_OK;
    }
    if (!f->key) {
        // n is a key; only scalars get here (collections are refused at their start)
        const dd_yentry *dup = dd_ynode_get(p, n->scalar);
        if (dup) {
            dd_status s =
                dd_error_set(DD_ERR_PARSE, "%s:%d:%d: duplicate key '%s' (first defined at %d:%d)",
                             b->name, n->line, n->col, n->scalar, dup->line, dup->col);
            dd_ynode_destroy(n);
            return s;
        }
        f->key = n->scalar;
        f->key_line = n->line;
        f->key_col = n->col;
        n->scalar = NULL;
        dd_ynode_destroy(n);
        return DD_OK;
    }
    dd_yentry *e = realloc(p->entries, (p->n + 1) * sizeof *e);
    if (!e) {
        dd_ynode_destroy(n);
        return nomem();
    }
    p->entries = e;
    p->entries[p->n] = (dd_yentry){f->key, f->key_line, f->key_col, n};
    p->n++;
    f->key = NULL;
    return DD_OK;
}

static dd_status syntax_error(builder *b, const yaml_parser_t *ps) {
    const char *problem = ps->problem ? ps->problem : "malformed document";
    if (ps->error == YAML_READER_ERROR)
        return dd_error_set(DD_ERR_PARSE, "%s: invalid text at byte %zu: %s", b->name,
                            ps->problem_offset, problem);
    if (ps->context)
        return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: YAML syntax error: %s (%s at %zu:%zu)",
                            b->name, ps->problem_mark.line + 1, ps->problem_mark.column + 1,
                            problem, ps->context, ps->context_mark.line + 1,
                            ps->context_mark.column + 1);
    return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: YAML syntax error: %s", b->name,
                        ps->problem_mark.line + 1, ps->problem_mark.column + 1, problem);
}

// Handles one event; *done is set at the end of the stream.
static dd_status on_event(builder *b, const yaml_event_t *ev, int *done) {
    yaml_mark_t m = ev->start_mark;
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return DD_OK;
    case YAML_STREAM_END_EVENT:
        *done = 1;
        return DD_OK;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1)
            return dd_error_set(DD_ERR_PARSE,
                                "%s:%zu:%zu: only one YAML document is allowed per file", b->name,
                                m.line + 1, m.column + 1);
        return DD_OK;
    case YAML_ALIAS_EVENT:
        return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: YAML aliases (*%s) are not supported",
                            b->name, m.line + 1, m.column + 1, (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT: {
        dd_ynode *n = node_new(DD_YNODE_SCALAR, m);
        if (!n) return nomem();
        n->scalar = malloc(ev->data.scalar.length + 1);
        if (!n->scalar) {
            free(n);
            return nomem();
        }
        memcpy(n->scalar, ev->data.scalar.value, ev->data.scalar.length);
        n->scalar[ev->data.scalar.length] = '\0';
        if (strlen(n->scalar) != ev->data.scalar.length) {
            dd_ynode_destroy(n);
            return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: NUL character inside a scalar", b->name,
                                m.line + 1, m.column + 1);
        }
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        return attach(b, n);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->depth > 0) {
            frame *f = &b->stack[b->depth - 1];
            if (f->node->kind == DD_YNODE_MAPPING && !f->key)
                return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: mapping keys must be plain scalars",
                                    b->name, m.line + 1, m.column + 1);
        }
        if (b->depth == MAX_DEPTH)
            return dd_error_set(DD_ERR_PARSE, "%s:%zu:%zu: nesting deeper than %d levels", b->name,
                                m.line + 1, m.column + 1, MAX_DEPTH);
        dd_ynode *n = node_new(
            ev->type == YAML_SEQUENCE_START_EVENT ? DD_YNODE_SEQUENCE : DD_YNODE_MAPPING, m);
        if (!n) return nomem();
        b->stack[b->depth++] = (frame){n, NULL, 0, 0};
        return DD_OK;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        // libyaml guarantees balanced events, so depth > 0 here
        frame f = b->stack[--b->depth];
        free(f.key);
        return attach(b, f.node);
    }
    }
    return DD_OK;
}

dd_status dd_yaml_load_string(const char *text, size_t len, const char *name, dd_ynode **root) {
    if (!text || !root) return dd_error_set(DD_ERR_INVALID, "dd_yaml_load_string: NULL argument");
    *root = NULL;
    builder b = {.name = name ? name : "<string>"};
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps)) return nomem();
    yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
    dd_status s = DD_OK;
    int done = 0;
    while (!done && s == DD_OK) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&ps, &ev)) {
            s = syntax_error(&b, &ps);
            break;
        }
        s = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    while (b.depth > 0) {
        frame f = b.stack[--b.depth];
        free(f.key);
        dd_ynode_destroy(f.node);
    }
    if (s != DD_OK) {
        dd_ynode_destroy(b.root);
        return s;
    }
    *root = b.root;
    return DD_OK;
}

dd_status dd_yaml_load_file(const char *path, dd_ynode **root) {
    if (!path || !root) return dd_error_set(DD_ERR_INVALID, "dd_yaml_load_file: NULL argument");
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dd_error_set(errno == ENOENT ? DD_ERR_NOT_FOUND : DD_ERR_IO, "%s: cannot open: %s",
                            path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    dd_status s = DD_OK;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                s = dd_error_set(DD_ERR_PARSE, "%s: file larger than %u MiB", path,
                                 MAX_FILE_BYTES >> 20);
                break;
            }
            cap = cap ? cap * 2 : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) {
                s = nomem();
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) s = dd_error_set(DD_ERR_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (s == DD_OK) s = dd_yaml_load_string(buf ? buf : "", len, path, root);
    free(buf);
    return s;
}
