/* distill — a small, strict XML parser for the PASCAL VOC annotation subset:
 * elements, character data, comments, processing instructions, CDATA and the
 * predefined/numeric entities. Attributes are checked and skipped; a DOCTYPE
 * with an internal subset is refused (no entity expansion attacks). */
#ifndef DD_VOC_XML_H
#define DD_VOC_XML_H

#include <stddef.h>

#include "distill/status.h"

typedef struct vx_node {
    char *name;
    char *text; /**< character data directly inside this element (entity-decoded) */
    size_t text_len;
    int line; /**< line of the start tag */
    struct vx_node *parent, *first_child, *last_child, *next;
} vx_node;

/** Parses `buf` (len bytes) into a tree; *root is the document element.
 * Errors are DD_ERR_PARSE with "path:line: what". Caller frees with vx_free. */
dd_status vx_parse(const char *path, const char *buf, size_t len, vx_node **root);
void vx_free(vx_node *n);

/** First direct child named `name`, or NULL. */
const vx_node *vx_child(const vx_node *n, const char *name);
/** The node's text with surrounding white space removed, copied into out
 * (truncated to cap-1). Returns out. */
const char *vx_text(const vx_node *n, char *out, size_t cap);

#endif
