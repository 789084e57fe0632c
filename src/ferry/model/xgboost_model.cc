// (stub; being written)
#include "ferry/model/internal/types.h"

namespace ferry::model::internal {
namespace {
class Stub final : public ModelType {
 public:
  std::string name() const override { return "xgboost"; }
  absl::StatusOr<std::unique_ptr<Model>> Fit(const data::Table&, const FitOptions&) const override {
    return absl::UnimplementedError("xgboost is not built yet");
  }
  absl::StatusOr<std::unique_ptr<Model>> Load(const std::string&) const override {
    return absl::UnimplementedError("xgboost is not built yet");
  }
};
}  // namespace
std::unique_ptr<ModelType> MakeXgboost() { return std::make_unique<Stub>(); }
}  // namespace ferry::model::internal
