/* Where libdistill runs from (see paths.h). */
#define _GNU_SOURCE
#include "base/paths.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void dd_paths_library_file(char *buf, size_t n) {
    Dl_info info;
    buf[0] = '\0';
    if (!dladdr((void *)dd_paths_library_file, &info) || !info.dli_fname) return;
    char real[PATH_MAX];
    if (realpath(info.dli_fname, real)) snprintf(buf, n, "%s", real);
}

void dd_paths_library_dir(char *buf, size_t n) {
    dd_paths_library_file(buf, n);
    char *slash = strrchr(buf, '/');
    if (slash) *slash = '\0';
}

static int same_dir(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

int dd_paths_in_build_tree(void) {
    char lib[PATH_MAX];
    dd_paths_library_dir(lib, sizeof lib);
    return lib[0] && (same_dir(lib, DD_BUILD_LIB_DIR) || same_dir(lib, DD_BUILD_INTERNAL_LIB_DIR));
}

void dd_paths_installed_data_dir(char *buf, size_t n) {
    buf[0] = '\0';
    char lib[PATH_MAX];
    dd_paths_library_dir(lib, sizeof lib);
    if (!lib[0] || dd_paths_in_build_tree()) return;
    // <prefix>/lib or <prefix>/lib/<multiarch>: walk up until share/distill
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", lib);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) return;
        *slash = '\0';
        char cand[PATH_MAX + 32];
        struct stat st;
        snprintf(cand, sizeof cand, "%s/share/distill", dir);
        if (stat(cand, &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(buf, n, "%s", cand);
            return;
        }
    }
}
