// A small spinning thread pool for the fused kernels' parallel loops (see include/SomaPool.h).
//
// A training step runs a dozen or more short parallel regions with serial code in between.
// Dispatch parks its workers between them, and waking a parked worker costs tens of
// microseconds on a virtual machine, more than many regions take. These workers spin for a
// while after each region, so the next one starts within a microsecond; after a longer quiet
// spell they sleep on a condition variable.
#include "SomaPool.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_WORKERS 63
#define SPIN_NS 200000  // how long an idle worker spins before it sleeps

// The current job. `claim` packs the job's generation (bits 32-63), its number of parts (bits
// 16-31) and the next unclaimed part (bits 0-15) into one atomic word; a worker claims a part
// by a compare-exchange that also checks the generation, so a late worker can never run a part
// of a job it did not see published.
//
// The part count lives in the same word, not in a plain field beside fn and ctx: a worker that
// is late from job G (it loaded G's claim word after G's last part was taken) still compares
// the next part against the count. Read from a plain field, that count could already be the
// next job's, written by the caller while the worker reads it (a data race, which
// ThreadSanitizer reported); the worker would then see part p < parts, win its compare-exchange
// against G's unchanged word before the caller publishes G+1, and run a part of G+1's function
// under G's number, throwing the done count off. With the count in the snapshot, a worker's
// decision rests only on the one word it loaded, and its compare-exchange succeeds only if that
// word is still current. fn and ctx stay plain fields: a worker reads them only after it has
// claimed a part of the current job, and the caller does not write them again before that part
// is done (it waits for `done` to reach the count, whose release increment comes after the
// part ran), while the release store that publishes the claim word makes the new values
// visible to the acquire compare-exchange that claims a part.
#define GEN_SHIFT 32
#define PARTS_SHIFT 16
#define FIELD_MASK 0xffffu
#define GEN_MASK 0xffffffffu
static struct {
  pthread_mutex_t caller;  // one job at a time
  _Atomic uint64_t claim;
  soma_pool_task fn;
  void *ctx;
  atomic_size_t done;
  size_t workers;
  pthread_mutex_t sleep_lock;
  pthread_cond_t wake;
  atomic_int sleepers;
  atomic_int in_flight;  // a job is running (the caller has not returned yet)
  // The background task (soma_pool_background): BG_NONE → BG_POSTED → BG_RUNNING → BG_DONE.
  atomic_int bg_state;
  soma_pool_background_task bg_fn;
  void *bg_ctx;
} pool = {
    .caller = PTHREAD_MUTEX_INITIALIZER,
    .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
};

enum { BG_NONE, BG_POSTED, BG_RUNNING, BG_DONE };

// On a worker thread: the last job generation it has taken part in.
static _Thread_local int tl_is_worker;
static _Thread_local uint64_t tl_seen;

static void start_workers(size_t want);

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claims and runs parts of generation `gen` until none are left.
static void run_parts(uint64_t gen) {
  for (;;) {
    uint64_t s = atomic_load_explicit(&pool.claim, memory_order_acquire);
    if ((s >> GEN_SHIFT) != gen) return;
    const size_t p = (size_t)(s & FIELD_MASK);
    if (p >= (size_t)((s >> PARTS_SHIFT) & FIELD_MASK)) return;
    if (!atomic_compare_exchange_weak_explicit(&pool.claim, &s, s + 1, memory_order_acq_rel,
                                               memory_order_relaxed))
      continue;
    pool.fn(pool.ctx, p);
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
  }
}

// Runs the posted background task if no one has claimed it yet.
static void run_background_if_posted(void) {
  int posted = BG_POSTED;
  if (atomic_load_explicit(&pool.bg_state, memory_order_acquire) != BG_POSTED ||
      !atomic_compare_exchange_strong(&pool.bg_state, &posted, BG_RUNNING))
    return;
  pool.bg_fn(pool.bg_ctx);
  atomic_store_explicit(&pool.bg_state, BG_DONE, memory_order_release);
}

static void *worker_main(void *unused) {
  (void)unused;
  tl_is_worker = 1;
  tl_seen = atomic_load_explicit(&pool.claim, memory_order_acquire) >> GEN_SHIFT;
  for (;;) {
    uint64_t gen = atomic_load_explicit(&pool.claim, memory_order_acquire) >> GEN_SHIFT;
    if (gen == tl_seen) {
      uint64_t start = now_ns();
      unsigned spins = 0;
      while ((gen = atomic_load_explicit(&pool.claim, memory_order_acquire) >> GEN_SHIFT) ==
             tl_seen) {
        CPU_RELAX();
        if (atomic_load_explicit(&pool.bg_state, memory_order_relaxed) == BG_POSTED) {
          run_background_if_posted();  // regions started meanwhile ran in soma_pool_yield
          start = now_ns();
          continue;
        }
        if (++spins % 64 != 0) continue;
        // Give way to any other runnable thread while idle.
        sched_yield();
        // Idle time counts only once the caller's job has finished: a worker that finished
        // its part early must not fall asleep while the caller is certain to call again.
        if (atomic_load_explicit(&pool.in_flight, memory_order_relaxed)) start = now_ns();
        if (now_ns() - start > SPIN_NS) {
          pthread_mutex_lock(&pool.sleep_lock);
          atomic_fetch_add(&pool.sleepers, 1);
          while ((atomic_load(&pool.claim) >> GEN_SHIFT) == tl_seen &&
                 atomic_load(&pool.bg_state) != BG_POSTED)
            pthread_cond_wait(&pool.wake, &pool.sleep_lock);
          atomic_fetch_sub(&pool.sleepers, 1);
          pthread_mutex_unlock(&pool.sleep_lock);
        }
      }
    }
    tl_seen = gen;
    run_parts(gen);
  }
  return NULL;
}

void soma_pool_yield(void) {
  if (!tl_is_worker) return;
  const uint64_t gen = atomic_load_explicit(&pool.claim, memory_order_acquire) >> GEN_SHIFT;
  if (gen == tl_seen) return;
  tl_seen = gen;
  run_parts(gen);
}

int soma_pool_background(soma_pool_background_task fn, void *ctx) {
  if (tl_is_worker) return 0;
  if (pthread_mutex_trylock(&pool.caller) != 0) return 0;  // a region is being set up
  start_workers(1);
  const int ok = pool.workers > 0 && atomic_load(&pool.bg_state) == BG_NONE;
  if (ok) {
    pool.bg_fn = fn;
    pool.bg_ctx = ctx;
    atomic_store(&pool.bg_state, BG_POSTED);  // publishes fn and ctx
    if (atomic_load(&pool.sleepers) > 0) {
      pthread_mutex_lock(&pool.sleep_lock);
      pthread_cond_broadcast(&pool.wake);
      pthread_mutex_unlock(&pool.sleep_lock);
    }
  }
  pthread_mutex_unlock(&pool.caller);
  return ok;
}

void soma_pool_background_wait(void) {
  if (atomic_load(&pool.bg_state) == BG_NONE) return;
  int posted = BG_POSTED;
  if (atomic_compare_exchange_strong(&pool.bg_state, &posted, BG_RUNNING)) {
    pool.bg_fn(pool.bg_ctx);  // no worker took it: run it here
  } else {
    unsigned spins = 0;
    while (atomic_load_explicit(&pool.bg_state, memory_order_acquire) != BG_DONE) {
      CPU_RELAX();
      if (++spins % 64 == 0) sched_yield();
    }
  }
  atomic_store(&pool.bg_state, BG_NONE);
}

// Read once: glibc's sysconf(_SC_NPROCESSORS_ONLN) parses /sys on every call, which took
// ~8 us, as long as a short region's work.
static size_t cpu_count(void) {
  static atomic_size_t cached;
  size_t n = atomic_load_explicit(&cached, memory_order_relaxed);
  if (n == 0) {
    const long c = sysconf(_SC_NPROCESSORS_ONLN);
    n = c > 0 ? (size_t)c : 1;
    atomic_store_explicit(&cached, n, memory_order_relaxed);
  }
  return n;
}

// Starts workers until there are `want` (at most one per extra CPU). Holds pool.caller.
static void start_workers(size_t want) {
  const size_t cap = cpu_count() > 1 ? cpu_count() - 1 : 0;
  if (want > cap) want = cap;
  if (want > MAX_WORKERS) want = MAX_WORKERS;
  while (pool.workers < want) {
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    const int err = pthread_create(&t, &attr, worker_main, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) break;
    pool.workers++;
  }
}

int soma_pool_run(size_t parts, soma_pool_task fn, void *ctx) {
  if (parts < 2 || parts > FIELD_MASK) return 0;
  if (pthread_mutex_trylock(&pool.caller) != 0) return 0;  // busy (or called from a part)
  start_workers(parts - 1);
  if (pool.workers == 0) {
    pthread_mutex_unlock(&pool.caller);
    return 0;
  }
  pool.fn = fn;
  pool.ctx = ctx;
  atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
  atomic_store_explicit(&pool.in_flight, 1, memory_order_relaxed);
  // The generation wraps within its 32 bits, so a worker's comparison sees the same number.
  const uint64_t gen = ((atomic_load(&pool.claim) >> GEN_SHIFT) + 1) & GEN_MASK;
  // Publishes the job, its part count included (sequentially consistent, so also a release
  // of fn, ctx and the reset done count), with part 0 already taken: the caller always runs
  // part 0 and, with one worker and two parts, the worker part 1 (unless it is late). A region
  // that splits its data the same way every time then finds it in the same core's caches; when
  // the part went to whichever thread claimed it first, the two cores handed the data back and
  // forth, which costs a third of mlp-single-step's time when the virtual machine's two CPUs
  // sit far apart on the host (a cache-line round trip of ~500 ns instead of ~150 ns).
  atomic_store(&pool.claim, gen << GEN_SHIFT | (uint64_t)parts << PARTS_SHIFT | 1u);
  if (atomic_load(&pool.sleepers) > 0) {
    pthread_mutex_lock(&pool.sleep_lock);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep_lock);
  }
  fn(ctx, 0);
  atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
  run_parts(gen);
  unsigned spins = 0;
  while (atomic_load_explicit(&pool.done, memory_order_acquire) < parts) {
    CPU_RELAX();
    // As the workers do: let another runnable thread use this CPU while we wait.
    if (++spins % 64 == 0) sched_yield();
  }
  atomic_store_explicit(&pool.in_flight, 0, memory_order_relaxed);
  pthread_mutex_unlock(&pool.caller);
  return 1;
}
