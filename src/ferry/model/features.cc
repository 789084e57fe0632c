#include "ferry/model/model.h"

// (stub; being written: ToFeatureMatrix, FeatureNames, ToLabels)
