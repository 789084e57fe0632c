#include "ferry/storage/layout.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::storage::layout {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int m, int d, int hh, int mm, int ss) {
  return absl::FromCivil(absl::CivilSecond(y, m, d, hh, mm, ss), absl::UTCTimeZone());
}

TEST(LayoutTest, DatasetsModelsAndRuns) {
  EXPECT_EQ(DatasetVersion("churn", "v3").value_or(""), "datasets/churn/v3");
  EXPECT_EQ(ModelVersion("churn-model", "1.2.0").value_or(""), "models/churn-model/1.2.0");
  EXPECT_EQ(RunDir("train", "r20261127-121700-3f9a1c").value_or(""),
            "runs/train/r20261127-121700-3f9a1c");
  EXPECT_EQ(RunParams("train", "r1").value_or(""), "runs/train/r1/params.json");
  EXPECT_EQ(TaskDir("train", "r1", "prep").value_or(""), "runs/train/r1/prep");
  EXPECT_EQ(TaskLog("train", "r1", "prep", 1).value_or(""), "runs/train/r1/prep/logs/1.log");
  EXPECT_EQ(TaskLog("train", "r1", "prep", 12).value_or(""), "runs/train/r1/prep/logs/12.log");
}

TEST(LayoutTest, ServingBatchAndMonitoring) {
  EXPECT_EQ(LabelsDir("fraud").value_or(""), "labels/fraud");
  EXPECT_EQ(BatchJob("job_7").value_or(""), "batch/job_7");
  EXPECT_EQ(MonitoringReport("fraud", "rep-2026-11-27").value_or(""),
            "monitoring/fraud/rep-2026-11-27");
}

TEST(LayoutTest, InferenceSegmentIsFiledByUtcHour) {
  EXPECT_EQ(InferenceSegment("fraud", Utc(2026, 11, 27, 9, 41, 5), "seg-0001").value_or(""),
            "inference/fraud/2026/11/27/09/seg-0001.jsonl.zst");
  EXPECT_EQ(InferenceSegment("fraud", Utc(2026, 1, 2, 23, 0, 0), "s").value_or(""),
            "inference/fraud/2026/01/02/23/s.jsonl.zst");
  // 00:30 at UTC+2 is 22:30 UTC the day (and here the year) before.
  absl::Time plus_two =
      absl::FromCivil(absl::CivilSecond(2026, 1, 1, 0, 30, 0), absl::FixedTimeZone(2 * 60 * 60));
  EXPECT_EQ(InferenceSegment("fraud", plus_two, "s").value_or(""),
            "inference/fraud/2025/12/31/22/s.jsonl.zst");
  EXPECT_EQ(InferenceSegment("fraud", absl::InfiniteFuture(), "s").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LayoutTest, ManifestAndTombstoneOfAVersion) {
  EXPECT_EQ(kManifest, "manifest.json");
  EXPECT_EQ(kTombstone, "_TOMBSTONE.json");
  EXPECT_EQ(ManifestOf("datasets/c/v1"), "datasets/c/v1/manifest.json");
  EXPECT_EQ(TombstoneOf("models/m/v2"), "models/m/v2/_TOMBSTONE.json");
}

TEST(LayoutTest, NegativeAttemptIsRefused) {
  EXPECT_EQ(TaskLog("train", "r1", "prep", 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LayoutTest, BadNameMessageSaysWhatAndWhy) {
  absl::StatusOr<std::string> bad = DatasetVersion("../x", "v1");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "invalid dataset name '../x': names are letters, digits, '_', '-', '.' and may not "
            "contain '..'");
  EXPECT_THAT(RunDir("train", "r/1").status().message(), HasSubstr("invalid run id 'r/1'"));
}

// Each argument of each function, with the bad name put in that place and good names elsewhere.
struct Slot {
  std::string what;
  std::function<absl::StatusOr<std::string>(std::string_view bad)> call;
};

std::vector<Slot> AllSlots() {
  const absl::Time hour = Utc(2026, 11, 27, 9, 0, 0);
  return {
      {"DatasetVersion name", [](auto b) { return DatasetVersion(b, "v1"); }},
      {"DatasetVersion version", [](auto b) { return DatasetVersion("d", b); }},
      {"RunDir pipeline", [](auto b) { return RunDir(b, "r1"); }},
      {"RunDir run_id", [](auto b) { return RunDir("p", b); }},
      {"RunParams pipeline", [](auto b) { return RunParams(b, "r1"); }},
      {"RunParams run_id", [](auto b) { return RunParams("p", b); }},
      {"TaskDir pipeline", [](auto b) { return TaskDir(b, "r1", "t"); }},
      {"TaskDir run_id", [](auto b) { return TaskDir("p", b, "t"); }},
      {"TaskDir task", [](auto b) { return TaskDir("p", "r1", b); }},
      {"TaskLog pipeline", [](auto b) { return TaskLog(b, "r1", "t", 1); }},
      {"TaskLog run_id", [](auto b) { return TaskLog("p", b, "t", 1); }},
      {"TaskLog task", [](auto b) { return TaskLog("p", "r1", b, 1); }},
      {"ModelVersion name", [](auto b) { return ModelVersion(b, "v1"); }},
      {"ModelVersion version", [](auto b) { return ModelVersion("m", b); }},
      {"InferenceSegment endpoint", [hour](auto b) { return InferenceSegment(b, hour, "s"); }},
      {"InferenceSegment segment", [hour](auto b) { return InferenceSegment("e", hour, b); }},
      {"LabelsDir endpoint", [](auto b) { return LabelsDir(b); }},
      {"BatchJob job_id", [](auto b) { return BatchJob(b); }},
      {"MonitoringReport endpoint", [](auto b) { return MonitoringReport(b, "rep"); }},
      {"MonitoringReport report_id", [](auto b) { return MonitoringReport("e", b); }},
  };
}

TEST(LayoutTest, EveryFunctionRefusesNamesThatCouldEscape) {
  const std::vector<std::string> bad_names = {
      "..", "a/b", "", "/abs", "../x", "a\\b", "-flag", ".hidden", "a..b", std::string(129, 'a')};
  for (const Slot& slot : AllSlots()) {
    SCOPED_TRACE(slot.what);
    EXPECT_TRUE(slot.call("good_name-1.0").ok());
    for (const std::string& bad : bad_names) {
      SCOPED_TRACE("name '" + bad + "'");
      absl::StatusOr<std::string> result = slot.call(bad);
      EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(result.status().message(), HasSubstr("'" + bad + "'"));
    }
  }
}

TEST(ConfineToRootTest, AcceptsPathsInsideTheRoot) {
  EXPECT_EQ(ConfineToRoot("/a/lake", "x/y").value_or(""), "/a/lake/x/y");
  EXPECT_EQ(ConfineToRoot("/a/lake", "./x//y/").value_or(""), "/a/lake/x/y");
  EXPECT_EQ(ConfineToRoot("/a/lake", "x/../y").value_or(""), "/a/lake/y");
  EXPECT_EQ(ConfineToRoot("/a/lake", "").value_or(""), "/a/lake");
  EXPECT_EQ(ConfineToRoot("/a/lake", ".").value_or(""), "/a/lake");
  EXPECT_EQ(ConfineToRoot("/a/lake", "/a/lake").value_or(""), "/a/lake");
  EXPECT_EQ(ConfineToRoot("/a/lake", "/a/lake/x").value_or(""), "/a/lake/x");
  EXPECT_EQ(ConfineToRoot("/a/lake", "/a/lake/../lake/z").value_or(""), "/a/lake/z");
  EXPECT_EQ(ConfineToRoot("/a/lake/", "x").value_or(""), "/a/lake/x");
  EXPECT_EQ(ConfineToRoot("/a//lake/.", "/a/lake/x").value_or(""), "/a/lake/x");
  EXPECT_EQ(ConfineToRoot("/", "/etc/x").value_or(""), "/etc/x");
}

TEST(ConfineToRootTest, RefusesPathsOutsideTheRoot) {
  for (const char* path : {"../x", "..", "x/../../y", "./../lake2", "/etc/passwd", "/a", "/",
                           "/a/lake2", "/a/lake2/x", "/a/lakex", "/a/lake/../lake2/x"}) {
    SCOPED_TRACE(path);
    absl::StatusOr<std::string> result = ConfineToRoot("/a/lake", path);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  }
  // The prefix trap, with a trailing slash on the root too.
  EXPECT_EQ(ConfineToRoot("/a/lake/", "/a/lake2/x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ConfineToRoot("/a/lake", "../x").status().message(), HasSubstr("/a/x"));
  EXPECT_EQ(ConfineToRoot("/a/lake", std::string_view("x\0y", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::storage::layout
