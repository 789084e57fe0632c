#pragma once
// Train like you serve: a window of the inference log as a training table — exactly the features
// serving saw — optionally joined with the ingested labels. What the `inference_log` pipeline step
// commits as a dataset version. Pure function of the lake's content.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(data::Table t, InferenceDataset(lake, "churn", from, to,
//                                                          /*join_labels=*/true, "churned"));

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/data/table.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::monitor {

// The window's rows (shadow records left out: their inputs are the live records' inputs) as a
// table: the inputs as served (types inferred), plus transaction_id (string), time (timestamp),
// model (string "churn:7") and, when join_labels, the label column (named `label_name`; numeric
// when every label is a number, else string; rows without a label dropped). InvalidArgument when
// `label_name` collides with an input or a added column; FailedPrecondition when join_labels and
// no row has a label (names the `ferry labels` command).
absl::StatusOr<data::Table> InferenceDataset(storage::ArtifactStore& lake,
                                             std::string_view endpoint, absl::Time from,
                                             absl::Time to, bool join_labels,
                                             const std::string& label_name);

}  // namespace ferry::monitor
