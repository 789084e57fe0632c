#include "ferry/config/diagnostics.h"

#include <algorithm>
#include <tuple>

#include "fmt/format.h"

namespace ferry::config {

std::string FormatLoc(const SourceLoc& loc) {
  if (loc.line <= 0) return loc.file;
  if (loc.column <= 0) return fmt::format("{}:{}", loc.file, loc.line);
  return fmt::format("{}:{}:{}", loc.file, loc.line, loc.column);
}

void Diagnostics::Add(const SourceLoc& loc, std::string message) {
  items_.push_back(Diagnostic{loc, std::move(message)});
}

std::string Diagnostics::ToString() const {
  // Sorting a copy keeps items() in the order the checks found them; stable so that two errors
  // at one place keep that order too.
  std::vector<const Diagnostic*> sorted;
  sorted.reserve(items_.size());
  for (const Diagnostic& d : items_) sorted.push_back(&d);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic* a, const Diagnostic* b) {
    return std::tie(a->loc.file, a->loc.line, a->loc.column) <
           std::tie(b->loc.file, b->loc.line, b->loc.column);
  });
  std::string out;
  for (const Diagnostic* d : sorted) {
    if (!out.empty()) out += '\n';
    out += fmt::format("{}: error: {}", FormatLoc(d->loc), d->message);
  }
  return out;
}

absl::Status Diagnostics::ToStatus() const {
  if (items_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(ToString());
}

}  // namespace ferry::config
