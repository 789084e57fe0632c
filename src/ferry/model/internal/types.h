#pragma once
// The factories of the built-in model types, one per file; model.cc lists them.

#include <memory>

#include "ferry/model/model.h"

namespace ferry::model::internal {

std::unique_ptr<ModelType> MakeLinearRegression();    // linear.cc
std::unique_ptr<ModelType> MakeLogisticRegression();  // logistic.cc
std::unique_ptr<ModelType> MakeXgboost();             // xgboost_model.cc

}  // namespace ferry::model::internal
