/* distill tests — .npy and .npz writers (see npy_gen.h). */
#include "npy_gen.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rg_blob rg_npy_raw(int major, const char *dict, size_t align, const void *data, size_t bytes) {
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t total = pre + dl + 1, pad = (align - total % align) % align, hlen = dl + pad + 1;
    rg_blob b = {malloc(pre + hlen + bytes + 1), pre + hlen + bytes};
    if (!b.p) return (rg_blob){NULL, 0};
    memcpy(b.p, "\x93NUMPY", 6);
    b.p[6] = (uint8_t)major, b.p[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b.p[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b.p + pre, dict, dl);
    memset(b.p + pre + dl, ' ', pad);
    b.p[pre + hlen - 1] = '\n';
    if (bytes) memcpy(b.p + pre + hlen, data, bytes);
    return b;
}

rg_blob rg_npy(const char *descr, const char *shape, const void *data, size_t bytes) {
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
             shape);
    return rg_npy_raw(1, dict, 64, data, bytes);
}

dd_status rg_write_zip(const char *path, const char *const *names, const rg_blob *m, int n,
                       int deflate) {
    struct archive *a = archive_write_new();
    if (!a) return DD_ERR_NOMEM;
    dd_status s = DD_OK;
    if (archive_write_set_format_zip(a) != ARCHIVE_OK ||
        archive_write_set_format_option(a, "zip", "compression", deflate ? "deflate" : "store") !=
            ARCHIVE_OK ||
        archive_write_open_filename(a, path) != ARCHIVE_OK)
        s = DD_ERR_ARCHIVE;
    for (int k = 0; s == DD_OK && k < n; k++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[k]);
        archive_entry_set_size(e, (la_int64_t)m[k].n);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        if (archive_write_header(a, e) != ARCHIVE_OK ||
            archive_write_data(a, m[k].p, m[k].n) != (la_ssize_t)m[k].n)
            s = DD_ERR_ARCHIVE;
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK && s == DD_OK) s = DD_ERR_ARCHIVE;
    archive_write_free(a);
    if (s != DD_OK) fprintf(stderr, "rg_write_zip: %s: cannot write the zip\n", path);
    return s;
}
