/* Arrow format strings and field schemas parsed into pgetl_arrow_type. */
#include "harness.h"

#include "arrow_fixture.h"
#include "copy/arrow_int.h"

static pgetl_arrow_type parse_ok(const char *format) {
    pgetl_arrow_type t;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_type_parse(format, &t, &err), &err);
    return t;
}

static void parse_fails(const char *format, pgetl_code code, const char *text) {
    pgetl_arrow_type t;
    pgetl_error err;
    pgetl_error_init(&err);
    assert_int_equal(pgetl__arrow_type_parse(format, &t, &err), code);
    assert_int_equal(err.code, code);
    if (!strstr(err.message, text))
        fail_msg("message \"%s\" lacks \"%s\"", err.message, text);
}

static void simple_formats(void **state) {
    (void)state;
    static const struct {
        const char *f;
        pgetl_arrow_kind k;
    } cases[] = {
        {"b", PGETL_AK_BOOL},       {"c", PGETL_AK_INT8},         {"s", PGETL_AK_INT16},
        {"i", PGETL_AK_INT32},      {"l", PGETL_AK_INT64},        {"C", PGETL_AK_UINT8},
        {"S", PGETL_AK_UINT16},     {"I", PGETL_AK_UINT32},       {"L", PGETL_AK_UINT64},
        {"e", PGETL_AK_FLOAT16},    {"f", PGETL_AK_FLOAT32},      {"g", PGETL_AK_FLOAT64},
        {"u", PGETL_AK_UTF8},       {"U", PGETL_AK_LARGE_UTF8},   {"vu", PGETL_AK_UTF8_VIEW},
        {"z", PGETL_AK_BINARY},     {"Z", PGETL_AK_LARGE_BINARY}, {"vz", PGETL_AK_BINARY_VIEW},
        {"tdD", PGETL_AK_DATE32},   {"tdm", PGETL_AK_DATE64},     {"+l", PGETL_AK_LIST},
        {"+L", PGETL_AK_LARGE_LIST}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pgetl_arrow_type t = parse_ok(cases[i].f);
        if (t.kind != cases[i].k)
            fail_msg("format %s: kind %d, want %d", cases[i].f, t.kind, cases[i].k);
    }
}

static void time_units(void **state) {
    (void)state;
    pgetl_arrow_type t = parse_ok("tts");
    assert_int_equal(t.kind, PGETL_AK_TIME32);
    assert_int_equal(t.unit, PGETL_AU_S);
    t = parse_ok("ttn");
    assert_int_equal(t.kind, PGETL_AK_TIME64);
    assert_int_equal(t.unit, PGETL_AU_NS);
    t = parse_ok("tDm");
    assert_int_equal(t.kind, PGETL_AK_DURATION);
    assert_int_equal(t.unit, PGETL_AU_MS);
}

static void timestamps_with_and_without_zone(void **state) {
    (void)state;
    pgetl_arrow_type t = parse_ok("tsu:");
    assert_int_equal(t.kind, PGETL_AK_TIMESTAMP);
    assert_int_equal(t.unit, PGETL_AU_US);
    assert_false(t.has_tz);
    t = parse_ok("tsn:Europe/Paris");
    assert_int_equal(t.unit, PGETL_AU_NS);
    assert_true(t.has_tz);
    t = parse_ok("tss:UTC");
    assert_int_equal(t.unit, PGETL_AU_S);
    assert_true(t.has_tz);
    parse_fails("tsu", PGETL_EDATA, "malformed Arrow format string \"tsu\"");
    parse_fails("tsx:", PGETL_EDATA, "malformed");
    parse_fails("ts", PGETL_EDATA, "malformed");
}

static void decimals(void **state) {
    (void)state;
    pgetl_arrow_type t = parse_ok("d:38,10");
    assert_int_equal(t.kind, PGETL_AK_DECIMAL128);
    assert_int_equal(t.precision, 38);
    assert_int_equal(t.scale, 10);
    t = parse_ok("d:5,-2,128");
    assert_int_equal(t.scale, -2);
    parse_fails("d:10,2,256", PGETL_EUNSUPPORTED, "decimal256");
    parse_fails("d:", PGETL_EDATA, "malformed");
    parse_fails("d:x,1", PGETL_EDATA, "malformed");
    parse_fails("d:10", PGETL_EDATA, "malformed");
    parse_fails("d:10,2junk", PGETL_EDATA, "malformed");
    parse_fails("d:39,2", PGETL_EDATA, "malformed");
    parse_fails("d:99999999999,2", PGETL_EDATA, "malformed");
}

static void fixed_binary(void **state) {
    (void)state;
    pgetl_arrow_type t = parse_ok("w:16");
    assert_int_equal(t.kind, PGETL_AK_FIXED_BINARY);
    assert_int_equal(t.width, 16);
    parse_fails("w:0", PGETL_EDATA, "malformed");
    parse_fails("w:-3", PGETL_EDATA, "malformed");
    parse_fails("w:", PGETL_EDATA, "malformed");
}

static void unsupported_and_garbage(void **state) {
    (void)state;
    parse_fails("+m", PGETL_EUNSUPPORTED, "\"+m\" is not supported");
    parse_fails("+ud:1,2", PGETL_EUNSUPPORTED, "not supported");
    parse_fails("tiM", PGETL_EUNSUPPORTED, "not supported");
    parse_fails("", PGETL_EUNSUPPORTED, "unknown Arrow format string");
    parse_fails("\xff\xfe", PGETL_EUNSUPPORTED, "unknown");
    parse_fails("ii", PGETL_EUNSUPPORTED, "unknown");
    pgetl_arrow_type t;
    pgetl_error err;
    assert_int_equal(pgetl__arrow_type_parse(NULL, &t, &err), PGETL_EDATA);
}

static void field_list_and_dictionary(void **state) {
    (void)state;
    struct ArrowSchema s;
    fx_schema(&s, "+l", "tags", 1);
    fx_schema(fx_schema_child(&s, 0), "i", "item", 0);
    pgetl_arrow_field f;
    pgetl_error err;
    assert_pgetl_ok(pgetl__arrow_field_parse(&s, &f, &err), &err);
    assert_int_equal(f.type.kind, PGETL_AK_LIST);
    assert_int_equal(f.child.kind, PGETL_AK_INT32);
    char buf[64];
    assert_string_equal(pgetl__arrow_field_describe(&f, buf, sizeof buf), "+l<i>");
    s.release(&s);

    fx_schema(&s, "I", "cat", 0);
    fx_schema(fx_schema_dictionary(&s), "U", NULL, 0);
    assert_pgetl_ok(pgetl__arrow_field_parse(&s, &f, &err), &err);
    assert_int_equal(f.type.kind, PGETL_AK_DICTIONARY);
    assert_int_equal(f.index.kind, PGETL_AK_UINT32);
    assert_int_equal(f.child.kind, PGETL_AK_LARGE_UTF8);
    assert_string_equal(pgetl__arrow_field_describe(&f, buf, sizeof buf), "dictionary<I,U>");
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void field_bad_shapes(void **state) {
    (void)state;
    struct ArrowSchema s;
    pgetl_arrow_field f;
    pgetl_error err;

    fx_schema(&s, "+l", "x", 0); /* list without child */
    assert_int_equal(pgetl__arrow_field_parse(&s, &f, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "expected 1"));
    s.release(&s);

    fx_schema(&s, "+l", "x", 1); /* list of list */
    fx_schema(fx_schema_child(&s, 0), "+l", "item", 1);
    fx_schema(fx_schema_child(fx_schema_child(&s, 0), 0), "i", "item", 0);
    assert_int_equal(pgetl__arrow_field_parse(&s, &f, &err), PGETL_EUNSUPPORTED);
    s.release(&s);

    fx_schema(&s, "g", "x", 0); /* dictionary with float indices */
    fx_schema(fx_schema_dictionary(&s), "u", NULL, 0);
    assert_int_equal(pgetl__arrow_field_parse(&s, &f, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "not an integer"));
    s.release(&s);

    fx_schema(&s, "i", "x", 2); /* primitive with children */
    fx_schema(fx_schema_child(&s, 0), "i", "a", 0);
    fx_schema(fx_schema_child(&s, 1), "i", "b", 0);
    assert_int_equal(pgetl__arrow_field_parse(&s, &f, &err), PGETL_EDATA);
    s.release(&s);

    fx_schema(&s, "i", "x", 0);
    s.format = NULL;
    assert_int_equal(pgetl__arrow_field_parse(&s, &f, &err), PGETL_EDATA);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

static void stream_schema_must_be_struct(void **state) {
    (void)state;
    struct ArrowSchema s;
    pgetl_arrow_field *fields = NULL;
    int n = -1;
    pgetl_error err;
    fx_schema(&s, "i", "", 0);
    assert_int_equal(pgetl__arrow_schema_parse(&s, &fields, &n, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "expected a struct"));
    s.release(&s);

    fx_schema(&s, "+s", "", 2);
    fx_schema(fx_schema_child(&s, 0), "l", "id", 0);
    fx_schema(fx_schema_child(&s, 1), "+m", "m", 0);
    /* An unsupported field is kept, marked, for the caller to refuse only if it is loaded. */
    assert_pgetl_ok(pgetl__arrow_schema_parse(&s, &fields, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_int_equal(fields[0].type.kind, PGETL_AK_INT64);
    assert_int_equal(fields[1].type.kind, PGETL_AK_INVALID);
    assert_string_equal(fields[1].name, "m");
    pgetl__free(fields);
    s.release(&s);

    fx_schema(&s, "+s", "", 1);
    fx_schema(fx_schema_child(&s, 0), "d:x", "bad", 0); /* malformed is still an error */
    assert_int_equal(pgetl__arrow_schema_parse(&s, &fields, &n, &err), PGETL_EDATA);
    assert_non_null(strstr(err.message, "field \"bad\""));
    s.release(&s);

    fx_schema(&s, "+s", "", 2);
    fx_schema(fx_schema_child(&s, 0), "l", "id", 0);
    fx_schema(fx_schema_child(&s, 1), "u", "name", 0);
    assert_pgetl_ok(pgetl__arrow_schema_parse(&s, &fields, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(fields[1].name, "name");
    pgetl__free(fields);
    s.release(&s);
    assert_int_equal(fx_live(), 0);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_formats),
        cmocka_unit_test(time_units),
        cmocka_unit_test(timestamps_with_and_without_zone),
        cmocka_unit_test(decimals),
        cmocka_unit_test(fixed_binary),
        cmocka_unit_test(unsupported_and_garbage),
        cmocka_unit_test(field_list_and_dictionary),
        cmocka_unit_test(field_bad_shapes),
        cmocka_unit_test(stream_schema_must_be_struct),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
