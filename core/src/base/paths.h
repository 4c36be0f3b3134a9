/* Where libdistill runs from: the build tree or an installed prefix. The
 * plugin loader and the manifest search path ask here, so an installed
 * distill never reads a stale build or source tree, and a relocated prefix
 * (a .deb, `cmake --install --prefix`) finds its own files. */
#ifndef DD_PATHS_H
#define DD_PATHS_H

#include <stddef.h>

/* The real path of the running libdistill (or of the program it is linked
 * into statically); "" when unknown. */
void dd_paths_library_file(char *buf, size_t n);

/* The real directory holding the running libdistill; "" when unknown. */
void dd_paths_library_dir(char *buf, size_t n);

/* 1 when the running libdistill is the build tree's (the public library or
 * the tests' internal one). */
int dd_paths_in_build_tree(void);

/* The installed data directory (<prefix>/share/distill) found from the
 * running library's own location (<prefix>/<libdir>/libdistill.so); "" when
 * it cannot be told or does not exist. */
void dd_paths_installed_data_dir(char *buf, size_t n);

#endif
