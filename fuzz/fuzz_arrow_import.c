/*
 * Fuzz target: Arrow ingest's format parsing, structural validation and
 * encoders (src/copy/arrow_schema.c, arrow_validate.c, arrow_enc*.c).
 *
 * The input describes a record batch of 1-3 columns: each field's format
 * (from the list of formats pgetl ingests, parameterised ones with fuzz
 * numbers, or raw fuzz text), optionally a list or dictionary around it, a
 * target PostgreSQL column (type, typmod), and arrays whose length, offset,
 * null_count, n_buffers, child/dictionary lengths, offsets, views, variadic
 * sizes and indices all come from fuzz bytes, hostile values included.
 *
 * Every buffer is a heap block of exactly the size the C Data Interface
 * implies for what the array declares (offset + length elements of the
 * parsed type; string data up to the largest offset; view data buffers of
 * their declared variadic sizes). That is the producer's whole contract, so
 * the invariant is: whatever validation accepts, the encoders read only
 * inside those blocks (ASan reports any byte outside), write no more than
 * the row size they announced, and refuse values only with a message.
 * Arrays whose implied buffers would exceed MAX_ALLOC get NULL buffers and
 * are validated but never encoded.
 */
#include "copy/arrow_int.h"
#include "fuzz_util.h"

#define MAX_ALLOC (1 << 16)
#define MAX_PTRS 256

typedef struct arena {
    void *p[MAX_PTRS];
    int n;
    bool oversize; /* some implied buffer was too big to allocate */
} arena;

static void *arena_take(arena *a, void *p) {
    if (a->n < MAX_PTRS)
        a->p[a->n++] = p;
    else
        abort(); /* the builder bounds its allocations; more means a fuzzer bug */
    return p;
}

/* An exact-size block of `size` bytes filled from the input, or NULL when too big. */
static void *alloc_fill(arena *a, fuzz_in *in, int64_t size) {
    if (size < 0 || size > MAX_ALLOC) {
        a->oversize = true;
        return NULL;
    }
    uint8_t *p = arena_take(a, malloc(size ? (size_t)size : 1));
    size_t got = fuzz_bytes(in, p, (size_t)size);
    memset(p + got, 0, (size_t)size - got);
    return p;
}

static const char *const formats[] = {
    "n",   "b",   "c",   "s",   "i",   "l",   "C",       "S",        "I",     "L",   "e",
    "f",   "g",   "u",   "U",   "vu",  "z",   "Z",       "vz",       "tdD",   "tdm", "tts",
    "ttm", "ttu", "ttn", "tDs", "tDm", "tDu", "tDn",     "tss:",     "tsm:",  "tsu:",
    "tsn:", "tsu:UTC", "tsn:Europe/Paris", "w:16", "w:1", "w:3", "d:10,2", "d:38,0", "d:5,5",
};
#define NFORMATS (sizeof formats / sizeof formats[0])

/* A format string from the input: a known one, a parameterised one, or raw text. */
static void pick_format(fuzz_in *in, char *buf, size_t size) {
    uint8_t k = fuzz_u8(in);
    if (k < 200) {
        snprintf(buf, size, "%s", formats[k % NFORMATS]);
    } else if (k < 220) {
        snprintf(buf, size, "d:%d,%d", (int)(int8_t)fuzz_u8(in), (int)(int16_t)fuzz_u16(in));
    } else if (k < 230) {
        snprintf(buf, size, "w:%d", (int)(int16_t)fuzz_u16(in));
    } else {
        size_t n = fuzz_u8(in) % (size - 1);
        n = fuzz_bytes(in, buf, n);
        buf[n] = '\0';
    }
}

typedef struct column_pick {
    uint32_t oid, elem;
} column_pick;

static const column_pick columns[] = {
    {PGETL_OID_BOOL, 0},        {PGETL_OID_INT2, 0},        {PGETL_OID_INT4, 0},
    {PGETL_OID_INT8, 0},        {PGETL_OID_FLOAT4, 0},      {PGETL_OID_FLOAT8, 0},
    {PGETL_OID_NUMERIC, 0},     {PGETL_OID_TEXT, 0},        {PGETL_OID_VARCHAR, 0},
    {PGETL_OID_JSONB, 0},       {PGETL_OID_JSON, 0},        {PGETL_OID_BYTEA, 0},
    {PGETL_OID_UUID, 0},        {PGETL_OID_DATE, 0},        {PGETL_OID_TIME, 0},
    {PGETL_OID_TIMESTAMP, 0},   {PGETL_OID_TIMESTAMPTZ, 0}, {PGETL_OID_INTERVAL, 0},
    {1007, PGETL_OID_INT4},     {1016, PGETL_OID_INT8},     {1009, PGETL_OID_TEXT},
    {1231, PGETL_OID_NUMERIC},  {1001, PGETL_OID_BYTEA},    {1115, PGETL_OID_TIMESTAMP},
    {1000, PGETL_OID_BOOL},     {1022, PGETL_OID_FLOAT8},   {3807, PGETL_OID_JSONB},
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* Bytes per value of a fixed-width kind (0: not fixed-width). */
static int64_t value_width(const pgetl_arrow_type *t) {
    switch (t->kind) {
    case PGETL_AK_INT8:
    case PGETL_AK_UINT8:
        return 1;
    case PGETL_AK_INT16:
    case PGETL_AK_UINT16:
    case PGETL_AK_FLOAT16:
        return 2;
    case PGETL_AK_INT32:
    case PGETL_AK_UINT32:
    case PGETL_AK_FLOAT32:
    case PGETL_AK_DATE32:
    case PGETL_AK_TIME32:
        return 4;
    case PGETL_AK_INT64:
    case PGETL_AK_UINT64:
    case PGETL_AK_FLOAT64:
    case PGETL_AK_DATE64:
    case PGETL_AK_TIME64:
    case PGETL_AK_TIMESTAMP:
    case PGETL_AK_DURATION:
        return 8;
    case PGETL_AK_DECIMAL128:
        return 16;
    case PGETL_AK_FIXED_BINARY:
        return t->width;
    default:
        return 0;
    }
}

static int64_t small_or_hostile(fuzz_in *in, int64_t small_max) {
    uint8_t m = fuzz_u8(in);
    if (m < 240)
        return m % (small_max + 1);
    switch (m % 4) {
    case 0:
        return (int64_t)fuzz_u64(in);
    case 1:
        return -(int64_t)(fuzz_u8(in) + 1);
    case 2:
        return INT64_MAX - fuzz_u8(in);
    default:
        return (int64_t)fuzz_u32(in);
    }
}

/* Offsets for n+1 slots: mostly small increasing steps, sometimes raw fuzz values. */
static void *offsets_fill(arena *a, fuzz_in *in, int64_t slots, bool large, int64_t *max_out) {
    int64_t w = large ? 8 : 4;
    if (slots < 0 || slots > MAX_ALLOC / w) {
        a->oversize = true;
        *max_out = 0;
        return NULL;
    }
    void *p = arena_take(a, malloc((size_t)(slots * w) + !slots));
    bool raw = fuzz_u8(in) >= 224;
    int64_t cur = fuzz_u8(in) < 240 ? 0 : (int64_t)(int8_t)fuzz_u8(in), max = 0;
    for (int64_t i = 0; i < slots; i++) {
        int64_t v;
        if (raw)
            v = large ? (int64_t)fuzz_u64(in) : (int64_t)(int32_t)fuzz_u32(in);
        else
            v = cur += fuzz_u8(in) % 8;
        if (large)
            ((int64_t *)p)[i] = v;
        else
            ((int32_t *)p)[i] = (int32_t)v;
        int64_t stored = large ? v : (int32_t)v;
        if (stored > max)
            max = stored;
    }
    *max_out = max;
    return p;
}

/* Fills one array of parsed type t (a leaf; lists and dictionaries call this for their parts). */
static void build_leaf(arena *a, fuzz_in *in, const pgetl_arrow_type *t, struct ArrowArray *arr,
                       int64_t len_max) {
    memset(arr, 0, sizeof *arr);
    arr->length = small_or_hostile(in, len_max);
    arr->offset = small_or_hostile(in, 4);
    uint8_t nc = fuzz_u8(in);
    arr->null_count = nc < 128 ? 0 : nc < 192 ? -1 : (int64_t)(nc % 16);
    int64_t n = arr->length >= 0 && arr->offset >= 0 && arr->offset <= INT64_MAX - arr->length
                    ? arr->offset + arr->length
                    : -1;
    int64_t nbuf = 2;
    int64_t nvar = 0;
    if (t->kind == PGETL_AK_NULL)
        nbuf = 0;
    else if (t->kind == PGETL_AK_UTF8 || t->kind == PGETL_AK_LARGE_UTF8 ||
             t->kind == PGETL_AK_BINARY || t->kind == PGETL_AK_LARGE_BINARY)
        nbuf = 3;
    else if (t->kind == PGETL_AK_UTF8_VIEW || t->kind == PGETL_AK_BINARY_VIEW) {
        nvar = fuzz_u8(in) % 3;
        nbuf = 3 + nvar;
    }
    uint8_t shape = fuzz_u8(in);
    if (shape >= 248)
        nbuf = shape % 6; /* a hostile buffer count */
    arr->n_buffers = nbuf;
    if (!nbuf)
        return;
    const void **bufs = arena_take(a, calloc((size_t)nbuf, sizeof *bufs));
    arr->buffers = bufs;
    uint8_t nulls = fuzz_u8(in); /* bit k: buffer k is NULL */
    int64_t nbits = n < 0 || n > 8 * (int64_t)MAX_ALLOC ? -1 : (n + 7) / 8;
    /* buffer 0: validity */
    bufs[0] = (nulls & 1) ? NULL : alloc_fill(a, in, nbits);
    if (nbuf < 2)
        return;
    int64_t wv = value_width(t);
    bool large = t->kind == PGETL_AK_LARGE_UTF8 || t->kind == PGETL_AK_LARGE_BINARY;
    if (t->kind == PGETL_AK_BOOL) {
        bufs[1] = (nulls & 2) ? NULL : alloc_fill(a, in, nbits);
    } else if (wv > 0) {
        bufs[1] = (nulls & 2) ? NULL
                              : alloc_fill(a, in, n < 0 || n > MAX_ALLOC / wv ? -1 : n * wv);
    } else if (t->kind == PGETL_AK_UTF8 || t->kind == PGETL_AK_LARGE_UTF8 ||
               t->kind == PGETL_AK_BINARY || t->kind == PGETL_AK_LARGE_BINARY) {
        int64_t max = 0;
        bufs[1] = (nulls & 2) ? NULL : offsets_fill(a, in, n < 0 || n >= MAX_ALLOC ? -1 : n + 1, large, &max);
        if (nbuf > 2)
            bufs[2] = (nulls & 4) ? NULL : alloc_fill(a, in, max);
    } else if (t->kind == PGETL_AK_UTF8_VIEW || t->kind == PGETL_AK_BINARY_VIEW) {
        int64_t *sizes = NULL;
        if (nbuf >= 3 && !(nulls & 8)) {
            sizes = arena_take(a, malloc(8 * (size_t)(nbuf - 3) + 1));
            for (int64_t k = 0; k < nbuf - 3; k++)
                sizes[k] = fuzz_u8(in) < 250 ? fuzz_u8(in) % 64 : (int64_t)fuzz_u64(in);
            bufs[nbuf - 1] = sizes;
        }
        for (int64_t k = 0; k + 3 < nbuf; k++)
            bufs[2 + k] = (nulls & 16) || !sizes ? NULL : alloc_fill(a, in, sizes[k]);
        if (n < 0 || n > MAX_ALLOC / 16) {
            a->oversize = true;
        } else if (!(nulls & 2)) {
            uint8_t *views = arena_take(a, malloc(16 * (size_t)n + 1));
            bool raw = fuzz_u8(in) >= 224;
            for (int64_t i = 0; i < n; i++) {
                uint8_t *v = views + 16 * i;
                if (raw) {
                    fuzz_bytes(in, v, 16);
                    continue;
                }
                memset(v, 0, 16);
                int32_t l = fuzz_u8(in) % 40, idx = fuzz_u8(in) % (int32_t)(nvar + 1),
                        off = fuzz_u8(in) % 48;
                memcpy(v, &l, 4);
                fuzz_bytes(in, v + 4, 4);
                memcpy(v + 8, &idx, 4);
                memcpy(v + 12, &off, 4);
            }
            bufs[1] = views;
        }
    }
    /*
     * Buffers beyond those the format defines (a hostile count): small junk
     * blocks. A buffer the format does define keeps its implied size or is
     * NULL, never junk of another size: that would break the producer's
     * contract, not pgetl's. A view array defines all of its buffers (data
     * buffers sized by the variadic sizes, which come last).
     */
    bool view = t->kind == PGETL_AK_UTF8_VIEW || t->kind == PGETL_AK_BINARY_VIEW;
    int64_t defined = view ? nbuf : (t->kind == PGETL_AK_UTF8 || t->kind == PGETL_AK_LARGE_UTF8 ||
                                     t->kind == PGETL_AK_BINARY || t->kind == PGETL_AK_LARGE_BINARY)
                                        ? 3
                                        : 2;
    for (int64_t k = defined; k < nbuf; k++)
        if (!bufs[k] && !(nulls & 32))
            bufs[k] = alloc_fill(a, in, 8);
}

static void build_field(arena *a, fuzz_in *in, const pgetl_arrow_field *f, struct ArrowArray *arr,
                        struct ArrowArray *child) {
    switch (f->type.kind) {
    case PGETL_AK_LIST:
    case PGETL_AK_LARGE_LIST: {
        pgetl_arrow_type offs = {.kind = f->type.kind == PGETL_AK_LIST ? PGETL_AK_UTF8
                                                                       : PGETL_AK_LARGE_UTF8};
        /* A list's validity + offsets are laid out like a string's; drop the data buffer. */
        build_leaf(a, in, &offs, arr, 16);
        if (arr->n_buffers == 3)
            arr->n_buffers = 2;
        build_leaf(a, in, &f->child, child, 64);
        arr->n_children = fuzz_u8(in) < 250 ? 1 : fuzz_u8(in) % 3;
        arr->children = arena_take(a, calloc(2, sizeof *arr->children));
        arr->children[0] = child;
        arr->children[1] = child;
        return;
    }
    case PGETL_AK_DICTIONARY:
        build_leaf(a, in, &f->index, arr, 16);
        build_leaf(a, in, &f->child, child, 16);
        if (fuzz_u8(in) < 250)
            arr->dictionary = child;
        return;
    default:
        build_leaf(a, in, &f->type, arr, 16);
        if (fuzz_u8(in) >= 252)
            arr->dictionary = child; /* a dictionary the schema does not have */
        if (arr->dictionary)
            build_leaf(a, in, &f->type, child, 4);
        return;
    }
}

#define MAXF 3

static void describe_array(const char *what, const struct ArrowArray *a) {
    fprintf(stderr, "  %s: length %lld offset %lld null_count %lld n_buffers %lld n_children %lld%s\n",
            what, (long long)a->length, (long long)a->offset, (long long)a->null_count,
            (long long)a->n_buffers, (long long)a->n_children, a->dictionary ? " +dictionary" : "");
}

/* FUZZ_VERBOSE=1: what an input built, for reading a reproducer. */
static void describe(const pgetl_arrow_field *fields, int nf, const int *use, int nuse,
                     const struct ArrowArray *batch, pgetl_code rc, const pgetl_error *err) {
    describe_array("batch", batch);
    for (int i = 0; i < nf; i++) {
        char buf[128];
        bool used = false;
        for (int k = 0; k < nuse; k++)
            used |= use[k] == i;
        fprintf(stderr, " field %d %s (kind %d)%s\n", i, pgetl__arrow_field_describe(&fields[i], buf, sizeof buf),
                (int)fields[i].type.kind, used ? " loaded" : "");
        describe_array("array", batch->children[i]);
        const struct ArrowArray *a = batch->children[i];
        bool large = fields[i].type.kind == PGETL_AK_LARGE_UTF8 ||
                     fields[i].type.kind == PGETL_AK_LARGE_BINARY;
        if ((large || fields[i].type.kind == PGETL_AK_UTF8 ||
             fields[i].type.kind == PGETL_AK_BINARY) &&
            a->n_buffers > 1 && a->buffers[1] && a->length >= 0 && a->length < 64 &&
            a->offset >= 0 && a->offset < 64) {
            fprintf(stderr, "  offsets:");
            for (int64_t k = 0; k <= a->offset + a->length; k++)
                fprintf(stderr, " %lld",
                        large ? (long long)((const int64_t *)a->buffers[1])[k]
                              : (long long)((const int32_t *)a->buffers[1])[k]);
            fputc('\n', stderr);
        }
        if (batch->children[i]->n_children > 0)
            describe_array("child", batch->children[i]->children[0]);
        if (batch->children[i]->dictionary)
            describe_array("dictionary", batch->children[i]->dictionary);
    }
    fprintf(stderr, " validation: %s %s\n", pgetl_code_name(rc), rc ? err->message : "");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    int nf = 1 + fuzz_u8(&in) % MAXF;
    char fmt[MAXF][24], childfmt[MAXF][24], name[MAXF][8];
    struct ArrowSchema top, fs[MAXF], cs[MAXF], *fsp[MAXF], *csp[MAXF];
    pgetl_column_info cols[MAXF];
    memset(&top, 0, sizeof top);
    memset(fs, 0, sizeof fs);
    memset(cs, 0, sizeof cs);
    memset(cols, 0, sizeof cols);
    for (int i = 0; i < nf; i++) {
        uint8_t shape = fuzz_u8(&in);
        pick_format(&in, fmt[i], sizeof fmt[i]);
        snprintf(name[i], sizeof name[i], "c%d", i);
        fs[i].format = fmt[i];
        fs[i].name = name[i];
        fs[i].flags = ARROW_FLAG_NULLABLE;
        if (shape % 4 == 1 || shape % 4 == 2) {
            pick_format(&in, childfmt[i], sizeof childfmt[i]);
            cs[i].format = childfmt[i];
            cs[i].name = "item";
            csp[i] = &cs[i];
            if (shape % 4 == 1) {
                snprintf(fmt[i], sizeof fmt[i], "%s", (shape & 4) ? "+L" : "+l");
                fs[i].n_children = 1;
                fs[i].children = &csp[i];
            } else {
                static const char *const ix[] = {"c", "s", "i", "l", "C", "S", "I", "L"};
                if (!(shape & 0x80))
                    snprintf(fmt[i], sizeof fmt[i], "%s", ix[(shape >> 3) % 8]);
                fs[i].dictionary = &cs[i];
            }
        }
        column_pick cp = columns[fuzz_u8(&in) % NCOLUMNS];
        snprintf(cols[i].name, sizeof cols[i].name, "c%d", i);
        snprintf(cols[i].type_name, sizeof cols[i].type_name, "type%u", (unsigned)cp.oid);
        cols[i].type_oid = cp.oid;
        cols[i].elem_oid = cp.elem;
        uint8_t tm = fuzz_u8(&in);
        cols[i].typmod = tm < 200 ? -1 : (int32_t)(fuzz_u32(&in) % 0x7fffff);
        fsp[i] = &fs[i];
    }
    top.format = "+s";
    top.name = "";
    top.n_children = nf;
    top.children = fsp;

    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_arrow_field *fields = NULL;
    int nfields = 0;
    if (pgetl__arrow_schema_parse(&top, &fields, &nfields, &err) != PGETL_OK) {
        FUZZ_CHECK(err.code != PGETL_OK && err.message[0], "schema refused without a message");
        return 0;
    }
    FUZZ_CHECK(nfields == nf, "schema parsed %d fields of %d", nfields, nf);

    /* Encoders for the columns whose pair converts; the others are not loaded. */
    pgetl_arrow_col enc[MAXF], encchild[MAXF];
    int use[MAXF], nuse = 0;
    for (int i = 0; i < nf; i++) {
        if (fields[i].type.kind == PGETL_AK_INVALID)
            continue;
        pgetl_error e2;
        pgetl_error_init(&e2);
        if (pgetl__arrow_col_choose(&enc[nuse], &encchild[nuse], &fields[i], &cols[i], &e2) ==
            PGETL_OK)
            use[nuse++] = i;
        else
            FUZZ_CHECK(e2.message[0], "encoder refused without a message");
    }

    arena a = {0};
    struct ArrowArray batch, arrs[MAXF], childs[MAXF], *kids[MAXF];
    memset(&batch, 0, sizeof batch);
    for (int i = 0; i < nf; i++) {
        build_field(&a, &in, &fields[i], &arrs[i], &childs[i]);
        kids[i] = &arrs[i];
    }
    batch.length = small_or_hostile(&in, 16);
    batch.offset = small_or_hostile(&in, 4);
    batch.null_count = fuzz_u8(&in) < 250 ? 0 : -1;
    const void *batch_bufs[1] = {NULL};
    batch.n_buffers = 1;
    batch.buffers = batch_bufs;
    batch.n_children = nf;
    batch.children = kids;

    pgetl_code rc = pgetl__arrow_validate_batch(fields, nf, use, nuse, &batch, &err);
    if (getenv("FUZZ_VERBOSE"))
        describe(fields, nf, use, nuse, &batch, rc, &err);
    if (rc != PGETL_OK) {
        FUZZ_CHECK(rc == PGETL_EDATA && err.message[0], "validation failed with code %d", (int)rc);
    } else if (!a.oversize && nuse > 0) {
        /* The driver's loop (src_arrow.c encode_batch), writing into a plain buffer. */
        pgetl_buf out;
        pgetl__buf_init(&out);
        size_t fixed_row = 2;
        for (int k = 0; k < nuse; k++) {
            pgetl__arrow_col_bind(&enc[k], batch.children[use[k]], batch.offset);
            fixed_row += enc[k].fixed;
        }
        bool stop = false;
        for (int64_t r0 = 0; r0 < batch.length && !stop; r0 += 64) {
            int m = batch.length - r0 < 64 ? (int)(batch.length - r0) : 64;
            for (int k = 0; k < nuse; k++)
                enc[k].vword = pgetl__arrow_validity_word(&enc[k].v, r0, m);
            for (int j = 0; j < m && !stop; j++) {
                int64_t row = r0 + j;
                size_t need = fixed_row;
                for (int k = 0; k < nuse; k++)
                    if (enc[k].size && ((enc[k].vword >> j) & 1))
                        need += enc[k].size(&enc[k], row);
                FUZZ_CHECK(need < ((size_t)1 << 31), "row %lld needs %zu bytes", (long long)row,
                           need);
                pgetl__buf_clear(&out);
                if (pgetl__buf_reserve(&out, need) != PGETL_OK)
                    abort();
                pgetl__buf_be16_unchecked(&out, (uint16_t)nuse);
                for (int k = 0; k < nuse; k++) {
                    if (!((enc[k].vword >> j) & 1)) {
                        pgetl__buf_be32_unchecked(&out, (uint32_t)-1);
                        continue;
                    }
                    const char *why = enc[k].enc(&enc[k], row, &out);
                    if (why) {
                        FUZZ_CHECK(why[0], "empty refusal");
                        stop = true;
                        break;
                    }
                    FUZZ_CHECK(out.len <= need, "row %lld column %d wrote %zu of %zu reserved",
                               (long long)row, k, out.len, need);
                }
            }
        }
        pgetl__buf_reset(&out);
    }
    for (int i = 0; i < a.n; i++)
        free(a.p[i]);
    pgetl__free(fields);
    return 0;
}
