/*
 * Interop with a real Arrow producer: GDAL (>= 3.6) exports an OGR layer as
 * an ArrowArrayStream (OGR_L_GetArrowStream). A Memory-driver layer with
 * int, int64, real, string, date and datetime fields, NULLs and extremes is
 * loaded with pgetl_copy_from_arrow, and every stored value is compared with
 * what GDAL itself reads through OGR_F_GetField*.
 */
#include "harness.h"

#include <gdal.h>
#include <math.h>
#include <ogr_api.h>

enum { NFIELDS = 6, NFEAT = 5 };

static const char *const field_names[NFIELDS] = {"i32", "i64", "r", "s", "d", "dt"};

static OGRLayerH make_layer(GDALDatasetH *ds_out) {
    GDALAllRegister();
    GDALDriverH drv = GDALGetDriverByName("Memory");
    assert_non_null(drv);
    GDALDatasetH ds = GDALCreate(drv, "", 0, 0, 0, GDT_Unknown, NULL);
    assert_non_null(ds);
    OGRLayerH l = GDALDatasetCreateLayer(ds, "events", NULL, wkbNone, NULL);
    assert_non_null(l);
    const OGRFieldType types[NFIELDS] = {OFTInteger, OFTInteger64, OFTReal,
                                         OFTString,  OFTDate,      OFTDateTime};
    for (int i = 0; i < NFIELDS; i++) {
        OGRFieldDefnH f = OGR_Fld_Create(field_names[i], types[i]);
        assert_int_equal(OGR_L_CreateField(l, f, 1), OGRERR_NONE);
        OGR_Fld_Destroy(f);
    }
    struct {
        int i32;
        long long i64;
        double r;
        const char *s;
        int dy, dmo, dd; /* the date field */
        int y, mo, d;    /* the datetime field */
        int hh, mi;
        float ss;
        bool null;
    } rows[NFEAT] = {
        /*
         * Date fields stay on or after 1970: GDAL before 3.8.5 exports earlier
         * dates to Arrow one day late (OSGeo/gdal#9636, fixed by #9638), while
         * OGR_F_GetField reads them right. Datetimes before 1970 are exported
         * correctly and are covered here.
         */
        {1, 9007199254740993LL, 0.1, "plain", 2020, 2, 29, 2020, 2, 29, 12, 34, 56.789f, false},
        {0, 0, 0, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, true},
        {INT32_MIN, INT64_MIN, -1e300, "", 1970, 1, 1, 1901, 12, 13, 23, 59, 59.5f, false},
        {INT32_MAX, INT64_MAX, 5e-324, "h\xc3\xa9llo \xf0\x9f\x8e\x89 ,\"q\"\n\ttab", 2038, 1, 20,
         2038, 1, 20, 0, 0, 0.0f, false},
        {-7, -1, -0.0, "\\N", 9999, 12, 31, 1969, 12, 31, 23, 59, 59.999f, false},
    };
    for (int k = 0; k < NFEAT; k++) {
        OGRFeatureH h = OGR_F_Create(OGR_L_GetLayerDefn(l));
        if (rows[k].null) {
            for (int i = 0; i < NFIELDS; i++)
                OGR_F_SetFieldNull(h, i);
        } else {
            OGR_F_SetFieldInteger(h, 0, rows[k].i32);
            OGR_F_SetFieldInteger64(h, 1, rows[k].i64);
            OGR_F_SetFieldDouble(h, 2, rows[k].r);
            OGR_F_SetFieldString(h, 3, rows[k].s);
            OGR_F_SetFieldDateTimeEx(h, 4, rows[k].dy, rows[k].dmo, rows[k].dd, 0, 0, 0, 0);
            OGR_F_SetFieldDateTimeEx(h, 5, rows[k].y, rows[k].mo, rows[k].d, rows[k].hh, rows[k].mi,
                                     rows[k].ss, 0);
        }
        assert_int_equal(OGR_L_CreateFeature(l, h), OGRERR_NONE);
        OGR_F_Destroy(h);
    }
    *ds_out = ds;
    return l;
}

/* What GDAL reads for field i of feature h, formatted as the SQL below prints it. */
static void gdal_text(OGRFeatureH h, int i, char *buf, size_t size) {
    int y, mo, d, hh, mi, tz;
    float ss;
    switch (i) {
    case 0:
        snprintf(buf, size, "%d", OGR_F_GetFieldAsInteger(h, i));
        break;
    case 1:
        snprintf(buf, size, "%lld", (long long)OGR_F_GetFieldAsInteger64(h, i));
        break;
    case 2:
        snprintf(buf, size, "%.17g", OGR_F_GetFieldAsDouble(h, i));
        break;
    case 3:
        snprintf(buf, size, "%s", OGR_F_GetFieldAsString(h, i));
        break;
    case 4:
        assert_true(OGR_F_GetFieldAsDateTimeEx(h, i, &y, &mo, &d, &hh, &mi, &ss, &tz));
        snprintf(buf, size, "%04d-%02d-%02d", y, mo, d);
        break;
    default:
        assert_true(OGR_F_GetFieldAsDateTimeEx(h, i, &y, &mo, &d, &hh, &mi, &ss, &tz));
        snprintf(buf, size, "%04d-%02d-%02d %02d:%02d:%06.3f", y, mo, d, hh, mi, ss);
        break;
    }
}

static void gdal_layer_loads_and_matches(void **state) {
    (void)state;
    PGconn *pg = harness_pq();
    harness_sql(pg, "DROP TABLE IF EXISTS gdal_events");
    /* GDAL 3.6 exports OFTDateTime as timestamp[ms] without a zone ("tsm:"). */
    harness_sql(pg, "CREATE TABLE gdal_events (\"OGC_FID\" bigint, i32 integer, i64 bigint, "
                    "r double precision, s text, d date, dt timestamp)");
    GDALDatasetH ds;
    OGRLayerH l = make_layer(&ds);

    pgetl_conn *conn = harness_connect();
    struct ArrowArrayStream st;
    assert_true(OGR_L_GetArrowStream(l, &st, NULL));
    pgetl_error err;
    pgetl_copy_stats stats;
    assert_pgetl_ok(pgetl_copy_from_arrow(conn, "gdal_events", &st, NULL, 0, &stats, &err), &err);
    assert_null(st.release); /* consumed */
    assert_pgetl_ok(pgetl_commit(conn, &err), &err);
    assert_int_equal(stats.rows_loaded, NFEAT);

    PGresult *r = PQexec(pg, "SELECT \"OGC_FID\", i32::text, i64::text, r::text, s, d::text, "
                             "to_char(dt, 'YYYY-MM-DD HH24:MI:SS.MS') FROM gdal_events "
                             "ORDER BY \"OGC_FID\"");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), NFEAT);
    OGR_L_ResetReading(l);
    OGRFeatureH h;
    int row = 0;
    while ((h = OGR_L_GetNextFeature(l)) != NULL) {
        assert_int_equal(strtoll(PQgetvalue(r, row, 0), NULL, 10), OGR_F_GetFID(h));
        for (int i = 0; i < NFIELDS; i++) {
            bool gdal_null = !OGR_F_IsFieldSetAndNotNull(h, i);
            if (gdal_null != (bool)PQgetisnull(r, row, i + 1))
                fail_msg("feature %d field %s: NULL in GDAL %d, in PostgreSQL %d", row,
                         field_names[i], gdal_null, PQgetisnull(r, row, i + 1));
            if (gdal_null)
                continue;
            char want[256];
            gdal_text(h, i, want, sizeof want);
            const char *got = PQgetvalue(r, row, i + 1);
            if (i == 2) {
                /* Compare doubles as values (PostgreSQL prints the shortest form). */
                double g = strtod(got, NULL), w = OGR_F_GetFieldAsDouble(h, i);
                if (memcmp(&g, &w, sizeof g) != 0)
                    fail_msg("feature %d field r: PostgreSQL %s, GDAL %s", row, got, want);
            } else if (strcmp(got, want) != 0) {
                fail_msg("feature %d field %s: PostgreSQL \"%s\", GDAL \"%s\"", row, field_names[i],
                         got, want);
            }
        }
        OGR_F_Destroy(h);
        row++;
    }
    assert_int_equal(row, NFEAT);
    PQclear(r);

    /* GDAL's unzoned datetimes are refused by a timestamptz column, never shifted. */
    harness_sql(pg, "DROP TABLE IF EXISTS gdal_tz");
    harness_sql(pg, "CREATE TABLE gdal_tz (dt timestamptz)");
    assert_true(OGR_L_GetArrowStream(l, &st, NULL));
    const char *cols[] = {"dt"};
    assert_int_equal(pgetl_copy_from_arrow(conn, "gdal_tz", &st, cols, 1, NULL, &err),
                     PGETL_ESCHEMA);
    assert_non_null(strstr(err.message, "column \"dt\": cannot load Arrow type \"tsm:\" into "
                                        "timestamp with time zone"));
    assert_null(st.release);
    pgetl_rollback(conn, NULL);
    assert_int_equal(harness_scalar(pg, "SELECT count(*) FROM gdal_tz"), 0);

    pgetl_conn_close(conn);
    GDALClose(ds);
    PQfinish(pg);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gdal_layer_loads_and_matches),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
