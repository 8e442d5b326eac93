#ifndef SOMA_BUFFER_CACHE_H
#define SOMA_BUFFER_CACHE_H

#include <stddef.h>

/// Large tensor buffers are kept for reuse instead of being returned to the system: a training
/// step allocates the same sizes as the step before it, and a fresh buffer of 100 MB costs
/// 25 000 page faults (each a zeroed 4 KiB page) every time. Buffers of `soma_cache_min_bytes`
/// or more go through the cache; a request takes a cached buffer of exactly its rounded size if
/// one is free, else a new one. Freed buffers stay cached while the cache holds at most its
/// limit (oldest evicted first). Thread-safe.

/// Requests smaller than this (4 MiB) bypass the cache.
size_t soma_cache_min_bytes(void);

/// A 64-byte aligned buffer of at least `bytes` (≥ soma_cache_min_bytes()), or NULL if out of
/// memory. Free it with soma_cache_free and the same `bytes`.
void *soma_cache_alloc(size_t bytes);
void soma_cache_free(void *p, size_t bytes);

/// The most bytes kept in freed buffers (default 1 GiB, or SOMA_BUFFER_CACHE_MB from the
/// environment); setting it frees what is over. 0 turns caching off.
void soma_cache_set_limit(size_t bytes);
size_t soma_cache_limit(void);

/// Bytes held in freed buffers now; requests served from the cache and from the system so far.
size_t soma_cache_held_bytes(void);
void soma_cache_counts(size_t *hits, size_t *misses);

/// Frees every cached buffer.
void soma_cache_trim(void);

#endif
