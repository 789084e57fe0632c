#pragma once
// Status helpers shared by every module: absl::Status / absl::StatusOr<T> cross module
// boundaries, and these macros keep the error path one line long.
//
// Example:
//   absl::StatusOr<Spec> Load(const std::string& path) {
//     FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     FERRY_RETURN_IF_ERROR(Check(text));
//     return Parse(text);
//   }

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"

#ifndef ABSL_USES_STD_STRING_VIEW
// Debian's abseil has its own string_view (Status::message() returns one): let fmt print it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(std::string_view(s.data(), s.size()), ctx);
  }
};
#endif

#define FERRY_INTERNAL_CONCAT2(a, b) a##b
#define FERRY_INTERNAL_CONCAT(a, b) FERRY_INTERNAL_CONCAT2(a, b)

#define FERRY_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status ferry_status_ = (expr);         \
    if (!ferry_status_.ok()) return ferry_status_; \
  } while (0)

#define FERRY_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(tmp).value()

#define FERRY_ASSIGN_OR_RETURN(lhs, expr) \
  FERRY_INTERNAL_ASSIGN_OR_RETURN(FERRY_INTERNAL_CONCAT(ferry_statusor_, __LINE__), lhs, expr)

// Invariants of our own code (never user input): print and abort.
#define FERRY_CHECK(cond)                                                                 \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: FERRY_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)
