#include "base/base.h"

#include <time.h>

int64_t pgetl__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double pgetl__now_s(void) {
    return (double)pgetl__now_ns() / 1e9;
}
