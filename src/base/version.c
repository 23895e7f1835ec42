#include "base/base.h"

#define STR_(x) #x
#define STR(x) STR_(x)

int pgetl_version(void) {
    return PGETL_VERSION_NUM;
}

const char *pgetl_version_string(void) {
    return STR(PGETL_VERSION_MAJOR) "." STR(PGETL_VERSION_MINOR) "." STR(PGETL_VERSION_PATCH);
}
