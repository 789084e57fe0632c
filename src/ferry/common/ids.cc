#include "ferry/common/ids.h"

#include <cctype>
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

}  // namespace ferry
