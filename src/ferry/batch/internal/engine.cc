#include "ferry/batch/internal/engine.h"

#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "fast_float/fast_float.h"
#include "ferry/common/fs.h"
#include "ferry/common/parallel.h"
#include "ferry/common/status.h"
#include "ferry/data/table.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::batch::internal {
namespace {

using json = nlohmann::json;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// --- Input: a file read in blocks, zstd-decompressed on the fly when it ends in ".zst". ---

class Source {
 public:
  ~Source() {
    if (file_ != nullptr) std::fclose(file_);
    if (dctx_ != nullptr) ZSTD_freeDCtx(dctx_);
  }
  absl::Status Open(const std::string& path, bool zstd) {
    file_ = std::fopen(path.c_str(), "rb");
    if (file_ == nullptr) return ErrnoError("cannot open input", path);
    path_ = path;
    if (zstd) {
      dctx_ = ZSTD_createDCtx();
      in_.resize(ZSTD_DStreamInSize());
    }
    return absl::OkStatus();
  }
  // Appends up to about `want` bytes to *out; false at the end of the input.
  absl::StatusOr<bool> Read(std::string* out, size_t want) {
    if (dctx_ == nullptr) {
      const size_t old = out->size();
      out->resize(old + want);
      const size_t n = std::fread(out->data() + old, 1, want, file_);
      out->resize(old + n);
      bytes_read_ += static_cast<int64_t>(n);
      if (n == 0) {
        if (std::ferror(file_)) return ErrnoError("cannot read input", path_);
        return false;
      }
      return true;
    }
    const size_t start = out->size();
    while (out->size() - start < want) {
      if (in_pos_ == in_len_) {
        in_len_ = std::fread(in_.data(), 1, in_.size(), file_);
        in_pos_ = 0;
        bytes_read_ += static_cast<int64_t>(in_len_);
        if (in_len_ == 0) {
          if (std::ferror(file_)) return ErrnoError("cannot read input", path_);
          if (!frame_done_) {
            return absl::InvalidArgumentError(
                fmt::format("{}: the zstd data is truncated (the file ends inside a frame); "
                            "re-create or re-copy the file",
                            path_));
          }
          return out->size() > start;
        }
      }
      const size_t old = out->size();
      out->resize(old + ZSTD_DStreamOutSize());
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer o{out->data() + old, ZSTD_DStreamOutSize(), 0};
      const size_t r = ZSTD_decompressStream(dctx_, &o, &in);
      if (ZSTD_isError(r)) {
        return absl::InvalidArgumentError(
            fmt::format("{}: not valid zstd data ({}); is the file really compressed with zstd?",
                        path_, ZSTD_getErrorName(r)));
      }
      frame_done_ = r == 0;
      in_pos_ = in.pos;
      out->resize(old + o.pos);
    }
    return true;
  }
  int64_t bytes_read() const { return bytes_read_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<char> in_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool frame_done_ = true;
  int64_t bytes_read_ = 0;
};

// --- Output: a local file, zstd-compressed on the fly when it ends in ".zst". ---

class Sink {
 public:
  ~Sink() {
    if (file_ != nullptr) std::fclose(file_);
    if (cctx_ != nullptr) ZSTD_freeCCtx(cctx_);
  }
  absl::Status Open(const std::string& path) {
    file_ = std::fopen(path.c_str(), "wb");
    if (file_ == nullptr) return ErrnoError("cannot create output", path);
    path_ = path;
    if (EndsWith(path, ".zst")) {
      cctx_ = ZSTD_createCCtx();
      ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, 3);
      buf_.resize(ZSTD_CStreamOutSize());
    }
    return absl::OkStatus();
  }
  absl::Status Write(std::string_view data) { return Stream(data, ZSTD_e_continue); }
  absl::Status Close() {
    FERRY_RETURN_IF_ERROR(Stream({}, ZSTD_e_end));
    std::FILE* f = file_;
    file_ = nullptr;
    if (std::fflush(f) != 0 || std::fclose(f) != 0) return ErrnoError("cannot write", path_);
    return absl::OkStatus();
  }

 private:
  absl::Status Stream(std::string_view data, ZSTD_EndDirective mode) {
    if (cctx_ == nullptr) {
      if (!data.empty() && std::fwrite(data.data(), 1, data.size(), file_) != data.size()) {
        return ErrnoError("cannot write", path_);
      }
      return absl::OkStatus();
    }
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (true) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      const size_t r = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(r)) {
        return absl::InternalError(
            fmt::format("{}: zstd compression failed: {}", path_, ZSTD_getErrorName(r)));
      }
      if (out.pos > 0 && std::fwrite(buf_.data(), 1, out.pos, file_) != out.pos) {
        return ErrnoError("cannot write", path_);
      }
      const bool done = mode == ZSTD_e_end ? r == 0 : in.pos == in.size;
      if (done) return absl::OkStatus();
    }
  }

  std::FILE* file_ = nullptr;
  std::string path_;
  ZSTD_CCtx* cctx_ = nullptr;
  std::vector<char> buf_;
};

// --- Chunks: whole rows of the input, cut at row ends. ---

struct BadRowOut {
  int64_t line;
  std::string reason;
  std::string_view text;
};

struct Chunk {
  std::string text;        // whole rows, each ending in '\n' (the last one maybe not)
  int64_t first_line = 0;  // the file's line number of the first byte, 1-based
  int64_t rows = 0;        // non-blank rows (counted by the worker)
  // Filled by the worker.
  std::string out;
  std::vector<BadRowOut> bad;
  std::vector<std::string> log_lines;
  std::vector<absl::Time> log_times;
  std::vector<std::string> classes;  // of the predictions (classification)
  absl::Status status;
};

// Cuts the reader's buffer into chunks at row ends. CSV rows may hold newlines inside quotes.
class Chunker {
 public:
  Chunker(Source& source, Format format, size_t chunk_rows, size_t chunk_bytes)
      : source_(source), format_(format), chunk_rows_(chunk_rows), chunk_bytes_(chunk_bytes) {}

  void set_next_line(int64_t line) { next_line_ = line; }

  // The header line (CSV): the first row, without its line end; false for an empty file.
  absl::StatusOr<bool> ReadHeader(std::string* header) {
    while (true) {
      size_t end = RowEnd(0);
      if (end != std::string::npos) {
        *header = buf_.substr(0, end);
        buf_.erase(0, end + 1);
        next_line_ = 2 + ExtraNewlines(*header);
        break;
      }
      FERRY_ASSIGN_OR_RETURN(bool more, source_.Read(&buf_, 1 << 20));
      if (!more) {
        if (buf_.empty()) return false;
        *header = std::move(buf_);
        buf_.clear();
        next_line_ = 2;
        break;
      }
    }
    while (!header->empty() && header->back() == '\r') header->pop_back();
    return true;
  }

  // The next chunk; false when the input is exhausted.
  absl::StatusOr<bool> Next(Chunk* chunk) {
    size_t pos = 0, rows = 0, lines = 0;
    while (true) {
      while (rows < chunk_rows_ && pos < buf_.size()) {
        size_t end = RowEnd(pos);
        if (end == std::string::npos) break;
        lines += 1 + ExtraNewlines(std::string_view(buf_).substr(pos, end - pos));
        pos = end + 1;
        ++rows;
        if (pos >= chunk_bytes_) break;
      }
      if (rows >= chunk_rows_ || (pos >= chunk_bytes_ && rows > 0) || eof_) break;
      FERRY_ASSIGN_OR_RETURN(bool more,
                             source_.Read(&buf_, std::min<size_t>(chunk_bytes_, 4 << 20)));
      if (!more) eof_ = true;
    }
    if (eof_ && rows < chunk_rows_ && pos < buf_.size())
      pos = buf_.size();  // a last row without '\n'
    if (pos == 0) return false;
    chunk->text.assign(buf_, 0, pos);
    buf_.erase(0, pos);
    chunk->first_line = next_line_;
    next_line_ += static_cast<int64_t>(lines);
    chunk->rows = 0;
    chunk->out.clear();
    chunk->bad.clear();
    chunk->log_lines.clear();
    chunk->log_times.clear();
    chunk->classes.clear();
    chunk->status = absl::OkStatus();
    return true;
  }

 private:
  // The index of the '\n' ending the row that starts at `pos`, or npos when it is not in buf_.
  size_t RowEnd(size_t pos) const {
    const char* base = buf_.data();
    size_t from = pos;
    while (true) {
      const void* nl = std::memchr(base + from, '\n', buf_.size() - from);
      if (nl == nullptr) return std::string::npos;
      const size_t end = static_cast<const char*>(nl) - base;
      if (format_ == Format::kJsonl || !OddQuotes(pos, end)) return end;
      from = end + 1;  // the newline is inside a quoted field
    }
  }
  bool OddQuotes(size_t from, size_t to) const {
    size_t n = 0;
    const char* p = buf_.data() + from;
    const char* e = buf_.data() + to;
    while ((p = static_cast<const char*>(std::memchr(p, '"', e - p))) != nullptr) {
      ++n;
      ++p;
    }
    return n % 2 == 1;
  }
  static size_t ExtraNewlines(std::string_view row) {
    return static_cast<size_t>(std::count(row.begin(), row.end(), '\n'));
  }

  Source& source_;
  Format format_;
  size_t chunk_rows_, chunk_bytes_;
  std::string buf_;
  bool eof_ = false;
  int64_t next_line_ = 1;
};

// --- CSV fields ---

// Splits one CSV row (no line end) into fields; quoted fields are unquoted into *scratch (which
// must not reallocate while the views are used: it is reserved to the row's size). False for an
// unterminated quote.
bool SplitCsv(std::string_view row, std::vector<std::string_view>* fields, std::string* scratch) {
  fields->clear();
  scratch->clear();
  scratch->reserve(row.size());
  size_t i = 0;
  while (true) {
    if (i < row.size() && row[i] == '"') {
      const size_t start = scratch->size();
      ++i;
      while (true) {
        if (i >= row.size()) return false;
        if (row[i] == '"') {
          if (i + 1 < row.size() && row[i + 1] == '"') {
            scratch->push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        scratch->push_back(row[i++]);
      }
      fields->emplace_back(scratch->data() + start, scratch->size() - start);
      if (i < row.size() && row[i] != ',') return false;
    } else {
      const void* comma = std::memchr(row.data() + i, ',', row.size() - i);
      const size_t end = comma ? static_cast<const char*>(comma) - row.data() : row.size();
      fields->push_back(row.substr(i, end - i));
      i = end;
    }
    if (i >= row.size()) return true;
    ++i;  // the comma
    if (i == row.size()) {
      fields->emplace_back();
      return true;
    }
  }
}

bool IsNullText(std::string_view s) {
  return s.empty() || s == "NA" || s == "N/A" || s == "null" || s == "NULL" || s == "None";
}

// Appends `s` quoted when it needs to be (RFC 4180).
void AppendCsvText(std::string* out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendDouble(std::string* out, double v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

struct Cell {
  bool null = true;
  int64_t i = 0;
  double d = 0;
  std::string_view s;
};

// Parses one CSV field as `type`; the reason when it is not one.
std::optional<std::string> ParseCell(std::string_view f, data::ColumnType type, Cell* cell) {
  cell->null = IsNullText(f);
  if (cell->null) return std::nullopt;
  const char* b = f.data();
  const char* e = b + f.size();
  switch (type) {
    case data::ColumnType::kFloat64: {
      if (*b == '+') ++b;
      auto r = fast_float::from_chars(b, e, cell->d);
      if (r.ec == std::errc() && r.ptr == e) return std::nullopt;
      break;
    }
    case data::ColumnType::kInt64: {
      auto r = std::from_chars(b, e, cell->i);
      if (r.ec == std::errc() && r.ptr == e) return std::nullopt;
      double d = 0;
      auto rd = fast_float::from_chars(b, e, d);
      if (rd.ec == std::errc() && rd.ptr == e && std::nearbyint(d) == d && std::abs(d) < 9.2e18) {
        cell->i = static_cast<int64_t>(d);
        return std::nullopt;
      }
      break;
    }
    case data::ColumnType::kBool:
      if (f == "true" || f == "True" || f == "TRUE" || f == "1") {
        cell->i = 1;
        return std::nullopt;
      }
      if (f == "false" || f == "False" || f == "FALSE" || f == "0") {
        cell->i = 0;
        return std::nullopt;
      }
      break;
    case data::ColumnType::kString:
      cell->s = f;
      return std::nullopt;
    case data::ColumnType::kTimestamp:
      if (std::optional<int64_t> ts = data::ParseTimestamp(f)) {
        cell->i = *ts;
        return std::nullopt;
      }
      break;
  }
  return fmt::format("'{}' is not {}", f.substr(0, 60), data::TypeName(type));
}

void AppendCell(data::Column& col, const Cell& c) {
  if (c.null) {
    col.AppendNull();
    return;
  }
  switch (col.type()) {
    case data::ColumnType::kFloat64:
      col.AppendDouble(c.d);
      break;
    case data::ColumnType::kString:
      col.AppendString(c.s);
      break;
    default:
      col.AppendInt(c.i);
  }
}

// The time of a row for the log: ISO 8601 or unix seconds.
std::optional<absl::Time> ParseRowTime(std::string_view s) {
  if (std::optional<int64_t> us = data::ParseTimestamp(s)) return absl::FromUnixMicros(*us);
  double secs = 0;
  auto r = fast_float::from_chars(s.data(), s.data() + s.size(), secs);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size() && std::isfinite(secs)) {
    return absl::FromUnixMicros(static_cast<int64_t>(std::llround(secs * 1e6)));
  }
  return std::nullopt;
}

json CellJson(const data::Column& c, size_t r) {
  if (c.is_null(r)) return nullptr;
  switch (c.type()) {
    case data::ColumnType::kInt64:
      return c.int_at(r);
    case data::ColumnType::kFloat64:
      return c.float_at(r);
    case data::ColumnType::kBool:
      return c.int_at(r) != 0;
    case data::ColumnType::kString:
      return std::string(c.string_at(r));
    case data::ColumnType::kTimestamp:
      return data::FormatTimestamp(c.int_at(r));
  }
  return nullptr;
}

// --- The per-file engine ---

struct SchemaCol {
  std::string name;
  data::ColumnType type;
  int field = -1;  // CSV: the header's index; -1 = absent (an optional input: nulls)
};

class Engine {
 public:
  Engine(const model::Bundle& bundle, const ScoreFileOptions& o, Format format)
      : bundle_(bundle), o_(o), format_(format) {
    model_label_ = fmt::format("{}:{}", o.model_name, o.model_version);
    std::random_device rd;
    seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }

  absl::Status Init() {
    const json& schema = bundle_.meta.contains("input_schema") ? bundle_.meta["input_schema"]
                                                               : bundle_.meta["features"];
    for (const json& c : schema) {
      FERRY_ASSIGN_OR_RETURN(data::ColumnType type,
                             data::ParseTypeName(c.value("type", std::string("float64"))));
      schema_.push_back({c.value("name", ""), type});
    }
    if (bundle_.model == nullptr) {
      return absl::FailedPreconditionError(fmt::format(
          "model {} is not a built-in type that runs in-process (type {}); batch scoring needs "
          "one of the built-in types",
          model_label_, bundle_.meta.value("type", std::string("?"))));
    }
    const model::Task task = bundle_.model->task();
    regression_ = task == model::Task::kRegression;
    return absl::OkStatus();
  }

  // CSV: maps the schema onto the header.
  absl::Status BindHeader(std::string_view header) {
    std::string scratch;
    std::vector<std::string_view> names;
    if (!SplitCsv(header, &names, &scratch)) {
      return absl::InvalidArgumentError(
          fmt::format("{}:1: the header row has an unterminated quote", o_.display));
    }
    header_fields_ = names.size();
    const std::vector<std::string> optional = model::OptionalInputs(bundle_.meta);
    for (SchemaCol& c : schema_) {
      auto it = std::find(names.begin(), names.end(), c.name);
      if (it != names.end()) {
        c.field = static_cast<int>(it - names.begin());
      } else if (std::find(optional.begin(), optional.end(), c.name) == optional.end()) {
        return absl::FailedPreconditionError(fmt::format(
            "{}: no column '{}' in the header; model {} needs the columns of its input schema "
            "({})",
            o_.display, c.name, model_label_, SchemaNames()));
      }
    }
    if (o_.log != nullptr && !o_.time_column.empty()) {
      auto it = std::find(names.begin(), names.end(), o_.time_column);
      if (it == names.end()) {
        return absl::FailedPreconditionError(
            fmt::format("{}: no time column '{}' in the header (the job's time_column)", o_.display,
                        o_.time_column));
      }
      time_field_ = static_cast<int>(it - names.begin());
    }
    return absl::OkStatus();
  }

  // The header of a CSV output: the input's, then the new fields. `classes` come with the first
  // predictions; for a file without any scored row, from a prediction on no rows (or none).
  std::string OutputHeader(std::string_view header, std::vector<std::string> classes) const {
    if (!regression_ && classes.empty()) {
      data::Table empty;
      for (const SchemaCol& c : schema_) empty.AddColumn(c.name, c.type);
      absl::StatusOr<model::Predictions> p = Score(std::move(empty));
      if (p.ok()) classes = p->classes;
    }
    std::string out(header);
    out += ",prediction";
    if (!regression_) {
      for (const std::string& c : classes) {
        out.push_back(',');
        AppendCsvText(&out, "probability_" + c);
      }
    }
    out += ",transaction_id,model\n";
    return out;
  }

  // Parses, scores and formats one chunk; sets chunk->status on a failure of the whole file.
  void Process(Chunk* chunk, int64_t chunk_seq) {
    data::Table table;
    table.mutable_columns().reserve(schema_.size());
    for (const SchemaCol& c : schema_) table.AddColumn(c.name, c.type).Reserve(65536);
    std::vector<std::string_view> raws;  // good rows, raw bytes without the line end
    std::vector<int64_t> lines;
    std::vector<absl::Time> times;
    const bool want_time = o_.log != nullptr && !o_.time_column.empty();

    std::string_view text = chunk->text;
    int64_t line = chunk->first_line;
    std::vector<std::string_view> fields;
    std::string scratch;
    std::vector<Cell> cells(schema_.size());
    json objects = json::array();
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = pos;
      if (format_ == Format::kJsonl) {
        end = text.find('\n', pos);
      } else {
        bool q = false;
        for (end = pos; end < text.size(); ++end) {
          const char ch = text[end];
          if (ch == '"') q = !q;
          if (ch == '\n' && !q) break;
        }
      }
      if (end == std::string_view::npos) end = text.size();
      std::string_view row = text.substr(pos, end - pos);
      const int64_t row_line = line;
      line += 1 + std::count(row.begin(), row.end(), '\n');
      pos = end + 1;
      while (!row.empty() && (row.back() == '\r' || row.back() == ' ' || row.back() == '\t')) {
        row.remove_suffix(1);
      }
      if (row.empty()) continue;
      ++chunk->rows;
      if (format_ == Format::kCsv) {
        if (!SplitCsv(row, &fields, &scratch)) {
          chunk->bad.push_back({row_line, "unterminated quote", row});
          continue;
        }
        if (fields.size() != header_fields_) {
          chunk->bad.push_back(
              {row_line, fmt::format("expected {} fields, found {}", header_fields_, fields.size()),
               row});
          continue;
        }
        std::optional<std::string> reason;
        for (size_t c = 0; c < schema_.size() && !reason; ++c) {
          if (schema_[c].field < 0) {
            cells[c].null = true;
            continue;
          }
          if (auto r = ParseCell(fields[schema_[c].field], schema_[c].type, &cells[c])) {
            reason = fmt::format("column '{}': {}", schema_[c].name, *r);
          }
        }
        std::optional<absl::Time> t;
        if (!reason && want_time) {
          t = ParseRowTime(fields[time_field_]);
          if (!t) {
            reason = fmt::format("column '{}': '{}' is not a time (ISO 8601 or unix seconds)",
                                 o_.time_column, fields[time_field_].substr(0, 60));
          }
        }
        if (reason) {
          chunk->bad.push_back({row_line, std::move(*reason), row});
          continue;
        }
        for (size_t c = 0; c < schema_.size(); ++c) AppendCell(table.mutable_column(c), cells[c]);
        if (want_time) times.push_back(*t);
      } else {
        json obj = json::parse(row, nullptr, /*allow_exceptions=*/false);
        if (!obj.is_object()) {
          chunk->bad.push_back({row_line, "not a JSON object", row});
          continue;
        }
        std::optional<absl::Time> t;
        if (want_time) {
          auto it = obj.find(o_.time_column);
          if (it != obj.end() && it->is_string()) t = ParseRowTime(it->get<std::string>());
          if (it != obj.end() && it->is_number()) {
            t = absl::FromUnixMicros(std::llround(it->get<double>() * 1e6));
          }
          if (!t) {
            chunk->bad.push_back(
                {row_line,
                 fmt::format("field '{}': not a time (ISO 8601 or unix seconds)", o_.time_column),
                 row});
            continue;
          }
        }
        // The serving code path: one instance through InstancesToTable, so a bad value is
        // reported for its own row.
        absl::StatusOr<data::Table> one = model::InstancesToTable(json::array({obj}), SchemaJson());
        if (!one.ok()) {
          std::string msg(one.status().message());
          if (msg.rfind("instances[0].", 0) == 0) msg = "field " + msg.substr(13);
          chunk->bad.push_back({row_line, std::move(msg), row});
          continue;
        }
        for (size_t c = 0; c < schema_.size(); ++c) {
          table.mutable_column(c).AppendColumn(one->column(c));
        }
        if (want_time) times.push_back(*t);
      }
      raws.push_back(row);
      lines.push_back(row_line);
    }

    if (raws.empty()) return;
    // Score: the chunk at once; when the model refuses it, row by row to find the bad ones.
    std::vector<uint8_t> keep(raws.size(), 1);
    absl::StatusOr<model::Predictions> pred = Score(table);
    if (!pred.ok()) {
      for (size_t r = 0; r < raws.size(); ++r) {
        absl::StatusOr<model::Predictions> p1 = Score(table.Take({r}));
        if (!p1.ok()) {
          keep[r] = 0;
          chunk->bad.push_back({lines[r], std::string(p1.status().message()), raws[r]});
        }
      }
      std::sort(chunk->bad.begin(), chunk->bad.end(),
                [](const BadRowOut& a, const BadRowOut& b) { return a.line < b.line; });
      table = table.Filter(keep);
      pred = Score(table);
      if (!pred.ok()) {
        chunk->status = absl::Status(
            pred.status().code(), fmt::format("{}: lines {}-{}: {}", o_.display, chunk->first_line,
                                              line - 1, pred.status().message()));
        return;
      }
    }
    const model::Predictions& p = *pred;
    chunk->classes = p.classes;

    // Format: the raw row, then the new fields.
    const int64_t now_ms = absl::ToUnixMillis(o_.clock->Now());
    uint64_t state = seed_ ^ (static_cast<uint64_t>(chunk_seq) * 0x9E3779B97F4A7C15ULL);
    chunk->out.reserve(chunk->text.size() + raws.size() * (60 + 24 * p.classes.size()));
    std::string& out = chunk->out;
    char uuid[36];
    size_t k = 0;  // index into the scored table
    for (size_t r = 0; r < raws.size(); ++r) {
      if (!keep[r]) continue;
      FormatUuidV7(now_ms, &state, uuid);
      std::string_view id(uuid, 36);
      if (format_ == Format::kCsv) {
        out.append(raws[r]);
        out.push_back(',');
        if (regression_) {
          AppendDouble(&out, p.values[k]);
        } else {
          AppendCsvText(&out, p.classes[p.ArgMax(k)]);
          for (size_t c = 0; c < p.classes.size(); ++c) {
            out.push_back(',');
            AppendDouble(&out, p.Probability(k, c));
          }
        }
        out.push_back(',');
        out.append(id);
        out.push_back(',');
        AppendCsvText(&out, model_label_);
        out.push_back('\n');
      } else {
        std::string_view raw = raws[r];
        raw.remove_suffix(raw.size() - raw.rfind('}'));
        out.append(raw);
        bool empty = true;
        for (char ch : raw.substr(1)) {
          if (ch != ' ' && ch != '\t') {
            empty = false;
            break;
          }
        }
        out.append(empty ? "\"prediction\":" : ",\"prediction\":");
        if (regression_) {
          AppendDouble(&out, p.values[k]);
        } else {
          out.append(json(p.classes[p.ArgMax(k)]).dump());
          for (size_t c = 0; c < p.classes.size(); ++c) {
            out.append(",");
            out.append(json("probability_" + p.classes[c]).dump());
            out.push_back(':');
            AppendDouble(&out, p.Probability(k, c));
          }
        }
        out.append(",\"transaction_id\":\"");
        out.append(id);
        out.append("\",\"model\":");
        out.append(json(model_label_).dump());
        out.append("}\n");
      }
      if (o_.log != nullptr) {
        const absl::Time at = times.empty() ? absl::FromUnixMillis(now_ms) : times[r];
        chunk->log_lines.push_back(LogLine(id, at, table, k, p));
        chunk->log_times.push_back(at);
      }
      ++k;
    }
  }

  int64_t bad_total = 0;

 private:
  absl::StatusOr<model::Predictions> Score(data::Table table) const {
    FERRY_ASSIGN_OR_RETURN(data::Table features,
                           model::PrepareFeatures(bundle_.meta, std::move(table)));
    return bundle_.model->Predict(features);
  }

  const json& SchemaJson() const {
    return bundle_.meta.contains("input_schema") ? bundle_.meta["input_schema"]
                                                 : bundle_.meta["features"];
  }

  std::string SchemaNames() const {
    std::vector<std::string> n;
    for (const SchemaCol& c : schema_) n.push_back(c.name);
    return fmt::format("{}", fmt::join(n, ", "));
  }

  std::string LogLine(std::string_view id, absl::Time at, const data::Table& table, size_t k,
                      const model::Predictions& p) const {
    json inputs = json::object();
    for (const data::Column& c : table.columns()) inputs[c.name()] = CellJson(c, k);
    json outputs;
    if (regression_) {
      outputs = {{"value", p.values[k]}};
    } else {
      json probs = json::object();
      for (size_t c = 0; c < p.classes.size(); ++c) probs[p.classes[c]] = p.Probability(k, c);
      outputs = {{"label", p.classes[p.ArgMax(k)]}, {"probabilities", std::move(probs)}};
    }
    json rec = {{"transaction_id", id},
                {"row", 0},
                {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone())},
                {"endpoint", o_.log_endpoint},
                {"variant", "batch"},
                {"mode", "batch"},
                {"model", {{"name", o_.model_name}, {"version", o_.model_version}}},
                {"inputs", std::move(inputs)},
                {"outputs", std::move(outputs)},
                {"latency_ms", 0}};
    return rec.dump();
  }

  const model::Bundle& bundle_;
  const ScoreFileOptions& o_;
  Format format_;
  std::string model_label_;
  std::vector<SchemaCol> schema_;
  size_t header_fields_ = 0;
  int time_field_ = -1;
  bool regression_ = false;
  uint64_t seed_ = 0;
};

}  // namespace

absl::StatusOr<Format> FormatOf(std::string_view name, bool* zstd) {
  *zstd = EndsWith(name, ".zst");
  std::string_view base = *zstd ? name.substr(0, name.size() - 4) : name;
  if (EndsWith(base, ".csv")) return Format::kCsv;
  if (EndsWith(base, ".jsonl") || EndsWith(base, ".ndjson")) return Format::kJsonl;
  return absl::InvalidArgumentError(
      fmt::format("{}: unknown input format; batch inputs end in .csv or .jsonl (.ndjson), "
                  "optionally followed by .zst",
                  name));
}

void FormatUuidV7(int64_t unix_ms, uint64_t* state, char* out) {
  auto next = [state] {  // splitmix64
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  const uint64_t r = next();
  const uint64_t hi = (static_cast<uint64_t>(unix_ms) << 16) | 0x7000 | (r & 0x0FFF);
  const uint64_t lo = (next() & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  int o = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 8 || i == 12) out[o++] = '-';
    out[o++] = kHex[(hi >> (60 - 4 * i)) & 0xF];
  }
  for (int i = 0; i < 16; ++i) {
    if (i == 0 || i == 4) out[o++] = '-';
    out[o++] = kHex[(lo >> (60 - 4 * i)) & 0xF];
  }
}

absl::StatusOr<ScoreFileStats> ScoreFile(const model::Bundle& bundle, const ScoreFileOptions& o) {
  bool zstd = false;
  FERRY_ASSIGN_OR_RETURN(Format format, FormatOf(o.input_path, &zstd));
  Engine engine(bundle, o, format);
  FERRY_RETURN_IF_ERROR(engine.Init());
  Source source;
  FERRY_RETURN_IF_ERROR(source.Open(o.input_path, zstd));
  const size_t chunk_rows = std::max<size_t>(o.chunk_rows, 1);
  Chunker chunker(source, format, chunk_rows, std::max<size_t>(o.chunk_bytes, 1024));
  Sink out;
  FERRY_RETURN_IF_ERROR(out.Open(o.output_path));
  std::unique_ptr<Sink> quarantine;

  std::string header;
  if (format == Format::kCsv) {
    FERRY_ASSIGN_OR_RETURN(bool any, chunker.ReadHeader(&header));
    if (!any) {
      return absl::InvalidArgumentError(
          fmt::format("{}: the file is empty; a CSV input needs a header row", o.display));
    }
    FERRY_RETURN_IF_ERROR(engine.BindHeader(header));
  }
  bool header_written = format != Format::kCsv;

  const int threads = ThreadCount(o.threads);
  const size_t wave_size = static_cast<size_t>(threads) * 2;
  std::vector<Chunk> wave(wave_size);
  ScoreFileStats stats;
  int64_t seq = 0;
  int64_t log_pending = 0;
  bool eof = false;
  while (!eof) {
    size_t n = 0;
    while (n < wave_size) {
      FERRY_ASSIGN_OR_RETURN(bool got, chunker.Next(&wave[n]));
      if (!got) {
        eof = true;
        break;
      }
      ++n;
    }
    if (n == 0) break;
    ParallelFor(n, threads, [&](size_t i) { engine.Process(&wave[i], seq + i); });
    seq += static_cast<int64_t>(n);
    int64_t buffered = 0;
    for (size_t i = 0; i < n; ++i) buffered += wave[i].rows;
    stats.peak_buffered_rows = std::max(stats.peak_buffered_rows, buffered);
    for (size_t i = 0; i < n; ++i) {
      Chunk& c = wave[i];
      FERRY_RETURN_IF_ERROR(c.status);
      if (!header_written && (!c.classes.empty() || c.rows > static_cast<int64_t>(c.bad.size()))) {
        FERRY_RETURN_IF_ERROR(out.Write(engine.OutputHeader(header, c.classes)));
        header_written = true;
      }
      FERRY_RETURN_IF_ERROR(out.Write(c.out));
      stats.rows += c.rows;
      stats.bad += static_cast<int64_t>(c.bad.size());
      stats.scored += c.rows - static_cast<int64_t>(c.bad.size());
      if (!c.bad.empty()) {
        if (quarantine == nullptr) {
          quarantine = std::make_unique<Sink>();
          FERRY_RETURN_IF_ERROR(quarantine->Open(o.quarantine_path));
          FERRY_RETURN_IF_ERROR(quarantine->Write("line,reason,text\n"));
        }
        std::string q;
        for (const BadRowOut& b : c.bad) {
          q += std::to_string(b.line);
          q.push_back(',');
          AppendCsvText(&q, b.reason);
          q.push_back(',');
          AppendCsvText(&q, b.text);
          q.push_back('\n');
        }
        FERRY_RETURN_IF_ERROR(quarantine->Write(q));
        if (stats.bad > o.policy.max_bad_rows) {
          FERRY_RETURN_IF_ERROR(quarantine->Close());
          return absl::InvalidArgumentError(fmt::format(
              "{}: more than {} bad rows (line {}: {}); see the quarantine file for each "
              "line and reason, fix the input or raise the job's max_bad_rows",
              o.display, o.policy.max_bad_rows, c.bad.front().line, c.bad.front().reason));
        }
      }
      if (o.log != nullptr) {
        const int64_t cap = static_cast<int64_t>(1 << 18);
        for (size_t l = 0; l < c.log_lines.size(); ++l) {
          if (log_pending >= cap / 2) {
            FERRY_RETURN_IF_ERROR(o.log->Flush());
            log_pending = 0;
          }
          o.log->Append(std::move(c.log_lines[l]), c.log_times[l]);
          ++log_pending;
        }
      }
      c.text = std::string();
      c.out = std::string();
    }
    if (o.on_progress) o.on_progress(source.bytes_read(), stats.rows);
  }
  if (!header_written) FERRY_RETURN_IF_ERROR(out.Write(engine.OutputHeader(header, {})));
  if (quarantine != nullptr) FERRY_RETURN_IF_ERROR(quarantine->Close());
  if (stats.rows > 0 && static_cast<double>(stats.bad) >
                            o.policy.max_bad_fraction * static_cast<double>(stats.rows)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} of {} rows are bad ({:.2f}%, more than the job's max_bad_fraction {}); see the "
        "quarantine file for each line and reason",
        o.display, stats.bad, stats.rows, 100.0 * stats.bad / stats.rows,
        o.policy.max_bad_fraction));
  }
  FERRY_RETURN_IF_ERROR(out.Close());
  return stats;
}

}  // namespace ferry::batch::internal
