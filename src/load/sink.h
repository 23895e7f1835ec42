/*
 * Private: an output sink that writes bytes to a file descriptor, optionally
 * through a streaming gzip (zlib) or zstd compressor. Used by export.c; kept
 * apart so the COPY-out loop stays free of compression details.
 *
 * Memory: one compressed-output block (PGETL_SINK_BLOCK) plus the
 * compressor's own state (zlib ~256 KiB, zstd level 3 ~1-2 MiB), whatever
 * the amount written.
 */
#ifndef PGETL_SRC_LOAD_SINK_H
#define PGETL_SRC_LOAD_SINK_H

#include "base/base.h"

typedef struct pgetl_sink pgetl_sink;

/* Creates a sink on `fd` (borrowed, never closed). PGETL_ENOMEM, PGETL_EINVAL. */
pgetl_code pgetl__sink_create(int fd, pgetl_compression comp, pgetl_sink **sink_out,
                              pgetl_error *err);

/* Compresses (if asked) and writes n bytes. PGETL_EIO with errno's text on failure. */
pgetl_code pgetl__sink_write(pgetl_sink *sink, const void *data, size_t n, pgetl_error *err);

/* Ends the compressed stream (trailer) and writes what is left. */
pgetl_code pgetl__sink_finish(pgetl_sink *sink, pgetl_error *err);

/* Bytes written to the descriptor so far (compressed size when compressing). */
int64_t pgetl__sink_bytes_written(const pgetl_sink *sink);

/* Frees the sink. Accepts NULL. */
void pgetl__sink_destroy(pgetl_sink *sink);

#endif /* PGETL_SRC_LOAD_SINK_H */
