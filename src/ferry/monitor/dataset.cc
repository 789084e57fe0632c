#include "ferry/monitor/dataset.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "ferry/common/status.h"
#include "ferry/monitor/labels.h"
#include "ferry/monitor/window.h"
#include "fmt/format.h"

namespace ferry::monitor {
namespace {

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

absl::StatusOr<data::Table> InferenceDataset(storage::ArtifactStore& lake,
                                             std::string_view endpoint, absl::Time from,
                                             absl::Time to, bool join_labels,
                                             const std::string& label_name) {
  FERRY_ASSIGN_OR_RETURN(InferenceWindow w,
                         ReadInferenceWindow(lake, endpoint, from, to, nlohmann::json(nullptr)));
  for (const char* added : {"transaction_id", "time", "model"}) {
    if (w.inputs.Find(added) != nullptr) {
      return absl::InvalidArgumentError(fmt::format(
          "inference log of '{}': an input is named '{}', like a column the dataset adds; rename "
          "the feature",
          endpoint, added));
    }
  }
  if (join_labels &&
      (label_name.empty() || w.inputs.Find(label_name) != nullptr ||
       label_name == "transaction_id" || label_name == "time" || label_name == "model")) {
    return absl::InvalidArgumentError(fmt::format(
        "inference_log: label column name '{}' is empty or collides with an input or an added "
        "column (transaction_id, time, model); choose another label name",
        label_name));
  }
  std::unordered_map<std::string, std::string> labels;
  if (join_labels) {
    FERRY_ASSIGN_OR_RETURN(labels, ReadLabels(lake, endpoint));
  }
  // Shadow records repeat the live records' inputs: one row per served input.
  std::vector<size_t> rows;
  std::vector<const std::string*> row_labels;
  for (size_t r = 0; r < w.times.size(); ++r) {
    if (w.modes[r] == "shadow") continue;
    if (join_labels) {
      auto it = labels.find(w.transaction_ids[r]);
      if (it == labels.end()) continue;
      row_labels.push_back(&it->second);
    }
    rows.push_back(r);
  }
  if (join_labels && rows.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "inference log of '{}': none of the {} records in the window has a label; ingest "
        "outcomes with `ferry labels {} --input FILE --id-column transaction_id --label COLUMN`",
        endpoint, w.times.size(), endpoint));
  }
  data::Table t = w.inputs.num_columns() > 0 ? w.inputs.Take(rows) : data::Table();
  for (const char* added : {"transaction_id", "model"}) {
    t.AddColumn(added, data::ColumnType::kString).Reserve(rows.size());
  }
  t.AddColumn("time", data::ColumnType::kTimestamp).Reserve(rows.size());
  for (size_t r : rows) {
    t.FindMutable("transaction_id")->AppendString(w.transaction_ids[r]);
    t.FindMutable("time")->AppendInt(absl::ToUnixMicros(w.times[r]));
    t.FindMutable("model")->AppendString(w.models[r]);
  }
  if (join_labels) {
    bool all_int = true, all_num = true;
    for (const std::string* l : row_labels) {
      if (all_int && !ParseInt(*l)) all_int = false;
      if (all_num && !ParseDouble(*l)) all_num = false;
    }
    data::Column& label = t.AddColumn(label_name, all_int   ? data::ColumnType::kInt64
                                                  : all_num ? data::ColumnType::kFloat64
                                                            : data::ColumnType::kString);
    for (const std::string* l : row_labels) {
      if (all_int) {
        label.AppendInt(*ParseInt(*l));
      } else if (all_num) {
        label.AppendDouble(*ParseDouble(*l));
      } else {
        label.AppendString(*l);
      }
    }
  }
  return t;
}

}  // namespace ferry::monitor
