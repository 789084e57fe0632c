#include "ferry/monitor/labels.h"

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/strings.h"
#include "ferry/data/csv.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "zstd.h"

namespace ferry::monitor {
namespace {

using nlohmann::json;

struct LabelRow {
  std::string id, label;
  size_t line = 0;
};

std::string LabelText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number()) return fmt::format("{}", v.get<double>());
  return v.dump();
}

absl::StatusOr<std::vector<LabelRow>> ReadJsonl(std::string_view text, const std::string& path,
                                                const std::string& id_column,
                                                const std::string& label_column) {
  std::vector<LabelRow> rows;
  size_t line_no = 0;
  for (std::string_view line : SplitAny(text, "\n")) {
    ++line_no;
    line = TrimSpace(line);
    if (line.empty()) continue;
    json obj = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!obj.is_object()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}:{}: not a JSON object (a JSONL labels file has one object a line)", path, line_no));
    }
    auto id = obj.find(id_column);
    auto label = obj.find(label_column);
    if (id == obj.end() || id->is_null() || LabelText(*id).empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}:{}: no id in \"{}\"; every row needs the transaction id of its prediction", path,
          line_no, id_column));
    }
    if (label == obj.end() || label->is_null() || LabelText(*label).empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: no label in \"{}\"; drop rows whose outcome is not known yet", path,
                      line_no, label_column));
    }
    rows.push_back({LabelText(*id), LabelText(*label), line_no});
  }
  return rows;
}

absl::StatusOr<std::vector<LabelRow>> ReadCsv(std::string_view text, const std::string& path,
                                              const std::string& id_column,
                                              const std::string& label_column) {
  data::CsvReadOptions opts;
  opts.types = {{id_column, data::ColumnType::kString}, {label_column, data::ColumnType::kString}};
  opts.threads = 1;
  FERRY_ASSIGN_OR_RETURN(data::CsvReadResult csv, data::ReadCsvString(text, opts, path));
  const data::Column* id = csv.table.Find(id_column);
  const data::Column* label = csv.table.Find(label_column);
  if (id == nullptr || label == nullptr) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: no column \"{}\"; the columns found: {} (choose them with --id-column and --label)",
        path, id == nullptr ? id_column : label_column,
        absl::StrJoin(csv.table.ColumnNames(), ", ")));
  }
  std::vector<LabelRow> rows;
  rows.reserve(csv.table.num_rows());
  for (size_t r = 0; r < csv.table.num_rows(); ++r) {
    const size_t line = r + 2;  // the header is line 1
    if (id->is_null(r)) {
      return absl::InvalidArgumentError(fmt::format(
          "{}:{}: no id in \"{}\"; every row needs the transaction id of its prediction", path,
          line, id_column));
    }
    if (label->is_null(r)) {
      return absl::InvalidArgumentError(
          fmt::format("{}:{}: no label in \"{}\"; drop rows whose outcome is not known yet", path,
                      line, label_column));
    }
    rows.push_back({std::string(id->string_at(r)), std::string(label->string_at(r)), line});
  }
  return rows;
}

absl::StatusOr<std::string> Compress(std::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  if (ZSTD_isError(n)) {
    return absl::InternalError(
        fmt::format("zstd compression of labels failed: {}", ZSTD_getErrorName(n)));
  }
  out.resize(n);
  return out;
}

}  // namespace

absl::StatusOr<LabelIngest> IngestLabels(storage::ArtifactStore& lake, std::string_view endpoint,
                                         const std::string& path, const std::string& id_column,
                                         const std::string& label_column, const Clock& clock) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, storage::layout::LabelsDir(endpoint));
  if (id_column.empty() || label_column.empty()) {
    return absl::InvalidArgumentError(
        "labels: name both the id column and the label column (--id-column, --label)");
  }
  FERRY_ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  std::string_view name = path;
  if (name.ends_with(".zst")) {
    FERRY_ASSIGN_OR_RETURN(raw, data::ZstdDecompress(raw, path));
    name.remove_suffix(4);
  }
  const bool jsonl =
      name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json");
  FERRY_ASSIGN_OR_RETURN(std::vector<LabelRow> rows,
                         jsonl ? ReadJsonl(raw, path, id_column, label_column)
                               : ReadCsv(raw, path, id_column, label_column));
  if (rows.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: no labels in the file; nothing to ingest", path));
  }
  // Within a file the last row of an id wins; keep the first position so the output is in order.
  std::unordered_map<std::string, size_t> index;
  std::vector<LabelRow> unique;
  LabelIngest result;
  for (LabelRow& row : rows) {
    auto [it, inserted] = index.try_emplace(row.id, unique.size());
    if (inserted) {
      unique.push_back(std::move(row));
    } else {
      ++result.duplicates;
      unique[it->second].label = std::move(row.label);
    }
  }
  const absl::Time now = clock.Now();
  const std::string at = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone());
  std::string body;
  for (const LabelRow& row : unique) {
    body += json{{"transaction_id", row.id}, {"label", row.label}, {"ingested_at", at}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
    body += '\n';
  }
  FERRY_ASSIGN_OR_RETURN(std::string compressed, Compress(body));
  std::random_device rd;
  const std::string key =
      fmt::format("{}/{}-{:06x}.jsonl.zst", dir,
                  absl::FormatTime("%Y%m%dT%H%M%SZ", now, absl::UTCTimeZone()), rd() & 0xffffff);
  FERRY_RETURN_IF_ERROR(lake.Put(key, compressed));
  result.key = key;
  result.rows = static_cast<int64_t>(unique.size());
  return result;
}

absl::StatusOr<std::unordered_map<std::string, std::string>> ReadLabels(
    storage::ArtifactStore& lake, std::string_view endpoint) {
  FERRY_ASSIGN_OR_RETURN(std::string dir, storage::layout::LabelsDir(endpoint));
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, lake.List(dir + "/"));
  std::sort(keys.begin(), keys.end());  // names start with the ingest time: later ones win
  std::unordered_map<std::string, std::string> labels;
  for (const std::string& key : keys) {
    if (!std::string_view(key).ends_with(".jsonl.zst")) continue;
    FERRY_ASSIGN_OR_RETURN(std::string compressed, lake.Get(key));
    FERRY_ASSIGN_OR_RETURN(std::string text, data::ZstdDecompress(compressed, key));
    size_t line_no = 0;
    for (std::string_view line : SplitAny(text, "\n")) {
      if (line.empty()) continue;
      ++line_no;
      json obj = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!obj.is_object() || !obj.contains("transaction_id") ||
          !obj["transaction_id"].is_string() || !obj.contains("label") ||
          !obj["label"].is_string()) {
        return absl::DataLossError(fmt::format(
            "labels object {} line {}: not {{\"transaction_id\", \"label\"}}; re-ingest the "
            "labels file and delete this object",
            key, line_no));
      }
      labels[obj["transaction_id"].get<std::string>()] = obj["label"].get<std::string>();
    }
  }
  return labels;
}

}  // namespace ferry::monitor
