#ifndef WANLORA_CPU_HINTS_H
#define WANLORA_CPU_HINTS_H

/// Asks the CPU to start loading the cache line at `address` (for a write soon) without waiting for
/// it. Hash tables much larger than the caches lose most of their time waiting for one random line
/// per lookup; issuing the loads of the next lookups early overlaps those waits. Swift has no
/// prefetch of its own; this header is inlined into the Swift callers.
static inline void wanlora_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
