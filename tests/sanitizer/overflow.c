/* distill tests — a deliberate heap overflow, run only by the sanitizer
 * build's self-test to show that a report from a child process is caught. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    (void)argv;
    volatile char *p = malloc(4);
    int i = 4 + argc; // past the end, unknown to the compiler
    p[i] = 1;
    printf("%d\n", p[i]);
    free((void *)p);
    return 0;
}
