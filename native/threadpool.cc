// A small fork-join thread pool: numThreads() - 1 worker threads plus the calling thread. Workers spin
// briefly after a job (kernels are often called back to back) and then sleep on a condition variable.
// Size: LDM_NUM_THREADS, or the CPUs this process may run on, shared out among the processes an MPI
// launcher started on this machine (see detectCpus). The pool is never destroyed (its threads are
// detached), so process exit never waits for it.
#include "common.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LDM_PAUSE() _mm_pause()
#else
#define LDM_PAUSE() ((void)0)
#endif

namespace ldm {
namespace {

// Ranks an MPI launcher started on this machine (Open MPI, MPICH / Hydra); 1 outside MPI.
int localRanks() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"}) {
    if (const char* v = std::getenv(name)) {
      int n = std::atoi(v);
      if (n > 0) return n;
    }
  }
  return 1;
}

// The CPUs this process may use. A launcher that binds each rank (an affinity mask smaller than the
// machine) has already shared the CPUs out; unbound ranks split the machine evenly (at least one thread
// each), so k ranks on one machine never run more than its CPUs' worth of threads together.
int detectCpus() {
  unsigned hw = std::thread::hardware_concurrency();
  int all = hw > 0 ? (int)hw : 1, n = all;
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) n = CPU_COUNT(&set);
#endif
  if (n >= all) {
    const int ranks = localRanks();
    if (ranks > 1) n = n / ranks > 0 ? n / ranks : 1;
  }
  return n;
}

// Job protocol. `state` = 2·generation (+1 once the caller has closed the job). A worker joins a job by
// incrementing `active` and re-checking that the state is unchanged; the caller, after draining the task
// counter itself, closes the job and waits only for workers that joined. A worker that the OS has not
// scheduled yet therefore never delays the caller (on a busy machine the caller just runs every task).
struct Pool {
  int size = 1;  // threads including the caller
  std::mutex callMutex;  // one fork-join job at a time (several JS threads may call in)
  std::mutex m;
  std::condition_variable cv;
  std::atomic<std::uint64_t> state{0};
  std::atomic<int> active{0};
  std::atomic<idx_t> next{0};
  idx_t ntasks = 0;
  void (*fn)(void*, idx_t, int) = nullptr;
  void* ctx = nullptr;
  std::atomic<bool> retire{false};
  std::atomic<int> live{0};

  void work(int tid) {
    for (;;) {
      idx_t t = next.fetch_add(1, std::memory_order_relaxed);
      if (t >= ntasks) break;
      fn(ctx, t, tid);
    }
  }
};

Pool* pool = nullptr;
thread_local bool insideTask = false;
thread_local int myThread = 0;

void workerLoop(Pool* p, int tid) {
  insideTask = true;
  myThread = tid;
  std::uint64_t done = p->state.load(std::memory_order_acquire) >> 1;  // last generation handled
  auto fresh = [&](std::uint64_t s) { return (s & 1) == 0 && (s >> 1) != done; };
  for (;;) {
    // Spin for a short while, then sleep until the next job.
    std::uint64_t s = p->state.load(std::memory_order_acquire);
    auto start = std::chrono::steady_clock::now();
    int spins = 0;
    while (!fresh(s) && !p->retire.load(std::memory_order_relaxed)) {
      LDM_PAUSE();
      if (++spins == 256) {
        spins = 0;
        if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(200)) {
          std::unique_lock<std::mutex> lk(p->m);
          p->cv.wait(lk, [&] { return fresh(p->state.load(std::memory_order_acquire)) || p->retire.load(); });
        }
      }
      s = p->state.load(std::memory_order_acquire);
    }
    if (p->retire.load()) break;
    p->active.fetch_add(1, std::memory_order_acq_rel);
    if (p->state.load(std::memory_order_acquire) == s) p->work(tid);  // still open: take part
    done = s >> 1;
    p->active.fetch_sub(1, std::memory_order_acq_rel);
  }
  p->live.fetch_sub(1);
}

void startPool(int n) {
  Pool* p = new Pool();
  p->size = n < 1 ? 1 : n;
  for (int i = 1; i < p->size; i++) {
    p->live.fetch_add(1);
    std::thread(workerLoop, p, i).detach();
  }
  pool = p;
}

Pool* getPool() {
  if (!pool) {
    int n = detectCpus();
    if (const char* env = std::getenv("LDM_NUM_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) n = v;
    }
    startPool(n);
  }
  return pool;
}

}  // namespace

int numThreads() { return getPool()->size; }

void setNumThreads(int n) {
  Pool* old = getPool();
  if (n < 1) n = 1;
  if (n == old->size) return;
  {
    std::lock_guard<std::mutex> call(old->callMutex);
    {
      std::lock_guard<std::mutex> lk(old->m);
      old->retire.store(true);
    }
    old->cv.notify_all();
    while (old->live.load() > 0) std::this_thread::yield();
  }
  startPool(n);  // the old pool object is leaked on purpose (a few hundred bytes)
}

void parallelRun(idx_t ntasks, void (*fn)(void*, idx_t, int), void* ctx) {
  if (ntasks <= 0) return;
  Pool* p = getPool();
  if (ntasks == 1 || p->size == 1 || insideTask) {
    for (idx_t t = 0; t < ntasks; t++) fn(ctx, t, myThread);
    return;
  }
  std::unique_lock<std::mutex> call(p->callMutex, std::try_to_lock);
  if (!call.owns_lock()) {  // another thread is using the pool: run here, serially
    for (idx_t t = 0; t < ntasks; t++) fn(ctx, t, 0);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  p->ntasks = ntasks;
  p->next.store(0, std::memory_order_relaxed);
  const std::uint64_t gen = (p->state.load(std::memory_order_relaxed) >> 1) + 1;
  {
    std::lock_guard<std::mutex> lk(p->m);
    p->state.store(gen << 1, std::memory_order_release);
  }
  p->cv.notify_all();
  insideTask = true;
  p->work(0);
  insideTask = false;
  p->state.store((gen << 1) | 1, std::memory_order_release);  // closed: late workers stay out
  while (p->active.load(std::memory_order_acquire) > 0) LDM_PAUSE();
}

void* allocAligned(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes < 64 ? 64 : bytes) != 0) return nullptr;
  return p;
}

void freeAligned(void* p) { std::free(p); }

namespace {
struct Scratch {
  void* ptr[16] = {};
  std::size_t size[16] = {};
  ~Scratch() {
    for (void* p : ptr) std::free(p);
  }
};
thread_local Scratch scratch;
}  // namespace

void* threadScratch(int slot, std::size_t bytes) {
  Scratch& s = scratch;
  if (bytes > s.size[slot]) {
    std::free(s.ptr[slot]);
    std::size_t want = bytes + bytes / 4 + 4096;
    s.ptr[slot] = allocAligned(want);
    s.size[slot] = s.ptr[slot] ? want : 0;
  }
  return s.ptr[slot];
}

}  // namespace ldm
