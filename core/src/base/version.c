/* distill — library version. */
#include "distill/distill.h"

const char *dd_version(void) {
    return DD_VERSION_STRING;
}
