#pragma once
// Test helpers of the monitor's tests (not part of ferry_monitor): a temp lake, inference-log
// records written through audit::InferenceLog, and a registered model bundle. Not thread-safe.

#include <stdlib.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ferry/audit/inference_log.h"
#include "ferry/common/clock.h"
#include "ferry/data/profile.h"
#include "ferry/storage/layout.h"
#include "ferry/storage/local_artifact_store.h"
#include "fmt/format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor::testing {

inline std::string MakeTempDir() {
  std::string pattern = ::testing::TempDir() + "ferry_monitor_XXXXXX";
  char* dir = ::mkdtemp(pattern.data());
  return dir == nullptr ? "" : std::string(dir);
}

inline std::unique_ptr<storage::LocalArtifactStore> MakeLake(const std::string& root) {
  auto lake = storage::LocalArtifactStore::Open(root + "/lake");
  EXPECT_TRUE(lake.ok()) << lake.status();
  return lake.ok() ? std::move(*lake) : nullptr;
}

// One record as the serving process writes it.
inline std::string Record(const std::string& tx, absl::Time at, const nlohmann::json& inputs,
                          const nlohmann::json& outputs, const std::string& model = "churn",
                          int version = 7, const std::string& mode = "live") {
  nlohmann::json r = {{"transaction_id", tx},
                      {"row", 0},
                      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone())},
                      {"endpoint", "churn"},
                      {"variant", "blue"},
                      {"mode", mode},
                      {"model", {{"name", model}, {"version", version}}},
                      {"inputs", inputs},
                      {"outputs", outputs},
                      {"latency_ms", 0.2}};
  return r.dump();
}

// Writes `lines` (with their times) through an InferenceLog into the lake.
inline void WriteLog(storage::ArtifactStore& lake, const std::vector<std::string>& lines,
                     const std::vector<absl::Time>& times, const std::string& endpoint = "churn") {
  FakeClock clock(times.empty() ? absl::UnixEpoch() : times.back());
  auto log = audit::InferenceLog::Open(lake, {.endpoint = endpoint, .instance = "test-1"}, clock);
  ASSERT_TRUE(log.ok()) << log.status();
  for (size_t i = 0; i < lines.size(); ++i) ASSERT_TRUE((*log)->Append(lines[i], times[i]));
  ASSERT_TRUE((*log)->Flush().ok());
  (*log)->Close();
}

// models/<name>/<version>/{model.json, profile.json} with the profile of `train`.
inline void WriteModel(storage::ArtifactStore& lake, const data::Table& train,
                       const nlohmann::json& input_schema, const std::string& task = "binary",
                       const std::string& name = "churn", const std::string& version = "7") {
  auto dir = storage::layout::ModelVersion(name, version);
  ASSERT_TRUE(dir.ok());
  nlohmann::json meta = {{"type", "logistic"},
                         {"task", task},
                         {"target", "churned"},
                         {"classes", task == "regression" ? nlohmann::json::array()
                                                          : nlohmann::json::array({"0", "1"})},
                         {"input_schema", input_schema}};
  ASSERT_TRUE(lake.Put(*dir + "/model.json", meta.dump()).ok());
  ASSERT_TRUE(
      lake.Put(*dir + "/profile.json", data::ProfileToJson(data::ComputeProfile(train)).dump())
          .ok());
}

}  // namespace ferry::monitor::testing
