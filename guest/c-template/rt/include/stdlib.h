/* The little of <stdlib.h> that wit-bindgen's C bindings and guest.c use,
 * for a freestanding wasm32 build (no libc, no WASI). Implemented in
 * rt/rt.c. */
#ifndef WFETCH_C_RT_STDLIB_H
#define WFETCH_C_RT_STDLIB_H

#include <stddef.h>

void *malloc(size_t size);
void *calloc(size_t count, size_t size);
void *realloc(void *ptr, size_t size);
void free(void *ptr);
_Noreturn void abort(void);

#endif
