#include "ferry/storage/artifact_store_test_base.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "fmt/format.h"
#include "gmock/gmock.h"

namespace ferry::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A local file with given content for PutFile, removed at scope exit. It lives in the system temp
// folder, never next to a store's root.
class LocalSourceFile {
 public:
  explicit LocalSourceFile(const std::string& content) {
    std::string pattern = (std::filesystem::temp_directory_path() / "ferry-src-XXXXXX").string();
    int fd = ::mkstemp(pattern.data());
    EXPECT_GE(fd, 0) << "mkstemp " << pattern;
    if (fd >= 0) ::close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~LocalSourceFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Every byte value, and NULs in the middle.
std::string BinaryBlob() {
  std::string blob;
  for (int i = 0; i < 256; ++i) blob.push_back(static_cast<char>(i));
  blob.append(std::string("\0\0middle\0", 9));
  return blob;
}

std::string Patterned(size_t size) {
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) out[i] = static_cast<char>((i * 31 + i / 7) % 251);
  return out;
}

// A readable form of a key for test traces (NUL as \0).
std::string Show(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '\0' ? std::string("\\0") : std::string(1, c);
  return "'" + out + "'";
}

}  // namespace

void ArtifactStoreConformance::SetUp() {
  store_ = GetParam().make_store();
  ASSERT_NE(store_, nullptr) << "backend " << GetParam().name << " made no store";
}

TEST_P(ArtifactStoreConformance, PutThenGetRoundTripsBinaryData) {
  const std::string blob = BinaryBlob();
  ASSERT_TRUE(store_->Put("a/b/blob.bin", blob).ok());
  absl::StatusOr<std::string> got = store_->Get("a/b/blob.bin");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 265u);
  EXPECT_EQ(*got, blob);
  absl::StatusOr<bool> exists = store_->Exists("a/b/blob.bin");
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_TRUE(*exists);
}

TEST_P(ArtifactStoreConformance, EmptyObjectIsAnObject) {
  ASSERT_TRUE(store_->Put("empty", "").ok());
  absl::StatusOr<std::string> got = store_->Get("empty");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
  EXPECT_EQ(store_->Exists("empty").value_or(false), true);
  EXPECT_THAT(store_->List("").value(), ElementsAre("empty"));
}

TEST_P(ArtifactStoreConformance, LargeObjectRoundTrips) {
  const std::string big = Patterned(5 << 20);
  ASSERT_TRUE(store_->Put("models/m/v1/model/weights.bin", big).ok());
  absl::StatusOr<std::string> got = store_->Get("models/m/v1/model/weights.bin");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), big.size());
  EXPECT_TRUE(*got == big);
}

TEST_P(ArtifactStoreConformance, MissingObjectsAreNotFound) {
  EXPECT_EQ(store_->Get("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Exists("nope").value_or(true), false);
  ASSERT_TRUE(store_->Put("dir/x", "1").ok());
  // A folder (a prefix of objects) is not an object.
  EXPECT_EQ(store_->Get("dir").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Exists("dir").value_or(true), false);
  EXPECT_EQ(store_->Get("dir/x/y").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ArtifactStoreConformance, ListIsRecursiveSortedAndRelativeToTheRoot) {
  for (const char* key : {"b/2", "a/sub/3", "ab/4", "a/1", "a.txt"}) {
    ASSERT_TRUE(store_->Put(key, key).ok()) << key;
  }
  EXPECT_THAT(store_->List("").value(), ElementsAre("a.txt", "a/1", "a/sub/3", "ab/4", "b/2"));
  // A prefix is a folder: "a" does not match "ab/4" or "a.txt".
  EXPECT_THAT(store_->List("a").value(), ElementsAre("a/1", "a/sub/3"));
  EXPECT_THAT(store_->List("a/sub/").value(), ElementsAre("a/sub/3"));
  EXPECT_THAT(store_->List("missing").value(), IsEmpty());
  // An object is not a folder.
  EXPECT_THAT(store_->List("a/1").value(), IsEmpty());
}

TEST_P(ArtifactStoreConformance, KeysAreNormalised) {
  ASSERT_TRUE(store_->Put("n//x/./y/", "v").ok());
  EXPECT_EQ(store_->Get("n/x/y").value_or(""), "v");
  EXPECT_EQ(store_->Get("./n/x//y").value_or(""), "v");
  EXPECT_THAT(store_->List("n").value(), ElementsAre("n/x/y"));
}

TEST_P(ArtifactStoreConformance, OverwriteBeforeCommitReplacesTheObject) {
  ASSERT_TRUE(store_->Put("v1/data.csv", "first").ok());
  ASSERT_TRUE(store_->Put("v1/data.csv", "second, longer").ok());
  EXPECT_EQ(store_->Get("v1/data.csv").value_or(""), "second, longer");
  ASSERT_TRUE(store_->Put("v1/data.csv", "3").ok());
  EXPECT_EQ(store_->Get("v1/data.csv").value_or(""), "3");
  EXPECT_THAT(store_->List("v1").value(), ElementsAre("v1/data.csv"));
}

TEST_P(ArtifactStoreConformance, PutIsAtomicForConcurrentReaders) {
  const std::string as(1 << 20, 'a');
  const std::string bs(1 << 20, 'b');
  const std::string key = "runs/p/r/t/output/big.bin";
  ASSERT_TRUE(store_->Put(key, as).ok());

  constexpr int kWrites = 30;
  constexpr int kMaxReads = 100000;
  std::atomic<bool> writer_done{false};
  int reads = 0, torn = 0, failed = 0;
  std::thread reader([&] {
    while (!writer_done.load() && reads < kMaxReads) {
      absl::StatusOr<std::string> got = store_->Get(key);
      ++reads;
      if (!got.ok()) {
        ++failed;
      } else if (got->size() != as.size() ||
                 got->find_first_not_of((*got)[0]) != std::string::npos ||
                 ((*got)[0] != 'a' && (*got)[0] != 'b')) {
        ++torn;
      }
    }
  });
  int write_errors = 0;
  for (int i = 0; i < kWrites; ++i) {
    if (!store_->Put(key, i % 2 == 0 ? bs : as).ok()) ++write_errors;
  }
  writer_done.store(true);
  reader.join();

  EXPECT_EQ(write_errors, 0);
  EXPECT_GT(reads, 0);
  EXPECT_EQ(failed, 0) << "of " << reads << " reads";
  EXPECT_EQ(torn, 0) << "of " << reads << " reads";
  EXPECT_EQ(store_->Get(key).value_or(""), kWrites % 2 == 0 ? as : bs);
}

TEST_P(ArtifactStoreConformance, ConcurrentPutsOfDifferentKeysAllLand) {
  constexpr int kThreads = 4, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = fmt::format("c/t{}/k{:02}", t, i);
        if (!store_->Put(key, key).ok()) ++errors;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<std::string> keys = store_->List("c").value();
  ASSERT_EQ(keys.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(keys.front(), "c/t0/k00");
  EXPECT_EQ(keys.back(), "c/t3/k24");
  EXPECT_EQ(store_->Get("c/t2/k17").value_or(""), "c/t2/k17");
}

TEST_P(ArtifactStoreConformance, AnOrderedCommitIsAsVisibleAndAsImmutable) {
  ASSERT_TRUE(store_->Put("runs/p/r/t/output/data/x.csv", "a,b\n").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->CheckCommitted("runs/p/r/t")));
  ASSERT_TRUE(store_
                  ->Commit("runs/p/r/t", R"({"files":[{"path":"output/data/x.csv"}]})",
                           Durability::kOrdered)
                  .ok());
  EXPECT_TRUE(store_->CheckCommitted("runs/p/r/t").ok());
  EXPECT_EQ(*store_->Get("runs/p/r/t/output/data/x.csv"), "a,b\n");
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Put("runs/p/r/t/output/data/y.csv", "")));
  EXPECT_TRUE(absl::IsAlreadyExists(store_->Commit("runs/p/r/t", "{}", Durability::kOrdered)));
  // A manifest naming a file outside its version is refused when it is flushed.
  ASSERT_TRUE(store_->Put("runs/p/r/u/output/data/x.csv", "").ok());
  EXPECT_FALSE(
      store_->Commit("runs/p/r/u", R"({"files":[{"path":"../t/output/data/x.csv"}]})").ok());
}

TEST_P(ArtifactStoreConformance, CommitMakesTheVersionImmutable) {
  ASSERT_TRUE(store_->Put("datasets/c/v1/data.csv", "x").ok());
  ASSERT_TRUE(store_->Put("datasets/c/v1/sub/part", "y").ok());
  ASSERT_TRUE(store_->Commit("datasets/c/v1", R"({"rows":1})").ok());

  absl::Status overwrite = store_->Put("datasets/c/v1/data.csv", "z");
  EXPECT_EQ(overwrite.code(), absl::StatusCode::kFailedPrecondition) << overwrite;
  EXPECT_THAT(overwrite.message(), HasSubstr("datasets/c/v1"));
  EXPECT_THAT(overwrite.message(), HasSubstr("immutable"));
  EXPECT_EQ(store_->Get("datasets/c/v1/data.csv").value_or(""), "x");

  EXPECT_EQ(store_->Put("datasets/c/v1/new", "n").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Put("datasets/c/v1/sub/deeper/x", "n").code(),
            absl::StatusCode::kFailedPrecondition);
  LocalSourceFile source("from a file");
  EXPECT_EQ(store_->PutFile("datasets/c/v1/copy", source.path()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Exists("datasets/c/v1/new").value_or(true), false);
  EXPECT_EQ(store_->Exists("datasets/c/v1/copy").value_or(true), false);

  absl::Status again = store_->Commit("datasets/c/v1", R"({"rows":2})");
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists) << again;
  EXPECT_EQ(store_->Get("datasets/c/v1/manifest.json").value_or(""), R"({"rows":1})");
  // A version nested in a committed one is part of it.
  EXPECT_EQ(store_->Commit("datasets/c/v1/sub", "{}").code(),
            absl::StatusCode::kFailedPrecondition);

  // Siblings are separate versions.
  ASSERT_TRUE(store_->Put("datasets/c/v2/data.csv", "z").ok());
  ASSERT_TRUE(store_->Commit("datasets/c/v2", "{}").ok());
  EXPECT_EQ(store_->Get("datasets/c/v2/data.csv").value_or(""), "z");
  ASSERT_TRUE(store_->Put("datasets/c/v10/data.csv", "w").ok());
}

TEST_P(ArtifactStoreConformance, ConcurrentCommitsOfOneVersionHaveOneWinner) {
  ASSERT_TRUE(store_->Put("v/data", "d").ok());
  constexpr int kThreads = 4;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(
        [&, t] { results[t] = store_->Commit("v", fmt::format(R"({{"by":{}}})", t)); });
  }
  for (std::thread& thread : threads) thread.join();
  int won = 0, lost = 0;
  std::optional<int> winner;
  for (int t = 0; t < kThreads; ++t) {
    if (results[t].ok()) {
      ++won;
      winner = t;
    } else if (results[t].code() == absl::StatusCode::kAlreadyExists) {
      ++lost;
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(lost, kThreads - 1) << results[0] << " | " << results[1] << " | " << results[2] << " | "
                                << results[3];
  ASSERT_TRUE(winner.has_value());
  EXPECT_EQ(store_->Get("v/manifest.json").value_or(""), fmt::format(R"({{"by":{}}})", *winner));
}

TEST_P(ArtifactStoreConformance, ManifestIsWrittenByCommitLast) {
  const std::string version = "runs/p/r1/t";
  ASSERT_TRUE(store_->Put(version + "/output/a.csv", "a").ok());
  absl::Status before = store_->CheckCommitted(version);
  EXPECT_EQ(before.code(), absl::StatusCode::kNotFound) << before;
  EXPECT_THAT(store_->List(version).value(), ElementsAre(version + "/output/a.csv"));

  const std::string manifest = R"({"files":["output/a.csv"]})";
  ASSERT_TRUE(store_->Commit(version, manifest).ok());
  EXPECT_TRUE(store_->CheckCommitted(version).ok());
  EXPECT_THAT(store_->List(version).value(),
              ElementsAre(version + "/manifest.json", version + "/output/a.csv"));
  EXPECT_EQ(store_->Get(version + "/manifest.json").value_or(""), manifest);
  // Another version is unaffected.
  EXPECT_EQ(store_->CheckCommitted("runs/p/r1/u").code(), absl::StatusCode::kNotFound);
}

TEST_P(ArtifactStoreConformance, PutRefusesTheNamesCommitAndTombstoneWrite) {
  absl::Status manifest = store_->Put("v3/manifest.json", "{}");
  EXPECT_EQ(manifest.code(), absl::StatusCode::kInvalidArgument) << manifest;
  EXPECT_THAT(manifest.message(), HasSubstr("Commit"));
  EXPECT_EQ(store_->Put("v3/_TOMBSTONE.json", "{}").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CheckCommitted("v3").code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store_->List("").value(), IsEmpty());
}

TEST_P(ArtifactStoreConformance, TombstoneRetiresAVersionButKeepsItsData) {
  const std::string tombstone = R"({"by": "ann", "why": "leaked PII"})";
  EXPECT_EQ(store_->Tombstone("models/m/v1", tombstone).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Put("models/m/v1/model.json", "{}").ok());
  EXPECT_EQ(store_->Tombstone("models/m/v1", tombstone).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->Commit("models/m/v1", "{}").ok());
  ASSERT_TRUE(store_->Tombstone("models/m/v1", tombstone).ok());

  absl::Status check = store_->CheckCommitted("models/m/v1");
  EXPECT_EQ(check.code(), absl::StatusCode::kFailedPrecondition) << check;
  EXPECT_THAT(check.message(), HasSubstr("leaked PII"));

  absl::StatusOr<std::string> read = store_->Get("models/m/v1/model.json");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition) << read.status();
  EXPECT_THAT(read.status().message(), HasSubstr("_TOMBSTONE.json"));
  EXPECT_THAT(read.status().message(), HasSubstr("leaked PII"));

  // The data stays until garbage collection; the tombstone itself is readable.
  EXPECT_THAT(store_->List("models/m/v1").value(),
              ElementsAre("models/m/v1/_TOMBSTONE.json", "models/m/v1/manifest.json",
                          "models/m/v1/model.json"));
  EXPECT_EQ(store_->Exists("models/m/v1/model.json").value_or(false), true);
  EXPECT_EQ(store_->Get("models/m/v1/_TOMBSTONE.json").value_or(""), tombstone);

  // Still immutable, and the first tombstone is kept.
  EXPECT_EQ(store_->Put("models/m/v1/more", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Tombstone("models/m/v1", R"({"why":"again"})").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Get("models/m/v1/_TOMBSTONE.json").value_or(""), tombstone);

  // Other versions are unaffected.
  ASSERT_TRUE(store_->Put("models/m/v2/model.json", "2").ok());
  EXPECT_EQ(store_->Get("models/m/v2/model.json").value_or(""), "2");
}

TEST_P(ArtifactStoreConformance, KeysThatLeaveTheRootAreRefused) {
  const std::vector<std::string> bad_keys = {
      "../x", "a/../../x", "/etc/passwd", "a/./../../b", "",   "a\\b",
      "..",   "./..",      "x/..",        "/",           "./", std::string("a\0b", 3),
  };
  const auto& list_outside = GetParam().list_outside_root;
  std::vector<std::string> outside_before;
  if (list_outside) outside_before = list_outside(*store_);
  LocalSourceFile source("escapee");

  for (const std::string& key : bad_keys) {
    SCOPED_TRACE("key " + Show(key));
    EXPECT_EQ(store_->Put(key, "escapee").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->PutFile(key, source.path()).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Get(key).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Exists(key).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Commit(key, "{}").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->CheckCommitted(key).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(store_->Tombstone(key, "{}").code(), absl::StatusCode::kInvalidArgument);
    if (!key.empty()) {  // "" lists the whole lake
      EXPECT_EQ(store_->List(key).status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  absl::Status status = store_->Put("../x", "escapee");
  EXPECT_THAT(status.message(), HasSubstr("../x"));

  EXPECT_THAT(store_->List("").value(), IsEmpty());
  if (list_outside) {
    EXPECT_EQ(list_outside(*store_), outside_before);
  }
}

TEST_P(ArtifactStoreConformance, PutFileCopiesALocalFile) {
  const std::string content = Patterned(300 << 10) + BinaryBlob();
  LocalSourceFile source(content);
  ASSERT_TRUE(store_->PutFile("batch/j1/input-manifest.json", source.path()).ok());
  EXPECT_TRUE(store_->Get("batch/j1/input-manifest.json").value_or("") == content);
  EXPECT_TRUE(std::filesystem::exists(source.path()));

  absl::Status missing = store_->PutFile("batch/j1/other", source.path() + ".missing");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_EQ(store_->Exists("batch/j1/other").value_or(true), false);
}

TEST_P(ArtifactStoreConformance, UriIsTheRootUriSlashTheKey) {
  const std::string root = store_->root_uri();
  ASSERT_FALSE(root.empty());
  EXPECT_NE(root.back(), '/');
  EXPECT_EQ(store_->Uri("datasets/c/v1/data.csv"), root + "/datasets/c/v1/data.csv");
}

}  // namespace ferry::storage
