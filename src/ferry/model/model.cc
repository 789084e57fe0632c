#include "ferry/model/model.h"

#include <algorithm>

#include "ferry/model/internal/types.h"

namespace ferry::model {
namespace {

const std::vector<std::unique_ptr<ModelType>>& Types() {
  static const auto* types = [] {
    auto* v = new std::vector<std::unique_ptr<ModelType>>();
    // One line per built-in type; each type is one file.
    v->push_back(internal::MakeLinearRegression());
    v->push_back(internal::MakeLogisticRegression());
    v->push_back(internal::MakeXgboost());
    return v;
  }();
  return *types;
}

}  // namespace

std::string_view TaskName(Task t) {
  switch (t) {
    case Task::kBinary:
      return "binary";
    case Task::kMulticlass:
      return "multiclass";
    case Task::kRegression:
      return "regression";
  }
  return "?";
}

std::optional<Task> ParseTaskName(std::string_view name) {
  for (Task t : {Task::kBinary, Task::kMulticlass, Task::kRegression}) {
    if (TaskName(t) == name) return t;
  }
  return std::nullopt;
}

double Predictions::Score(size_t row) const {
  if (classes.empty()) return values[row];
  return values[row * classes.size() + classes.size() - 1];
}

double Predictions::Probability(size_t row, size_t class_index) const {
  return values[row * classes.size() + class_index];
}

size_t Predictions::ArgMax(size_t row) const {
  const double* p = values.data() + row * classes.size();
  return static_cast<size_t>(std::max_element(p, p + classes.size()) - p);
}

const ModelType* FindModelType(std::string_view name) {
  for (const auto& t : Types()) {
    if (t->name() == name) return t.get();
  }
  return nullptr;
}

std::vector<std::string> ModelTypeNames() {
  std::vector<std::string> out;
  for (const auto& t : Types()) out.push_back(t->name());
  return out;
}

}  // namespace ferry::model
