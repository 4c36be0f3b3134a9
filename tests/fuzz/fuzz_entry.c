/* distill fuzzing — libFuzzer entry points of one target, chosen at build
 * time with -DFZ_TARGET="name". */
#include <stdio.h>
#include <stdlib.h>

#include "distill/log.h"
#include "fuzz_targets.h"

static const fz_target *target;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    dd_log_set_level(DD_LOG_ERROR);
    target = fz_find(FZ_TARGET);
    if (!target || target->init()) {
        fprintf(stderr, "fuzz target %s: setup failed\n", FZ_TARGET);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    target->run(data, size);
    return 0;
}
