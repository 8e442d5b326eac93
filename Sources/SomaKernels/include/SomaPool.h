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

typedef void (*soma_pool_background_task)(void *ctx);

/// Hands fn(ctx) to an idle worker, to run in the time it would otherwise spend waiting for
/// the next parallel region (e.g. preparing the next input batch during a training step's
/// serial stretches). fn should call soma_pool_yield() every few tens of microseconds: a
/// region started meanwhile then gets its worker back. Returns 1 when posted; 0 when it cannot
/// be (no worker thread, or a background task is already posted), and the caller runs fn
/// itself. At most one background task at a time; soma_pool_background_wait() ends it.
int soma_pool_background(soma_pool_background_task fn, void *ctx);

/// Waits until the posted background task has finished, running it on the calling thread if
/// no worker has started it yet. Returns at once when none is posted.
void soma_pool_background_wait(void);

/// Called from a background task: on a worker, runs the parts of any parallel region started
/// since the last call before returning. Elsewhere it does nothing.
void soma_pool_yield(void);

#endif
