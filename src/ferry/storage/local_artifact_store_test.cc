#include "ferry/storage/local_artifact_store.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ferry/common/fs.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/artifact_store_test_base.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::storage {
namespace {

namespace stdfs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Temp folders made by this binary, removed when the tests end.
class TempDirs : public ::testing::Environment {
 public:
  static std::string Make() {
    std::string pattern = (stdfs::temp_directory_path() / "ferry-lake-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) return "";
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(pattern);
    return pattern;
  }
  void TearDown() override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& dir : dirs_) (void)RemoveAll(dir);
    dirs_.clear();
  }

 private:
  static inline std::mutex mu_;
  static inline std::vector<std::string> dirs_;
};
[[maybe_unused]] ::testing::Environment* const kTempDirs =
    ::testing::AddGlobalTestEnvironment(new TempDirs);

std::string RootOf(const ArtifactStore& store) {
  std::string uri = store.root_uri();
  return uri.substr(std::string_view("file://").size());
}

// A store whose root "<mkdtemp>/lake" does not exist yet (Open creates it); its parent folder is
// private to the store, so the confinement tests can watch it.
std::unique_ptr<ArtifactStore> MakeStoreOnFreshRoot() {
  std::string dir = TempDirs::Make();
  if (dir.empty()) return nullptr;
  absl::StatusOr<std::unique_ptr<LocalArtifactStore>> store =
      LocalArtifactStore::Open(dir + "/lake");
  if (!store.ok()) return nullptr;
  return std::move(store).value();
}

// Everything (files and folders) under the root's parent, except the root's own subtree.
std::vector<std::string> ListBesideRoot(const ArtifactStore& store) {
  stdfs::path root(RootOf(store));
  stdfs::path parent = root.parent_path();
  std::vector<std::string> out;
  for (auto it = stdfs::recursive_directory_iterator(parent);
       it != stdfs::recursive_directory_iterator(); ++it) {
    if (it->path() == root) {
      it.disable_recursion_pending();
      continue;
    }
    out.push_back(stdfs::relative(it->path(), parent).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Local, ArtifactStoreConformance,
                         ::testing::Values(ArtifactStoreBackend{
                             .name = "local",
                             .make_store = MakeStoreOnFreshRoot,
                             .list_outside_root = ListBesideRoot,
                         }),
                         [](const auto& info) { return info.param.name; });

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Spit(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

class LocalArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDirs::Make();
    ASSERT_FALSE(dir_.empty());
    root_ = dir_ + "/lake";
    outside_ = dir_ + "/outside";
    ASSERT_TRUE(MakeDirs(outside_).ok());
    Spit(outside_ + "/secret", "top secret");
    absl::StatusOr<std::unique_ptr<LocalArtifactStore>> store = LocalArtifactStore::Open(root_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  std::string dir_, root_, outside_;
  std::unique_ptr<LocalArtifactStore> store_;
};

TEST(OpenArtifactStoreTest, FileUriOpensALocalLakeAndCreatesTheRoot) {
  std::string dir = TempDirs::Make();
  ASSERT_FALSE(dir.empty());
  std::string root = dir + "/deep/er/lake";
  absl::StatusOr<std::unique_ptr<ArtifactStore>> store = OpenArtifactStore("file://" + root + "/");
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(stdfs::is_directory(root));
  EXPECT_EQ((*store)->root_uri(), "file://" + root);
  ASSERT_TRUE((*store)->Put("k", "v").ok());
  EXPECT_EQ(Slurp(root + "/k"), "v");

  // Opening it again sees the same data.
  absl::StatusOr<std::unique_ptr<ArtifactStore>> again = OpenArtifactStore("file://" + root);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->Get("k").value_or(""), "v");
}

TEST(OpenArtifactStoreTest, S3IsNotBuiltYet) {
  absl::StatusOr<std::unique_ptr<ArtifactStore>> store = OpenArtifactStore("s3://bucket/lake");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(store.status().message(), HasSubstr("S3 data lakes are not built yet"));
}

TEST(OpenArtifactStoreTest, OtherUrisAreInvalid) {
  for (const char* uri : {"http://host/lake", "/abs/lake", "lake", "", "file://relative/lake",
                          "file://host/abs", "FILE:///abs", "file:///"}) {
    SCOPED_TRACE(uri);
    absl::StatusOr<std::unique_ptr<ArtifactStore>> store = OpenArtifactStore(uri);
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(OpenArtifactStore("http://host/lake").status().message(), HasSubstr("file://"));
}

TEST(NormalizeKeyTest, NormalisesGoodKeys) {
  EXPECT_EQ(NormalizeKey("a/b").value_or(""), "a/b");
  EXPECT_EQ(NormalizeKey("./a//b/").value_or(""), "a/b");
  EXPECT_EQ(NormalizeKey("a/./b/.").value_or(""), "a/b");
  EXPECT_EQ(NormalizeKey("x").value_or(""), "x");
  // ".." is refused as a path component, not as part of a name.
  EXPECT_EQ(NormalizeKey("v1..2/...").value_or(""), "v1..2/...");
  EXPECT_EQ(NormalizeKey(".hidden/a").value_or(""), ".hidden/a");
}

TEST(NormalizeKeyTest, RefusesKeysThatLeaveTheRoot) {
  for (std::string key :
       {"", "/a", "..", "../x", "a/..", "a/../b", "a\\b", ".", "./", "//", "a/./../../b"}) {
    SCOPED_TRACE("key '" + key + "'");
    EXPECT_EQ(NormalizeKey(key).status().code(), absl::StatusCode::kInvalidArgument);
  }
  absl::StatusOr<std::string> nul = NormalizeKey(std::string_view("a\0b", 3));
  EXPECT_EQ(nul.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nul.status().message(), HasSubstr("'a\\x00b'"));
  EXPECT_THAT(NormalizeKey("a/../../x").status().message(), HasSubstr("'a/../../x'"));
}

TEST_F(LocalArtifactStoreTest, SymlinkedFolderPointingOutsideIsRefused) {
  stdfs::create_directory_symlink(outside_, root_ + "/evil");
  for (const char* key : {"evil/x", "evil/deeper/x", "evil/secret"}) {
    SCOPED_TRACE(key);
    absl::Status put = store_->Put(key, "escapee");
    EXPECT_EQ(put.code(), absl::StatusCode::kInvalidArgument) << put;
    EXPECT_THAT(put.message(), HasSubstr("outside the lake"));
  }
  EXPECT_FALSE(stdfs::exists(outside_ + "/x"));
  EXPECT_FALSE(stdfs::exists(outside_ + "/deeper"));
  EXPECT_EQ(Slurp(outside_ + "/secret"), "top secret");

  EXPECT_EQ(store_->Get("evil/secret").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Exists("evil/secret").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->List("evil").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->LocalPath("evil/x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Commit("evil", "{}").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(stdfs::exists(outside_ + "/manifest.json"));
  EXPECT_THAT(store_->List("").value(), IsEmpty());
}

TEST_F(LocalArtifactStoreTest, SymlinkedFilePointingOutsideIsRefused) {
  stdfs::create_symlink(outside_ + "/secret", root_ + "/leak");
  EXPECT_EQ(store_->Get("leak").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Put("leak", "overwritten").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Slurp(outside_ + "/secret"), "top secret");
  EXPECT_THAT(store_->List("").value(), IsEmpty());
  // A dangling symlink resolves nowhere.
  stdfs::create_symlink(dir_ + "/nowhere", root_ + "/dangling");
  EXPECT_EQ(store_->Get("dangling").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LocalArtifactStoreTest, SymlinksInsideTheRootAreFollowed) {
  ASSERT_TRUE(store_->Put("real/x", "inside").ok());
  stdfs::create_directory_symlink("real", root_ + "/alias");
  stdfs::create_symlink("real/x", root_ + "/x-link");
  EXPECT_EQ(store_->Get("alias/x").value_or(""), "inside");
  EXPECT_EQ(store_->Get("x-link").value_or(""), "inside");
  ASSERT_TRUE(store_->Put("alias/y", "via alias").ok());
  EXPECT_EQ(Slurp(root_ + "/real/y"), "via alias");
  // Symlinked folders are not descended; symlinked files inside the lake are listed.
  EXPECT_THAT(store_->List("").value(), ElementsAre("real/x", "real/y", "x-link"));
}

TEST_F(LocalArtifactStoreTest, RootMayBeASymlink) {
  stdfs::create_directory_symlink(root_, dir_ + "/lake-link");
  absl::StatusOr<std::unique_ptr<LocalArtifactStore>> linked =
      LocalArtifactStore::Open(dir_ + "/lake-link");
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_EQ((*linked)->root_uri(), "file://" + dir_ + "/lake-link");
  ASSERT_TRUE((*linked)->Put("a/b", "c").ok());
  EXPECT_EQ(store_->Get("a/b").value_or(""), "c");
}

TEST_F(LocalArtifactStoreTest, LeftoverTempFilesAreNotListed) {
  ASSERT_TRUE(store_->Put("a/x", "x").ok());
  ASSERT_TRUE(store_->Put("a/notes.tmp", "a real object").ok());
  Spit(root_ + "/a/x.tmp.123.456", "half");
  Spit(root_ + "/a/y.tmp.1.18446744073709551615", "half");
  EXPECT_THAT(store_->List("a").value(), ElementsAre("a/notes.tmp", "a/x"));
  EXPECT_EQ(store_->Put("a/z.tmp.1.2", "z").code(), absl::StatusCode::kInvalidArgument);
  // Nor does a Put leave any behind.
  std::vector<std::string> files = ListFilesRecursive(root_).value();
  EXPECT_THAT(files, ElementsAre("a/notes.tmp", "a/x", "a/x.tmp.123.456",
                                 "a/y.tmp.1.18446744073709551615"));
}

TEST_F(LocalArtifactStoreTest, CommitAndTombstoneLeaveNoTempFiles) {
  ASSERT_TRUE(store_->Put("v/data", "d").ok());
  ASSERT_TRUE(store_->Commit("v", "{}").ok());
  ASSERT_TRUE(store_->Tombstone("v", R"({"why":"x"})").ok());
  EXPECT_EQ(store_->Commit("v", "{}").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Tombstone("v", "{}").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(ListFilesRecursive(root_).value(),
              ElementsAre("v/_TOMBSTONE.json", "v/data", "v/manifest.json"));
}

TEST_F(LocalArtifactStoreTest, LocalPathIsRootSlashKey) {
  absl::StatusOr<std::string> path = store_->LocalPath("runs/p//r1/t/output/x.csv");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, root_ + "/runs/p/r1/t/output/x.csv");
  EXPECT_EQ(store_->LocalPath("../x").status().code(), absl::StatusCode::kInvalidArgument);

  // A local process writes in place; Commit then seals what it wrote.
  ASSERT_TRUE(MakeDirs(root_ + "/runs/p/r1/t/output").ok());
  Spit(*path, "written in place");
  EXPECT_EQ(store_->Get("runs/p/r1/t/output/x.csv").value_or(""), "written in place");
  ASSERT_TRUE(store_->Commit("runs/p/r1/t", "{}").ok());
  EXPECT_EQ(store_->Put("runs/p/r1/t/output/x.csv", "later").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LocalArtifactStoreTest, ObjectsAreFilesUnderTheRoot) {
  ASSERT_TRUE(store_->Put("datasets/c/v1/data.csv", "a,b\n1,2\n").ok());
  EXPECT_EQ(Slurp(root_ + "/datasets/c/v1/data.csv"), "a,b\n1,2\n");
  EXPECT_EQ(store_->Uri("datasets/c/v1/data.csv"), "file://" + root_ + "/datasets/c/v1/data.csv");
  ASSERT_TRUE(store_->Commit("datasets/c/v1", R"({"rows":1})").ok());
  EXPECT_EQ(Slurp(root_ + "/datasets/c/v1/manifest.json"), R"({"rows":1})");
}

TEST_F(LocalArtifactStoreTest, ObjectAndFolderOfTheSameNameConflict) {
  ASSERT_TRUE(store_->Put("a/b", "object").ok());
  EXPECT_FALSE(store_->Put("a/b/c", "under an object").ok());
  ASSERT_TRUE(store_->Put("d/e", "x").ok());
  EXPECT_FALSE(store_->Put("d", "over a folder").ok());
  EXPECT_EQ(store_->Get("a/b").value_or(""), "object");
  EXPECT_EQ(store_->Get("d/e").value_or(""), "x");
}

}  // namespace
}  // namespace ferry::storage
