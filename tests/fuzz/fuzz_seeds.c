/* distill fuzzing — writes the seed corpus of one target into OUT/<target>/,
 * from the test generators (one target per process: targets keep their
 * fixture in process-wide state). */
#include <stdio.h>
#include <string.h>

#include "distill/log.h"
#include "fuzz_targets.h"
#include "readers_gen.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s OUT TARGET\n", argv[0]);
        return 2;
    }
    dd_log_set_level(DD_LOG_ERROR);
    int failed = 1;
    for (const fz_target *const *t = fz_all(); *t; t++) {
        if (strcmp(argv[2], (*t)->name) != 0) continue;
        failed = -1;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", argv[1], (*t)->name);
        if (rg_mkdirs(dir) != DD_OK || (*t)->init() || (*t)->seeds(dir)) {
            fprintf(stderr, "%s: seeds failed: %s\n", (*t)->name, dd_error_message());
            return 1;
        }
        failed = 0;
    }
    if (failed) fprintf(stderr, "unknown fuzz target '%s'\n", argv[2]);
    return failed ? 1 : 0;
}
