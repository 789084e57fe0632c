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

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FERRY_INTERNAL_CONCAT2(a, b) a##b
#define FERRY_INTERNAL_CONCAT(a, b) FERRY_INTERNAL_CONCAT2(a, b)

#define FERRY_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::absl::Status ferry_status_ = (expr);           \
    if (!ferry_status_.ok()) return ferry_status_;   \
  } while (0)

#define FERRY_INTERNAL_ASSIGN_OR_RETURN(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp.ok()) return std::move(tmp).status();        \
  lhs = std::move(tmp).value()

#define FERRY_ASSIGN_OR_RETURN(lhs, expr) \
  FERRY_INTERNAL_ASSIGN_OR_RETURN(FERRY_INTERNAL_CONCAT(ferry_statusor_, __LINE__), lhs, expr)

// Invariants of our own code (never user input): print and abort.
#define FERRY_CHECK(cond)                                                           \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: FERRY_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
