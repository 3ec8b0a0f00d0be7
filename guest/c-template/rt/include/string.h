/* The little of <string.h> that wit-bindgen's C bindings and guest.c use,
 * for a freestanding wasm32 build. Implemented in rt/rt.c. */
#ifndef WFETCH_C_RT_STRING_H
#define WFETCH_C_RT_STRING_H

#include <stddef.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

#endif
