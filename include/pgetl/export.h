/* Export macro: the library is built with -fvisibility=hidden. */
#ifndef PGETL_EXPORT_H
#define PGETL_EXPORT_H

#if defined(_WIN32)
#if defined(PGETL_BUILDING)
#define PGETL_API __declspec(dllexport)
#else
#define PGETL_API
#endif
#elif defined(__GNUC__)
#define PGETL_API __attribute__((visibility("default")))
#else
#define PGETL_API
#endif

#endif /* PGETL_EXPORT_H */
