/*
 * faultproxy.h as a program, for the shell tests (PGETL_FAULTPROXY):
 *
 *   pgetl_faultproxy TARGET_PORT [up|down stall|cut|pass AFTER_BYTES]
 *
 * Listens on 127.0.0.1:0, prints the port on stdout, applies the rule to
 * every connection (counting from its first byte) and forwards until it is
 * killed (a background job's standard input is /dev/null, so it cannot wait
 * for end of file there).
 */
#define _GNU_SOURCE /* accept4, POLLRDHUP in faultproxy.h */
#include "faultproxy.h"

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2 && argc != 5) {
        fprintf(stderr, "usage: %s TARGET_PORT [up|down stall|cut|pass AFTER_BYTES]\n", argv[0]);
        return 2;
    }
    faultproxy *p = fp_start(atoi(argv[1]));
    if (!p) {
        perror("fp_start");
        return 1;
    }
    if (argc == 5) {
        fp_dir d = strcmp(argv[2], "up") == 0 ? FP_UP : FP_DOWN;
        fp_mode m = strcmp(argv[3], "stall") == 0 ? FP_STALL
                    : strcmp(argv[3], "cut") == 0 ? FP_CUT
                                                  : FP_PASS;
        fp_set(p, d, m, strtoll(argv[4], NULL, 10), 0);
    }
    printf("%d\n", fp_port(p));
    fflush(stdout);
    for (;;)
        pause();
}
