#pragma once
// Transform: the built-in preprocessing behind the `transform` pipeline step. A transform is an
// ordered list of ops (select, drop, rename, cast, filter, impute, one_hot, standardize, min_max,
// split) given as JSON. FitTransform learns each op's parameters from a Table and applies them;
// the fitted state is a self-describing JSON document that ApplyTransform re-applies to new rows
// at serving or batch-scoring time, so that training and serving compute the same features.
// All functions are pure (no I/O, no globals) and safe to call from several threads at once.
//
// Op reference (the `ops:` list of the step, converted from YAML to JSON):
//   select: [a, b]                 keep these columns, in this order
//   drop: [a]                      remove columns
//   rename: {old: new}             renames are simultaneous ({a: b, b: a} swaps)
//   cast: {col: float64}           int64/float64/string/bool/timestamp (and ParseTypeName aliases);
//                                  a value that does not convert is an error naming its row; an
//                                  empty string becomes a null
//   filter: "x >= 0 and p != 'a'"  keep the rows where the expression holds (training only)
//   impute: {col: mean|median|mode|{constant: v}}
//                                  fills nulls; mean/median need int64, float64 or timestamp
//                                  columns and turn int64 into float64; mode (ties: smallest
//                                  value) and constant keep the type
//   one_hot: [col] or {col: {max_categories: k}}
//                                  replaces col by float64 0/1 columns "col=<category>" in sorted
//                                  category order (numeric order for int64/bool columns); with a
//                                  cap, the k most frequent categories (ties: smallest) plus
//                                  "col=__other__"; a null row is all zeros
//   standardize: [col]             (x - mean) / std, population std; std 0 gives 0; float64 out
//   min_max: [col]                 (x - min) / (max - min); max == min gives 0; float64 out
//   split: {test: 0.2, seed: 7, stratify: col}
//                                  train/test rows (training only), see FitTransform
// Statistics skip nulls and NaN; nulls stay null (impute first) and NaN stays NaN.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(std::vector<TransformOp> ops, ParseOps(step_json["ops"]));
//   FERRY_ASSIGN_OR_RETURN(TransformResult fitted, FitTransform(ops, std::move(table)));
//   // ... store fitted.state next to the model; at serving time:
//   FERRY_ASSIGN_OR_RETURN(Table features,
//                          ApplyTransform(fitted.state, std::move(request_rows),
//                                         {.optional_columns = {"churned"}}));

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::data {

// The parsed form of a filter expression (defined in transform.cc).
struct FilterExpr;

// One column's settings inside an op.
struct TransformColumn {
  std::string name;
  std::string rename_to;                     // rename
  ColumnType cast_to = ColumnType::kString;  // cast
  std::string strategy;                      // impute: mean, median, mode or constant
  nlohmann::json constant;                   // impute constant (a scalar)
  int64_t max_categories = 0;                // one_hot: 0 = no cap
};

struct TransformOp {
  std::string kind;     // "select", "drop", ..., "split"
  nlohmann::json args;  // the op's value as written
  // Parsed and checked form (only the fields of `kind` are set).
  std::vector<TransformColumn> columns;      // every kind but filter and split
  std::string expression;                    // filter
  std::shared_ptr<const FilterExpr> filter;  // filter
  double test_fraction = 0;                  // split: in (0, 1)
  uint64_t seed = 0;                         // split: default 0
  std::string stratify;                      // split: "" = not stratified
};

// [{"name": ..., "type": ...}] of every column of `t`, in order: the schema form of the fitted
// state's input_columns / output_columns, dataset manifests and model bundles.
nlohmann::json TableSchema(const Table& t);

// Parses and checks `ops` (a JSON array of one-key objects). InvalidArgument lists every problem
// found, one a line, each naming the op as "ops[2] (one_hot): ..." with how to fix it. Checks
// that need the data (column names and types) happen in FitTransform.
absl::StatusOr<std::vector<TransformOp>> ParseOps(const nlohmann::json& ops);

struct TransformResult {
  Table train;                // all rows when there is no split op
  std::optional<Table> test;  // set by a split op
  // Where each output row came from: the 0-based index, in the `input` given to FitTransform, of
  // each row of `train` (all rows reaching the end, also without a split) and of each row of
  // `test` (empty without a split), in the parts' order. Filters, before or after the split, are
  // accounted for. So `input.Take(test_input_rows)` are the raw rows that became `test`, and
  // ApplyTransform(state, those rows) reproduces `test` exactly: the rows a serving-parity check
  // sends through the serving path.
  std::vector<size_t> train_input_rows;
  std::vector<size_t> test_input_rows;
  // The fitted state, for ApplyTransform:
  //   {"version": 1,
  //    "input_columns": [{"name": "tenure", "type": "int64"}, ...],
  //    "ops": [{"select": [...]}, {"impute": {"tenure": {"strategy": "median", "value": 12.0}}},
  //            {"one_hot": {"plan": {"categories": ["basic", "pro"], "other": false}}},
  //            {"standardize": {"charges": {"mean": 50.5, "std": 12.25}}},
  //            {"min_max": {"tenure": {"min": 0, "max": 72}}},
  //            {"filter": "..."}, {"split": {"test": 0.2, "seed": 7, "stratify": "churned",
  //                                          "train_rows": 80, "test_rows": 20}}, ...],
  //    "output_columns": [{"name": ..., "type": ...}, ...]}
  // One entry per op, in order; keys of JSON objects are sorted, so the text is stable.
  nlohmann::json state;
};

// Fits the ops on `input` in order, each op seeing the previous op's output, and applies them.
// Ops before a split are fitted on all rows (that reach them). The split op then divides the
// rows, and every op after it is fitted on the train part only and applied to both parts, so
// that no statistic of the test rows leaks into the features (at most one split op).
//
// Split algorithm (reproducible in any language): one std::mt19937_64 seeded with `seed`; the
// row indices (per class, classes in sorted order of their text with the null class first, when
// stratified) are shuffled by Fisher-Yates: for i = m-1 down to 1, j = rng() mod (i+1), swap
// rows i and j; the first round(test * m) shuffled rows (half away from zero) go to the test
// part. Both parts keep the original row order. InvalidArgument when a part would be empty.
//
// Errors name the op ("ops[3] (impute): ...") and, for values, the row (1-based, counted among
// the rows reaching the op, of the train or test part).
absl::StatusOr<TransformResult> FitTransform(const std::vector<TransformOp>& ops, Table input);

struct ApplyOptions {
  // Columns that may be absent from the input (e.g. the target at serving time): ops skip them
  // and they are absent from the output. Renamed columns keep their optional status.
  std::set<std::string> optional_columns;
};

// Re-applies a fitted state to new rows: the same select/drop/rename/cast, impute with the fitted
// values, one-hot with the frozen categories (an unseen category gives all zeros, or __other__
// when capped), standardize/min_max with the fitted parameters. filter and split are training
// only and skipped, so output row i is input row i. Input columns are first converted to the
// types they had at fit time (e.g. int64 -> float64; a value that does not convert is an error)
// and input columns the transform was not fitted with are dropped. A missing column that an op
// or the output needs, and that is not optional, is InvalidArgument naming it (all at once).
absl::StatusOr<Table> ApplyTransform(const nlohmann::json& state, Table input,
                                     const ApplyOptions& opts = {});

}  // namespace ferry::data
