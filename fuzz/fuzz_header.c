/*
 * Fuzz target: the header matcher (src/load/header.c), header names to
 * table columns by PostgreSQL identifier rules, with a table made up here
 * (no database).
 *
 * Input: a column count (0-16) and per column a flags byte (generated or
 * not) and a name (1-63 bytes, no NUL; the table's names are distinct, as
 * pg_attribute's are); then a header-name count (0-40) and per name a
 * recipe: a column's name as stored, upper-cased, with random case flips,
 * with a byte appended, or raw fuzz bytes (NUL, empty and over-long names
 * included). Invariants checked, against an independent reading of the rule
 * in load.h (exact stored name first, else the stored name equal to the
 * ASCII lower-case fold):
 *   - colidx_out[i] is that column (or -1 for an unknown name);
 *   - success exactly when no name is unknown, no two names reach the same
 *     column and none reaches a generated column; then the mapping is
 *     injective and every index is in range;
 *   - a failure is PGETL_ESCHEMA whose message names the table, has an
 *     "unknown" / "duplicate" / "generated" list exactly when such names
 *     exist, and shows every offending name (an empty one as "") whenever
 *     the lists fit in the message; the message is always NUL-terminated.
 */
#include "fuzz_util.h"
#include "load/load_int.h"

#define MAX_COLS 16
#define MAX_NAMES 40
#define MAX_NAME 80

static pgetl_column_info cols[MAX_COLS];
static char names_buf[MAX_NAMES][MAX_NAME];

static char fold(char c) {
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int oracle(int ncols, const char *name, size_t n) {
    for (int pass = 0; pass < 2; pass++) {
        for (int c = 0; c < ncols; c++) {
            const char *s = cols[c].name;
            if (strlen(s) != n)
                continue;
            size_t k = 0;
            while (k < n && s[k] == (pass ? fold(name[k]) : name[k]))
                k++;
            if (k == n)
                return c;
        }
    }
    return -1;
}

/* The name shows in the message: "" when empty, else its bytes (up to a NUL, if any). */
static bool shown(const char *msg, const char *name, size_t n) {
    if (n == 0)
        return strstr(msg, "\"\"") != NULL;
    char tmp[MAX_NAME + 1];
    memcpy(tmp, name, n);
    tmp[n] = '\0';
    return strstr(msg, tmp) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_in in = {data, size};
    pgetl_table_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.quoted, sizeof info.quoted, "\"s\".\"T\"");
    int ncols = fuzz_u8(&in) % (MAX_COLS + 1);
    int made = 0;
    for (int c = 0; c < ncols; c++) {
        uint8_t flags = fuzz_u8(&in);
        size_t len = 1 + fuzz_u8(&in) % (PGETL_IDENT_MAX - 1);
        char name[PGETL_IDENT_MAX];
        len = fuzz_bytes(&in, name, len);
        if (len == 0)
            break;
        for (size_t k = 0; k < len; k++)
            if (!name[k])
                name[k] = 'x';
        name[len] = '\0';
        bool dup = false;
        for (int j = 0; j < made; j++)
            dup |= strcmp(cols[j].name, name) == 0;
        if (dup)
            continue;
        memset(&cols[made], 0, sizeof cols[made]);
        memcpy(cols[made].name, name, len + 1);
        cols[made].generated = (flags & 7) == 0;
        made++;
    }
    ncols = made;
    info.ncolumns = ncols;
    info.columns = cols;

    int n = fuzz_u8(&in) % (MAX_NAMES + 1);
    const char *names[MAX_NAMES];
    size_t lens[MAX_NAMES];
    for (int i = 0; i < n; i++) {
        uint8_t recipe = fuzz_u8(&in);
        char *b = names_buf[i];
        size_t len = 0;
        if (ncols > 0 && (recipe & 7) < 5) {
            const char *s = cols[(recipe >> 3) % ncols].name;
            len = strlen(s);
            memcpy(b, s, len);
            uint8_t how = recipe & 7;
            for (size_t k = 0; k < len && how == 1; k++)
                b[k] = (b[k] >= 'a' && b[k] <= 'z') ? (char)(b[k] - 'a' + 'A') : b[k];
            if (how == 2) {
                uint32_t flips = fuzz_u32(&in);
                for (size_t k = 0; k < len && k < 32; k++)
                    if (flips & (1u << k) && ((b[k] | 0x20) >= 'a' && (b[k] | 0x20) <= 'z'))
                        b[k] ^= 0x20;
            }
            if (how == 3)
                b[len++] = (char)fuzz_u8(&in);
        } else {
            len = fuzz_bytes(&in, b, fuzz_u8(&in) % MAX_NAME);
        }
        names[i] = b;
        lens[i] = len;
    }

    int colidx[MAX_NAMES];
    for (int i = 0; i < MAX_NAMES; i++)
        colidx[i] = -7;
    pgetl_error err;
    pgetl_error_init(&err);
    pgetl_code rc = pgetl__header_match(&info, names, lens, n, colidx, &err);

    bool unknown = false, dup = false, genc = false;
    size_t listed = 0;
    for (int i = 0; i < n; i++) {
        int want = oracle(ncols, names[i], lens[i]);
        FUZZ_CHECK(colidx[i] == want, "name %d mapped to %d, rule says %d", i, colidx[i], want);
        /* Room the name takes in the message: once per list it is in (both duplicate and
         * generated is possible). */
        size_t room = (lens[i] ? lens[i] : 2) + 2;
        if (want < 0) {
            unknown = true;
            listed += room;
        } else {
            if (cols[want].generated) {
                genc = true;
                listed += room;
            }
            for (int j = 0; j < i; j++)
                if (colidx[j] == want) {
                    dup = true;
                    listed += room;
                    break;
                }
        }
    }
    for (int i = n; i < MAX_NAMES; i++)
        FUZZ_CHECK(colidx[i] == -7, "wrote colidx[%d] past n = %d", i, n);

    if (!unknown && !dup && !genc) {
        FUZZ_CHECK(rc == PGETL_OK, "refused a good header: %s", err.message);
        for (int i = 0; i < n; i++) {
            FUZZ_CHECK(colidx[i] >= 0 && colidx[i] < ncols, "index %d", colidx[i]);
            for (int j = 0; j < i; j++)
                FUZZ_CHECK(colidx[i] != colidx[j], "names %d and %d both map to %d", j, i,
                           colidx[i]);
        }
        return 0;
    }
    FUZZ_CHECK(rc == PGETL_ESCHEMA && err.code == rc, "code %d for a bad header", (int)rc);
    FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL, "message unterminated");
    const char *msg = err.message;
    FUZZ_CHECK(strncmp(msg, "header does not match table \"s\".\"T\":", 36) == 0, "message: %s",
               msg);
    /* A list is there when its names exist (and, unless a name forges one, only then). */
    bool forged = false;
    for (int i = 0; i < n; i++)
        forged |= memchr(names[i], '[', lens[i]) != NULL;
    bool has_u = strstr(msg, " unknown columns [") != NULL;
    bool has_d = strstr(msg, " duplicate columns [") != NULL;
    bool has_g = strstr(msg, " generated columns cannot be loaded [") != NULL;
    FUZZ_CHECK(has_u == unknown || (forged && has_u), "unknown list: %s", msg);
    FUZZ_CHECK(has_d == dup || (forged && has_d) || listed > 600, "duplicate list: %s", msg);
    FUZZ_CHECK(has_g == genc || (forged && has_g) || listed > 600, "generated list: %s", msg);
    /* Every offending name shows when all of them fit one list's room. */
    if (listed < 600) {
        for (int i = 0; i < n; i++) {
            bool bad = colidx[i] < 0 || cols[colidx[i]].generated;
            for (int j = 0; j < i && !bad; j++)
                bad = colidx[j] == colidx[i];
            if (bad)
                FUZZ_CHECK(shown(msg, names[i], lens[i]), "name %d (%zu bytes) not shown: %s", i,
                           lens[i], msg);
        }
    }
    return 0;
}
