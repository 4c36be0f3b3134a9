/* distill — options as text: the list of valid keys for errors, and values
 * written back as YAML that reads back the same. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/strbuf.h"
#include "config/options_impl.h"

char *dd_options_valid_keys(const dd_options *o, const char *prefix) {
    size_t plen = prefix ? strlen(prefix) : 0;
    dd_strbuf b = DD_STRBUF_INIT;
    dd_strbuf_printf(&b, "%s", "");
    for (size_t i = 0; i < o->n; i++) {
        const char *k = o->e[i].spec->name;
        if (plen && (strncmp(k, prefix, plen) != 0 || k[plen] != '.')) continue;
        const char *rel = plen ? k + plen + 1 : k;
        size_t rlen = strcspn(rel, ".");
        // list a group ("optimizer") once, at its first member
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *kj = o->e[j].spec->name;
            if (plen && (strncmp(kj, prefix, plen) != 0 || kj[plen] != '.')) continue;
            const char *rj = plen ? kj + plen + 1 : kj;
            if (strncmp(rj, rel, rlen) == 0 && (rj[rlen] == '.' || rj[rlen] == '\0')) seen = 1;
        }
        if (seen) continue;
        dd_strbuf_printf(&b, "%s%.*s", b.len ? ", " : "", (int)rlen, rel);
    }
    return dd_strbuf_take(&b);
}

/* ---- formatting ---------------------------------------------------------- */

// Nonzero if `s` reads back from YAML as the same plain string.
static int plain_safe(const char *s) {
    if (!*s) return 0;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
        return s[0] == '-' && s[1] && s[1] != ' ' && !strchr(s, '#');
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == '#' || (c[0] == ':' && (c[1] == ' ' || c[1] == '\0')))
            return 0;
        if (strchr(",[]{}", *c)) return 0;
    }
    if (s[strlen(s) - 1] == ' ') return 0;
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null", "~"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (strcasecmp(s, reserved[i]) == 0) return 0;
    char *end;
    (void)strtod(s, &end);
    return *end != '\0';
}

static void sb_scalar(dd_strbuf *b, const char *s) {
    if (plain_safe(s)) {
        dd_strbuf_printf(b, "%s", s);
        return;
    }
    dd_strbuf_printf(b, "\"");
    for (const char *c = s; *c; c++) {
        if (*c == '"' || *c == '\\')
            dd_strbuf_printf(b, "\\%c", *c);
        else if ((unsigned char)*c < 0x20)
            dd_strbuf_printf(b, "\\x%02x", (unsigned char)*c);
        else
            dd_strbuf_printf(b, "%c", *c);
    }
    dd_strbuf_printf(b, "\"");
}

// An item's word, key or value: numbers stay plain (`{conv: {out: 32}}`).
static void sb_item_scalar(dd_strbuf *b, const char *s) {
    char *end;
    errno = 0;
    (void)strtod(s, &end);
    if (*s && *end == '\0' && !isspace((unsigned char)s[0]) && errno == 0)
        dd_strbuf_printf(b, "%s", s);
    else
        sb_scalar(b, s);
}

void dd_yaml_write_scalar(FILE *f, const char *s) {
    dd_strbuf b = DD_STRBUF_INIT;
    sb_scalar(&b, s);
    if (!b.oom) fputs(dd_strbuf_str(&b), f);
    dd_strbuf_free(&b);
}

char *dd_options_format(const dd_options *o, size_t i) {
    if (!o || i >= o->n) return NULL;
    const entry *e = &o->e[i];
    dd_strbuf b = DD_STRBUF_INIT;
    if (e->spec->type == DD_PARAM_LIST) {
        dd_strbuf_printf(&b, "[");
        for (size_t k = 0; k < e->v.n_items; k++) {
            if (k) dd_strbuf_printf(&b, ", ");
            sb_scalar(&b, e->v.items[k]);
        }
        dd_strbuf_printf(&b, "]");
    } else if (e->spec->type == DD_PARAM_ITEMS) {
        dd_strbuf_printf(&b, "[");
        for (size_t k = 0; k < e->v.n_its; k++) {
            const opt_item *it = &e->v.its[k];
            if (k) dd_strbuf_printf(&b, ", ");
            if (it->value || it->args) dd_strbuf_printf(&b, "{");
            sb_item_scalar(&b, it->kind);
            if (it->value) {
                dd_strbuf_printf(&b, ": ");
                sb_item_scalar(&b, it->value);
            } else if (it->args) {
                dd_strbuf_printf(&b, ": {");
                for (size_t j = 0; j < it->n_args; j++) {
                    dd_strbuf_printf(&b, "%s", j ? ", " : "");
                    sb_item_scalar(&b, it->args[j].key);
                    dd_strbuf_printf(&b, ": ");
                    sb_item_scalar(&b, it->args[j].value);
                }
                dd_strbuf_printf(&b, "}");
            }
            if (it->value || it->args) dd_strbuf_printf(&b, "}");
        }
        dd_strbuf_printf(&b, "]");
    } else if (!e->v.text) {
        dd_strbuf_printf(&b, "null");
    } else if (e->spec->type == DD_PARAM_STRING || e->spec->type == DD_PARAM_ENUM) {
        sb_scalar(&b, e->v.text);
    } else {
        dd_strbuf_printf(&b, "%s", e->v.text);
    }
    return dd_strbuf_take(&b);
}
