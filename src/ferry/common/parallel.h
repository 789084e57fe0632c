#pragma once
// A minimal parallel loop over indices for the data module's column- and chunk-parallel work.
// Hand-written: abseil, the only threading library the project takes from Debian, has no
// parallel-for, and a thread pool library would be a dependency for a dozen lines. Threads are
// started per call (the callers do milliseconds of work per index or more).

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace ferry {

// `requested` threads, or one per core when it is 0 or less.
inline int ThreadCount(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Runs f(i) for each i in [0, n) on up to `threads` threads (the caller's included); returns when
// all are done. Indices are handed out one at a time, so uneven work balances itself.
template <typename F>
void ParallelFor(size_t n, int threads, F&& f) {
  size_t t = std::min<size_t>(n, static_cast<size_t>(std::max(threads, 1)));
  if (t <= 1) {
    for (size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) f(i);
  };
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (size_t i = 0; i + 1 < t; ++i) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
}

}  // namespace ferry
