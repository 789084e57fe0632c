#pragma once
// SqlSource: one open, read-only connection to a source database named in ferry.yaml (SQLite or
// PostgreSQL), which runs the `sql` step's query with named parameters bound by the driver (never
// spliced into the text) and streams the result as Table chunks, so that memory stays bounded by
// the chunk size whatever the result's size. Not thread-safe: one SqlSource per thread.
//
// Column types, the same for both engines so that the same data gives the same Table (and so
// the same dataset content hash):
//   int64      SQLite declared INT/INTEGER/BIGINT/...;  PostgreSQL int2, int4, int8
//   float64    REAL/FLOAT/DOUBLE/NUMERIC/DECIMAL;        float4, float8, numeric
//   bool       BOOL/BOOLEAN (values 0/1);                bool
//   timestamp  DATE/DATETIME/TIMESTAMP (ISO text);      date, timestamp, timestamptz (as UTC)
//   string     everything else
// A SQLite expression with no declared type takes the type of its first non-null value in the
// first chunk (string when there is none); CAST in the SQL to pin it.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(std::unique_ptr<SqlSource> db, Connect(project.connections.at("crm")));
//   FERRY_RETURN_IF_ERROR(db->Query("SELECT id, plan FROM customers WHERE signup >= :since",
//                                   {{"since", "2026-01-01"}},
//                                   [&](const Table& chunk) { return writer.Write(chunk); }));

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/config/project.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::data {

class SqlSource {
 public:
  virtual ~SqlSource() = default;

  // Runs `sql` (one statement) with `params` bound by name: `:name` placeholders in the text;
  // values are JSON strings, integers, floats, booleans or null. Calls `sink` with chunks of at
  // most `chunk_rows` rows, every chunk with the same columns and types; when there are no rows,
  // one empty chunk carries the schema. A placeholder with no value, or a value no placeholder
  // uses, is InvalidArgument naming it; so is a value that does not fit its column's type (with
  // the column and row number). An error returned by `sink` stops the query and is returned.
  virtual absl::Status Query(std::string_view sql,
                             const std::map<std::string, nlohmann::json>& params,
                             const std::function<absl::Status(const Table&)>& sink,
                             size_t chunk_rows = 65536) = 0;

  // "sqlite:///abs/crm.db" or "postgresql://user@host:port/db": for messages; never a password.
  virtual std::string describe() const = 0;
};

struct ConnectOptions {
  // Relative sqlite:// paths and password files are taken from here (config::LoadProject has
  // already made them absolute; this is for connections built by hand). Empty = current folder.
  std::string project_dir;
  // Where password_env is looked up; tests pass a fake.
  std::function<const char*(const char*)> getenv = ::getenv;
};

// Opens the connection: a SQLite file read-only (NotFound when it does not exist), or a
// PostgreSQL session (read-only transactions, TimeZone UTC, connect timeout 10 s; Unavailable
// with the server's message and what to check when it fails). The password comes from
// conn.password_env or conn.password_file when set, else libpq's PGPASSWORD / ~/.pgpass.
absl::StatusOr<std::unique_ptr<SqlSource>> Connect(const config::Connection& conn,
                                                   const ConnectOptions& opts = {});

namespace internal {
// Internal, exposed for tests: PostgreSQL's rewriting of `:name` placeholders into `$1..$n`.

struct PositionalSql {
  std::string sql;                 // the text with each `:name` replaced by `$n`
  std::vector<std::string> names;  // names[n-1] is the parameter of `$n`; each name once
};

// Replaces `:name` placeholders ([A-Za-z_][A-Za-z0-9_]*) outside single-quoted strings (with ''
// escapes; E'...' with backslash escapes), double-quoted identifiers, -- and (nested) /* */
// comments and $tag$ dollar-quoted strings; `::` is a cast, not a placeholder (and an array
// slice written arr[lo:hi] reads as a placeholder :hi — write arr[lo : hi]). A `$1` already in
// the text is InvalidArgument (use :name), as is an unterminated string, identifier or comment.
absl::StatusOr<PositionalSql> ToPositional(std::string_view sql);

}  // namespace internal
}  // namespace ferry::data
