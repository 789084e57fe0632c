#pragma once
// Table: an in-memory columnar table — typed columns with null masks — shared by every module
// that handles rows (SQL extraction, CSV, validation, profiles, transforms, and later training,
// batch scoring and drift). A Table owns its columns; columns own their values. Not thread-safe
// for writes; concurrent reads of a Table nobody writes are safe.
//
// Types:
//   kInt64      int64 values
//   kFloat64    doubles (NaN is a value, a null is a null)
//   kString     dictionary-encoded strings: a code per row into a per-column dictionary, so that
//               categorical columns (the common case) cost 4 bytes a row and one-hot / top-k
//               need no hashing of the data again
//   kBool       stored as int64 0/1
//   kTimestamp  stored as int64 microseconds since the Unix epoch, UTC
//
// Example:
//   Table t;
//   Column& tenure = t.AddColumn("tenure", ColumnType::kInt64);
//   tenure.AppendInt(3);
//   tenure.AppendNull();
//   t.column("tenure").is_null(1);   // true
//   t.Find("plan");                  // nullptr: no such column

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::data {

enum class ColumnType { kInt64, kFloat64, kString, kBool, kTimestamp };

// "int64", "float64", "string", "bool", "timestamp".
std::string_view TypeName(ColumnType t);
// Accepts the names above plus the aliases int, integer, float, double, number, str, category,
// categorical, text, boolean, datetime. InvalidArgument lists the accepted names.
absl::StatusOr<ColumnType> ParseTypeName(std::string_view name);
bool IsNumeric(ColumnType t);  // int64, float64, bool, timestamp (all have a double view)

class Column {
 public:
  Column(std::string name, ColumnType type) : name_(std::move(name)), type_(type) {}

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  ColumnType type() const { return type_; }
  size_t size() const { return valid_.size(); }
  size_t null_count() const;
  bool is_null(size_t row) const { return valid_[row] == 0; }

  // Typed access; the caller checks the type. Null rows hold 0 / 0.0 / code -1.
  int64_t int_at(size_t row) const { return ints_[row]; }  // int64, bool, timestamp
  double float_at(size_t row) const { return doubles_[row]; }
  std::string_view string_at(size_t row) const;  // "" for a null
  int32_t code_at(size_t row) const { return codes_[row]; }
  // The value as a double for numeric types (bool 0/1, timestamp in microseconds).
  double AsDouble(size_t row) const;
  // The value as it is written in CSV ("" for a null; bool true/false; timestamps ISO 8601 UTC).
  std::string ToText(size_t row) const;

  void AppendNull();
  void AppendInt(int64_t v);  // int64, bool (0/1), timestamp (microseconds)
  void AppendDouble(double v);
  void AppendString(std::string_view v);
  void AppendBool(bool v) { AppendInt(v ? 1 : 0); }
  // Appends row `row` of `other` (same type).
  void AppendFrom(const Column& other, size_t row);
  // Appends every row of `other` (same type); strings are interned once per distinct value.
  void AppendColumn(const Column& other);
  void Reserve(size_t rows);

  // The dictionary of a string column: code -> string, in first-seen order.
  const std::vector<std::string>& dictionary() const { return dict_; }
  // The code of `s`, or -1 when it never occurs.
  int32_t CodeOf(std::string_view s) const;

  // Raw storage, for fast loops and for builders (CSV reader, SQL sources).
  std::vector<int64_t>& mutable_ints() { return ints_; }
  std::vector<double>& mutable_doubles() { return doubles_; }
  std::vector<int32_t>& mutable_codes() { return codes_; }
  std::vector<uint8_t>& mutable_valid() { return valid_; }
  const std::vector<int64_t>& ints() const { return ints_; }
  const std::vector<double>& doubles() const { return doubles_; }
  const std::vector<int32_t>& codes() const { return codes_; }
  const std::vector<uint8_t>& valid() const { return valid_; }
  // Interns `s` in the dictionary and returns its code (for builders that fill codes directly).
  int32_t Intern(std::string_view s);

 private:
  std::string name_;
  ColumnType type_;
  std::vector<uint8_t> valid_;   // 1 = has a value, 0 = null; one per row
  std::vector<int64_t> ints_;    // int64 / bool / timestamp
  std::vector<double> doubles_;  // float64
  std::vector<int32_t> codes_;   // string: index into dict_, -1 for null
  std::vector<std::string> dict_;
  std::unordered_map<std::string, int32_t> index_;  // dict_ value -> code
};

class Table {
 public:
  size_t num_rows() const { return columns_.empty() ? 0 : columns_.front().size(); }
  size_t num_columns() const { return columns_.size(); }
  const std::vector<Column>& columns() const { return columns_; }
  std::vector<Column>& mutable_columns() { return columns_; }
  const Column& column(size_t i) const { return columns_[i]; }
  Column& mutable_column(size_t i) { return columns_[i]; }
  // By name; the caller knows it exists (FERRY_CHECK otherwise).
  const Column& column(std::string_view name) const;
  const Column* Find(std::string_view name) const;
  Column* FindMutable(std::string_view name);
  std::optional<size_t> IndexOf(std::string_view name) const;
  // IndexOf scanning from column `from` on, then wrapping around: a caller that looks names up in
  // the table's own order passes the index after its previous match and finds each at once.
  std::optional<size_t> IndexOf(std::string_view name, size_t from) const;
  std::vector<std::string> ColumnNames() const;

  // Adds an empty column (a reference valid until the next AddColumn). AlreadyExists is a bug of
  // the caller, so it is a FERRY_CHECK; use Find first for user-named columns.
  Column& AddColumn(std::string name, ColumnType type);
  void AddColumn(Column column);
  void RemoveColumn(std::string_view name);
  // A table with the rows whose `keep[row]` is true, in order.
  Table Filter(const std::vector<uint8_t>& keep) const;
  // A table with the rows listed, in that order (repeats allowed).
  Table Take(const std::vector<size_t>& rows) const;
  // Every column has num_rows() rows (a builder's invariant).
  bool Consistent() const;

 private:
  std::vector<Column> columns_;
};

// Parses "2026-11-27", "2026-11-27T10:00:00", "2026-11-27 10:00:00.123456", optionally with "Z"
// or "+hh:mm"; returns microseconds since the epoch, UTC. nullopt when it is not a timestamp.
std::optional<int64_t> ParseTimestamp(std::string_view s);
// ISO 8601 UTC: "2026-11-27T10:00:00Z", with ".ffffff" only when there are microseconds.
std::string FormatTimestamp(int64_t micros);

}  // namespace ferry::data
