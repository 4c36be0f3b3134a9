/* distill (internal) — a YAML document as a small tree of scalars, sequences
 * and mappings, each node carrying its 1-based line:column. Built on libyaml's
 * event parser; rejects duplicate keys, aliases and non-scalar keys. */
#ifndef DD_YAML_TREE_H
#define DD_YAML_TREE_H

#include <stddef.h>

#include "base/export.h"
#include "distill/status.h"

typedef enum dd_ynode_kind {
    DD_YNODE_SCALAR = 1,
    DD_YNODE_SEQUENCE = 2,
    DD_YNODE_MAPPING = 3,
} dd_ynode_kind;

typedef struct dd_ynode dd_ynode;

/** One mapping entry: a scalar key with its position, and its value. */
typedef struct dd_yentry {
    char *key;
    int line, col;
    dd_ynode *value;
} dd_yentry;

struct dd_ynode {
    dd_ynode_kind kind;
    int line, col; /**< 1-based position of the node's first character */
    char *scalar;  /**< DD_YNODE_SCALAR: the text (owned) */
    int plain;     /**< scalar written without quotes (so `~`, `null` and `` mean null) */
    size_t n;      /**< items of a sequence or entries of a mapping */
    dd_ynode **items;
    dd_yentry *entries;
};

/** Parses a file holding one YAML document. *root is NULL for an empty
 * document. Errors are "path:line:col: ..." (DD_ERR_PARSE) or the open
 * failure (DD_ERR_IO / DD_ERR_NOT_FOUND). Caller owns *root. */
DD_INTERNAL dd_status dd_yaml_load_file(const char *path, dd_ynode **root);
/** Same for text in memory; `name` prefixes error positions. */
DD_INTERNAL dd_status dd_yaml_load_string(const char *text, size_t len, const char *name,
                                          dd_ynode **root);
DD_INTERNAL void dd_ynode_destroy(dd_ynode *n);

/** A plain scalar meaning null: empty, "~", "null", "Null" or "NULL". */
DD_INTERNAL int dd_ynode_is_null(const dd_ynode *n);
/** "a scalar", "a list" or "a mapping", for error messages. */
DD_INTERNAL const char *dd_ynode_kind_str(const dd_ynode *n);
/** Entry of a mapping by key, or NULL. */
DD_INTERNAL const dd_yentry *dd_ynode_get(const dd_ynode *map, const char *key);

#endif
