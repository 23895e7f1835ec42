/*
 * Growable buffers (src/base/buf.c) and the allocator hook (alloc.c): growth,
 * the big-endian appenders, printf, overflow, and calls made while the
 * injected allocator fails, which must return PGETL_ENOMEM cleanly and
 * leave nothing allocated behind.
 */
#include "harness.h"
#include "base/base.h"

/*
 * A counting allocator that can be told to fail from the n-th call on. It
 * refuses absurd sizes itself, as a real allocator would, because ASan
 * aborts on them instead of returning NULL.
 */
#define ABSURD_SIZE ((size_t)1 << 40)
static long live, calls, fail_from = -1;

static void *t_malloc(size_t n) {
    if ((fail_from >= 0 && calls++ >= fail_from) || n >= ABSURD_SIZE)
        return NULL;
    void *p = malloc(n);
    if (p)
        live++;
    return p;
}

static void *t_realloc(void *p, size_t n) {
    if ((fail_from >= 0 && calls++ >= fail_from) || n >= ABSURD_SIZE)
        return NULL;
    void *q = realloc(p, n);
    if (q && !p)
        live++;
    return q;
}

static void t_free(void *p) {
    if (p)
        live--;
    free(p);
}

static int use_test_allocator(void **state) {
    (void)state;
    live = calls = 0;
    fail_from = -1;
    assert_int_equal(pgetl_set_allocator(t_malloc, t_realloc, t_free), PGETL_OK);
    return 0;
}

static int restore_allocator(void **state) {
    (void)state;
    assert_int_equal(pgetl_set_allocator(NULL, NULL, NULL), PGETL_OK);
    return 0;
}

static void test_init_append_reset(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(pgetl__buf_append(&b, "abc", 3), PGETL_OK);
    assert_int_equal(b.len, 3);
    assert_true(b.cap >= 3);
    assert_memory_equal(b.data, "abc", 3);
    assert_int_equal(pgetl__buf_append(&b, NULL, 0), PGETL_OK);
    assert_int_equal(b.len, 3);
    pgetl__buf_clear(&b);
    assert_int_equal(b.len, 0);
    assert_true(b.cap >= 3); /* clear keeps the memory for reuse */
    pgetl__buf_reset(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(live, 0);
    pgetl__buf_reset(&b); /* twice is fine */
}

static void test_growth_is_geometric(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    /* 1 MiB appended a byte at a time: few reallocations, content intact. */
    size_t caps_seen = 0, last_cap = 0;
    for (size_t i = 0; i < (1u << 20); i++) {
        char c = (char)(i * 31);
        assert_int_equal(pgetl__buf_append(&b, &c, 1), PGETL_OK);
        if (b.cap != last_cap) {
            assert_true(b.cap >= 2 * last_cap);
            last_cap = b.cap;
            caps_seen++;
        }
    }
    assert_true(caps_seen <= 14);
    for (size_t i = 0; i < (1u << 20); i += 4099)
        assert_int_equal(b.data[i], (char)(i * 31));
    /* reserve is idempotent when there is room. */
    size_t cap = b.cap;
    assert_int_equal(pgetl__buf_reserve(&b, cap - b.len), PGETL_OK);
    assert_int_equal(b.cap, cap);
    pgetl__buf_reset(&b);
    assert_int_equal(live, 0);
}

static void test_reserve_overflow(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    assert_int_equal(pgetl__buf_append(&b, "xy", 2), PGETL_OK);
    assert_int_equal(pgetl__buf_reserve(&b, SIZE_MAX), PGETL_ENOMEM);
    assert_int_equal(pgetl__buf_reserve(&b, SIZE_MAX - 1), PGETL_ENOMEM);
    assert_int_equal(pgetl__buf_reserve(&b, SIZE_MAX / 2 + 1), PGETL_ENOMEM);
    /* The buffer is untouched by the failures. */
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "xy", 2);
    pgetl__buf_reset(&b);
}

static void test_big_endian_appenders(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    assert_int_equal(pgetl__buf_reserve(&b, 15), PGETL_OK);
    pgetl__buf_byte_unchecked(&b, 'P');
    pgetl__buf_be16_unchecked(&b, 0x0102);
    pgetl__buf_be32_unchecked(&b, 0xA1B2C3D4u);
    pgetl__buf_be64_unchecked(&b, 0x0102030405060708ull);
    static const unsigned char want[] = {'P',  0x01, 0x02, 0xA1, 0xB2, 0xC3, 0xD4, 0x01,
                                         0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    pgetl__buf_clear(&b);
    assert_int_equal(pgetl__buf_reserve(&b, 8), PGETL_OK);
    pgetl__buf_be32_unchecked(&b, (uint32_t)-1); /* int32 -1, as binary COPY writes NULL */
    pgetl__buf_be16_unchecked(&b, 0);
    pgetl__buf_append_unchecked(&b, "zz", 2);
    assert_memory_equal(b.data, "\xff\xff\xff\xff\x00\x00zz", 8);
    pgetl__buf_reset(&b);
}

static void test_printf(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    assert_int_equal(pgetl__buf_printf(&b, "%s=%d", "a", 1), PGETL_OK);
    assert_int_equal(b.len, 3);
    assert_int_equal(pgetl__buf_printf(&b, ",%s", ""), PGETL_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "a=1,", 4);
    /* Long output grows the buffer; the NUL after len is kept. */
    char big[5000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(pgetl__buf_printf(&b, "%s", big), PGETL_OK);
    assert_int_equal(b.len, 4 + sizeof big - 1);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[b.len - 1], 'q');
    pgetl__buf_reset(&b);
    assert_int_equal(live, 0);
}

static void test_failing_allocator_buf(void **state) {
    (void)state;
    pgetl_buf b;
    pgetl__buf_init(&b);
    fail_from = calls; /* every allocation fails from now on */
    assert_int_equal(pgetl__buf_append(&b, "abc", 3), PGETL_ENOMEM);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(pgetl__buf_printf(&b, "%d", 12345), PGETL_ENOMEM);
    assert_int_equal(b.len, 0);
    /* Growth failing keeps what was there. */
    fail_from = -1;
    assert_int_equal(pgetl__buf_append(&b, "abc", 3), PGETL_OK);
    size_t cap = b.cap;
    fail_from = calls;
    char big[4096] = {0};
    assert_int_equal(pgetl__buf_append(&b, big, sizeof big), PGETL_ENOMEM);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.data, "abc", 3);
    fail_from = -1;
    pgetl__buf_reset(&b);
    assert_int_equal(live, 0);
}

static void test_failing_allocator_api(void **state) {
    (void)state;
    fail_from = calls;
    assert_null(pgetl__malloc(16));
    assert_null(pgetl__calloc(4, 4));
    assert_null(pgetl__strdup("abc"));
    assert_null(pgetl__strndup("abc", 2));
    /* Public calls that allocate say so, with the preformatted message. */
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = "host=/nonexistent-socket-dir port=1";
    pgetl_conn *conn = (pgetl_conn *)&cfg;
    pgetl_error err;
    assert_int_equal(pgetl_connect(&cfg, &conn, &err), PGETL_ENOMEM);
    assert_null(conn);
    assert_int_equal(err.code, PGETL_ENOMEM);
    assert_true(strncmp(err.message, "out of memory", 13) == 0);
    cfg.pool_min = 0;
    pgetl_pool *pool = (pgetl_pool *)&cfg;
    assert_int_equal(pgetl_pool_create(&cfg, &pool, &err), PGETL_ENOMEM);
    assert_null(pool);
    assert_true(strncmp(err.message, "out of memory", 13) == 0);
    fail_from = -1;
    assert_int_equal(live, 0);

    /* Overflowing calloc fails without calling the allocator. */
    long before = calls;
    assert_null(pgetl__calloc(SIZE_MAX / 2, 4));
    assert_int_equal(calls, before);
}

/* Each allocation of pool_create failing in turn: ENOMEM every time, nothing leaked. */
static void test_failing_allocator_each_step(void **state) {
    (void)state;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = "host=/nonexistent-socket-dir port=1";
    cfg.pool_min = 0;
    for (long step = 0; step < 64; step++) {
        calls = 0;
        fail_from = step;
        pgetl_pool *pool = NULL;
        pgetl_error err;
        pgetl_code rc = pgetl_pool_create(&cfg, &pool, &err);
        fail_from = -1;
        if (rc == PGETL_OK) {
            pgetl_pool_destroy(pool);
            assert_int_equal(live, 0);
            return; /* every allocation point before success was exercised */
        }
        assert_int_equal(rc, PGETL_ENOMEM);
        assert_null(pool);
        assert_int_equal(live, 0);
    }
    fail_msg("pool_create never succeeded");
}

static void test_set_allocator_arguments(void **state) {
    (void)state;
    assert_int_equal(pgetl_set_allocator(t_malloc, NULL, t_free), PGETL_EINVAL);
    assert_int_equal(pgetl_set_allocator(NULL, t_realloc, NULL), PGETL_EINVAL);
    /* The failed calls changed nothing: the test allocator is still in place. */
    long before = live;
    void *p = pgetl__malloc(8);
    assert_int_equal(live, before + 1);
    pgetl__free(p);
    pgetl__free(NULL);
    assert_int_equal(live, before);
}

#define T(name) cmocka_unit_test_setup_teardown(name, use_test_allocator, restore_allocator)
static const struct CMUnitTest tests[] = {
    T(test_init_append_reset),     T(test_growth_is_geometric),
    T(test_reserve_overflow),      T(test_big_endian_appenders),
    T(test_printf),                T(test_failing_allocator_buf),
    T(test_failing_allocator_api), T(test_failing_allocator_each_step),
    T(test_set_allocator_arguments),
};

PGETL_TEST_MAIN(tests)
