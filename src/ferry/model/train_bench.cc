// train_bench: the training path of a built-in model, end to end in one process, as
// bench/train.sh times it against scikit-learn and Python's xgboost: read a CSV (ReadCsvFile,
// one thread per core), split it into train and test rows, fit a model type (FindModelType ->
// Fit), predict the test rows and score them (ToLabels, Classify). Prints one JSON line on
// stdout:
//   {"model": "xgboost", "rows": 1000000, "train_rows": ..., "test_rows": ...,
//    "read_seconds": ..., "split_seconds": ..., "fit_seconds": ..., "predict_seconds": ...,
//    "metrics_seconds": ..., "total_seconds": ..., "auc": ..., "log_loss": ...}
// (seconds by its own steady clock; total from the start of main to the metrics). A binary
// target only: the figures are a binary classifier's. Exits 2 with a message on stderr when
// anything fails.
//
// The split: by default the transform library's split op, [{"split": {"test": 0.2, "seed":
// SEED}}]. With --test-column C, the rows whose integer or bool column C is non-zero are the
// test rows and C is dropped from both parts before fitting: bench/train.sh uses that so that
// ferry and the Python baselines score exactly the same test rows.
//
// Example:
//   train_bench --model logistic_regression --target y data.csv
//   train_bench --model xgboost --target y --test-column is_test --threads 2
//       --hyperparameters '{"n_estimators": 100, "max_depth": 6}' data.csv   (one line)

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/data/table.h"
#include "ferry/data/transform.h"
#include "ferry/model/metrics.h"
#include "ferry/model/model.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr char kUsage[] =
    "usage: train_bench --model logistic_regression|xgboost --target COLUMN\n"
    "                   [--hyperparameters JSON] [--seed N] [--threads N]\n"
    "                   [--test-column COLUMN] file.csv[.zst]\n";

struct Args {
  std::string model;
  std::string target;
  json hyperparameters = json::object();
  uint64_t seed = 0;
  int threads = 0;  // 0 = one per core
  std::string test_column;
  std::string path;
};

absl::StatusOr<uint64_t> ParseUnsigned(std::string_view flag, std::string_view text) {
  uint64_t v = 0;
  if (text.empty() || text.size() > 18) {
    return absl::InvalidArgumentError(
        fmt::format("{} must be a non-negative integer; got '{}'", flag, text));
  }
  for (char c : text) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(
          fmt::format("{} must be a non-negative integer; got '{}'", flag, text));
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (!a.starts_with("--")) {
      if (!args.path.empty()) {
        return absl::InvalidArgumentError(
            fmt::format("one CSV file only; got '{}' and '{}'", args.path, a));
      }
      args.path = a;
      continue;
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(fmt::format("{} needs a value", a));
    std::string_view v = argv[++i];
    if (a == "--model") {
      args.model = v;
    } else if (a == "--target") {
      args.target = v;
    } else if (a == "--test-column") {
      args.test_column = v;
    } else if (a == "--hyperparameters") {
      args.hyperparameters = json::parse(v, nullptr, /*allow_exceptions=*/false);
      if (!args.hyperparameters.is_object()) {
        return absl::InvalidArgumentError(fmt::format(
            "--hyperparameters must be a JSON object such as '{{\"max_depth\": 6}}'; got '{}'", v));
      }
    } else if (a == "--seed") {
      FERRY_ASSIGN_OR_RETURN(args.seed, ParseUnsigned(a, v));
    } else if (a == "--threads") {
      FERRY_ASSIGN_OR_RETURN(uint64_t t, ParseUnsigned(a, v));
      if (t > 1024) return absl::InvalidArgumentError("--threads must be at most 1024");
      args.threads = static_cast<int>(t);
    } else {
      return absl::InvalidArgumentError(fmt::format("unknown flag '{}'", a));
    }
  }
  if (args.model.empty() || args.target.empty() || args.path.empty()) {
    return absl::InvalidArgumentError("--model, --target and a CSV file are required");
  }
  if (ferry::model::FindModelType(args.model) == nullptr) {
    std::string names;
    for (const std::string& n : ferry::model::ModelTypeNames()) {
      names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
    }
    return absl::InvalidArgumentError(
        fmt::format("unknown model type '{}'; the built-in types are {}", args.model, names));
  }
  return args;
}

struct Split {
  ferry::data::Table train;
  ferry::data::Table test;
};

// The test rows are those whose column `name` (int64 or bool, no nulls) is non-zero; the column
// is removed from both parts.
absl::StatusOr<Split> SplitByColumn(ferry::data::Table table, const std::string& name) {
  const ferry::data::Column* col = table.Find(name);
  if (col == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("--test-column '{}' is not a column of the file", name));
  }
  if ((col->type() != ferry::data::ColumnType::kInt64 &&
       col->type() != ferry::data::ColumnType::kBool) ||
      col->null_count() > 0) {
    return absl::InvalidArgumentError(fmt::format(
        "--test-column '{}' must be an integer or bool column without nulls (1 = test row)", name));
  }
  std::vector<uint8_t> is_test(col->size()), is_train(col->size());
  for (size_t r = 0; r < col->size(); ++r) {
    is_test[r] = col->int_at(r) != 0;
    is_train[r] = !is_test[r];
  }
  table.RemoveColumn(name);
  Split s{.train = table.Filter(is_train), .test = table.Filter(is_test)};
  if (s.train.num_rows() == 0 || s.test.num_rows() == 0) {
    return absl::InvalidArgumentError(
        fmt::format("--test-column '{}' leaves {} train and {} test rows; both need some", name,
                    s.train.num_rows(), s.test.num_rows()));
  }
  return s;
}

// The transform library's split op: 20% of the rows, shuffled with `seed`.
absl::StatusOr<Split> SplitByOp(ferry::data::Table table, uint64_t seed) {
  FERRY_ASSIGN_OR_RETURN(
      std::vector<ferry::data::TransformOp> ops,
      ferry::data::ParseOps(json::array({{{"split", {{"test", 0.2}, {"seed", seed}}}}})));
  FERRY_ASSIGN_OR_RETURN(ferry::data::TransformResult r,
                         ferry::data::FitTransform(ops, std::move(table)));
  FERRY_CHECK(r.test.has_value());
  return Split{.train = std::move(r.train), .test = std::move(*r.test)};
}

absl::StatusOr<json> Run(const Args& args) {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const Clock::time_point t0 = Clock::now();
  FERRY_ASSIGN_OR_RETURN(ferry::data::CsvReadResult read,
                         ferry::data::ReadCsvFile(args.path, {.threads = args.threads}));
  const size_t rows = read.table.num_rows();
  const Clock::time_point t1 = Clock::now();
  Split split;
  if (args.test_column.empty()) {
    FERRY_ASSIGN_OR_RETURN(split, SplitByOp(std::move(read.table), args.seed));
  } else {
    FERRY_ASSIGN_OR_RETURN(split, SplitByColumn(std::move(read.table), args.test_column));
  }
  const Clock::time_point t2 = Clock::now();
  const ferry::model::ModelType* type = ferry::model::FindModelType(args.model);
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<ferry::model::Model> model,
                         type->Fit(split.train, {.target = args.target,
                                                 .hyperparameters = args.hyperparameters,
                                                 .seed = args.seed,
                                                 .threads = args.threads}));
  const Clock::time_point t3 = Clock::now();
  FERRY_ASSIGN_OR_RETURN(ferry::model::Predictions p, model->Predict(split.test));
  const Clock::time_point t4 = Clock::now();
  if (p.task != ferry::model::Task::kBinary) {
    return absl::InvalidArgumentError(
        fmt::format("the target '{}' is not binary ({} model); train_bench reports a binary "
                    "classifier's AUC and log loss",
                    args.target, ferry::model::TaskName(p.task)));
  }
  FERRY_ASSIGN_OR_RETURN(ferry::model::Labels labels,
                         ferry::model::ToLabels(split.test, args.target));
  // The test part may lack a class of the train part: score against the model's classes.
  std::vector<int> y(labels.index.size());
  for (size_t r = 0; r < y.size(); ++r) {
    const std::string& name = labels.classes[labels.index[r]];
    if (name != p.classes[0] && name != p.classes[1]) {
      return absl::InvalidArgumentError(
          fmt::format("test row {} has the class '{}', which no train row has", r + 1, name));
    }
    y[r] = name == p.classes[1] ? 1 : 0;
  }
  FERRY_ASSIGN_OR_RETURN(ferry::model::ClassificationMetrics m, ferry::model::Classify(y, p));
  const Clock::time_point t5 = Clock::now();
  return json{{"model", args.model},
              {"rows", rows},
              {"train_rows", split.train.num_rows()},
              {"test_rows", split.test.num_rows()},
              {"read_seconds", seconds(t1 - t0)},
              {"split_seconds", seconds(t2 - t1)},
              {"fit_seconds", seconds(t3 - t2)},
              {"predict_seconds", seconds(t4 - t3)},
              {"metrics_seconds", seconds(t5 - t4)},
              {"total_seconds", seconds(t5 - t0)},
              {"auc", m.roc_auc},
              {"log_loss", m.log_loss}};
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(argc, argv);
  if (!args.ok()) {
    std::fprintf(stderr, "train_bench: %s\n%s", std::string(args.status().message()).c_str(),
                 kUsage);
    return 2;
  }
  absl::StatusOr<json> out = Run(*args);
  if (!out.ok()) {
    std::fprintf(stderr, "train_bench: %s: %s\n", args->path.c_str(),
                 std::string(out.status().message()).c_str());
    return 2;
  }
  std::printf("%s\n", out->dump().c_str());
  return 0;
}
