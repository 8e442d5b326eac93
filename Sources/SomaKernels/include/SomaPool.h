#ifndef SOMA_POOL_H
#define SOMA_POOL_H
#include <stddef.h>

// The worker pool behind SomaTensor's `parallel`: workers (at most one per extra CPU) spin
// briefly between jobs, so back-to-back short parallel regions do not pay a thread wake-up each.

typedef void (*soma_pool_task)(void *ctx, size_t part);

/// Runs fn(ctx, part) for part in [0, parts) on the calling thread and the pool's workers and
/// returns 1 when all parts have finished. Returns 0 without running anything when the pool is
/// busy (another thread's job, or a call from inside a part), when parts < 2 or > 65535, or
/// when no worker thread can be started; the caller then runs the parts another way.
int soma_pool_run(size_t parts, soma_pool_task fn, void *ctx);

#endif
