/*
 * The binary COPY parser, fed bytes directly: good streams in any chunking,
 * and hostile ones (truncated header, bad signature, flags, negative and huge
 * lengths, field count mismatch, truncated tuples, garbage after the trailer).
 */
#include "harness.h"

#include "copy/copy_out.h"

typedef struct bytes {
    uint8_t d[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void put16(bytes *b, int v) {
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 2);
}
static void put32(bytes *b, int64_t v) {
    uint32_t u = (uint32_t)v;
    uint8_t x[4] = {(uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u};
    put(b, x, 4);
}
static void header(bytes *b, uint32_t flags, int64_t ext) {
    put(b, "PGCOPY\n\377\r\n\0", 11);
    put32(b, flags);
    put32(b, ext);
}
static void field(bytes *b, const char *s) {
    if (!s) {
        put32(b, -1);
        return;
    }
    put32(b, (int64_t)strlen(s));
    put(b, s, strlen(s));
}

/* A good stream: two columns, three tuples (NULL, empty string), trailer. */
static bytes good_stream(void) {
    bytes b = {.n = 0};
    header(&b, 0, 0);
    put16(&b, 2);
    field(&b, "a");
    field(&b, "hello");
    put16(&b, 2);
    field(&b, NULL);
    field(&b, "");
    put16(&b, 2);
    field(&b, "xyz");
    field(&b, NULL);
    put16(&b, -1);
    return b;
}

/* Parses `b` in chunks of `step` bytes; records rows as "f1|f2;" text. */
static pgetl_code parse_all(const bytes *b, size_t step, char *out, size_t outsz,
                            pgetl_error *err) {
    pgetl_copyout_parser p;
    out[0] = '\0';
    pgetl_code rc = pgetl__copyout_init(&p, 2, err);
    if (rc != PGETL_OK)
        return rc;
    size_t at = 0;
    bool ended = false;
    /* Each chunk is a private heap copy, freed on NEED_MORE, so ASan sees misuse. */
    uint8_t *chunk = NULL;
    while (rc == PGETL_OK && !ended) {
        pgetl_copyout_event ev = PGETL_COPYOUT_NEED_MORE;
        if (chunk)
            rc = pgetl__copyout_next(&p, &ev, err);
        if (rc != PGETL_OK)
            break;
        if (ev == PGETL_COPYOUT_ROW) {
            for (int i = 0; i < 2; i++) {
                char f[64];
                if (p.fields[i].len < 0)
                    snprintf(f, sizeof f, "NULL");
                else
                    snprintf(f, sizeof f, "'%.*s'", (int)p.fields[i].len,
                             (const char *)p.fields[i].data);
                strncat(out, f, outsz - strlen(out) - 1);
                strncat(out, i ? ";" : "|", outsz - strlen(out) - 1);
            }
            continue;
        }
        if (ev == PGETL_COPYOUT_END) {
            ended = true;
            break;
        }
        free(chunk);
        chunk = NULL;
        if (at >= b->n)
            break;
        size_t n = b->n - at < step ? b->n - at : step;
        chunk = malloc(n);
        memcpy(chunk, b->d + at, n);
        at += n;
        rc = pgetl__copyout_push(&p, chunk, n, err);
    }
    /* Anything left after the marker is pushed too, as libpq would deliver it. */
    while (rc == PGETL_OK && at < b->n) {
        free(chunk);
        size_t n = b->n - at < step ? b->n - at : step;
        chunk = malloc(n);
        memcpy(chunk, b->d + at, n);
        at += n;
        rc = pgetl__copyout_push(&p, chunk, n, err);
        pgetl_copyout_event ev;
        if (rc == PGETL_OK)
            rc = pgetl__copyout_next(&p, &ev, err);
    }
    if (rc == PGETL_OK)
        rc = pgetl__copyout_finish(&p, err);
    free(chunk);
    pgetl__copyout_reset(&p);
    return rc;
}

static void good_whole(void **state) {
    (void)state;
    bytes b = good_stream();
    char out[512];
    pgetl_error err;
    assert_pgetl_ok(parse_all(&b, b.n, out, sizeof out, &err), &err);
    assert_string_equal(out, "'a'|'hello';NULL|'';'xyz'|NULL;");
}

static void good_every_split(void **state) {
    (void)state;
    bytes b = good_stream();
    for (size_t step = 1; step <= b.n; step++) {
        char out[512];
        pgetl_error err;
        assert_pgetl_ok(parse_all(&b, step, out, sizeof out, &err), &err);
        assert_string_equal(out, "'a'|'hello';NULL|'';'xyz'|NULL;");
    }
}

static void header_extension_skipped(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 0x0000FFFF /* non-critical flags are ignored */, 5);
    put(&b, "12345", 5);
    put16(&b, 2);
    field(&b, "x");
    field(&b, "y");
    put16(&b, -1);
    for (size_t step = 1; step <= b.n; step += 3) {
        char out[256];
        pgetl_error err;
        assert_pgetl_ok(parse_all(&b, step, out, sizeof out, &err), &err);
        assert_string_equal(out, "'x'|'y';");
    }
}

static void empty_result(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 0, 0);
    put16(&b, -1);
    char out[64];
    pgetl_error err;
    assert_pgetl_ok(parse_all(&b, 7, out, sizeof out, &err), &err);
    assert_string_equal(out, "");
}

/* Parses and expects PGETL_EDATA with `needle` in the message, for several chunkings. */
static void expect_bad(const bytes *b, const char *needle) {
    size_t steps[] = {1, 2, 5, 4096};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char out[512];
        pgetl_error err;
        pgetl_error_init(&err);
        pgetl_code rc = parse_all(b, steps[i], out, sizeof out, &err);
        if (rc != PGETL_EDATA || !strstr(err.message, needle))
            fail_msg("step %zu: want EDATA '%s', got %s '%s'", steps[i], needle,
                     pgetl_code_name(rc), err.message);
    }
}

static void truncated_header(void **state) {
    (void)state;
    bytes full = good_stream();
    for (size_t n = 0; n < 19; n++) {
        bytes b = {.n = 0};
        put(&b, full.d, n);
        expect_bad(&b, "ended inside the header");
    }
}

static void bad_signature(void **state) {
    (void)state;
    bytes b = good_stream();
    b.d[7] = 0xFE; /* "PGCOPY\n\376": fails as soon as the byte is seen */
    expect_bad(&b, "bad signature");
    bytes c = {.n = 0};
    put(&c, "COPY", 4);
    expect_bad(&c, "at byte 0: bad signature");
    bytes t = {.n = 0};
    put(&t, "PGCOPY\n\377\r\n\0", 11);
    t.d[10] = 'x';
    expect_bad(&t, "bad signature");
}

static void bad_flags(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 1u << 16, 0);
    put16(&b, -1);
    expect_bad(&b, "WITH OIDS");
    bytes c = {.n = 0};
    header(&c, 1u << 20, 0);
    put16(&c, -1);
    expect_bad(&c, "critical flags 0x00100000");
}

static void bad_extension_length(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 0, -1);
    put16(&b, -1);
    expect_bad(&b, "bad header extension length -1");
    bytes c = {.n = 0};
    header(&c, 0, 100); /* longer than the stream */
    put16(&c, -1);
    expect_bad(&c, "ended inside the header");
}

static void negative_field_length(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 0, 0);
    put16(&b, 2);
    field(&b, "ok");
    put32(&b, -2);
    put16(&b, -1);
    expect_bad(&b, "tuple 1 field 2 has invalid length -2");
    bytes c = {.n = 0};
    header(&c, 0, 0);
    put16(&c, 2);
    put32(&c, INT32_MIN);
    expect_bad(&c, "at byte 21: tuple 1 field 1 has invalid length -2147483648");
}

static void huge_field_length(void **state) {
    (void)state;
    /* Refused from the length alone: nothing is buffered waiting for 1 GiB. */
    bytes b = {.n = 0};
    header(&b, 0, 0);
    put16(&b, 2);
    put32(&b, 0x40000000);
    put(&b, "abc", 3);
    expect_bad(&b, "invalid length 1073741824");
    bytes c = {.n = 0};
    header(&c, 0, 0);
    put16(&c, 2);
    put32(&c, INT32_MAX);
    expect_bad(&c, "invalid length 2147483647");
    /* Just under the limit but longer than the data: a truncated tuple. */
    bytes d = {.n = 0};
    header(&d, 0, 0);
    put16(&d, 2);
    put32(&d, 0x3FFFFFFF);
    put(&d, "abc", 3);
    expect_bad(&d, "ended inside tuple 1 (9 bytes of it)");
}

static void field_count_mismatch(void **state) {
    (void)state;
    bytes b = {.n = 0};
    header(&b, 0, 0);
    put16(&b, 2);
    field(&b, "a");
    field(&b, "b");
    put16(&b, 3);
    field(&b, "a");
    field(&b, "b");
    field(&b, "c");
    put16(&b, -1);
    expect_bad(&b, "tuple 2 has 3 fields, expected 2");
    bytes c = {.n = 0};
    header(&c, 0, 0);
    put16(&c, -2);
    expect_bad(&c, "tuple 1 has -2 fields, expected 2");
    bytes d = {.n = 0};
    header(&d, 0, 0);
    put16(&d, 0);
    expect_bad(&d, "tuple 1 has 0 fields, expected 2");
}

static void truncated_tuples(void **state) {
    (void)state;
    bytes full = good_stream();
    /* Cut anywhere between the header and the trailer: never a crash, always EDATA. */
    for (size_t n = 19; n < full.n; n++) {
        bytes b = {.n = 0};
        put(&b, full.d, n);
        char out[512];
        pgetl_error err;
        pgetl_code rc = parse_all(&b, 3, out, sizeof out, &err);
        assert_int_equal(rc, PGETL_EDATA);
        if (!strstr(err.message, "ended inside tuple") &&
            !strstr(err.message, "without the end-of-data marker"))
            fail_msg("cut at %zu: %s", n, err.message);
    }
    bytes b = {.n = 0};
    put(&b, full.d, full.n - 2); /* all tuples, no trailer */
    expect_bad(&b, "after 3 tuples without the end-of-data marker");
    bytes c = {.n = 0};
    put(&c, full.d, 19 + 2 + 4 + 1 + 2); /* inside tuple 1's second length word */
    expect_bad(&c, "ended inside tuple 1 (9 bytes of it)");
}

static void garbage_after_trailer(void **state) {
    (void)state;
    bytes b = good_stream();
    put(&b, "junk", 4);
    expect_bad(&b, "bytes after the end-of-data marker");
    char out[512];
    pgetl_error err;
    assert_int_equal(parse_all(&b, b.n, out, sizeof out, &err), PGETL_EDATA);
    assert_string_equal(
        err.message, "invalid binary COPY data at byte 60: 4 bytes after the end-of-data marker");
    bytes c = good_stream();
    put16(&c, 2); /* a whole extra tuple after the marker */
    field(&c, "a");
    field(&c, "b");
    expect_bad(&c, "after the end-of-data marker");
}

static void push_before_consumed(void **state) {
    (void)state;
    bytes b = good_stream();
    pgetl_copyout_parser p;
    pgetl_error err;
    assert_pgetl_ok(pgetl__copyout_init(&p, 2, &err), &err);
    assert_pgetl_ok(pgetl__copyout_push(&p, b.d, b.n, &err), &err);
    pgetl_copyout_event ev;
    assert_pgetl_ok(pgetl__copyout_next(&p, &ev, &err), &err);
    assert_int_equal(ev, PGETL_COPYOUT_ROW);
    assert_int_equal(pgetl__copyout_push(&p, b.d, b.n, &err), PGETL_ESTATE);
    assert_non_null(strstr(err.message, "before the last one was consumed"));
    pgetl__copyout_reset(&p);
}

static void bad_init(void **state) {
    (void)state;
    pgetl_copyout_parser p;
    pgetl_error err;
    assert_int_equal(pgetl__copyout_init(&p, -1, &err), PGETL_EINVAL);
    assert_int_equal(pgetl__copyout_init(&p, 5000, &err), PGETL_EINVAL);
    pgetl__copyout_reset(&p);
}

static int64_t alloc_count, alloc_fail_at;

static void *failing_malloc(size_t n) {
    return ++alloc_count >= alloc_fail_at ? NULL : malloc(n);
}
static void *failing_realloc(void *p, size_t n) {
    return ++alloc_count >= alloc_fail_at ? NULL : realloc(p, n);
}

/* Out of memory while carrying split items: PGETL_ENOMEM, never a crash or leak. */
static void allocation_failures(void **state) {
    (void)state;
    bytes b = good_stream();
    int failures = 0;
    for (alloc_fail_at = 1;; alloc_fail_at++) {
        alloc_count = 0;
        assert_pgetl_ok(pgetl_set_allocator(failing_malloc, failing_realloc, free), NULL);
        char out[512];
        pgetl_error err;
        pgetl_error_init(&err);
        pgetl_copyout_parser p;
        pgetl_code rc = pgetl__copyout_init(&p, 2, &err);
        if (rc == PGETL_OK) {
            pgetl__copyout_reset(&p);
            rc = parse_all(&b, 3, out, sizeof out, &err);
        }
        pgetl_set_allocator(NULL, NULL, NULL);
        if (rc == PGETL_OK) {
            assert_string_equal(out, "'a'|'hello';NULL|'';'xyz'|NULL;");
            break;
        }
        assert_int_equal(rc, PGETL_ENOMEM);
        failures++;
    }
    assert_true(failures >= 2);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_whole),
        cmocka_unit_test(good_every_split),
        cmocka_unit_test(header_extension_skipped),
        cmocka_unit_test(empty_result),
        cmocka_unit_test(truncated_header),
        cmocka_unit_test(bad_signature),
        cmocka_unit_test(bad_flags),
        cmocka_unit_test(bad_extension_length),
        cmocka_unit_test(negative_field_length),
        cmocka_unit_test(huge_field_length),
        cmocka_unit_test(field_count_mismatch),
        cmocka_unit_test(truncated_tuples),
        cmocka_unit_test(garbage_after_trailer),
        cmocka_unit_test(push_before_consumed),
        cmocka_unit_test(bad_init),
        cmocka_unit_test(allocation_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
