/* A tiny freestanding runtime for the C guest: a size-class free-list
 * allocator on top of wasm linear memory (memory.grow), and the handful of
 * string functions the bindings need. No libc, no WASI: the core module
 * imports nothing but the WIT interfaces.
 *
 * Compiled with -fno-builtin so that the compiler does not turn the byte
 * loops below back into calls to memcpy/memset (which would recurse). */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Set by wasm-ld: the first byte after the data segments and the stack. */
extern unsigned char __heap_base;

#define PAGE 65536u
#define HEADER 8u     /* keeps payloads 8-byte aligned, the most WIT needs */
#define MIN_CLASS 4u  /* 16-byte blocks */
#define MAX_CLASS 31u /* 2 GiB blocks; a wasm32 memory is at most 4 GiB */

/* Every block is 2^class bytes: an 8-byte header holding the class, then
 * the payload. Freed blocks go on the free list of their class and are
 * reused as they are (no splitting or merging). Simple, and enough for a
 * guest whose big allocations (read buffers) come and go at one size. */
struct free_block {
    struct free_block *next;
};

static struct free_block *free_lists[MAX_CLASS + 1];
static uintptr_t heap_next, heap_end;

static unsigned class_for(size_t size) {
    unsigned c = MIN_CLASS;
    if (size > ((size_t)1 << MAX_CLASS) - HEADER)
        return 0;
    while (((size_t)1 << c) - HEADER < size)
        c++;
    return c;
}

static void *bump(size_t bytes) {
    if (heap_next == 0) {
        heap_next = ((uintptr_t)&__heap_base + HEADER - 1) & ~(uintptr_t)(HEADER - 1);
        heap_end = (uintptr_t)__builtin_wasm_memory_size(0) * PAGE;
    }
    if (bytes > UINTPTR_MAX - heap_next)
        return NULL;
    uintptr_t start = heap_next, end = heap_next + bytes;
    if (end > heap_end) {
        uintptr_t need = end - heap_end;
        size_t pages = (need + PAGE - 1) / PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
            return NULL;
        heap_end += pages * PAGE;
    }
    heap_next = end;
    return (void *)start;
}

void *malloc(size_t size) {
    unsigned c = class_for(size ? size : 1);
    if (c == 0)
        return NULL;
    unsigned char *block;
    if (free_lists[c]) {
        block = (unsigned char *)free_lists[c];
        free_lists[c] = free_lists[c]->next;
    } else {
        block = bump((size_t)1 << c);
        if (!block)
            return NULL;
    }
    *(uint32_t *)block = c;
    return block + HEADER;
}

void free(void *ptr) {
    if (!ptr)
        return;
    unsigned char *block = (unsigned char *)ptr - HEADER;
    unsigned c = *(uint32_t *)block;
    if (c < MIN_CLASS || c > MAX_CLASS)
        abort(); /* not one of ours: a double free or a wild pointer */
    struct free_block *fb = (struct free_block *)block;
    fb->next = free_lists[c];
    free_lists[c] = fb;
}

void *calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = malloc(count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *realloc(void *ptr, size_t size) {
    if (!ptr)
        return malloc(size);
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    unsigned c = *(uint32_t *)((unsigned char *)ptr - HEADER);
    size_t capacity = ((size_t)1 << c) - HEADER;
    if (size <= capacity)
        return ptr;
    void *p = malloc(size);
    if (!p)
        return NULL;
    memcpy(p, ptr, capacity);
    free(ptr);
    return p;
}

_Noreturn void abort(void) {
    __builtin_trap();
}

/* The canonical ABI's allocator, through which the host passes lists and
 * strings into the guest (and grows them). wit-bindgen's generated one is
 * weak and calls realloc; this strong one takes its place. */
__attribute__((__export_name__("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
    (void)old_size;
    if (new_size == 0)
        return (void *)align;
    if (align > HEADER)
        abort(); /* no WIT type needs more than 8 */
    void *p = realloc(ptr, new_size);
    if (!p)
        abort();
    return p;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--)
            *--d = *--s;
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s) {
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}
