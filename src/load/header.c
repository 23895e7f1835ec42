/*
 * Header names -> table columns, by PostgreSQL identifier rules (load.h):
 * an exact match to a stored name wins; otherwise the name's ASCII
 * lower-case fold must equal a stored name, which is what the server does
 * with an unquoted identifier. Exact-first keeps columns created with
 * quotes ("Amount") reachable, and folding makes the common `Amount` header
 * for column amount work. Every problem is collected before reporting, so
 * one run shows the user every name to fix.
 */
#include "load/load_int.h"

#include <stdio.h>

/* Collects names for a message, cut with "..." once the message would overflow. */
typedef struct name_list {
    char text[700];
    size_t len;
    int count;
} name_list;

static void list_add(name_list *l, const char *name, size_t n) {
    if (n == 0) { /* an empty header field, shown as the empty quoted identifier */
        name = "\"\"";
        n = 2;
    }
    l->count++;
    if (l->len >= sizeof l->text - 8)
        return;
    size_t room = sizeof l->text - 8 - l->len;
    if (l->len) {
        memcpy(l->text + l->len, ", ", 2);
        l->len += 2;
        room = room > 2 ? room - 2 : 0;
    }
    bool cut = n > room;
    if (cut)
        n = room;
    /* A NUL byte would end the message there and hide every name after it. */
    for (size_t i = 0; i < n; i++)
        l->text[l->len + i] = name[i] ? name[i] : '?';
    l->len += n;
    if (cut) {
        memcpy(l->text + l->len, "...", 4);
        l->len = sizeof l->text - 4;
    }
    l->text[l->len] = '\0';
}

static int find_exact(const pgetl_table_info *info, const char *name, size_t n) {
    if (n >= PGETL_IDENT_MAX || memchr(name, '\0', n))
        return -1;
    for (int i = 0; i < info->ncolumns; i++)
        if (strlen(info->columns[i].name) == n && memcmp(info->columns[i].name, name, n) == 0)
            return i;
    return -1;
}

static int find_folded(const pgetl_table_info *info, const char *name, size_t n) {
    char folded[PGETL_IDENT_MAX];
    if (n >= sizeof folded)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        folded[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    return find_exact(info, folded, n);
}

pgetl_code pgetl__header_match(const pgetl_table_info *info, const char *const *names,
                               const size_t *lens, int n, int *colidx_out, pgetl_error *err) {
    name_list unknown = {.len = 0}, dup = {.len = 0}, gen = {.len = 0};
    for (int i = 0; i < n; i++) {
        int idx = find_exact(info, names[i], lens[i]);
        if (idx < 0)
            idx = find_folded(info, names[i], lens[i]);
        colidx_out[i] = idx;
        if (idx < 0) {
            list_add(&unknown, names[i], lens[i]);
            continue;
        }
        if (info->columns[idx].generated)
            list_add(&gen, names[i], lens[i]);
        for (int j = 0; j < i; j++) {
            if (colidx_out[j] == idx) {
                list_add(&dup, names[i], lens[i]);
                break;
            }
        }
    }
    if (!unknown.count && !dup.count && !gen.count)
        return PGETL_OK;
    char msg[PGETL_ERROR_MESSAGE_SIZE];
    size_t used = 0;
    used += (size_t)snprintf(msg, sizeof msg, "header does not match table %s:", info->quoted);
    if (unknown.count && used < sizeof msg)
        used +=
            (size_t)snprintf(msg + used, sizeof msg - used, " unknown columns [%s];", unknown.text);
    if (dup.count && used < sizeof msg)
        used +=
            (size_t)snprintf(msg + used, sizeof msg - used, " duplicate columns [%s];", dup.text);
    if (gen.count && used < sizeof msg)
        used += (size_t)snprintf(msg + used, sizeof msg - used,
                                 " generated columns cannot be loaded [%s];", gen.text);
    if (used < sizeof msg && used > 0 && msg[used - 1] == ';')
        msg[--used] = '\0';
    /* One long unknown name holding a separator usually means the wrong delimiter. */
    if (n == 1 && unknown.count == 1 && used < sizeof msg &&
        (memchr(names[0], ';', lens[0]) || memchr(names[0], '|', lens[0]) ||
         memchr(names[0], '\t', lens[0]) || memchr(names[0], ',', lens[0])))
        snprintf(msg + used, sizeof msg - used,
                 " (the header has a single field: is the delimiter right?)");
    return pgetl_error_set(err, PGETL_ESCHEMA, "%s", msg);
}
