/*
 * Uses only the installed <pgetl/pgetl.h>: prints the library version, then
 * connects with the DSN in argv[1] and runs one query through the pool.
 */
#include <pgetl/pgetl.h>

#include <stdio.h>

int main(int argc, char **argv) {
    if (pgetl_version() != PGETL_VERSION_NUM) {
        fprintf(stderr, "header/library version mismatch\n");
        return 1;
    }
    printf("pgetl %s\n", pgetl_version_string());
    if (argc < 2)
        return 0;
    pgetl_config cfg;
    pgetl_config_init(&cfg);
    cfg.dsn = argv[1];
    pgetl_error err;
    pgetl_conn *conn = NULL;
    if (pgetl_get_connection(&cfg, &conn, &err) != PGETL_OK) {
        fprintf(stderr, "connect: %s\n", err.message);
        return 1;
    }
    pgetl_result *res = NULL;
    if (pgetl_fetchall(conn, "SELECT 40 + 2 AS answer", 0, NULL, &res, &err) != PGETL_OK) {
        fprintf(stderr, "query: %s\n", err.message);
        pgetl_release_connection(conn);
        pgetl_shutdown();
        return 1;
    }
    printf("answer=%s\n", pgetl_result_get_by_name(res, 0, "answer", NULL));
    pgetl_result_free(res);
    pgetl_rollback(conn, NULL);
    pgetl_release_connection(conn);
    pgetl_shutdown();
    return 0;
}
