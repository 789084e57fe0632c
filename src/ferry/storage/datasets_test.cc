#include "ferry/storage/datasets.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "ferry/common/fs.h"
#include "ferry/storage/local_artifact_store.h"
#include "gtest/gtest.h"

namespace ferry::storage {
namespace {

class DatasetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-datasets-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto lake = LocalArtifactStore::Open(root_ + "/lake");
    ASSERT_TRUE(lake.ok()) << lake.status();
    lake_ = std::move(*lake);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Publishes a one-file version `id` of `name` created at `created`.
  DatasetVersionInfo Publish(const std::string& name, const std::string& id,
                             const std::string& created, bool* existed) {
    std::string dir = root_ + "/src-" + id;
    EXPECT_TRUE(MakeDirs(dir).ok());
    EXPECT_TRUE(WriteFileAtomic(dir + "/data.csv.zst", "bytes of " + id).ok());
    nlohmann::json manifest = {{"dataset", name},
                               {"version", id},
                               {"created_at", created},
                               {"rows", 1},
                               {"files", {{{"path", "data.csv.zst"}}}}};
    auto v = PublishDataset(*lake_, name, id, dir, manifest, existed);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : DatasetVersionInfo{};
  }

  std::string root_;
  std::unique_ptr<LocalArtifactStore> lake_;
};

TEST(DatasetRefTest, ParsesTheAcceptedForms) {
  EXPECT_EQ(ParseDatasetRef("customers")->selector, "");
  EXPECT_EQ(ParseDatasetRef("customers@3")->selector, "3");
  EXPECT_EQ(ParseDatasetRef("features.v2@ab12")->name, "features.v2");
  for (const char* bad : {"", "@3", "customers@", "a/b@1", "c@1-2", "../x"}) {
    absl::StatusOr<DatasetRef> r = ParseDatasetRef(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("write NAME, NAME@latest, NAME@N"), std::string::npos);
  }
}

TEST_F(DatasetsTest, VersionsAreNumberedByCreationAndFoundByOrdinalIdOrLatest) {
  bool existed = true;
  Publish("customers", "bbbb2222", "2026-11-27T10:00:02Z", &existed);
  EXPECT_FALSE(existed);
  Publish("customers", "aaaa1111", "2026-11-27T10:00:01Z", &existed);
  Publish("features", "cccc3333", "2026-11-27T10:00:03Z", &existed);

  EXPECT_EQ(*ListDatasetNames(*lake_), (std::vector<std::string>{"customers", "features"}));
  auto versions = ListDatasetVersions(*lake_, "customers");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].version, "aaaa1111");
  EXPECT_EQ((*versions)[0].ordinal, 1);
  EXPECT_EQ((*versions)[1].key, "datasets/customers/bbbb2222");

  EXPECT_EQ(ResolveDataset(*lake_, "customers@1")->version, "aaaa1111");
  EXPECT_EQ(ResolveDataset(*lake_, "customers@2")->version, "bbbb2222");
  EXPECT_EQ(ResolveDataset(*lake_, "customers")->version, "bbbb2222");
  EXPECT_EQ(ResolveDataset(*lake_, "customers@latest")->version, "bbbb2222");
  EXPECT_EQ(ResolveDataset(*lake_, "customers@aaaa")->version, "aaaa1111");

  absl::StatusOr<DatasetVersionInfo> missing = ResolveDataset(*lake_, "customers@3");
  ASSERT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_EQ(missing.status().message(),
            "dataset 'customers' has 2 version(s), no @3: @1 (aaaa1111), @2 (bbbb2222)");
  EXPECT_TRUE(absl::IsNotFound(ResolveDataset(*lake_, "customers@ffff").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ResolveDataset(*lake_, "customers@abc").status()));
  absl::StatusOr<DatasetVersionInfo> unknown = ResolveDataset(*lake_, "orders");
  ASSERT_TRUE(absl::IsNotFound(unknown.status()));
  EXPECT_NE(unknown.status().message().find("datasets: customers, features"), std::string::npos);
}

TEST_F(DatasetsTest, PublishingTheSameVersionAgainKeepsTheFirst) {
  bool existed = true;
  DatasetVersionInfo first = Publish("customers", "aaaa1111", "2026-11-27T10:00:01Z", &existed);
  EXPECT_FALSE(existed);
  DatasetVersionInfo again = Publish("customers", "aaaa1111", "2026-11-27T11:00:00Z", &existed);
  EXPECT_TRUE(existed);
  EXPECT_EQ(again.manifest["created_at"], "2026-11-27T10:00:01Z");
  EXPECT_EQ(again.ordinal, 1);
  EXPECT_EQ(*lake_->Get("datasets/customers/aaaa1111/data.csv.zst"), "bytes of aaaa1111");
}

TEST_F(DatasetsTest, TombstonedVersionsAreNotListedNorResolved) {
  bool existed = false;
  Publish("customers", "aaaa1111", "2026-11-27T10:00:01Z", &existed);
  Publish("customers", "bbbb2222", "2026-11-27T10:00:02Z", &existed);
  ASSERT_TRUE(lake_->Tombstone("datasets/customers/bbbb2222", R"({"why":"test"})").ok());
  EXPECT_EQ(ResolveDataset(*lake_, "customers")->version, "aaaa1111");
  EXPECT_EQ(ListDatasetVersions(*lake_, "customers")->size(), 1u);
}

}  // namespace
}  // namespace ferry::storage
