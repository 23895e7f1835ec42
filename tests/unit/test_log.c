/* Structured logging (src/base/log.c): levels, the handler, quoting, cuts, the default sink. */
#include "harness.h"
#include "base/base.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>

static int teardown(void **state) {
    (void)state;
    harness_log_restore();
    return 0;
}

/* Logs one line with a single string field through the real entry points. */
static void log_kv(pgetl_log_level level, const char *key, const char *value) {
    pgetl_logline l;
    if (pgetl__log_begin(&l, level, "ev")) {
        pgetl__log_str(&l, key, value);
        pgetl__log_end(&l);
    }
}

static void test_levels_and_handler(void **state) {
    (void)state;
    harness_log *log = harness_log_capture(PGETL_LOG_INFO);
    assert_int_equal(pgetl_log_get_level(), PGETL_LOG_INFO);
    assert_false(pgetl__log_enabled(PGETL_LOG_DEBUG));
    assert_true(pgetl__log_enabled(PGETL_LOG_INFO));
    assert_true(pgetl__log_enabled(PGETL_LOG_ERROR));
    pgetl_logline l;
    assert_false(pgetl__log_begin(&l, PGETL_LOG_DEBUG, "hidden"));
    log_kv(PGETL_LOG_DEBUG, "k", "debug");
    log_kv(PGETL_LOG_INFO, "k", "info");
    log_kv(PGETL_LOG_WARN, "k", "warn");
    log_kv(PGETL_LOG_ERROR, "k", "error");
    assert_int_equal(log->lines, 3);
    assert_string_equal(log->text, "level=info event=ev k=info\n"
                                   "level=warn event=ev k=warn\n"
                                   "level=error event=ev k=error\n");
    /* OFF silences everything, even errors. */
    harness_log_capture(PGETL_LOG_OFF);
    assert_false(pgetl__log_enabled(PGETL_LOG_ERROR));
    log_kv(PGETL_LOG_ERROR, "k", "error");
    assert_int_equal(log->lines, 0);
    assert_false(pgetl__log_enabled(PGETL_LOG_OFF));

    assert_string_equal(pgetl_log_level_name(PGETL_LOG_DEBUG), "debug");
    assert_string_equal(pgetl_log_level_name(PGETL_LOG_WARN), "warn");
    assert_string_equal(pgetl_log_level_name(PGETL_LOG_OFF), "off");
    assert_string_equal(pgetl_log_level_name((pgetl_log_level)5), "unknown");
}

static void test_quoting(void **state) {
    (void)state;
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    pgetl_logline l;
    assert_true(pgetl__log_begin(&l, PGETL_LOG_INFO, "quote"));
    pgetl__log_str(&l, "plain", "abc");
    pgetl__log_str(&l, "space", "a b");
    pgetl__log_str(&l, "quote", "say \"hi\"");
    pgetl__log_str(&l, "eq", "a=b");
    pgetl__log_str(&l, "bs", "c:\\dir");
    pgetl__log_str(&l, "ctl", "l1\nl2\r\tx\x01\x7f");
    pgetl__log_str(&l, "empty", "");
    pgetl__log_str(&l, "null", NULL);
    pgetl__log_str(&l, "utf8", "😀é");
    pgetl__log_strn(&l, "part", "abcdef", 3);
    pgetl__log_end(&l);
    assert_string_equal(log->text,
                        "level=info event=quote plain=abc space=\"a b\" quote=\"say \\\"hi\\\"\" "
                        "eq=\"a=b\" bs=\"c:\\\\dir\" ctl=\"l1\\nl2\\r\\tx\\x01\\x7f\" empty=\"\" "
                        "null=null utf8=😀é part=abc\n");
    /* A hostile value cannot forge a second key or a second line. */
    harness_log_capture(PGETL_LOG_DEBUG);
    log_kv(PGETL_LOG_WARN, "user", "x level=error event=forged\nlevel=error");
    assert_int_equal(log->lines, 1);
    assert_string_equal(log->text, "level=warn event=ev user=\"x level=error event=forged\\n"
                                   "level=error\"\n");
}

static void test_numbers(void **state) {
    (void)state;
    harness_log *log = harness_log_capture(PGETL_LOG_DEBUG);
    pgetl_logline l;
    assert_true(pgetl__log_begin(&l, PGETL_LOG_INFO, "num"));
    pgetl__log_int(&l, "zero", 0);
    pgetl__log_int(&l, "min", INT64_MIN);
    pgetl__log_int(&l, "max", INT64_MAX);
    pgetl__log_double(&l, "d", 1.5);
    pgetl__log_double(&l, "nan", NAN);
    pgetl__log_double(&l, "inf", INFINITY);
    pgetl__log_double(&l, "ninf", -INFINITY);
    pgetl__log_end(&l);
    assert_string_equal(log->text, "level=info event=num zero=0 min=-9223372036854775808 "
                                   "max=9223372036854775807 d=1.500 nan=nan inf=inf ninf=-inf\n");
}

static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                                                       : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (!n)
            return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += n;
    }
    return true;
}

static void last_line(char *out, size_t size) {
    const char *t = harness_log_buf.text;
    size_t n = strlen(t);
    assert_true(n > 0 && t[n - 1] == '\n');
    snprintf(out, size, "%.*s", (int)(n - 1), t);
}

static void test_long_lines_are_cut(void **state) {
    (void)state;
    static char big[3 * PGETL_LOG_LINE_MAX];
    static char line[2 * PGETL_LOG_LINE_MAX];
    /* 4-byte characters at every alignment, bare and quoted: cut, never overrun or split. */
    for (int shift = 0; shift < 4; shift++) {
        for (int quoted = 0; quoted < 2; quoted++) {
            size_t pos = 0;
            for (int i = 0; i < shift; i++)
                big[pos++] = 'a';
            if (quoted)
                big[pos++] = ' ';
            while (pos + 4 < sizeof big) {
                memcpy(big + pos, "😀", 4);
                pos += 4;
            }
            big[pos] = '\0';
            harness_log_capture(PGETL_LOG_DEBUG);
            pgetl_logline l;
            assert_true(pgetl__log_begin(&l, PGETL_LOG_INFO, "long"));
            pgetl__log_str(&l, "v", big);
            pgetl__log_str(&l, "after", "must-not-appear");
            pgetl__log_end(&l);
            last_line(line, sizeof line);
            assert_true(strlen(line) <= PGETL_LOG_LINE_MAX - 1);
            assert_true(strlen(line) >= PGETL_LOG_LINE_MAX - 4);
            assert_true(utf8_valid(line));
            assert_null(strstr(line, "must-not-appear"));
        }
    }
    /* A cut line does not leak into the next one. */
    harness_log_capture(PGETL_LOG_DEBUG);
    log_kv(PGETL_LOG_INFO, "k", "short");
    assert_string_equal(harness_log_buf.text, "level=info event=ev k=short\n");
}

static void test_default_sink_is_stderr(void **state) {
    (void)state;
    fflush(stdout);
    fflush(stderr);
    FILE *out = tmpfile(), *errf = tmpfile();
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fileno(out), 1);
    dup2(fileno(errf), 2);
    pgetl_log_set_handler(NULL, NULL, PGETL_LOG_WARN);
    log_kv(PGETL_LOG_INFO, "k", "filtered");
    log_kv(PGETL_LOG_WARN, "k", "shown");
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    char buf[256] = "";
    rewind(out);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, out), 0);
    rewind(errf);
    size_t n = fread(buf, 1, sizeof buf - 1, errf);
    buf[n] = '\0';
    assert_string_equal(buf, "pgetl: level=warn event=ev k=shown\n");
    fclose(out);
    fclose(errf);
}

static void count_sink(void *user, pgetl_log_level level, const char *line) {
    (void)level;
    /* Called under the log mutex: a plain counter is enough, and a torn line shows up here. */
    int *count = user;
    if (strncmp(line, "level=info event=thread n=", 26) == 0)
        (*count)++;
}

static void *log_thread(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        pgetl_logline l;
        if (pgetl__log_begin(&l, PGETL_LOG_INFO, "thread")) {
            pgetl__log_int(&l, "n", i);
            pgetl__log_end(&l);
        }
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    int count = 0;
    pgetl_log_set_handler(count_sink, &count, PGETL_LOG_INFO);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, log_thread, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(count, 8000);
}

#define T(name) cmocka_unit_test_teardown(name, teardown)
static const struct CMUnitTest tests[] = {
    T(test_levels_and_handler), T(test_quoting),
    T(test_numbers),            T(test_long_lines_are_cut),
    T(test_default_sink_is_stderr), T(test_threads),
};

PGETL_TEST_MAIN(tests)
