#include "ferry/common/ids.h"

#include <atomic>
#include <cctype>
#include <cstdint>
#include <random>

#include "absl/time/time.h"
#include "fmt/format.h"

namespace ferry {

std::string NewRunId(const Clock& clock) {
  thread_local std::mt19937 rng(std::random_device{}());
  std::string t = absl::FormatTime("%Y%m%d-%H%M%S", clock.Now(), absl::UTCTimeZone());
  return fmt::format("r{}-{:06x}", t, rng() & 0xffffff);
}

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (name.find("..") != std::string_view::npos) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
              (i > 0 && (c == '-' || c == '.'));
    if (!ok) return false;
  }
  return true;
}

std::string NewUuidV7(const Clock& clock) {
  // 48-bit ms timestamp and 12-bit counter packed as one 60-bit number: each id takes
  // max(now with a random counter start, last + 1), so a counter overflow carries into the
  // timestamp (RFC 9562 6.2, method 1) and ids never repeat or go back within the process.
  static std::atomic<uint64_t> last{0};
  thread_local std::mt19937_64 rng([] {
    std::random_device device;  // getrandom(2) on Linux
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(clock.Now())) & 0xffffffffffffULL;
  // A random start in the lower half of the counter leaves room for 2048 ids per ms.
  const uint64_t fresh = (ms << 12) | (rng() & 0x7ff);
  uint64_t prev = last.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    next = fresh > prev ? fresh : prev + 1;
  } while (!last.compare_exchange_weak(prev, next, std::memory_order_relaxed));
  const uint64_t ts = next >> 12;
  const uint64_t rand_a = next & 0xfff;
  const uint64_t rand_b = rng() & 0x3fffffffffffffffULL;
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", ts >> 16, ts & 0xffff, 0x7000 | rand_a,
                     0x8000 | (rand_b >> 48), rand_b & 0xffffffffffffULL);
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace ferry
