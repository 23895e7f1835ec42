/*
 * Whole-file loads (CSV/TSV/text files into a table). Filled in by the
 * loader; see docs and `pgetl load --help`.
 */
#ifndef PGETL_LOAD_H
#define PGETL_LOAD_H

#include "pgetl/export.h"
#include "pgetl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* PGETL_LOAD_H */
