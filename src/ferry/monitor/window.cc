#include "ferry/monitor/window.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "ferry/audit/inference_log.h"
#include "ferry/common/status.h"
#include "ferry/monitor/internal/window_records.h"
#include "fmt/format.h"

namespace ferry::monitor {
namespace internal {
namespace {

using nlohmann::json;

// The type a column takes without a schema, from the JSON types of its values.
data::ColumnType InferType(const std::vector<const json*>& cells) {
  bool all_int = true, all_num = true, all_bool = true, any = false;
  for (const json* v : cells) {
    if (v == nullptr || v->is_null()) continue;
    any = true;
    if (!v->is_number_integer()) all_int = false;
    if (!v->is_number()) all_num = false;
    if (!v->is_boolean()) all_bool = false;
  }
  if (!any) return data::ColumnType::kString;
  if (all_int) return data::ColumnType::kInt64;
  if (all_num) return data::ColumnType::kFloat64;
  if (all_bool) return data::ColumnType::kBool;
  return data::ColumnType::kString;
}

// Appends `v` to `col` when it fits the column's type; else appends a null and returns false.
// Without a schema (`strict` false) a string column takes any value as its text.
bool AppendValue(data::Column& col, const json& v, bool strict) {
  using data::ColumnType;
  switch (col.type()) {
    case ColumnType::kInt64:
      if (v.is_number_integer()) {
        col.AppendInt(v.get<int64_t>());
        return true;
      }
      if (v.is_number_float()) {
        const double d = v.get<double>();
        if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) {
          col.AppendInt(static_cast<int64_t>(d));
          return true;
        }
      }
      break;
    case ColumnType::kFloat64:
      if (v.is_number()) {
        col.AppendDouble(v.get<double>());
        return true;
      }
      break;
    case ColumnType::kBool:
      if (v.is_boolean()) {
        col.AppendBool(v.get<bool>());
        return true;
      }
      break;
    case ColumnType::kString:
      if (v.is_string()) {
        col.AppendString(v.get_ref<const std::string&>());
        return true;
      }
      if (!strict) {
        col.AppendString(v.dump());
        return true;
      }
      break;
    case ColumnType::kTimestamp:
      if (v.is_string()) {
        if (auto t = data::ParseTimestamp(v.get_ref<const std::string&>())) {
          col.AppendInt(*t);
          return true;
        }
      }
      break;
  }
  col.AppendNull();
  return false;
}

}  // namespace

std::string ModelRef(const json& record) {
  auto it = record.find("model");
  if (it == record.end() || !it->is_object()) return "";
  const json& m = *it;
  std::string name =
      m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
  std::string version;
  if (m.contains("version")) {
    version = m["version"].is_string() ? m["version"].get<std::string>() : m["version"].dump();
  }
  return version.empty() ? name : fmt::format("{}:{}", name, version);
}

absl::StatusOr<WindowRecords> ReadWindowRecords(storage::ArtifactStore& lake,
                                                std::string_view endpoint, absl::Time from,
                                                absl::Time to) {
  if (to <= from) {
    return absl::InvalidArgumentError(
        fmt::format("inference window of '{}': the end {} is not after the start {}", endpoint,
                    absl::FormatTime(to), absl::FormatTime(from)));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                         audit::ListInferenceSegments(lake, endpoint, from, to));
  // Segments are independent: read and parse them on a few threads, keep them in order.
  std::vector<absl::StatusOr<std::vector<json>>> parsed(keys.size(), std::vector<json>{});
  const size_t threads = std::max<size_t>(
      1, std::min<size_t>(keys.size(), std::max(1u, std::thread::hardware_concurrency())));
  {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t i = next++; i < keys.size(); i = next++) {
          parsed[i] = audit::ReadInferenceSegment(lake, keys[i]);
        }
      });
    }
    for (auto& th : pool) th.join();
  }
  WindowRecords out;
  out.segments = static_cast<int64_t>(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!parsed[i].ok()) return parsed[i].status();
    std::vector<json>& records = *parsed[i];
    for (size_t r = 0; r < records.size(); ++r) {
      json& rec = records[r];
      auto it = rec.find("time");
      std::optional<int64_t> micros;
      if (it != rec.end() && it->is_string()) {
        micros = data::ParseTimestamp(it->get_ref<const std::string&>());
      }
      if (!micros) {
        return absl::DataLossError(fmt::format(
            "inference segment {} record {}: no valid \"time\" (ISO 8601 UTC expected); the "
            "segment was not written by ferry's inference log",
            keys[i], r + 1));
      }
      const absl::Time t = absl::FromUnixMicros(*micros);
      if (t < from || t >= to) continue;
      out.times.push_back(t);
      out.records.push_back(std::move(rec));
    }
  }
  return out;
}

absl::StatusOr<InferenceWindow> BuildWindow(std::string_view endpoint, absl::Time from,
                                            absl::Time to, WindowRecords in, const json& schema) {
  std::map<std::string, data::ColumnType> types;
  if (!schema.is_null()) {
    if (!schema.is_array()) {
      return absl::InvalidArgumentError(
          "input schema: expected a list of {name, type} (model.json input_schema)");
    }
    for (const json& f : schema) {
      if (!f.is_object() || !f.contains("name") || !f["name"].is_string() || !f.contains("type") ||
          !f["type"].is_string()) {
        return absl::InvalidArgumentError(fmt::format(
            "input schema: entry {} is not {{\"name\": ..., \"type\": ...}}", f.dump()));
      }
      FERRY_ASSIGN_OR_RETURN(data::ColumnType t, data::ParseTypeName(f["type"].get<std::string>()));
      types[f["name"].get<std::string>()] = t;
    }
  }
  InferenceWindow w;
  w.endpoint = std::string(endpoint);
  w.from = from;
  w.to = to;
  w.segments = in.segments;
  const size_t n = in.records.size();
  w.transaction_ids.reserve(n);
  w.variants.reserve(n);
  w.modes.reserve(n);
  w.models.reserve(n);
  w.outputs.reserve(n);
  w.times = std::move(in.times);

  // Column name -> the cell of each row (nullptr when the record lacks the key).
  std::map<std::string, std::vector<const json*>> cells;
  auto text = [](const json& rec, const char* key) -> std::string {
    auto it = rec.find(key);
    return it != rec.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (size_t r = 0; r < n; ++r) {
    const json& rec = in.records[r];
    w.transaction_ids.push_back(text(rec, "transaction_id"));
    w.variants.push_back(text(rec, "variant"));
    w.modes.push_back(text(rec, "mode"));
    w.models.push_back(ModelRef(rec));
    auto inputs = rec.find("inputs");
    if (inputs == rec.end() || !inputs->is_object()) continue;
    for (auto it = inputs->begin(); it != inputs->end(); ++it) {
      auto& col = cells[it.key()];
      if (col.empty()) col.resize(n, nullptr);
      col[r] = &it.value();
    }
  }
  for (auto& [name, col_cells] : cells) {
    auto declared = types.find(name);
    const bool strict = declared != types.end();
    data::Column& col = w.inputs.AddColumn(name, strict ? declared->second : InferType(col_cells));
    col.Reserve(n);
    int64_t errors = 0;
    for (const json* v : col_cells) {
      if (v == nullptr || v->is_null()) {
        col.AppendNull();
      } else if (!AppendValue(col, *v, strict)) {
        ++errors;
      }
    }
    if (errors > 0) w.type_errors[name] = errors;
  }
  for (json& rec : in.records) {
    auto it = rec.find("outputs");
    w.outputs.push_back(it != rec.end() ? std::move(*it) : json(nullptr));
  }
  return w;
}

}  // namespace internal

absl::StatusOr<InferenceWindow> ReadInferenceWindow(storage::ArtifactStore& lake,
                                                    std::string_view endpoint, absl::Time from,
                                                    absl::Time to, const nlohmann::json& schema) {
  FERRY_ASSIGN_OR_RETURN(internal::WindowRecords records,
                         internal::ReadWindowRecords(lake, endpoint, from, to));
  return internal::BuildWindow(endpoint, from, to, std::move(records), schema);
}

}  // namespace ferry::monitor
