/* distill — the small XML parser behind the PASCAL VOC reader (voc_xml.h). */
#include "voc_xml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VX_MAX_DEPTH 64
#define VX_MAX_NAME 128

typedef struct vx_parser {
    const char *path;
    const char *p, *end;
    int line;
    vx_node *doc; /* the document element, once its start tag is read */
    vx_node *cur; /* the innermost open element; NULL outside the root */
    int depth;    /* open elements */
} vx_parser;

static dd_status perr(const vx_parser *ps, const char *what) {
    return dd_error_set(DD_ERR_PARSE, "%s:%d: %s", ps->path, ps->line, what);
}

static void advance(vx_parser *ps, size_t n) {
    for (size_t i = 0; i < n && ps->p < ps->end; i++, ps->p++)
        if (*ps->p == '\n') ps->line++;
}

static int starts(const vx_parser *ps, const char *s) {
    size_t n = strlen(s);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

/* Advances past the next occurrence of `term`; error if absent. */
static dd_status skip_past(vx_parser *ps, const char *term, const char *what) {
    size_t n = strlen(term);
    while (ps->p < ps->end) {
        if (starts(ps, term)) {
            advance(ps, n);
            return DD_OK;
        }
        advance(ps, 1);
    }
    return perr(ps, what);
}

static int is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static int is_name_char(unsigned char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void skip_space(vx_parser *ps) {
    while (ps->p < ps->end && is_space(*ps->p))
        advance(ps, 1);
}

static dd_status read_name(vx_parser *ps, char *out) {
    if (ps->p >= ps->end) return perr(ps, "unexpected end of file inside a tag");
    if (!is_name_start((unsigned char)*ps->p)) return perr(ps, "expected an element name");
    size_t n = 0;
    while (ps->p < ps->end && is_name_char((unsigned char)*ps->p)) {
        if (n + 1 >= VX_MAX_NAME) return perr(ps, "element name too long");
        out[n++] = *ps->p;
        advance(ps, 1);
    }
    out[n] = '\0';
    return DD_OK;
}

static dd_status append_text(vx_parser *ps, vx_node *n, const char *s, size_t len) {
    if (len == 0) return DD_OK;
    char *t = realloc(n->text, n->text_len + len + 1);
    if (!t) return dd_error_set(DD_ERR_NOMEM, "%s: out of memory", ps->path);
    memcpy(t + n->text_len, s, len);
    n->text_len += len;
    t[n->text_len] = '\0';
    n->text = t;
    return DD_OK;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* At '&': decodes one entity reference into the node's text. */
static dd_status read_entity(vx_parser *ps, vx_node *n) {
    const char *semi = memchr(ps->p, ';', (size_t)(ps->end - ps->p));
    if (!semi || semi - ps->p > 12) return perr(ps, "unterminated entity reference ('&' in text)");
    size_t len = (size_t)(semi - ps->p) + 1;
    char buf[8];
    size_t out = 0;
    static const struct {
        const char *ref;
        char c;
    } named[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strlen(named[i].ref) == len && memcmp(ps->p, named[i].ref, len) == 0) {
            buf[0] = named[i].c;
            out = 1;
        }
    if (!out && len > 3 && ps->p[1] == '#') {
        int hex = ps->p[2] == 'x';
        const char *d = ps->p + (hex ? 3 : 2);
        uint32_t cp = 0;
        if (d == semi) return perr(ps, "empty character reference");
        for (; d < semi; d++) {
            unsigned v;
            if (*d >= '0' && *d <= '9')
                v = (unsigned)(*d - '0');
            else if (hex && *d >= 'a' && *d <= 'f')
                v = (unsigned)(*d - 'a' + 10);
            else if (hex && *d >= 'A' && *d <= 'F')
                v = (unsigned)(*d - 'A' + 10);
            else
                return perr(ps, "bad character reference");
            cp = cp * (hex ? 16 : 10) + v;
            if (cp > 0x10FFFF) return perr(ps, "character reference out of range");
        }
        if (cp == 0) return perr(ps, "character reference to NUL");
        out = utf8_encode(cp, buf);
    }
    if (!out) return perr(ps, "unknown entity reference (only the predefined ones are allowed)");
    advance(ps, len);
    return append_text(ps, n, buf, out);
}

/* Skips the attributes of a start tag up to '>' or '/>'; *empty tells which. */
static dd_status skip_attributes(vx_parser *ps, int *empty) {
    for (;;) {
        skip_space(ps);
        if (ps->p >= ps->end) return perr(ps, "unexpected end of file inside a start tag");
        if (*ps->p == '>') {
            advance(ps, 1);
            *empty = 0;
            return DD_OK;
        }
        if (starts(ps, "/>")) {
            advance(ps, 2);
            *empty = 1;
            return DD_OK;
        }
        char name[VX_MAX_NAME];
        DD_TRY(read_name(ps, name));
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p != '=') return perr(ps, "attribute without '=value'");
        advance(ps, 1);
        skip_space(ps);
        if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\''))
            return perr(ps, "attribute value not quoted");
        char q = *ps->p;
        advance(ps, 1);
        while (ps->p < ps->end && *ps->p != q) {
            if (*ps->p == '<') return perr(ps, "'<' in an attribute value");
            advance(ps, 1);
        }
        if (ps->p >= ps->end) return perr(ps, "unexpected end of file in an attribute value");
        advance(ps, 1);
    }
}

void vx_free(vx_node *n) {
    // Iterative post-order walk: hostile nesting cannot overflow the stack
    // (depth is capped anyway).
    while (n) {
        if (n->first_child) {
            vx_node *c = n->first_child;
            n->first_child = c->next;
            c->parent = n;
            c->next = NULL;
            n = c;
            continue;
        }
        vx_node *p = n->parent;
        free(n->name);
        free(n->text);
        free(n);
        n = p;
    }
}

/* Character data up to the next '<': appended to the open element, or (outside
 * the root) allowed only as white space. An entity reference ends the run and
 * is decoded; the caller's loop continues after it. */
static dd_status read_text(vx_parser *ps) {
    const char *s = ps->p;
    while (ps->p < ps->end && *ps->p != '<' && *ps->p != '&') {
        if (*ps->p == '\0') return perr(ps, "NUL byte");
        advance(ps, 1);
    }
    int at_entity = ps->p < ps->end && *ps->p == '&';
    if (ps->cur) {
        DD_TRY(append_text(ps, ps->cur, s, (size_t)(ps->p - s)));
        return at_entity ? read_entity(ps, ps->cur) : DD_OK;
    }
    for (const char *q = s; q < ps->p; q++)
        if (!is_space(*q))
            return perr(ps,
                        ps->doc ? "text after the root element" : "text before the root element");
    return at_entity ? perr(ps, "entity outside the root element") : DD_OK;
}

/* At "<![CDATA[": its content goes verbatim into the open element's text. */
static dd_status read_cdata(vx_parser *ps) {
    if (!ps->cur) return perr(ps, "CDATA outside the root element");
    advance(ps, 9);
    const char *s = ps->p;
    while (!starts(ps, "]]>")) {
        if (ps->p >= ps->end) return perr(ps, "unexpected end of file in a CDATA section");
        // As in character data: a NUL would silently cut the text short.
        if (*ps->p == '\0') return perr(ps, "NUL byte");
        advance(ps, 1);
    }
    DD_TRY(append_text(ps, ps->cur, s, (size_t)(ps->p - s)));
    advance(ps, 3);
    return DD_OK;
}

/* At "<!DOCTYPE": skipped, unless it has an internal subset (where entities
 * would be declared). */
static dd_status skip_doctype(vx_parser *ps) {
    while (ps->p < ps->end && *ps->p != '>' && *ps->p != '[')
        advance(ps, 1);
    if (ps->p < ps->end && *ps->p == '[')
        return perr(ps, "DOCTYPE with an internal subset is not supported");
    if (ps->p >= ps->end) return perr(ps, "unexpected end of file in the DOCTYPE");
    advance(ps, 1);
    return DD_OK;
}

/* At "</": closes the open element, which must have the same name. */
static dd_status read_end_tag(vx_parser *ps) {
    advance(ps, 2);
    char name[VX_MAX_NAME];
    DD_TRY(read_name(ps, name));
    skip_space(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end of file inside an end tag");
    if (*ps->p != '>') return perr(ps, "malformed end tag");
    advance(ps, 1);
    const vx_node *cur = ps->cur;
    if (!cur)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: end tag </%s> without a start tag", ps->path,
                            ps->line, name);
    if (strcmp(name, cur->name) != 0)
        return dd_error_set(DD_ERR_PARSE,
                            "%s:%d: end tag </%s> does not match <%s> opened at line %d", ps->path,
                            ps->line, name, cur->name, cur->line);
    ps->cur = cur->parent;
    ps->depth--;
    return DD_OK;
}

/* Appends a new element named `name` (start tag on `line`) as the last child
 * of the open element, or as the document element. NULL (error set) on OOM. */
static vx_node *add_node(vx_parser *ps, const char *name, int line) {
    vx_node *n = calloc(1, sizeof *n);
    char *nm = n ? malloc(strlen(name) + 1) : NULL;
    if (!n || !nm) {
        free(n);
        dd_error_set(DD_ERR_NOMEM, "%s: out of memory", ps->path);
        return NULL;
    }
    strcpy(nm, name);
    n->name = nm;
    n->line = line;
    n->parent = ps->cur;
    if (ps->cur) {
        if (ps->cur->last_child)
            ps->cur->last_child->next = n;
        else
            ps->cur->first_child = n;
        ps->cur->last_child = n;
    } else {
        ps->doc = n;
    }
    return n;
}

/* At '<' of a start tag (or an empty-element tag, which opens nothing). */
static dd_status read_start_tag(vx_parser *ps) {
    advance(ps, 1);
    char name[VX_MAX_NAME];
    int line = ps->line;
    DD_TRY(read_name(ps, name));
    int empty = 0;
    DD_TRY(skip_attributes(ps, &empty));
    if (!ps->cur && ps->doc)
        return dd_error_set(DD_ERR_PARSE, "%s:%d: second root element <%s>", ps->path, line, name);
    if (ps->depth >= VX_MAX_DEPTH) return perr(ps, "elements nested too deeply");
    vx_node *n = add_node(ps, name, line);
    if (!n) return DD_ERR_NOMEM;
    if (!empty) {
        ps->cur = n;
        ps->depth++;
    }
    return DD_OK;
}

/* At '<': whichever kind of markup starts here. */
static dd_status read_markup(vx_parser *ps) {
    if (starts(ps, "<?"))
        return skip_past(ps, "?>", "unexpected end of file in a processing instruction");
    if (starts(ps, "<!--")) return skip_past(ps, "-->", "unexpected end of file in a comment");
    if (starts(ps, "<![CDATA[")) return read_cdata(ps);
    if (starts(ps, "<!DOCTYPE")) return skip_doctype(ps);
    if (starts(ps, "</")) return read_end_tag(ps);
    return read_start_tag(ps);
}

/* The whole document; the tree is left in ps->doc (freed by the caller). */
static dd_status read_document(vx_parser *ps) {
    if (ps->end - ps->p >= 3 && memcmp(ps->p, "\xEF\xBB\xBF", 3) == 0) advance(ps, 3);
    while (ps->p < ps->end)
        DD_TRY(*ps->p == '<' ? read_markup(ps) : read_text(ps));
    if (ps->cur)
        return dd_error_set(DD_ERR_PARSE,
                            "%s:%d: unexpected end of file: <%s> opened at line %d "
                            "is not closed",
                            ps->path, ps->line, ps->cur->name, ps->cur->line);
    if (!ps->doc) return dd_error_set(DD_ERR_PARSE, "%s: no XML element", ps->path);
    return DD_OK;
}

dd_status vx_parse(const char *path, const char *buf, size_t len, vx_node **root) {
    *root = NULL;
    vx_parser ps = {.path = path, .p = buf, .end = buf + len, .line = 1};
    dd_status st = read_document(&ps);
    if (st != DD_OK) {
        vx_free(ps.doc);
        return st;
    }
    *root = ps.doc;
    return DD_OK;
}

const vx_node *vx_child(const vx_node *n, const char *name) {
    for (const vx_node *c = n ? n->first_child : NULL; c; c = c->next)
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

const char *vx_text(const vx_node *n, char *out, size_t cap) {
    out[0] = '\0';
    if (!n || !n->text || cap == 0) return out;
    const char *s = n->text, *e = n->text + n->text_len;
    while (s < e && is_space(*s))
        s++;
    while (e > s && is_space(e[-1]))
        e--;
    size_t len = (size_t)(e - s);
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}
