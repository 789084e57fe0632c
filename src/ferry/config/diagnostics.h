#pragma once
// Source locations and the list of errors found in configuration files. Validation collects every
// error it finds into a Diagnostics so that `ferry validate` reports them all at once; each error
// reads "file:line:column: message" (1-based line and column), the message saying what is wrong
// and how to fix it. Not thread-safe.

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ferry::config {

struct SourceLoc {
  std::string file;  // as the user named it (relative paths stay relative)
  int line = 0;      // 1-based; 0 = unknown (then only the file is printed)
  int column = 0;    // 1-based
};

std::string FormatLoc(const SourceLoc& loc);  // "file:line:column", "file" when line is 0

struct Diagnostic {
  SourceLoc loc;
  std::string message;
};

class Diagnostics {
 public:
  void Add(const SourceLoc& loc, std::string message);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  // One line per error: "file:line:column: error: message", sorted by file, line, column.
  std::string ToString() const;
  // OK when empty, else InvalidArgument carrying ToString().
  absl::Status ToStatus() const;

 private:
  std::vector<Diagnostic> items_;
};

}  // namespace ferry::config
