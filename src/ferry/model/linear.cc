// (stub; being written)
#include "ferry/model/internal/types.h"

namespace ferry::model::internal {
namespace {
class Stub final : public ModelType {
 public:
  std::string name() const override { return "linear_regression"; }
  absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table&, const FitOptions&) const override {
    return absl::UnimplementedError("linear_regression is not built yet");
  }
  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string&) const override {
    return absl::UnimplementedError("linear_regression is not built yet");
  }
};
}  // namespace
std::unique_ptr<ModelType> MakeLinearRegression() { return std::make_unique<Stub>(); }
}  // namespace ferry::model::internal
