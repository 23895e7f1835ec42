/*
 * Structural validation of hostile Arrow arrays: every malformation the C
 * Data Interface lets us detect is PGETL_EDATA with a message naming the
 * column and the problem; well-formed slices pass.
 */
#include "harness.h"

#include "arrow_fixture.h"
#include "copy/arrow_int.h"

static pgetl_arrow_field field_of(struct ArrowSchema *s) {
    pgetl_arrow_field f;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_field_parse(s, &f, &err), &err);
    return f;
}

static void expect_bad(const pgetl_arrow_field *f, const struct ArrowArray *a, int64_t start,
                       int64_t count, const char *text) {
    pgetl_error err;
    pgetl_error_init(&err);
    assert_int_equal(pgetl__arrow_validate_range(f, a, start, count, "c1", &err), PGETL_EDATA);
    assert_int_equal(err.code, PGETL_EDATA);
    if (!strstr(err.message, "column \"c1\"") || !strstr(err.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, text);
}

static void expect_ok(const pgetl_arrow_field *f, const struct ArrowArray *a, int64_t start,
                      int64_t count) {
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_validate_range(f, a, start, count, "c1", &err), &err);
}

static void primitive_counts(void **state) {
    (void)state;
    struct ArrowSchema s;
    struct ArrowArray a;
    fx_schema(&s, "i", "c1", 0);
    pgetl_arrow_field f = field_of(&s);
    int32_t v[] = {1, 2, 3, 4};
    fx_prim(&a, 4, v, 4, NULL);
    expect_ok(&f, &a, 0, 4);
    expect_ok(&f, &a, 1, 3);
    expect_bad(&f, &a, 0, 5, "shorter than the 5 elements");
    a.length = -1;
    expect_bad(&f, &a, 0, 0, "negative length -1");
    a.length = 4;
    a.offset = -2;
    expect_bad(&f, &a, 0, 1, "negative offset -2");
    a.offset = INT64_MAX;
    expect_bad(&f, &a, 0, 1, "overflows");
    a.offset = 0;
    a.n_buffers = 3;
    expect_bad(&f, &a, 0, 4, "n_buffers is 3, the format needs 2");
    a.n_buffers = 2;
    a.n_children = 1;
    expect_bad(&f, &a, 0, 4, "n_children is 1, the format needs 0");
    a.n_children = 0;
    const void *data = a.buffers[1];
    a.buffers[1] = NULL;
    expect_bad(&f, &a, 0, 4, "data buffer is NULL");
    a.buffers[1] = data;
    a.null_count = 2;
    expect_bad(&f, &a, 0, 4, "no validity bitmap");
    a.null_count = 0;
    const void **bufs = a.buffers;
    a.buffers = NULL;
    expect_bad(&f, &a, 0, 4, "buffers array is NULL");
    a.buffers = bufs;
    expect_bad(&f, NULL, 0, 0, "array is NULL");
    a.release(&a);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void string_offsets(void **state) {
    (void)state;
    struct ArrowSchema s;
    struct ArrowArray a;
    fx_schema(&s, "u", "c1", 0);
    pgetl_arrow_field f = field_of(&s);
    const char *v[] = {"ab", "cde", "", "f"};
    fx_strings(&a, 4, v, false);
    expect_ok(&f, &a, 0, 4);
    int32_t *o = (int32_t *)a.buffers[1];
    o[2] = 1; /* decreasing: 0, 2, 1, 5, 6 */
    expect_bad(&f, &a, 0, 4, "offsets decrease at element 2");
    /* The slice [2, 4) reads offsets[2..4] = 1, 5, 6 only: in order. */
    expect_ok(&f, &a, 2, 2);
    o[2] = 5;
    o[0] = -3;
    expect_bad(&f, &a, 0, 4, "is negative");
    o[0] = 0;
    const void *offs = a.buffers[1];
    a.buffers[1] = NULL;
    expect_bad(&f, &a, 0, 4, "offsets buffer is NULL");
    expect_ok(&f, &a, 0, 0); /* zero elements need no offsets */
    a.buffers[1] = offs;
    const void *data = a.buffers[2];
    a.buffers[2] = NULL;
    expect_bad(&f, &a, 0, 4, "data buffer is NULL but offsets span 6 bytes");
    a.buffers[2] = data;
    a.n_buffers = 2;
    expect_bad(&f, &a, 0, 4, "n_buffers is 2, the format needs 3");
    a.n_buffers = 3;
    a.release(&a);
    s.release(&s);

    fx_schema(&s, "U", "c1", 0);
    f = field_of(&s);
    fx_strings(&a, 4, v, true);
    ((int64_t *)a.buffers[1])[4] = 2;
    expect_bad(&f, &a, 0, 4, "offsets decrease at element 4");
    a.release(&a);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void list_offsets_beyond_child(void **state) {
    (void)state;
    struct ArrowSchema s;
    struct ArrowArray a;
    fx_schema(&s, "+l", "c1", 1);
    fx_schema(fx_schema_child(&s, 0), "l", "item", 0);
    pgetl_arrow_field f = field_of(&s);
    int32_t offs[] = {0, 2, 3, 9};
    struct ArrowArray *kid = fx_list(&a, 3, offs, NULL, false);
    int64_t items[] = {1, 2, 3, 4};
    fx_prim(kid, 4, items, 8, NULL);
    expect_bad(&f, &a, 0, 3, "list offsets reach element 9 of a child of length 4");
    expect_ok(&f, &a, 0, 2);
    kid->offset = 1; /* child slice: [1, 4) has only 3 logical elements */
    kid->length = 3;
    expect_ok(&f, &a, 0, 2);
    kid->length = 2;
    expect_bad(&f, &a, 0, 2, "list offsets reach element 3 of a child of length 2");
    kid->length = 3;
    a.n_children = 0;
    expect_bad(&f, &a, 0, 2, "n_children is 0, the format needs 1");
    a.n_children = 1;
    /* A broken child: its data buffer is gone. */
    const void *d = kid->buffers[1];
    kid->buffers[1] = NULL;
    expect_bad(&f, &a, 0, 2, "data buffer is NULL");
    kid->buffers[1] = d;
    a.release(&a);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void dictionary_indices(void **state) {
    (void)state;
    struct ArrowSchema s;
    struct ArrowArray a;
    fx_schema(&s, "s", "c1", 0);
    fx_schema(fx_schema_dictionary(&s), "u", NULL, 0);
    pgetl_arrow_field f = field_of(&s);
    int16_t idx[] = {0, 1, 2, -1, 7};
    bool valid[] = {true, true, true, false, true};
    fx_prim(&a, 5, idx, 2, valid);
    const char *words[] = {"a", "b", "c"};
    fx_strings(fx_dictionary(&a), 3, words, false);
    /* -1 sits under a null: ignored. 7 is out of range. */
    expect_bad(&f, &a, 0, 5, "dictionary index 7 at element 4 is out of range");
    expect_ok(&f, &a, 0, 4);
    ((int16_t *)a.buffers[1])[4] = -5;
    expect_bad(&f, &a, 0, 5, "dictionary index -5");
    /* A dictionary slice shrinks the valid range. */
    ((int16_t *)a.buffers[1])[4] = 2;
    a.dictionary->offset = 1;
    a.dictionary->length = 2;
    expect_bad(&f, &a, 0, 5, "dictionary index 2 at element 2");
    struct ArrowArray *dict = a.dictionary;
    a.dictionary = NULL;
    expect_bad(&f, &a, 0, 5, "has no dictionary");
    a.dictionary = dict;
    a.release(&a);
    s.release(&s);

    /* uint64 indices above INT64_MAX must not wrap into range. */
    fx_schema(&s, "L", "c1", 0);
    fx_schema(fx_schema_dictionary(&s), "u", NULL, 0);
    f = field_of(&s);
    uint64_t uidx[] = {UINT64_MAX};
    fx_prim(&a, 1, uidx, 8, NULL);
    fx_strings(fx_dictionary(&a), 3, words, false);
    expect_bad(&f, &a, 0, 1, "out of range");
    a.release(&a);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void views(void **state) {
    (void)state;
    struct ArrowSchema s;
    struct ArrowArray a;
    fx_schema(&s, "vu", "c1", 0);
    pgetl_arrow_field f = field_of(&s);
    const char *v[] = {"tiny", "a value of more than twelve bytes"};
    fx_views(&a, 2, v, NULL);
    expect_ok(&f, &a, 0, 2);
    uint8_t *view = (uint8_t *)a.buffers[1] + 16;
    int32_t idx = 3;
    memcpy(view + 8, &idx, 4);
    expect_bad(&f, &a, 0, 2, "view 1 names data buffer 3, which does not exist");
    idx = 0;
    memcpy(view + 8, &idx, 4);
    int32_t off = 10;
    memcpy(view + 12, &off, 4);
    expect_bad(&f, &a, 0, 2, "view 1 reaches past the end of data buffer 0");
    off = 0;
    memcpy(view + 12, &off, 4);
    int32_t len = -4;
    memcpy(view, &len, 4);
    expect_bad(&f, &a, 0, 2, "negative length");
    len = 33;
    memcpy(view, &len, 4);
    ((int64_t *)a.buffers[3])[0] = -1;
    expect_bad(&f, &a, 0, 2, "has size -1");
    ((int64_t *)a.buffers[3])[0] = 33;
    a.n_buffers = 2;
    expect_bad(&f, &a, 0, 2, "needs at least 3");
    a.n_buffers = 4;
    expect_ok(&f, &a, 0, 2);
    a.release(&a);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void batch_struct(void **state) {
    (void)state;
    struct ArrowSchema s;
    fx_schema(&s, "+s", "", 2);
    fx_schema(fx_schema_child(&s, 0), "i", "a", 0);
    fx_schema(fx_schema_child(&s, 1), "u", "b", 0);
    pgetl_arrow_field *fields;
    int n;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_schema_parse(&s, &fields, &n, &err), &err);

    struct ArrowArray b;
    fx_struct(&b, 3, 2);
    int32_t v[] = {1, 2, 3, 4};
    fx_prim(fx_child(&b, 0), 4, v, 4, NULL);
    const char *w[] = {"w", "x", "y", "z"};
    fx_strings(fx_child(&b, 1), 4, w, false);
    assert_pgetl_ok(pgetl__arrow_validate_batch(fields, n, NULL, 0, &b, &err), &err);
    b.offset = 1; /* struct slice [1, 4): children have 4 elements, fine */
    assert_pgetl_ok(pgetl__arrow_validate_batch(fields, n, NULL, 0, &b, &err), &err);
    b.offset = 2; /* [2, 5) is beyond the children */
    assert_int_equal(pgetl__arrow_validate_batch(fields, n, NULL, 0, &b, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "column \"a\""));
    b.offset = 0;
    b.n_children = 1;
    assert_int_equal(pgetl__arrow_validate_batch(fields, n, NULL, 0, &b, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "n_children is 1, the format needs 2"));
    b.n_children = 2;
    b.null_count = 1;
    fx_buffer(&b, 0, "\x06", 1);
    assert_int_equal(pgetl__arrow_validate_batch(fields, n, NULL, 0, &b, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "null rows at the struct level"));
    b.release(&b);
    pgetl__free(fields);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(primitive_counts),
        cmocka_unit_test(string_offsets),
        cmocka_unit_test(list_offsets_beyond_child),
        cmocka_unit_test(dictionary_indices),
        cmocka_unit_test(views),
        cmocka_unit_test(batch_struct),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
