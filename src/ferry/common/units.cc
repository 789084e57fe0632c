#include "ferry/common/units.h"

#include <cctype>
#include <charconv>
#include <cmath>

#include "ferry/common/strings.h"
#include "fmt/format.h"

namespace ferry {
namespace {

// Splits "12.5ms" into 12.5 and "ms".
bool SplitNumber(std::string_view text, double* value, std::string_view* unit) {
  text = TrimSpace(text);
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + i, *value);
  if (ec != std::errc() || ptr != text.data() + i) return false;
  *unit = TrimSpace(text.substr(i));
  return true;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  double v;
  std::string_view unit;
  if (!SplitNumber(text, &v, &unit)) {
    return absl::InvalidArgumentError(fmt::format(
        "'{}' is not a duration; write a number with a unit: 500ms, 30s, 10m, 2h, 1d", text));
  }
  double seconds;
  if (unit.empty() || unit == "s")
    seconds = v;
  else if (unit == "ms")
    seconds = v / 1000;
  else if (unit == "m")
    seconds = v * 60;
  else if (unit == "h")
    seconds = v * 3600;
  else if (unit == "d")
    seconds = v * 86400;
  else {
    return absl::InvalidArgumentError(
        fmt::format("unknown duration unit '{}' in '{}'; use ms, s, m, h or d", unit, text));
  }
  return absl::Milliseconds(std::llround(seconds * 1000));
}

absl::StatusOr<int64_t> ParseBytes(std::string_view text) {
  double v;
  std::string_view unit;
  if (!SplitNumber(text, &v, &unit)) {
    return absl::InvalidArgumentError(
        fmt::format("'{}' is not a size; write e.g. 512Mi, 2Gi, 1G or a number of bytes", text));
  }
  double mult;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "k" || unit == "K")
    mult = 1e3;
  else if (unit == "M")
    mult = 1e6;
  else if (unit == "G")
    mult = 1e9;
  else if (unit == "Ki")
    mult = 1024.0;
  else if (unit == "Mi")
    mult = 1024.0 * 1024;
  else if (unit == "Gi")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "Ti")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else {
    return absl::InvalidArgumentError(
        fmt::format("unknown size unit '{}' in '{}'; use k, M, G, Ki, Mi, Gi, Ti", unit, text));
  }
  return static_cast<int64_t>(std::llround(v * mult));
}

std::string HumanDuration(absl::Duration d) {
  double s = absl::ToDoubleSeconds(d);
  if (s < 1) return fmt::format("{:.0f}ms", s * 1000);
  if (s < 60) return fmt::format("{:.1f}s", s);
  int64_t total = static_cast<int64_t>(s);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
}

}  // namespace ferry
