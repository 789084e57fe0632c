#include "ferry/common/units.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ferry {
namespace {

// Splits "12.5ms" into 12.5 and "ms".
bool SplitNumber(std::string_view text, double* value, std::string_view* unit) {
  text = absl::StripAsciiWhitespace(text);
  size_t i = 0;
  while (i < text.size() && (absl::ascii_isdigit(text[i]) || text[i] == '.')) ++i;
  if (i == 0) return false;
  if (!absl::SimpleAtod(text.substr(0, i), value)) return false;
  *unit = absl::StripAsciiWhitespace(text.substr(i));
  return true;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDuration(std::string_view text) {
  double v;
  std::string_view unit;
  if (!SplitNumber(text, &v, &unit)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", text, "' is not a duration; write a number with a unit: 500ms, 30s, 10m, 2h, 1d"));
  }
  double seconds;
  if (unit.empty() || unit == "s") seconds = v;
  else if (unit == "ms") seconds = v / 1000;
  else if (unit == "m") seconds = v * 60;
  else if (unit == "h") seconds = v * 3600;
  else if (unit == "d") seconds = v * 86400;
  else {
    return absl::InvalidArgumentError(absl::StrCat("unknown duration unit '", unit, "' in '", text,
                                                   "'; use ms, s, m, h or d"));
  }
  return absl::Milliseconds(std::llround(seconds * 1000));
}

absl::StatusOr<int64_t> ParseBytes(std::string_view text) {
  double v;
  std::string_view unit;
  if (!SplitNumber(text, &v, &unit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a size; write e.g. 512Mi, 2Gi, 1G or a number of bytes"));
  }
  double mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "k" || unit == "K") mult = 1e3;
  else if (unit == "M") mult = 1e6;
  else if (unit == "G") mult = 1e9;
  else if (unit == "Ki") mult = 1024.0;
  else if (unit == "Mi") mult = 1024.0 * 1024;
  else if (unit == "Gi") mult = 1024.0 * 1024 * 1024;
  else if (unit == "Ti") mult = 1024.0 * 1024 * 1024 * 1024;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown size unit '", unit, "' in '", text, "'; use k, M, G, Ki, Mi, Gi, Ti"));
  }
  return static_cast<int64_t>(std::llround(v * mult));
}

std::string FormatDuration(absl::Duration d) {
  double s = absl::ToDoubleSeconds(d);
  if (s < 1) return absl::StrFormat("%.0fms", s * 1000);
  if (s < 60) return absl::StrFormat("%.1fs", s);
  int64_t total = static_cast<int64_t>(s);
  if (total < 3600) return absl::StrFormat("%dm%02ds", total / 60, total % 60);
  return absl::StrFormat("%dh%02dm", total / 3600, (total % 3600) / 60);
}

}  // namespace ferry
