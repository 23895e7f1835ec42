/*
 * Fuzz target: the binary COPY-out parser and the Arrow builders behind
 * pgetl_query_arrow (src/copy/copy_out_parse.c, arrow_build*.c): what a
 * hostile or broken server could send.
 *
 * Input: a header byte chooses 0-4 columns, each a type OID from the list
 * query_arrow decodes (scalars, numeric with and without typmod, arrays),
 * then a batch size, a var-size limit (small values force the FULL path),
 * a seed for chunk sizes and whether to prepend a valid COPY header; the
 * rest is the stream. Invariants checked:
 *   - the parser gives the same rows (same field bytes, same NULLs) and the
 *     same outcome whether the stream comes in one chunk or in arbitrary
 *     pieces, each piece an exact-size heap block freed as soon as the
 *     parser asks for more (so anything it keeps without copying is a
 *     use-after-free);
 *   - every error is clean: an error code and a message;
 *   - every row the builders accept is exported exactly once: the exported
 *     batches' lengths add up to the accepted rows, every child has the
 *     batch's length, and a child's NULLs are exactly the fields that were
 *     NULL; var-size offsets start at 0 and never decrease.
 */
#include "copy/copy_out.h"
#include "fuzz_util.h"

#define MAX_ROWS 2048
#define MAXC 4

typedef struct type_pick {
    uint32_t oid;
    int32_t typmod;
} type_pick;

static const type_pick types[] = {
    {PGETL_OID_BOOL, -1},      {PGETL_OID_INT2, -1},        {PGETL_OID_INT4, -1},
    {PGETL_OID_INT8, -1},      {PGETL_OID_FLOAT4, -1},      {PGETL_OID_FLOAT8, -1},
    {PGETL_OID_TEXT, -1},      {PGETL_OID_VARCHAR, 14},     {PGETL_OID_BPCHAR, 9},
    {PGETL_OID_NAME, -1},      {PGETL_OID_JSON, -1},        {PGETL_OID_JSONB, -1},
    {PGETL_OID_BYTEA, -1},     {PGETL_OID_DATE, -1},        {PGETL_OID_TIME, -1},
    {PGETL_OID_TIMESTAMP, -1}, {PGETL_OID_TIMESTAMPTZ, -1}, {PGETL_OID_INTERVAL, -1},
    {PGETL_OID_UUID, -1},      {PGETL_OID_NUMERIC, -1},     {PGETL_OID_NUMERIC, (10 << 16 | 2) + 4},
    {PGETL_OID_NUMERIC, (38 << 16 | 0) + 4},                {PGETL_OID_NUMERIC, (5 << 16 | 5) + 4},
    {1007, -1},                {1016, -1},                  {1009, -1},
    {1231, -1},                {1000, -1},                  {1001, -1},
    {1115, -1},                {2951, -1},                  {3807, -1},
};
#define NTYPES (sizeof types / sizeof types[0])

static const uint8_t HEADER[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xFF, '\r', '\n',
                                   0,   0,   0,   0,   0,   0,   0,    0,    0};

typedef struct row_sum {
    uint64_t hash;
    uint32_t nulls; /* bit i: field i NULL */
} row_sum;

typedef struct outcome {
    int nrows;
    pgetl_code rc; /* OK: end marker read and finish() accepted the stream */
} outcome;

static uint64_t hash_row(const pgetl_field *f, int n) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uint32_t)f[i].len) * 1099511628211ull;
        for (int32_t k = 0; k < f[i].len; k++)
            h = (h ^ f[i].data[k]) * 1099511628211ull;
    }
    return h;
}

static uint32_t null_mask(const pgetl_field *f, int n) {
    uint32_t m = 0;
    for (int i = 0; i < n; i++)
        if (f[i].len < 0)
            m |= 1u << i;
    return m;
}

/* Exported batch checks; returns its length. */
static int64_t check_batch(struct ArrowArray *a, int ncols, const pgetl_arrow_batch *b,
                           const row_sum *rows, int64_t first) {
    FUZZ_CHECK(a->release != NULL, "exported batch has no release");
    FUZZ_CHECK(a->n_children == ncols, "batch has %lld children, %d columns",
               (long long)a->n_children, ncols);
    FUZZ_CHECK(a->length >= 0 && a->offset == 0, "batch length %lld offset %lld",
               (long long)a->length, (long long)a->offset);
    for (int i = 0; i < ncols; i++) {
        const struct ArrowArray *c = a->children[i];
        FUZZ_CHECK(c->length == a->length, "child %d length %lld, batch %lld", i,
                   (long long)c->length, (long long)a->length);
        const uint8_t *validity = c->n_buffers > 0 ? c->buffers[0] : NULL;
        int64_t nulls = 0;
        for (int64_t r = 0; r < c->length; r++) {
            bool is_null = validity && !((validity[r >> 3] >> (r & 7)) & 1);
            bool want_null = (rows[first + r].nulls >> i) & 1;
            FUZZ_CHECK(is_null == want_null, "column %d row %lld: null %d, field null %d", i,
                       (long long)(first + r), is_null, want_null);
            nulls += is_null;
        }
        FUZZ_CHECK(c->null_count == nulls, "column %d null_count %lld, %lld nulls", i,
                   (long long)c->null_count, (long long)nulls);
        pgetl_layout layout = b->cols[i].layout;
        if ((layout == PGETL_LAYOUT_VAR || layout == PGETL_LAYOUT_LIST) && c->length > 0) {
            const int32_t *o = c->buffers[1];
            FUZZ_CHECK(o[0] == 0, "column %d first offset %d", i, o[0]);
            for (int64_t r = 0; r < c->length; r++)
                FUZZ_CHECK(o[r + 1] >= o[r], "column %d offsets decrease at %lld", i,
                           (long long)r);
            if (layout == PGETL_LAYOUT_LIST)
                FUZZ_CHECK(c->n_children == 1 && c->children[0]->length == o[c->length],
                           "column %d list child length %lld, last offset %d", i,
                           (long long)c->children[0]->length, o[c->length]);
        }
    }
    int64_t n = a->length;
    a->release(a);
    FUZZ_CHECK(a->release == NULL, "release left the batch marked live");
    return n;
}

/* Parses the stream; pieces > 0 splits it into chunks from `seed`. */
static outcome parse(const uint8_t *s, size_t n, int ncols, uint32_t seed, bool chunked,
                     row_sum *rows) {
    outcome out = {0, PGETL_OK};
    pgetl_copyout_parser p;
    pgetl_error err;
    pgetl_error_init(&err);
    FUZZ_CHECK(pgetl__copyout_init(&p, ncols, &err) == PGETL_OK, "init: %s", err.message);
    size_t at = 0;
    uint8_t *chunk = NULL;
    bool ended = false;
    pgetl_code rc = PGETL_OK;
    for (;;) {
        if (at < n || !chunk) {
            size_t len = n - at;
            if (chunked && len) {
                size_t step = 1 + fuzz_rand(&seed) % 23;
                len = step < len ? step : len;
            }
            free(chunk);
            chunk = malloc(len ? len : 1);
            memcpy(chunk, s + at, len);
            at += len;
            rc = pgetl__copyout_push(&p, chunk, len, &err);
            if (rc != PGETL_OK)
                break;
        } else {
            break;
        }
        pgetl_copyout_event ev;
        for (;;) {
            rc = pgetl__copyout_next(&p, &ev, &err);
            if (rc != PGETL_OK || ev != PGETL_COPYOUT_ROW)
                break;
            FUZZ_CHECK(out.nrows < MAX_ROWS, "too many rows");
            rows[out.nrows].hash = hash_row(p.fields, ncols);
            rows[out.nrows].nulls = null_mask(p.fields, ncols);
            out.nrows++;
        }
        if (rc != PGETL_OK)
            break;
        if (ev == PGETL_COPYOUT_END)
            ended = true;
        if (at >= n)
            break;
    }
    if (rc == PGETL_OK) {
        rc = pgetl__copyout_finish(&p, &err);
        if (rc == PGETL_OK)
            FUZZ_CHECK(ended, "finish accepted a stream without its end marker");
    }
    if (rc != PGETL_OK)
        FUZZ_CHECK(err.code == rc && err.message[0], "error %d without a message", (int)rc);
    FUZZ_CHECK(p.rows == out.nrows, "parser counts %lld rows, returned %d", (long long)p.rows,
               out.nrows);
    free(chunk);
    pgetl__copyout_reset(&p);
    out.rc = rc;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    uint8_t h = fuzz_u8(&in);
    int ncols = h % (MAXC + 1);
    bool header = !(h & 0x80);
    uint32_t oids[MAXC];
    int32_t mods[MAXC];
    const char *names[MAXC] = {"a", "b", "c", "d"};
    for (int i = 0; i < ncols; i++) {
        type_pick t = types[fuzz_u8(&in) % NTYPES];
        oids[i] = t.oid;
        mods[i] = t.typmod;
    }
    int64_t batch_rows = 1 + fuzz_u8(&in) % 16;
    uint8_t vl = fuzz_u8(&in);
    int64_t var_limit = vl < 128 ? 0 : vl % 64;
    uint32_t seed = fuzz_u8(&in) * 2654435761u + 7;

    size_t n = in.n + (header ? sizeof HEADER : 0);
    uint8_t *stream = malloc(n ? n : 1);
    if (header)
        memcpy(stream, HEADER, sizeof HEADER);
    memcpy(stream + (header ? sizeof HEADER : 0), in.p, in.n);

    static row_sum one[MAX_ROWS], many[MAX_ROWS];
    outcome a = parse(stream, n, ncols, seed, false, one);
    outcome b = parse(stream, n, ncols, seed, true, many);
    FUZZ_CHECK(a.nrows == b.nrows && a.rc == b.rc,
               "one chunk: %d rows, code %d; in pieces: %d rows, code %d", a.nrows, (int)a.rc,
               b.nrows, (int)b.rc);
    for (int r = 0; r < a.nrows; r++)
        FUZZ_CHECK(one[r].hash == many[r].hash && one[r].nulls == many[r].nulls,
                   "row %d differs between one chunk and pieces", r);

    /* The accepted rows into Arrow batches, as query_arrow's get_next does. */
    pgetl_arrow_batch batch;
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl__arrow_batch_init(&batch, ncols, names, oids, mods, var_limit, &err);
    if (rc != PGETL_OK) {
        FUZZ_CHECK(err.message[0], "batch init failed without a message");
        pgetl__arrow_batch_reset(&batch);
        free(stream);
        return 0;
    }
    struct ArrowSchema schema;
    FUZZ_CHECK(pgetl__arrow_batch_schema(&batch, &schema, &err) == PGETL_OK, "schema: %s",
               err.message);
    FUZZ_CHECK(schema.n_children == ncols && schema.release, "schema shape");
    schema.release(&schema);

    /* Re-parse to get field views again (rows were only summarised). */
    pgetl_copyout_parser p;
    FUZZ_CHECK(pgetl__copyout_init(&p, ncols, &err) == PGETL_OK, "init");
    FUZZ_CHECK(pgetl__copyout_push(&p, stream, n, &err) == PGETL_OK, "push");
    int64_t accepted = 0, exported = 0;
    bool pending = false;
    pgetl_copyout_event ev = PGETL_COPYOUT_NEED_MORE;
    for (int r = 0; r < a.nrows;) {
        if (!pending) {
            FUZZ_CHECK(pgetl__copyout_next(&p, &ev, &err) == PGETL_OK && ev == PGETL_COPYOUT_ROW,
                       "re-parse row %d", r);
        }
        pending = false;
        pgetl_dec d = pgetl__arrow_batch_append_row(&batch, p.fields, &err);
        if (d == PGETL_DEC_ERROR) {
            FUZZ_CHECK(err.code != PGETL_OK && err.message[0], "decode error without a message");
            break;
        }
        if (d == PGETL_DEC_FULL)
            pending = true;
        else {
            accepted++;
            r++;
        }
        if (pending || batch.rows >= batch_rows) {
            FUZZ_CHECK(batch.rows > 0, "FULL on an empty batch must be an error");
            struct ArrowArray arr;
            FUZZ_CHECK(pgetl__arrow_batch_finish(&batch, &arr, &err) == PGETL_OK, "finish: %s",
                       err.message);
            exported += check_batch(&arr, ncols, &batch, one, exported);
        }
    }
    if (batch.rows > 0) {
        struct ArrowArray arr;
        FUZZ_CHECK(pgetl__arrow_batch_finish(&batch, &arr, &err) == PGETL_OK, "finish: %s",
                   err.message);
        exported += check_batch(&arr, ncols, &batch, one, exported);
    }
    FUZZ_CHECK(exported == accepted, "%lld rows accepted, %lld exported", (long long)accepted,
               (long long)exported);
    pgetl__copyout_reset(&p);
    pgetl__arrow_batch_reset(&batch);
    free(stream);
    return 0;
}
