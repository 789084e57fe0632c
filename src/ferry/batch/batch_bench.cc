// batch_bench: drives a batch job end to end in one process, for bench/batch.sh until the
// `ferry batch` command is on this branch.
//
//   batch_bench prepare DIR TRAIN.csv TARGET
//       fits a logistic_regression on TRAIN.csv (every column but TARGET is a feature), writes
//       its bundle to the lake DIR/lake at models/bench/1 and registers it as bench:1 in the state
//       store DIR/state.db.
//   batch_bench score DIR INPUT OUTPUT_FOLDER [THREADS]
//       submits and runs a batch job (bench:1, INPUT, OUTPUT_FOLDER) exactly as `ferry batch
//       ... --wait` does (SubmitBatchJob + RunBatchJob) and prints the job's result as JSON.
// Exits 2 with a message on stderr when anything fails.

#include <cstdio>
#include <memory>
#include <string>

#include "ferry/batch/batch_job.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/model/bundle.h"
#include "ferry/state/sqlite_state_store.h"
#include "ferry/storage/local_artifact_store.h"
#include "fmt/format.h"

namespace {

using json = nlohmann::json;

absl::Status Prepare(const std::string& dir, const std::string& train, const std::string& target) {
  FERRY_ASSIGN_OR_RETURN(auto lake, ferry::storage::LocalArtifactStore::Open(dir + "/lake"));
  FERRY_ASSIGN_OR_RETURN(auto store, ferry::state::SqliteStateStore::Open(dir + "/state.db"));
  FERRY_ASSIGN_OR_RETURN(ferry::data::CsvReadResult data, ferry::data::ReadCsvFile(train));
  FERRY_ASSIGN_OR_RETURN(auto model, ferry::model::FindModelType("logistic_regression")
                                         ->Fit(data.table, {.target = target, .seed = 1}));
  FERRY_ASSIGN_OR_RETURN(std::string folder, lake->LocalPath("models/bench/1"));
  FERRY_RETURN_IF_ERROR(ferry::MakeDirs(folder + "/model"));
  FERRY_RETURN_IF_ERROR(model->Save(folder + "/model"));
  json meta = ferry::model::BundleMeta(*model, data.table, target, nullptr);
  FERRY_RETURN_IF_ERROR(ferry::WriteFileAtomic(folder + "/model.json", meta.dump(2)));
  FERRY_RETURN_IF_ERROR(store
                            ->RegisterModelVersion({.model = "bench",
                                                    .artifact_uri = lake->Uri("models/bench/1"),
                                                    .actor = "batch_bench"})
                            .status());
  return absl::OkStatus();
}

absl::Status Score(const std::string& dir, const std::string& input, const std::string& output,
                   int threads) {
  FERRY_ASSIGN_OR_RETURN(auto lake, ferry::storage::LocalArtifactStore::Open(dir + "/lake"));
  FERRY_ASSIGN_OR_RETURN(auto store, ferry::state::SqliteStateStore::Open(dir + "/state.db"));
  ferry::batch::BatchSpec spec{
      .model_ref = "bench:1", .inputs = {input}, .output = output, .threads = threads};
  const ferry::Clock& clock = ferry::SystemClock::Get();
  FERRY_ASSIGN_OR_RETURN(ferry::state::JobRecord job,
                         ferry::batch::SubmitBatchJob(*store, *lake, dir, spec, clock, "bench"));
  FERRY_ASSIGN_OR_RETURN(
      ferry::batch::BatchResult result,
      ferry::batch::RunBatchJob(*store, *lake, dir, job.id, clock, nullptr, nullptr));
  std::printf("%s\n", ferry::batch::BatchResultToJson(result).dump().c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::Status s;
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "prepare" && argc == 5) {
    s = Prepare(argv[2], argv[3], argv[4]);
  } else if (cmd == "score" && (argc == 5 || argc == 6)) {
    s = Score(argv[2], argv[3], argv[4], argc == 6 ? std::atoi(argv[5]) : 0);
  } else {
    std::fprintf(stderr,
                 "usage: batch_bench prepare DIR TRAIN.csv TARGET\n"
                 "       batch_bench score DIR INPUT OUTPUT_FOLDER [THREADS]\n");
    return 2;
  }
  if (!s.ok()) {
    std::fprintf(stderr, "batch_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  return 0;
}
