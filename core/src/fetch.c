/* distill — dataset fetching: manifest lookup, download, verification and
 * unpacking into the cache (minimal first version: local paths and listing). */
#define _GNU_SOURCE
#include "fetch.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "distill/log.h"

dd_status dd_fetch_dataset(const char *dataset, const dd_fetch_options *opt, char **root) {
    if (!dataset || !root) return dd_error_set(DD_ERR_INVALID, "dd_fetch_dataset: NULL argument");
    *root = NULL;
    if (opt && opt->local_path) {
        struct stat st;
        if (stat(opt->local_path, &st) != 0 || !S_ISDIR(st.st_mode))
            return dd_error_set(DD_ERR_NOT_FOUND, "dataset '%s': local path '%s' is not a directory",
                                dataset, opt->local_path);
        *root = strdup(opt->local_path);
        if (!*root) return dd_error_set(DD_ERR_NOMEM, "out of memory");
        return DD_OK;
    }
    return dd_error_set(DD_ERR_UNSUPPORTED, "dataset '%s': downloading is not implemented yet", dataset);
}

static int list_has(const dd_dataset_status *v, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].name, name) == 0) return 1;
    return 0;
}

static dd_status list_dir(const char *dir, dd_dataset_status **v, size_t *n, size_t *cap) {
    DIR *d = opendir(dir);
    if (!d) return DD_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0 || len - 5 >= 64) continue;
        char name[64];
        memcpy(name, e->d_name, len - 5);
        name[len - 5] = '\0';
        if (list_has(*v, *n, name)) continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            dd_dataset_status *nv = realloc(*v, nc * sizeof *nv);
            if (!nv) {
                closedir(d);
                return dd_error_set(DD_ERR_NOMEM, "out of memory");
            }
            *v = nv;
            *cap = nc;
        }
        memset(&(*v)[*n], 0, sizeof **v);
        snprintf((*v)[*n].name, sizeof (*v)[*n].name, "%s", name);
        (*n)++;
    }
    closedir(d);
    return DD_OK;
}

dd_status dd_fetch_list(const dd_fetch_options *opt, dd_dataset_status **out, size_t *n) {
    if (!out || !n) return dd_error_set(DD_ERR_INVALID, "dd_fetch_list: NULL argument");
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    const char *dirs[4] = {opt ? opt->manifest_dir : NULL, getenv("DISTILL_MANIFEST_PATH"),
                           DD_SOURCE_DIR "/datasets", DD_INSTALL_DATA_DIR "/datasets"};
    for (int i = 0; i < 4; i++) {
        if (!dirs[i]) continue;
        dd_status s = list_dir(dirs[i], out, n, &cap);
        if (s != DD_OK) {
            free(*out);
            *out = NULL;
            *n = 0;
            return s;
        }
    }
    return DD_OK;
}
