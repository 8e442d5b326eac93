// A cache of large freed buffers (see SomaBufferCache.h).
#include "SomaBufferCache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

enum { SLOTS = 64 };
static const size_t MIN_BYTES = (size_t)4 << 20;
static const size_t HUGE = (size_t)2 << 20;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  void *p;
  size_t bytes;
  uint64_t age;
} slot[SLOTS];
static int used;
static size_t held, limit = (size_t)1 << 30;
static int limit_read;
static uint64_t clock_;
static size_t hits, misses;

size_t soma_cache_min_bytes(void) { return MIN_BYTES; }

static size_t rounded(size_t bytes) { return (bytes + HUGE - 1) / HUGE * HUGE; }

// Called with the lock held.
static void read_limit(void) {
  if (limit_read) return;
  limit_read = 1;
  const char *env = getenv("SOMA_BUFFER_CACHE_MB");
  if (env && *env) {
    char *end = NULL;
    unsigned long long mb = strtoull(env, &end, 10);
    if (end && *end == 0 && mb <= ((size_t)-1 >> 20)) limit = (size_t)mb << 20;
  }
}

// Frees the oldest cached buffers until `held` + `room` ≤ limit. Called with the lock held.
static void evict(size_t room) {
  while (used > 0 && held + room > limit) {
    int oldest = 0;
    for (int i = 1; i < used; i++)
      if (slot[i].age < slot[oldest].age) oldest = i;
    free(slot[oldest].p);
    held -= slot[oldest].bytes;
    slot[oldest] = slot[--used];
  }
}

void *soma_cache_alloc(size_t bytes) {
  const size_t size = rounded(bytes);
  pthread_mutex_lock(&lock);
  read_limit();
  for (int i = 0; i < used; i++) {
    if (slot[i].bytes == size) {
      void *p = slot[i].p;
      held -= size;
      slot[i] = slot[--used];
      hits++;
      pthread_mutex_unlock(&lock);
      return p;
    }
  }
  misses++;
  // A new buffer: make room in the process for it by dropping cached ones of other sizes
  // that would push the cache and this buffer past the limit.
  evict(size);
  pthread_mutex_unlock(&lock);
  void *p = NULL;
  if (posix_memalign(&p, HUGE, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, size, MADV_HUGEPAGE);  // advisory: fewer faults and TLB misses where THP allows
#endif
  return p;
}

void soma_cache_free(void *p, size_t bytes) {
  if (!p) return;
  const size_t size = rounded(bytes);
  pthread_mutex_lock(&lock);
  read_limit();
  if (size <= limit) {
    evict(size);
    if (used < SLOTS) {
      slot[used].p = p;
      slot[used].bytes = size;
      slot[used].age = ++clock_;
      used++;
      held += size;
      pthread_mutex_unlock(&lock);
      return;
    }
  }
  pthread_mutex_unlock(&lock);
  free(p);
}

void soma_cache_set_limit(size_t bytes) {
  pthread_mutex_lock(&lock);
  limit_read = 1;
  limit = bytes;
  evict(0);
  pthread_mutex_unlock(&lock);
}

size_t soma_cache_limit(void) {
  pthread_mutex_lock(&lock);
  read_limit();
  size_t l = limit;
  pthread_mutex_unlock(&lock);
  return l;
}

size_t soma_cache_held_bytes(void) {
  pthread_mutex_lock(&lock);
  size_t h = held;
  pthread_mutex_unlock(&lock);
  return h;
}

void soma_cache_counts(size_t *h, size_t *m) {
  pthread_mutex_lock(&lock);
  if (h) *h = hits;
  if (m) *m = misses;
  pthread_mutex_unlock(&lock);
}

void soma_cache_trim(void) {
  pthread_mutex_lock(&lock);
  while (used > 0) {
    free(slot[--used].p);
  }
  held = 0;
  pthread_mutex_unlock(&lock);
}
