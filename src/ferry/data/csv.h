#pragma once
// CSV in and out of Tables. The reader parses in parallel (the text is split into chunks at row
// boundaries, each chunk parsed by its own thread, numbers by fast_float) and infers each column's
// type unless it is declared; the writer streams chunks of rows. Files ending in ".zst" are
// zstd-compressed on the fly. Stateless functions are thread-safe; a CsvWriter is used by one
// thread at a time.
//
// Dialect (RFC 4180): comma separated, first line a header, fields may be quoted with '"' ('""'
// inside quotes is one quote; quoted fields may hold commas and newlines), "\n" or "\r\n" line
// ends. A null is an empty field or one of the `null_values`.
//
// Example:
//   CsvReadOptions opts{.types = {{"plan", ColumnType::kString}},
//                       .on_bad_row = BadRowPolicy::kSkip,
//                       .max_bad_rows = 10};
//   FERRY_ASSIGN_OR_RETURN(CsvReadResult r, ReadCsvFile("customers.csv.zst", opts));
//   r.table.num_rows(); r.bad_row_count;
//   FERRY_RETURN_IF_ERROR(WriteCsvFile(r.table, "out/data.csv.zst"));

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/data/table.h"

namespace ferry::data {

// What to do with a malformed row (wrong number of fields, a value that is not of its column's
// declared type, an unterminated quote).
enum class BadRowPolicy {
  kFail,        // the read fails with the first bad row's line number and reason
  kSkip,        // bad rows are dropped; more than max_bad_rows of them fails the read
  kQuarantine,  // like kSkip, and each bad row is written to quarantine_path with its line number
};
// "fail", "skip", "quarantine".
absl::StatusOr<BadRowPolicy> ParseBadRowPolicy(std::string_view name);

struct CsvReadOptions {
  std::map<std::string, ColumnType> types;  // declared column types; the others are inferred
  BadRowPolicy on_bad_row = BadRowPolicy::kFail;
  size_t max_bad_rows = 0;      // kSkip / kQuarantine: the most bad rows tolerated
  std::string quarantine_path;  // kQuarantine: a CSV file "line,reason,text" (written atomically)
  std::vector<std::string> null_values = {"", "NA", "N/A", "null", "NULL", "None"};
  int threads = 0;  // 0 = one per core
};

struct BadRow {
  size_t line = 0;     // 1-based line number in the file (the header is line 1)
  std::string reason;  // e.g. "expected 5 fields, found 4" / "column 'age': 'x' is not an int64"
  std::string text;    // the raw row, truncated to 200 bytes
};

struct CsvReadResult {
  Table table;
  size_t bad_row_count = 0;
  std::vector<BadRow> bad_rows;  // the first 20, for reports
};

// Type inference, per column, over all its non-null values: int64 if every value is an integer,
// else float64 if every value is a number, else bool if every value is true/false (any case),
// else timestamp if every value parses with ParseTimestamp, else string. A column of nulls only
// is a string column.
absl::StatusOr<CsvReadResult> ReadCsvFile(const std::string& path, const CsvReadOptions& opts = {});
// `source` names the text in messages (e.g. a file name).
absl::StatusOr<CsvReadResult> ReadCsvString(std::string_view text, const CsvReadOptions& opts = {},
                                            std::string_view source = "<csv>");

struct CsvWriteOptions {
  int zstd_level = 3;  // for ".zst" paths
};

// The content of zstd-compressed `src` (one or more frames). InvalidArgument naming `path` for
// data that is not zstd or is truncated.
absl::StatusOr<std::string> ZstdDecompress(std::string_view src, std::string_view path);

// Streams a table to a file in chunks: Open, Write (any number of chunks with the same column
// names and types), Close. The file appears at `path` only on Close (temp file + fsync +
// rename); a writer destroyed without Close leaves nothing behind.
class CsvWriter {
 public:
  static absl::StatusOr<std::unique_ptr<CsvWriter>> Open(const std::string& path,
                                                         const CsvWriteOptions& opts = {});
  virtual ~CsvWriter() = default;
  // The header is written before the first chunk (from its column names).
  virtual absl::Status Write(const Table& chunk) = 0;
  // A header-only file when nothing was written: `columns` gives the names then.
  virtual absl::Status Close(const std::vector<std::string>& columns = {}) = 0;
  virtual size_t rows() const = 0;
  // sha256 of the uncompressed CSV bytes (a content hash independent of the zstd level); valid
  // after Close.
  virtual std::string content_sha256() const = 0;
};

// One-shot helpers over CsvWriter.
absl::Status WriteCsvFile(const Table& table, const std::string& path,
                          const CsvWriteOptions& opts = {});
std::string WriteCsvString(const Table& table);

}  // namespace ferry::data
