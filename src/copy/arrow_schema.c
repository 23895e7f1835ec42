/*
 * Arrow format strings (C Data Interface, "Data type description") parsed
 * into pgetl_arrow_type. Only what ingest can encode is accepted; anything
 * else is named in the error so the caller knows which field to cast.
 */
#include "copy/arrow_int.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct simple_format {
    const char *text;
    pgetl_arrow_kind kind;
    pgetl_arrow_unit unit;
} simple_format;

/* Formats that are a fixed string; parameterised ones are parsed below. */
static const simple_format simple_formats[] = {
    {"n", PGETL_AK_NULL, PGETL_AU_NONE},         {"b", PGETL_AK_BOOL, PGETL_AU_NONE},
    {"c", PGETL_AK_INT8, PGETL_AU_NONE},         {"s", PGETL_AK_INT16, PGETL_AU_NONE},
    {"i", PGETL_AK_INT32, PGETL_AU_NONE},        {"l", PGETL_AK_INT64, PGETL_AU_NONE},
    {"C", PGETL_AK_UINT8, PGETL_AU_NONE},        {"S", PGETL_AK_UINT16, PGETL_AU_NONE},
    {"I", PGETL_AK_UINT32, PGETL_AU_NONE},       {"L", PGETL_AK_UINT64, PGETL_AU_NONE},
    {"e", PGETL_AK_FLOAT16, PGETL_AU_NONE},      {"f", PGETL_AK_FLOAT32, PGETL_AU_NONE},
    {"g", PGETL_AK_FLOAT64, PGETL_AU_NONE},      {"u", PGETL_AK_UTF8, PGETL_AU_NONE},
    {"U", PGETL_AK_LARGE_UTF8, PGETL_AU_NONE},   {"vu", PGETL_AK_UTF8_VIEW, PGETL_AU_NONE},
    {"z", PGETL_AK_BINARY, PGETL_AU_NONE},       {"Z", PGETL_AK_LARGE_BINARY, PGETL_AU_NONE},
    {"vz", PGETL_AK_BINARY_VIEW, PGETL_AU_NONE}, {"tdD", PGETL_AK_DATE32, PGETL_AU_NONE},
    {"tdm", PGETL_AK_DATE64, PGETL_AU_NONE},     {"tts", PGETL_AK_TIME32, PGETL_AU_S},
    {"ttm", PGETL_AK_TIME32, PGETL_AU_MS},       {"ttu", PGETL_AK_TIME64, PGETL_AU_US},
    {"ttn", PGETL_AK_TIME64, PGETL_AU_NS},       {"tDs", PGETL_AK_DURATION, PGETL_AU_S},
    {"tDm", PGETL_AK_DURATION, PGETL_AU_MS},     {"tDu", PGETL_AK_DURATION, PGETL_AU_US},
    {"tDn", PGETL_AK_DURATION, PGETL_AU_NS},     {"+l", PGETL_AK_LIST, PGETL_AU_NONE},
    {"+L", PGETL_AK_LARGE_LIST, PGETL_AU_NONE},  {"+s", PGETL_AK_STRUCT, PGETL_AU_NONE},
};

/* Parses a decimal int32 at *p (digits only, optional '-'), advancing *p. */
static bool parse_int32(const char **p, int32_t *out) {
    const char *s = *p;
    bool neg = *s == '-';
    if (neg)
        s++;
    if (*s < '0' || *s > '9')
        return false;
    int64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > INT32_MAX)
            return false;
        s++;
    }
    *out = (int32_t)(neg ? -v : v);
    *p = s;
    return true;
}

static pgetl_code malformed(pgetl_error *err, const char *format) {
    return pgetl_error_set(err, PGETL_EDATA, "malformed Arrow format string \"%s\"", format);
}

static pgetl_code parse_decimal(const char *format, pgetl_arrow_type *out, pgetl_error *err) {
    const char *p = format + 2;
    int32_t prec, scale, bits = 128;
    if (!parse_int32(&p, &prec) || *p != ',' || (p++, !parse_int32(&p, &scale)))
        return malformed(err, format);
    if (*p == ',') {
        p++;
        if (!parse_int32(&p, &bits))
            return malformed(err, format);
    }
    if (*p != '\0' || prec < 1)
        return malformed(err, format);
    if (bits != 128)
        return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                               "Arrow type \"%s\" (decimal%d) is not supported; cast to "
                               "decimal128 or utf8",
                               format, (int)bits);
    if (prec > 38)
        return malformed(err, format);
    out->kind = PGETL_AK_DECIMAL128;
    out->precision = prec;
    out->scale = scale;
    return PGETL_OK;
}

static pgetl_code parse_timestamp(const char *format, pgetl_arrow_type *out, pgetl_error *err) {
    static const char units[] = "smun";
    const char *u = strchr(units, format[2]);
    if (format[2] == '\0' || !u || format[3] != ':')
        return malformed(err, format);
    out->kind = PGETL_AK_TIMESTAMP;
    out->unit = (pgetl_arrow_unit)(PGETL_AU_S + (u - units));
    out->has_tz = format[4] != '\0';
    return PGETL_OK;
}

pgetl_code pgetl__arrow_type_parse(const char *format, pgetl_arrow_type *out, pgetl_error *err) {
    memset(out, 0, sizeof *out);
    if (!format)
        return pgetl_error_set(err, PGETL_EDATA, "Arrow schema has a NULL format string");
    for (size_t i = 0; i < sizeof simple_formats / sizeof simple_formats[0]; i++) {
        if (strcmp(format, simple_formats[i].text) == 0) {
            out->kind = simple_formats[i].kind;
            out->unit = simple_formats[i].unit;
            return PGETL_OK;
        }
    }
    if (format[0] == 'd' && format[1] == ':')
        return parse_decimal(format, out, err);
    if (format[0] == 'w' && format[1] == ':') {
        const char *p = format + 2;
        int32_t w;
        if (!parse_int32(&p, &w) || *p != '\0' || w < 1)
            return malformed(err, format);
        out->kind = PGETL_AK_FIXED_BINARY;
        out->width = w;
        return PGETL_OK;
    }
    if (format[0] == 't' && format[1] == 's')
        return parse_timestamp(format, out, err);
    /* Known families we do not ingest: say so rather than "malformed". */
    if (format[0] == '+' || strncmp(format, "tt", 2) == 0 || strncmp(format, "tD", 2) == 0 ||
        strncmp(format, "td", 2) == 0 || strncmp(format, "ti", 2) == 0)
        return pgetl_error_set(err, PGETL_EUNSUPPORTED, "Arrow type \"%s\" is not supported",
                               format);
    return pgetl_error_set(err, PGETL_EUNSUPPORTED, "unknown Arrow format string \"%s\"", format);
}

static bool is_index_kind(pgetl_arrow_kind k) {
    return k >= PGETL_AK_INT8 && k <= PGETL_AK_UINT64;
}

static bool is_nested(pgetl_arrow_kind k) {
    return k == PGETL_AK_LIST || k == PGETL_AK_LARGE_LIST || k == PGETL_AK_STRUCT;
}

pgetl_code pgetl__arrow_field_parse(const struct ArrowSchema *s, pgetl_arrow_field *out,
                                    pgetl_error *err) {
    memset(out, 0, sizeof *out);
    if (!s || !s->format)
        return pgetl_error_set(err, PGETL_EDATA, "Arrow field schema %s",
                               s ? "has a NULL format string" : "is NULL");
    out->name = s->name;
    out->format = s->format;
    const char *label = s->name ? s->name : "(unnamed)";
    pgetl_code rc = pgetl__arrow_type_parse(s->format, &out->type, err);
    if (rc != PGETL_OK) {
        pgetl_error_prefix(err, "field \"%s\": ", label);
        return rc;
    }
    if (s->n_children < 0 || (s->n_children > 0 && !s->children))
        return pgetl_error_set(err, PGETL_EDATA, "field \"%s\": bad n_children %lld", label,
                               (long long)s->n_children);

    if (s->dictionary) {
        if (!is_index_kind(out->type.kind))
            return pgetl_error_set(err, PGETL_EDATA,
                                   "field \"%s\": dictionary index type \"%s\" is not an integer",
                                   label, s->format);
        if (s->n_children != 0)
            return pgetl_error_set(err, PGETL_EDATA,
                                   "field \"%s\": dictionary-encoded field has children", label);
        const struct ArrowSchema *d = s->dictionary;
        if (!d->format)
            return pgetl_error_set(err, PGETL_EDATA,
                                   "field \"%s\": dictionary schema has a NULL format", label);
        out->index = out->type;
        rc = pgetl__arrow_type_parse(d->format, &out->child, err);
        if (rc != PGETL_OK) {
            pgetl_error_prefix(err, "field \"%s\" dictionary: ", label);
            return rc;
        }
        if (d->dictionary || is_nested(out->child.kind) || d->n_children != 0)
            return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                                   "field \"%s\": dictionary of \"%s\" is not supported", label,
                                   d->format);
        out->child_format = d->format;
        memset(&out->type, 0, sizeof out->type);
        out->type.kind = PGETL_AK_DICTIONARY;
        return PGETL_OK;
    }

    if (out->type.kind == PGETL_AK_LIST || out->type.kind == PGETL_AK_LARGE_LIST) {
        if (s->n_children != 1 || !s->children[0])
            return pgetl_error_set(err, PGETL_EDATA,
                                   "field \"%s\": list schema has %lld children, expected 1", label,
                                   (long long)s->n_children);
        const struct ArrowSchema *e = s->children[0];
        if (!e->format)
            return pgetl_error_set(err, PGETL_EDATA,
                                   "field \"%s\": list element schema has a NULL format", label);
        rc = pgetl__arrow_type_parse(e->format, &out->child, err);
        if (rc != PGETL_OK) {
            pgetl_error_prefix(err, "field \"%s\" list element: ", label);
            return rc;
        }
        if (e->dictionary || is_nested(out->child.kind) || e->n_children != 0)
            return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                                   "field \"%s\": list of \"%s\"%s is not supported (only lists "
                                   "of primitive types)",
                                   label, e->format, e->dictionary ? " (dictionary)" : "");
        out->child_format = e->format;
        return PGETL_OK;
    }

    if (out->type.kind == PGETL_AK_STRUCT)
        return pgetl_error_set(err, PGETL_EUNSUPPORTED,
                               "field \"%s\": struct fields are not supported", label);
    if (s->n_children != 0)
        return pgetl_error_set(err, PGETL_EDATA,
                               "field \"%s\": type \"%s\" has %lld children, expected 0", label,
                               s->format, (long long)s->n_children);
    return PGETL_OK;
}

pgetl_code pgetl__arrow_schema_parse(const struct ArrowSchema *schema,
                                     pgetl_arrow_field **fields_out, int *nfields_out,
                                     pgetl_error *err) {
    *fields_out = NULL;
    *nfields_out = 0;
    if (!schema || !schema->format)
        return pgetl_error_set(err, PGETL_EDATA, "Arrow stream schema is missing its format");
    if (strcmp(schema->format, "+s") != 0)
        return pgetl_error_set(err, PGETL_EDATA,
                               "Arrow stream schema has format \"%s\"; expected a struct (\"+s\") "
                               "of columns",
                               schema->format);
    if (schema->n_children < 0 || schema->n_children > 1600 ||
        (schema->n_children > 0 && !schema->children))
        return pgetl_error_set(err, PGETL_EDATA, "Arrow stream schema has %lld children",
                               (long long)schema->n_children);
    int n = (int)schema->n_children;
    pgetl_arrow_field *fields = pgetl__calloc(n ? (size_t)n : 1, sizeof *fields);
    if (!fields)
        return pgetl__error_oom(err, "Arrow schema");
    for (int i = 0; i < n; i++) {
        pgetl_code rc = pgetl__arrow_field_parse(schema->children[i], &fields[i], err);
        if (rc == PGETL_EUNSUPPORTED) {
            /* Not an error unless the caller asks for this column. */
            fields[i].type.kind = PGETL_AK_INVALID;
            rc = PGETL_OK;
        }
        if (rc == PGETL_OK && !fields[i].name)
            rc = pgetl_error_set(err, PGETL_EDATA, "Arrow field %d has no name", i);
        if (rc != PGETL_OK) {
            pgetl__free(fields);
            return rc;
        }
    }
    *fields_out = fields;
    *nfields_out = n;
    return PGETL_OK;
}

const char *pgetl__arrow_field_describe(const pgetl_arrow_field *f, char *buf, size_t size) {
    if (f->type.kind == PGETL_AK_DICTIONARY)
        snprintf(buf, size, "dictionary<%s,%s>", f->format, f->child_format);
    else if (f->child_format)
        snprintf(buf, size, "%s<%s>", f->format, f->child_format);
    else
        snprintf(buf, size, "%s", f->format);
    return buf;
}
