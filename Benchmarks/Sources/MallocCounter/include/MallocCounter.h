#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) made by
/// the process since it started. Linking this target interposes those functions.
uint64_t malloc_counter_allocations(void);

#endif
