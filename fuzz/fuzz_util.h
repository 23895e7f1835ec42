/*
 * Helpers shared by the fuzz targets: a cursor that takes typed values off
 * the front of the fuzz input (zero once it runs dry, so every input is
 * usable), and FUZZ_CHECK, which turns a broken invariant into a crash that
 * libFuzzer records with its reproducer. Invariant failures abort rather
 * than return: a target that only "does not crash" finds memory errors but
 * not wrong answers.
 */
#ifndef PGETL_FUZZ_UTIL_H
#define PGETL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where invariant failures are written (a target whose code prints may point it elsewhere). */
#ifndef FUZZ_OUT
#define FUZZ_OUT stderr
#endif

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(FUZZ_OUT, "fuzz invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(FUZZ_OUT, __VA_ARGS__);                                                        \
            fputc('\n', FUZZ_OUT);                                                                 \
            fflush(FUZZ_OUT);                                                                      \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in) {
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint16_t fuzz_u16(fuzz_in *in) {
    return (uint16_t)(fuzz_u8(in) | (fuzz_u8(in) << 8));
}

static inline uint32_t fuzz_u32(fuzz_in *in) {
    return (uint32_t)fuzz_u16(in) | ((uint32_t)fuzz_u16(in) << 16);
}

static inline uint64_t fuzz_u64(fuzz_in *in) {
    return (uint64_t)fuzz_u32(in) | ((uint64_t)fuzz_u32(in) << 32);
}

/* Up to `max` bytes (fewer when the input runs out); returns how many. */
static inline size_t fuzz_bytes(fuzz_in *in, void *dst, size_t max) {
    size_t n = max < in->n ? max : in->n;
    memcpy(dst, in->p, n);
    in->p += n;
    in->n -= n;
    return n;
}

/* A small deterministic generator for chunk sizes, seeded from the input. */
static inline uint32_t fuzz_rand(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#endif /* PGETL_FUZZ_UTIL_H */
