/*
 * Private to the converters (convert*.c): strict per-type parsers to binary
 * COPY values. Each takes one unquoted, non-NULL field and writes at most
 * PGETL_CONV_MAX bytes to dst; it returns the byte count, or -1 when the
 * text is outside the grammar it can prove PostgreSQL reads identically.
 */
#ifndef PGETL_SRC_LOAD_CONVERT_INT_H
#define PGETL_SRC_LOAD_CONVERT_INT_H

#include "load/load_int.h"

#include <math.h>

#define PGETL_CONV_MAX 8

int pgetl__conv_int2(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_int4(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_int8(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_float4(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_float8(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_bool(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_date(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_timestamp(const char *p, size_t n, unsigned char *dst);
int pgetl__conv_timestamptz(const char *p, size_t n, unsigned char *dst);

void pgetl__conv_be32(unsigned char *d, uint32_t v);
void pgetl__conv_be64(unsigned char *d, uint64_t v);

#endif /* PGETL_SRC_LOAD_CONVERT_INT_H */
