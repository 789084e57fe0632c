#include "ferry/monitor/labels.h"

#include "ferry/common/fs.h"
#include "ferry/monitor/internal/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::monitor {
namespace {

using ::testing::HasSubstr;

class LabelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir();
    ASSERT_FALSE(root_.empty());
    lake_ = testing::MakeLake(root_);
  }
  std::string File(const std::string& name, const std::string& text) {
    std::string path = root_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, text, false).ok());
    return path;
  }
  std::string root_;
  std::unique_ptr<storage::LocalArtifactStore> lake_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
};

TEST_F(LabelsTest, IngestsCsvAndLaterIngestsWin) {
  auto in = IngestLabels(*lake_, "churn",
                         File("a.csv", "transaction_id,churned,extra\nt1,1,x\nt2,0,y\nt1,0,z\n"),
                         "transaction_id", "churned", clock_);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->rows, 2);
  EXPECT_EQ(in->duplicates, 1);
  EXPECT_EQ(in->skipped, 0);
  EXPECT_THAT(in->key, ::testing::StartsWith("labels/churn/20270115T080000Z-"));
  EXPECT_THAT(in->key, ::testing::EndsWith(".jsonl.zst"));
  clock_.Advance(absl::Seconds(5));
  auto second =
      IngestLabels(*lake_, "churn",
                   File("b.jsonl", "{\"id\": \"t2\", \"y\": 1}\n{\"id\": \"t3\", \"y\": 41.5}\n"),
                   "id", "y", clock_);
  ASSERT_TRUE(second.ok()) << second.status();
  auto labels = ReadLabels(*lake_, "churn");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(labels->size(), 3u);
  EXPECT_EQ(labels->at("t1"), "0");  // the last row of the file
  EXPECT_EQ(labels->at("t2"), "1");  // the later ingest
  EXPECT_EQ(labels->at("t3"), "41.5");
}

TEST_F(LabelsTest, ReadWithoutIngestIsEmpty) {
  auto labels = ReadLabels(*lake_, "churn");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_TRUE(labels->empty());
}

TEST_F(LabelsTest, BadRowsNameFileAndLine) {
  const std::string path = File("bad.csv", "transaction_id,churned\nt1,1\n,0\n");
  auto no_id = IngestLabels(*lake_, "churn", path, "transaction_id", "churned", clock_);
  EXPECT_EQ(no_id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_id.status().message(), HasSubstr(path + ":3: no id"));
  const std::string path2 = File("bad2.csv", "transaction_id,churned\nt1,\n");
  auto no_label = IngestLabels(*lake_, "churn", path2, "transaction_id", "churned", clock_);
  EXPECT_THAT(no_label.status().message(), HasSubstr(path2 + ":2: no label"));
  auto missing = IngestLabels(*lake_, "churn", path, "tx", "churned", clock_);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("tx"));
  EXPECT_THAT(missing.status().message(), HasSubstr("transaction_id, churned"));
  const std::string path3 = File("bad.jsonl", "{\"id\": \"a\", \"y\": 1}\n{\"y\": 0}\n");
  auto jsonl = IngestLabels(*lake_, "churn", path3, "id", "y", clock_);
  EXPECT_THAT(jsonl.status().message(), HasSubstr(path3 + ":2: no id"));
  auto labels = ReadLabels(*lake_, "churn");
  ASSERT_TRUE(labels.ok());
  EXPECT_TRUE(labels->empty());  // nothing written on error
}

}  // namespace
}  // namespace ferry::monitor
