#include "ferry/data/sql_source.h"

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "fast_float/fast_float.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::data {
namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string JoinQuoted(const std::vector<std::string>& names, std::string_view prefix) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& n : names)
    out += fmt::format("{}{}{}", out.empty() ? "" : ", ", prefix, n);
  return out;
}

// A value for messages: data may be long, so it is cut.
std::string Shown(std::string_view v) {
  if (v.size() > 40) return fmt::format("'{}...'", v.substr(0, 40));
  return fmt::format("'{}'", v);
}

// Both engines report missing and unused parameters alike; `used` is in order of first use.
absl::Status CheckParams(const std::vector<std::string>& used,
                         const std::map<std::string, nlohmann::json>& params) {
  std::vector<std::string> missing;
  for (const std::string& name : used) {
    if (!params.contains(name)) missing.push_back(name);
  }
  std::vector<std::string> given;
  for (const auto& [name, value] : params) given.push_back(name);
  if (!missing.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "the SQL uses {} but no value is given for {}; parameters given: {}",
        JoinQuoted(missing, ":"), missing.size() == 1 ? "it" : "them", JoinQuoted(given, "")));
  }
  for (const auto& [name, value] : params) {
    if (std::find(used.begin(), used.end(), name) == used.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "parameter '{}' is given but the SQL has no :{} placeholder (a typo?); placeholders in "
          "the SQL: {}",
          name, name, JoinQuoted(used, ":")));
    }
    if (!value.is_null() && !value.is_string() && !value.is_number() && !value.is_boolean()) {
      return absl::InvalidArgumentError(
          fmt::format("parameter '{}' is {}; SQL parameters are strings, numbers, booleans or "
                      "null",
                      name, value.is_array() ? "a list" : "a mapping"));
    }
  }
  return absl::OkStatus();
}

// Collects rows into Table chunks of `chunk_rows` and hands them to the sink. A column whose
// type is not known yet (a SQLite expression) holds nulls until its first value decides it; at
// the first flush an undecided column stays a string column of nulls.
class ChunkBuilder {
 public:
  ChunkBuilder(size_t chunk_rows, const std::function<absl::Status(const Table&)>& sink)
      : chunk_rows_(chunk_rows), sink_(sink) {}

  bool has_schema() const { return has_schema_; }

  absl::Status SetSchema(const std::vector<std::string>& names,
                         const std::vector<std::optional<ColumnType>>& types) {
    std::set<std::string> seen;
    for (const std::string& name : names) {
      if (!seen.insert(name).second) {
        return absl::InvalidArgumentError(fmt::format(
            "the query returns two columns named '{}'; give them distinct names with AS", name));
      }
    }
    if (names.empty()) {
      return absl::InvalidArgumentError(
          "the statement returns no columns; a sql step runs one query (SELECT ...)");
    }
    for (size_t i = 0; i < names.size(); ++i) {
      columns_.emplace_back(names[i], types[i].value_or(ColumnType::kString));
      undecided_.push_back(!types[i].has_value());
    }
    has_schema_ = true;
    return absl::OkStatus();
  }

  size_t num_columns() const { return columns_.size(); }
  Column& column(size_t i) { return columns_[i]; }
  bool undecided(size_t i) const { return undecided_[i]; }
  // Fixes the type of an undecided column; the rows so far were all null.
  Column& Decide(size_t i, ColumnType type) {
    Column fresh(columns_[i].name(), type);
    for (size_t r = 0; r < rows_in_chunk_; ++r) fresh.AppendNull();
    columns_[i] = std::move(fresh);
    undecided_[i] = false;
    return columns_[i];
  }
  // The 1-based number, in the whole result, of the row being appended.
  size_t row_number() const { return rows_before_ + rows_in_chunk_ + 1; }

  absl::Status EndRow() {
    ++rows_in_chunk_;
    return rows_in_chunk_ == chunk_rows_ ? Flush() : absl::OkStatus();
  }

  // The last partial chunk, or the empty chunk carrying the schema when there were no rows.
  absl::Status Finish() {
    if (rows_in_chunk_ > 0 || rows_before_ == 0) return Flush();
    return absl::OkStatus();
  }

 private:
  absl::Status Flush() {
    Table chunk;
    for (size_t i = 0; i < columns_.size(); ++i) {
      ColumnType type = columns_[i].type();
      std::string name = columns_[i].name();
      chunk.AddColumn(std::move(columns_[i]));
      columns_[i] = Column(std::move(name), type);
      columns_[i].Reserve(chunk_rows_ < 65536 ? chunk_rows_ : 65536);
      undecided_[i] = false;
    }
    rows_before_ += rows_in_chunk_;
    rows_in_chunk_ = 0;
    return sink_(chunk);
  }

  size_t chunk_rows_;
  const std::function<absl::Status(const Table&)>& sink_;
  bool has_schema_ = false;
  std::vector<Column> columns_;
  std::vector<bool> undecided_;
  size_t rows_in_chunk_ = 0;
  size_t rows_before_ = 0;
};

absl::Status Mismatch(const Column& col, size_t row, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format(
      "column '{}' is {} but row {} holds {}; CAST it in the SQL (e.g. CAST({} AS TEXT)) or fix "
      "the data",
      col.name(), TypeName(col.type()), row, what, col.name()));
}

// ---------------------------------------------------------------------------------------------
// SQLite

// The column type of a SQLite declared type, following SQLite's own affinity rules where they
// apply ("INT" anywhere means integer); nullopt for an expression with no declared type.
std::optional<ColumnType> SqliteDeclaredType(const char* decl) {
  if (decl == nullptr || *decl == '\0') return std::nullopt;
  std::string t = Upper(decl);
  t = t.substr(0, t.find('('));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  if (t == "BOOL" || t == "BOOLEAN") return ColumnType::kBool;
  if (t == "DATE" || t == "DATETIME" || StartsWith(t, "TIMESTAMP")) return ColumnType::kTimestamp;
  if (t.find("INT") != std::string::npos) return ColumnType::kInt64;
  if (t.find("REAL") != std::string::npos || t.find("FLOA") != std::string::npos ||
      t.find("DOUB") != std::string::npos || StartsWith(t, "NUMERIC") || StartsWith(t, "DECIMAL")) {
    return ColumnType::kFloat64;
  }
  return ColumnType::kString;
}

std::string_view SqliteText(sqlite3_stmt* st, int i) {
  const unsigned char* p = sqlite3_column_text(st, i);
  return p == nullptr ? std::string_view()
                      : std::string_view(reinterpret_cast<const char*>(p),
                                         static_cast<size_t>(sqlite3_column_bytes(st, i)));
}

std::string SqliteDescribeValue(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      return fmt::format("the integer {}", sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
      return fmt::format("the real {}", sqlite3_column_double(st, i));
    case SQLITE_BLOB:
      return "a BLOB";
    default:
      return fmt::format("the text {}", Shown(SqliteText(st, i)));
  }
}

absl::Status AppendSqliteValue(sqlite3_stmt* st, int i, ChunkBuilder* b) {
  int storage = sqlite3_column_type(st, i);
  size_t idx = static_cast<size_t>(i);
  if (storage == SQLITE_NULL) {
    b->column(idx).AppendNull();
    return absl::OkStatus();
  }
  if (b->undecided(idx)) {
    if (storage == SQLITE_INTEGER) {
      b->Decide(idx, ColumnType::kInt64);
    } else if (storage == SQLITE_FLOAT) {
      b->Decide(idx, ColumnType::kFloat64);
    } else if (storage == SQLITE_TEXT) {
      b->Decide(idx, ColumnType::kString);
    }
  }
  Column& col = b->column(idx);
  switch (col.type()) {
    case ColumnType::kInt64:
      if (storage != SQLITE_INTEGER) break;
      col.AppendInt(sqlite3_column_int64(st, i));
      return absl::OkStatus();
    case ColumnType::kFloat64:
      if (storage != SQLITE_INTEGER && storage != SQLITE_FLOAT) break;
      col.AppendDouble(sqlite3_column_double(st, i));
      return absl::OkStatus();
    case ColumnType::kBool: {
      if (storage != SQLITE_INTEGER) break;
      int64_t v = sqlite3_column_int64(st, i);
      if (v != 0 && v != 1) break;
      col.AppendBool(v == 1);
      return absl::OkStatus();
    }
    case ColumnType::kTimestamp: {
      if (storage != SQLITE_TEXT) break;
      std::optional<int64_t> micros = ParseTimestamp(SqliteText(st, i));
      if (!micros) break;
      col.AppendInt(*micros);
      return absl::OkStatus();
    }
    case ColumnType::kString:
      if (storage == SQLITE_BLOB) break;
      col.AppendString(SqliteText(st, i));
      return absl::OkStatus();
  }
  return Mismatch(col, b->row_number(), SqliteDescribeValue(st, i));
}

struct StmtCloser {
  void operator()(sqlite3_stmt* st) const { sqlite3_finalize(st); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtCloser>;

class SqliteSource : public SqlSource {
 public:
  SqliteSource(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteSource() override { sqlite3_close_v2(db_); }
  SqliteSource(const SqliteSource&) = delete;
  SqliteSource& operator=(const SqliteSource&) = delete;

  std::string describe() const override { return "sqlite://" + path_; }

  absl::Status Query(std::string_view sql, const std::map<std::string, nlohmann::json>& params,
                     const std::function<absl::Status(const Table&)>& sink,
                     size_t chunk_rows) override {
    if (chunk_rows == 0) return absl::InvalidArgumentError("chunk_rows must be at least 1");
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    Stmt stmt(raw);
    if (rc != SQLITE_OK) return Error("the SQL does not compile");
    if (stmt == nullptr) return absl::InvalidArgumentError("the SQL holds no statement");
    std::string_view rest(tail, static_cast<size_t>(sql.data() + sql.size() - tail));
    if (!rest.empty()) {
      sqlite3_stmt* next = nullptr;
      rc = sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()), &next, nullptr);
      Stmt next_stmt(next);
      if (rc != SQLITE_OK || next != nullptr) {
        return absl::InvalidArgumentError(
            "the SQL holds more than one statement; a sql step runs one query");
      }
    }
    FERRY_RETURN_IF_ERROR(Bind(stmt.get(), params));

    ChunkBuilder builder(chunk_rows, sink);
    int ncol = sqlite3_column_count(stmt.get());
    std::vector<std::string> names;
    std::vector<std::optional<ColumnType>> types;
    for (int i = 0; i < ncol; ++i) {
      names.emplace_back(sqlite3_column_name(stmt.get(), i));
      types.push_back(SqliteDeclaredType(sqlite3_column_decltype(stmt.get(), i)));
    }
    FERRY_RETURN_IF_ERROR(builder.SetSchema(names, types));
    while (true) {
      rc = sqlite3_step(stmt.get());
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return Error("the query failed");
      for (int i = 0; i < ncol; ++i) {
        FERRY_RETURN_IF_ERROR(AppendSqliteValue(stmt.get(), i, &builder));
      }
      FERRY_RETURN_IF_ERROR(builder.EndRow());
    }
    return builder.Finish();
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        fmt::format("{} on {}: {}", what, describe(), sqlite3_errmsg(db_)));
  }

  absl::Status Bind(sqlite3_stmt* st, const std::map<std::string, nlohmann::json>& params) {
    std::vector<std::string> used;
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; ++i) {
      const char* name = sqlite3_bind_parameter_name(st, i);
      if (name == nullptr || name[0] != ':') {
        return absl::InvalidArgumentError(
            fmt::format("the SQL has a parameter written {}; write parameters as :name",
                        name == nullptr ? "?" : name));
      }
      used.emplace_back(name + 1);
    }
    FERRY_RETURN_IF_ERROR(CheckParams(used, params));
    for (int i = 1; i <= n; ++i) {
      const nlohmann::json& v = params.at(used[static_cast<size_t>(i - 1)]);
      int rc = SQLITE_OK;
      if (v.is_null()) {
        rc = sqlite3_bind_null(st, i);
      } else if (v.is_boolean()) {
        rc = sqlite3_bind_int64(st, i, v.get<bool>() ? 1 : 0);
      } else if (v.is_number_unsigned() &&
                 v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            fmt::format("parameter '{}' = {} does not fit a 64-bit signed integer",
                        used[static_cast<size_t>(i - 1)], v.dump()));
      } else if (v.is_number_integer()) {
        rc = sqlite3_bind_int64(st, i, v.get<int64_t>());
      } else if (v.is_number_float()) {
        rc = sqlite3_bind_double(st, i, v.get<double>());
      } else {
        const std::string& s = v.get_ref<const std::string&>();
        rc = sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return Error("cannot bind a parameter");
    }
    return absl::OkStatus();
  }

  sqlite3* db_;
  std::string path_;
};

std::string LocSuffix(const config::Connection& conn) {
  if (conn.loc.file.empty()) return fmt::format(" (connection '{}')", conn.name);
  return fmt::format(" (connection '{}' at {})", conn.name, config::FormatLoc(conn.loc));
}

std::string BaseDir(const ConnectOptions& opts) {
  if (!opts.project_dir.empty()) return opts.project_dir;
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  return ec ? "/" : cwd;
}

absl::StatusOr<std::unique_ptr<SqlSource>> ConnectSqlite(const config::Connection& conn,
                                                         const ConnectOptions& opts) {
  std::string path = AbsolutePath(conn.uri.substr(9), BaseDir(opts));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        fmt::format("SQLite database {} does not exist{}; check the uri", path, LocSuffix(conn)));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::UnavailableError(
        fmt::format("cannot open SQLite database {}{}: {}", path, LocSuffix(conn), message));
  }
  // A writer holding the file briefly (an ETL job) delays the extraction instead of failing it.
  sqlite3_busy_timeout(db, 10000);
  return std::make_unique<SqliteSource>(db, path);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

// OIDs of pg_type (stable across versions: they are in the catalog's initial data).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kInt2Oid = 21;
constexpr Oid kInt4Oid = 23;
constexpr Oid kFloat4Oid = 700;
constexpr Oid kFloat8Oid = 701;
constexpr Oid kNumericOid = 1700;
constexpr Oid kDateOid = 1082;
constexpr Oid kTimestampOid = 1114;
constexpr Oid kTimestamptzOid = 1184;

ColumnType PgType(Oid oid) {
  switch (oid) {
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
      return ColumnType::kInt64;
    case kFloat4Oid:
    case kFloat8Oid:
    case kNumericOid:
      return ColumnType::kFloat64;
    case kBoolOid:
      return ColumnType::kBool;
    case kDateOid:
    case kTimestampOid:
    case kTimestamptzOid:
      return ColumnType::kTimestamp;
    default:
      return ColumnType::kString;
  }
}

// The URI without a password (in the user info or a password= query parameter).
std::string StripPassword(std::string_view uri) {
  size_t query = uri.find('?');
  std::string out(uri.substr(0, query));
  size_t begin = out.find("://");
  if (begin != std::string::npos) {
    begin += 3;
    size_t at = out.rfind('@', out.find('/', begin));
    size_t colon = out.find(':', begin);
    if (at != std::string::npos && at >= begin && colon < at) out.erase(colon, at - colon);
  }
  if (query == std::string_view::npos) return out;
  std::string kept;
  std::string_view rest = uri.substr(query + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view param = rest.substr(0, amp);
    if (param.substr(0, 9) != "password=")
      kept += fmt::format("{}{}", kept.empty() ? "" : "&", param);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return kept.empty() ? out : out + "?" + kept;
}

// libpq's messages are multi-line with tabs; one line reads better inside ours. Any occurrence
// of the password is masked, in case a server or a future libpq echoes it.
std::string OneLine(std::string_view message, const std::string& password) {
  std::string out;
  bool space = false;
  for (char c : message) {
    if (c == '\n' || c == '\t' || c == '\r' || c == ' ') {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      space = false;
      out += c;
    }
  }
  if (!password.empty()) {
    for (size_t p = out.find(password); p != std::string::npos; p = out.find(password, p + 3)) {
      out.replace(p, password.size(), "***");
    }
  }
  return out;
}

// PostgreSQL prints timestamptz with a "+00" offset in a UTC session; ParseTimestamp wants
// "+00:00".
std::string_view PgTimestampText(std::string_view text, std::string* buffer) {
  size_t n = text.size();
  if (n > 19 && (text[n - 3] == '+' || text[n - 3] == '-') && text[n - 4] >= '0' &&
      text[n - 4] <= '9') {
    *buffer = std::string(text) + ":00";
    return *buffer;
  }
  return text;
}

absl::Status AppendPgValue(const PGresult* r, int field, ChunkBuilder* b) {
  Column& col = b->column(static_cast<size_t>(field));
  if (PQgetisnull(r, 0, field)) {
    col.AppendNull();
    return absl::OkStatus();
  }
  std::string_view text(PQgetvalue(r, 0, field), static_cast<size_t>(PQgetlength(r, 0, field)));
  switch (col.type()) {
    case ColumnType::kInt64: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || end != text.data() + text.size()) break;
      col.AppendInt(v);
      return absl::OkStatus();
    }
    case ColumnType::kFloat64: {
      double v = 0;
      if (text == "NaN") {
        v = std::nan("");
      } else if (text == "Infinity") {
        v = std::numeric_limits<double>::infinity();
      } else if (text == "-Infinity") {
        v = -std::numeric_limits<double>::infinity();
      } else {
        auto [end, ec] = fast_float::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size()) break;
      }
      col.AppendDouble(v);
      return absl::OkStatus();
    }
    case ColumnType::kBool:
      if (text != "t" && text != "f") break;
      col.AppendBool(text == "t");
      return absl::OkStatus();
    case ColumnType::kTimestamp: {
      std::string buffer;
      std::optional<int64_t> micros = ParseTimestamp(PgTimestampText(text, &buffer));
      if (!micros) break;
      col.AppendInt(*micros);
      return absl::OkStatus();
    }
    case ColumnType::kString:
      col.AppendString(text);
      return absl::OkStatus();
  }
  return Mismatch(col, b->row_number(), fmt::format("{}", Shown(text)));
}

struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultCloser>;

class PostgresSource : public SqlSource {
 public:
  PostgresSource(PGconn* conn, std::string describe)
      : conn_(conn), describe_(std::move(describe)) {}
  ~PostgresSource() override { PQfinish(conn_); }
  PostgresSource(const PostgresSource&) = delete;
  PostgresSource& operator=(const PostgresSource&) = delete;

  std::string describe() const override { return describe_; }

  absl::Status Query(std::string_view sql, const std::map<std::string, nlohmann::json>& params,
                     const std::function<absl::Status(const Table&)>& sink,
                     size_t chunk_rows) override {
    if (chunk_rows == 0) return absl::InvalidArgumentError("chunk_rows must be at least 1");
    FERRY_ASSIGN_OR_RETURN(internal::PositionalSql positional, internal::ToPositional(sql));
    FERRY_RETURN_IF_ERROR(CheckParams(positional.names, params));
    // Every value travels as text and the server types it from its use in the statement, as if
    // it were a quoted literal — but it never becomes part of the SQL text.
    std::vector<std::optional<std::string>> texts;
    for (const std::string& name : positional.names) {
      const nlohmann::json& v = params.at(name);
      if (v.is_null()) {
        texts.emplace_back(std::nullopt);
      } else if (v.is_string()) {
        texts.emplace_back(v.get<std::string>());
      } else if (v.is_boolean()) {
        texts.emplace_back(v.get<bool>() ? "true" : "false");
      } else {
        texts.emplace_back(v.dump());
      }
    }
    std::vector<const char*> values;
    for (const auto& t : texts) values.push_back(t ? t->c_str() : nullptr);

    if (!PQsendQueryParams(conn_, positional.sql.c_str(), static_cast<int>(values.size()), nullptr,
                           values.data(), nullptr, nullptr, 0)) {
      return ServerError("cannot send the query", nullptr);
    }
    // One row per PGresult keeps memory bounded by the chunk, whatever the result's size.
    if (!PQsetSingleRowMode(conn_)) {
      Drain();
      return absl::InternalError("libpq refused single-row mode");
    }
    ChunkBuilder builder(chunk_rows, sink);
    absl::Status status;
    bool complete = false;  // the server sent the final result
    while (Result r{PQgetResult(conn_)}) {
      ExecStatusType st = PQresultStatus(r.get());
      if (!status.ok()) continue;  // draining after an error
      if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        if (!builder.has_schema()) status = SetSchema(r.get(), &builder);
        if (status.ok() && st == PGRES_SINGLE_TUPLE) status = AppendRow(r.get(), &builder);
        complete = st == PGRES_TUPLES_OK;
      } else if (st == PGRES_COMMAND_OK) {
        status = absl::InvalidArgumentError(
            "the statement returns no rows; a sql step runs one query (SELECT ...)");
        complete = true;
      } else {
        status = ServerError("the query failed", r.get());
        complete = true;
      }
      if (!status.ok() && !complete) Cancel();
    }
    FERRY_RETURN_IF_ERROR(status);
    return builder.Finish();
  }

 private:
  static absl::Status SetSchema(const PGresult* r, ChunkBuilder* b) {
    std::vector<std::string> names;
    std::vector<std::optional<ColumnType>> types;
    for (int i = 0; i < PQnfields(r); ++i) {
      names.emplace_back(PQfname(r, i));
      types.emplace_back(PgType(PQftype(r, i)));
    }
    return b->SetSchema(names, types);
  }

  static absl::Status AppendRow(const PGresult* r, ChunkBuilder* b) {
    for (int i = 0; i < PQnfields(r); ++i) FERRY_RETURN_IF_ERROR(AppendPgValue(r, i, b));
    return b->EndRow();
  }

  absl::Status ServerError(std::string_view what, const PGresult* r) const {
    std::string message =
        OneLine(r != nullptr ? PQresultErrorMessage(r) : PQerrorMessage(conn_), "");
    std::string text = fmt::format("{} on {}: {}", what, describe_, message);
    if (PQstatus(conn_) == CONNECTION_BAD) return absl::UnavailableError(text);
    return absl::InvalidArgumentError(text);
  }

  // Asks the server to stop sending rows we will not use; the results that still come are read
  // and dropped so that the connection is ready for the next query.
  void Cancel() {
    if (PGcancel* cancel = PQgetCancel(conn_)) {
      char error[256];
      PQcancel(cancel, error, sizeof error);
      PQfreeCancel(cancel);
    }
  }

  void Drain() {
    while (Result r{PQgetResult(conn_)}) {
    }
  }

  PGconn* conn_;
  std::string describe_;
};

absl::StatusOr<std::unique_ptr<SqlSource>> ConnectPostgres(const config::Connection& conn,
                                                           const ConnectOptions& opts) {
  std::string describe = StripPassword(conn.uri);
  std::string password;
  std::string credentials;  // what to check, for the message
  if (!conn.password_env.empty()) {
    const char* value = opts.getenv(conn.password_env.c_str());
    if (value == nullptr) {
      return absl::FailedPreconditionError(
          fmt::format("environment variable {} is not set{}: it holds the password "
                      "(password_env); export it before running",
                      conn.password_env, LocSuffix(conn)));
    }
    password = value;
    credentials = fmt::format("password_env {}", conn.password_env);
  } else if (!conn.password_file.empty()) {
    std::string path = AbsolutePath(conn.password_file, BaseDir(opts));
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      return absl::FailedPreconditionError(fmt::format("cannot read the password_file{}: {}",
                                                       LocSuffix(conn), text.status().message()));
    }
    password = text->substr(0, text->find('\n'));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("the password_file {}{} is empty; its first line is the password", path,
                      LocSuffix(conn)));
    }
    credentials = fmt::format("password_file {}", path);
  } else {
    credentials = "PGPASSWORD or ~/.pgpass, or password_env / password_file in ferry.yaml";
  }

  // Later keywords win over the URI's own: the session is UTC (timestamptz values arrive as UTC),
  // ISO dates, and read-only (an extraction never writes to the source).
  std::vector<const char*> keys = {"connect_timeout", "dbname", "options",
                                   "fallback_application_name"};
  std::vector<const char*> values = {
      "10", conn.uri.c_str(),
      "-c TimeZone=UTC -c DateStyle=ISO -c default_transaction_read_only=on", "ferry"};
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PGconn* pg = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (pg == nullptr) return absl::ResourceExhaustedError("libpq could not allocate a connection");
  if (PQstatus(pg) != CONNECTION_OK) {
    std::string message = OneLine(PQerrorMessage(pg), password);
    PQfinish(pg);
    return absl::UnavailableError(
        fmt::format("cannot connect to {}{}: {}; check that the server runs and the credentials "
                    "({})",
                    describe, LocSuffix(conn), message, credentials));
  }
  return std::make_unique<PostgresSource>(pg, describe);
}

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

int LineOf(std::string_view sql, size_t offset) {
  return 1 + static_cast<int>(std::count(sql.begin(), sql.begin() + offset, '\n'));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqlSource>> Connect(const config::Connection& conn,
                                                   const ConnectOptions& opts) {
  if (StartsWith(conn.uri, "sqlite://") && conn.uri.size() > 9) return ConnectSqlite(conn, opts);
  if (StartsWith(conn.uri, "postgresql://") || StartsWith(conn.uri, "postgres://")) {
    return ConnectPostgres(conn, opts);
  }
  return absl::InvalidArgumentError(fmt::format(
      "unsupported connection URI{}: use sqlite://PATH or postgresql://USER@HOST:PORT/DB",
      LocSuffix(conn)));
}

namespace internal {

// Hand-written because libpq has no named parameters (only $1..$n), and a placeholder must not
// be found inside a string, a quoted identifier, a comment or a dollar-quoted function body,
// which no regular expression gets right. It tokenizes only as far as needed for that.
absl::StatusOr<PositionalSql> ToPositional(std::string_view sql) {
  PositionalSql out;
  size_t n = sql.size();
  size_t copied = 0;  // sql[0, copied) is already in out.sql
  size_t i = 0;
  auto unterminated = [&](std::string_view what, size_t start) {
    return absl::InvalidArgumentError(
        fmt::format("unterminated {} starting at line {} of the SQL", what, LineOf(sql, start)));
  };
  while (i < n) {
    char c = sql[i];
    char next = i + 1 < n ? sql[i + 1] : '\0';
    if (c == '\'' || c == '"') {
      // '' (or "") inside is an escaped quote, which the loop reads as end + restart.
      size_t close = sql.find(c, i + 1);
      if (close == std::string_view::npos) {
        return unterminated(c == '\'' ? "string" : "quoted identifier", i);
      }
      i = close + 1;
    } else if ((c == 'E' || c == 'e') && next == '\'' && (i == 0 || !IsIdentChar(sql[i - 1]))) {
      size_t j = i + 2;
      while (j < n && sql[j] != '\'') j += sql[j] == '\\' ? 2 : 1;
      if (j >= n) return unterminated("string", i);
      i = j + 1;  // a following '' is read as a new, adjacent string
    } else if (c == '-' && next == '-') {
      size_t eol = sql.find('\n', i);
      i = eol == std::string_view::npos ? n : eol + 1;
    } else if (c == '/' && next == '*') {
      size_t start = i;
      int depth = 0;  // PostgreSQL's block comments nest
      do {
        if (i + 1 >= n) return unterminated("/* comment", start);
        if (sql[i] == '/' && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && sql[i + 1] == '/') {
          --depth;
          i += 2;
        } else {
          ++i;
        }
      } while (depth > 0);
    } else if (IsIdentStart(c)) {
      // Identifiers and keywords may contain '$' and digits; reading them whole keeps "a$b$" from
      // looking like a dollar quote.
      while (i < n && (IsIdentChar(sql[i]) || sql[i] == '$')) ++i;
    } else if (c >= '0' && c <= '9') {
      while (i < n && (IsIdentChar(sql[i]) || sql[i] == '.')) ++i;
    } else if (c == '$') {
      if (next >= '0' && next <= '9') {
        return absl::InvalidArgumentError(
            fmt::format("positional parameter ${} at line {} of the SQL: write parameters as :name",
                        next, LineOf(sql, i)));
      }
      size_t j = i + 1;
      while (j < n && IsIdentChar(sql[j])) ++j;
      if (j < n && sql[j] == '$') {
        std::string_view tag = sql.substr(i, j + 1 - i);  // "$$" or "$body$"
        size_t close = sql.find(tag, j + 1);
        if (close == std::string_view::npos) return unterminated("dollar-quoted string", i);
        i = close + tag.size();
      } else {
        ++i;
      }
    } else if (c == ':' && next == ':') {
      i += 2;  // a cast: value::type
    } else if (c == ':' && IsIdentStart(next)) {
      size_t j = i + 1;
      while (j < n && IsIdentChar(sql[j])) ++j;
      std::string name(sql.substr(i + 1, j - i - 1));
      auto it = std::find(out.names.begin(), out.names.end(), name);
      size_t number = static_cast<size_t>(it - out.names.begin()) + 1;
      if (it == out.names.end()) out.names.push_back(name);
      out.sql.append(sql.substr(copied, i - copied));
      out.sql += fmt::format("${}", number);
      copied = j;
      i = j;
    } else {
      ++i;
    }
  }
  out.sql.append(sql.substr(copied));
  return out;
}

}  // namespace internal
}  // namespace ferry::data
