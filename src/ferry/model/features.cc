// The feature matrix and the labels shared by the built-in model types (see model.h).
//
// Feature columns may be int64, float64 or bool (0/1). A string column must be one-hot encoded
// first and a timestamp cast to a number; a null or a non-finite value (NaN, inf) must be imputed
// first: every error names the column and the transform that fixes it.
//
// Classification targets may be int64, bool, string, or float64 holding only integral values;
// classes are sorted (numerically for numbers, false < true for bools, byte order for strings)
// and named as text: "0"/"1", "false"/"true", "basic"/"plus".

#include <algorithm>
#include <cmath>

#include "ferry/common/status.h"
#include "ferry/model/internal/linear_model.h"
#include "ferry/model/model.h"

namespace ferry::model {
namespace {

// Rows copied per column before moving to the next one, so that writes to the row-major matrix
// stay in cache.
constexpr size_t kRowBlock = 2048;

absl::Status CheckFeatureColumn(const data::Column& col) {
  switch (col.type()) {
    case data::ColumnType::kString:
      return absl::InvalidArgumentError(fmt::format(
          "column '{}' is text; one-hot encode it first (transform: one_hot)", col.name()));
    case data::ColumnType::kTimestamp:
      return absl::InvalidArgumentError(
          fmt::format("column '{}' is a timestamp; drop it (transform: drop) or cast it to a "
                      "number first (transform: cast)",
                      col.name()));
    default:
      break;
  }
  if (size_t nulls = col.null_count(); nulls > 0) {
    return absl::InvalidArgumentError(
        fmt::format("column '{}' has {} null{}; impute it first (transform: impute)", col.name(),
                    nulls, nulls == 1 ? "" : "s"));
  }
  if (col.type() == data::ColumnType::kFloat64) {
    size_t bad = 0;
    for (double v : col.doubles()) bad += !std::isfinite(v);
    if (bad > 0) {
      return absl::InvalidArgumentError(fmt::format(
          "column '{}' has {} NaN or infinite value{}; replace them first (transform: impute)",
          col.name(), bad, bad == 1 ? "" : "s"));
    }
  }
  return absl::OkStatus();
}

std::string JoinQuoted(const std::vector<std::string>& names, size_t max_names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max_names; ++i) {
    out += fmt::format("{}'{}'", i == 0 ? "" : ", ", names[i]);
  }
  if (names.size() > max_names) out += fmt::format(" and {} more", names.size() - max_names);
  return out;
}

// The columns `names` of `table`; InvalidArgument names every missing one.
absl::StatusOr<std::vector<const data::Column*>> FindColumns(
    const data::Table& table, const std::vector<std::string>& names) {
  std::vector<const data::Column*> cols;
  std::vector<std::string> missing;
  cols.reserve(names.size());
  size_t next = 0;  // features mostly come in the table's order: each found at once
  for (const std::string& name : names) {
    const std::optional<size_t> i = table.IndexOf(name, next);
    cols.push_back(i ? &table.column(*i) : nullptr);
    if (i) {
      next = *i + 1;
    } else {
      missing.push_back(name);
    }
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(fmt::format("missing feature column{} {}; the model uses {}",
                                                  missing.size() == 1 ? "" : "s",
                                                  JoinQuoted(missing, 10), JoinQuoted(names, 20)));
  }
  return cols;
}

}  // namespace

std::vector<std::string> FeatureNames(const data::Table& table, const std::string& target) {
  std::vector<std::string> names;
  for (const data::Column& c : table.columns()) {
    if (c.name() != target) names.push_back(c.name());
  }
  return names;
}

absl::StatusOr<FeatureMatrix> ToFeatureMatrix(const data::Table& table,
                                              const std::vector<std::string>& names) {
  FERRY_ASSIGN_OR_RETURN(std::vector<const data::Column*> cols, FindColumns(table, names));
  for (const data::Column* c : cols) FERRY_RETURN_IF_ERROR(CheckFeatureColumn(*c));
  FeatureMatrix m{.names = names, .rows = table.num_rows()};
  const size_t d = names.size();
  m.values.resize(m.rows * d);
  for (size_t begin = 0; begin < m.rows; begin += kRowBlock) {
    const size_t end = std::min(m.rows, begin + kRowBlock);
    for (size_t j = 0; j < d; ++j) {
      const data::Column& c = *cols[j];
      double* out = m.values.data() + j;
      if (c.type() == data::ColumnType::kFloat64) {
        const double* in = c.doubles().data();
        for (size_t i = begin; i < end; ++i) out[i * d] = in[i];
      } else {
        const int64_t* in = c.ints().data();
        for (size_t i = begin; i < end; ++i) out[i * d] = static_cast<double>(in[i]);
      }
    }
  }
  return m;
}

namespace internal {

absl::StatusOr<FeatureColumns> ToFeatureColumns(const data::Table& table,
                                                const std::vector<std::string>& names,
                                                int threads) {
  FERRY_ASSIGN_OR_RETURN(std::vector<const data::Column*> cols, FindColumns(table, names));
  FeatureColumns out{.rows = table.num_rows()};
  out.columns.resize(names.size());
  out.owned.resize(names.size());
  std::vector<absl::Status> status(names.size());
  ForEachRowBlock(names.size(), names.size(), threads, [&](size_t j, size_t, size_t) {
    status[j] = CheckFeatureColumn(*cols[j]);
    if (!status[j].ok()) return;
    if (cols[j]->type() == data::ColumnType::kFloat64) {
      out.columns[j] = cols[j]->doubles().data();
    } else {
      const std::vector<int64_t>& in = cols[j]->ints();
      out.owned[j].assign(in.begin(), in.end());
      out.columns[j] = out.owned[j].data();
    }
  });
  for (absl::Status& s : status) FERRY_RETURN_IF_ERROR(s);
  return out;
}

}  // namespace internal

absl::StatusOr<Labels> ToLabels(const data::Table& table, const std::string& target) {
  const data::Column* col = table.Find(target);
  if (col == nullptr) {
    return absl::InvalidArgumentError(fmt::format("no target column '{}' in the table", target));
  }
  if (size_t nulls = col->null_count(); nulls > 0) {
    return absl::InvalidArgumentError(
        fmt::format("target column '{}' has {} null{}; drop those rows first (transform: filter)",
                    target, nulls, nulls == 1 ? "" : "s"));
  }
  const size_t n = col->size();
  Labels labels;
  labels.index.resize(n);
  switch (col->type()) {
    case data::ColumnType::kInt64:
    case data::ColumnType::kBool:
    case data::ColumnType::kFloat64: {
      std::vector<int64_t> values(n);
      if (col->type() == data::ColumnType::kFloat64) {
        for (size_t i = 0; i < n; ++i) {
          double v = col->float_at(i);
          // 2^53: beyond it a double does not tell neighbouring integers apart.
          if (!(std::fabs(v) <= 9007199254740992.0) || v != std::trunc(v)) {
            return absl::InvalidArgumentError(fmt::format(
                "target column '{}' has the non-integral value {} (row {}); a classification "
                "target needs classes: integers, booleans or strings (or use a regression model)",
                target, v, i + 1));
          }
          values[i] = static_cast<int64_t>(v);
        }
      } else {
        values = col->ints();
      }
      // Targets have few classes: collect them by a scan, sort the whole column only if not.
      std::vector<int64_t> unique;
      for (int64_t v : values) {
        if (std::find(unique.begin(), unique.end(), v) != unique.end()) continue;
        unique.push_back(v);
        if (unique.size() > 64) {
          unique = values;
          break;
        }
      }
      std::sort(unique.begin(), unique.end());
      unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
      for (int64_t v : unique) {
        if (col->type() == data::ColumnType::kBool) {
          labels.classes.push_back(v != 0 ? "true" : "false");
        } else {
          labels.classes.push_back(std::to_string(v));
        }
      }
      for (size_t i = 0; i < n; ++i) {
        labels.index[i] = static_cast<int>(
            std::lower_bound(unique.begin(), unique.end(), values[i]) - unique.begin());
      }
      break;
    }
    case data::ColumnType::kString: {
      // Codes index the column's dictionary; only values that occur become classes.
      const std::vector<std::string>& dict = col->dictionary();
      std::vector<uint8_t> seen(dict.size(), 0);
      for (int32_t c : col->codes()) seen[static_cast<size_t>(c)] = 1;
      std::vector<int32_t> order;
      for (size_t c = 0; c < dict.size(); ++c) {
        if (seen[c]) order.push_back(static_cast<int32_t>(c));
      }
      std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return dict[static_cast<size_t>(a)] < dict[static_cast<size_t>(b)];
      });
      std::vector<int> class_of(dict.size(), -1);
      for (size_t k = 0; k < order.size(); ++k) {
        class_of[static_cast<size_t>(order[k])] = static_cast<int>(k);
        labels.classes.push_back(dict[static_cast<size_t>(order[k])]);
      }
      for (size_t i = 0; i < n; ++i) {
        labels.index[i] = class_of[static_cast<size_t>(col->code_at(i))];
      }
      break;
    }
    case data::ColumnType::kTimestamp:
      return absl::InvalidArgumentError(fmt::format(
          "target column '{}' is a timestamp; a classification target needs integers, booleans "
          "or strings",
          target));
  }
  return labels;
}

}  // namespace ferry::model
