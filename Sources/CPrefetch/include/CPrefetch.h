// A hint to the CPU to fetch a cache line before it is read (issue 8): Swift has no prefetch
// of its own. Used by the engine for the key filter's block of an event a few events ahead.
#ifndef BUDGETD_CPREFETCH_H
#define BUDGETD_CPREFETCH_H

static inline void budgetd_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
