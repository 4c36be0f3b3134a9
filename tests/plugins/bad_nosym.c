/* Test-only broken plugin: a shared object without the entry symbol. */
#include "distill/distill.h"

DD_PLUGIN_EXPORT int dd_not_the_entry(void);
int dd_not_the_entry(void) {
    return 42;
}
