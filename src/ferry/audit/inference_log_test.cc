#include "ferry/audit/inference_log.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"
#include "ferry/common/fs.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/layout.h"
#include "ferry/storage/local_artifact_store.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::audit {
namespace {

namespace stdfs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Temp folders made by this binary, removed when the tests end.
class TempDirs : public ::testing::Environment {
 public:
  static std::string Make() {
    std::string pattern = (stdfs::temp_directory_path() / "ferry-inflog-test-XXXXXX").string();
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

absl::Time At(const std::string& rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

// Forwards every call to a real store; decorators below override Put.
class ForwardingStore : public storage::ArtifactStore {
 public:
  explicit ForwardingStore(storage::ArtifactStore& inner) : inner_(inner) {}
  std::string root_uri() const override { return inner_.root_uri(); }
  std::string Uri(std::string_view key) const override { return inner_.Uri(key); }
  absl::Status Put(std::string_view key, std::string_view data) override {
    return inner_.Put(key, data);
  }
  absl::Status PutFile(std::string_view key, const std::string& local_path) override {
    return inner_.PutFile(key, local_path);
  }
  absl::StatusOr<std::string> Get(std::string_view key) override { return inner_.Get(key); }
  absl::StatusOr<bool> Exists(std::string_view key) override { return inner_.Exists(key); }
  absl::StatusOr<std::vector<std::string>> List(std::string_view prefix) override {
    return inner_.List(prefix);
  }
  absl::Status Commit(std::string_view prefix, std::string_view manifest_json,
                      storage::Durability durability) override {
    return inner_.Commit(prefix, manifest_json, durability);
  }
  absl::Status CheckCommitted(std::string_view prefix) override {
    return inner_.CheckCommitted(prefix);
  }
  absl::Status Tombstone(std::string_view prefix, std::string_view tombstone_json) override {
    return inner_.Tombstone(prefix, tombstone_json);
  }
  absl::StatusOr<std::string> LocalPath(std::string_view key) override {
    return inner_.LocalPath(key);
  }

 protected:
  storage::ArtifactStore& inner_;
};

// Put waits until the test opens the gate: the writer thread cannot drain while it waits.
class GatedStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::Status Put(std::string_view key, std::string_view data) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; })) {
      return absl::DeadlineExceededError("the test never opened the gate");
    }
    --waiting_;
    lock.unlock();
    return inner_.Put(key, data);
  }
  // True once a Put is waiting at the gate (within 30 s).
  bool AwaitPutWaiting() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return waiting_ > 0; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

// Put fails with Unavailable while `failing` is set, and counts its calls.
class FlakyStore : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::Status Put(std::string_view key, std::string_view data) override {
    ++puts;
    if (failing) return absl::UnavailableError("the lake is down (test)");
    return inner_.Put(key, data);
  }
  std::atomic<bool> failing{true};
  std::atomic<int> puts{0};
};

class InferenceLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = TempDirs::Make();
    ASSERT_FALSE(root_.empty());
    auto lake = storage::LocalArtifactStore::Open(root_ + "/lake");
    ASSERT_TRUE(lake.ok()) << lake.status();
    lake_ = std::move(*lake);
  }

  InferenceLogOptions Options() {
    return {.endpoint = "churn", .instance = "host-1", .segment_age = absl::Hours(10)};
  }

  // Every record of `endpoint` in the lake, segment by segment, oldest first.
  std::vector<std::vector<nlohmann::json>> ReadAll(storage::ArtifactStore& lake,
                                                   std::string_view endpoint = "churn") {
    std::vector<std::vector<nlohmann::json>> out;
    auto keys = ListInferenceSegments(lake, endpoint, absl::InfinitePast(), absl::InfiniteFuture());
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return out;
    for (const std::string& key : *keys) {
      auto records = ReadInferenceSegment(lake, key);
      EXPECT_TRUE(records.ok()) << records.status();
      if (records.ok()) out.push_back(std::move(*records));
    }
    return out;
  }

  std::string root_;
  std::unique_ptr<storage::LocalArtifactStore> lake_;
  FakeClock clock_{At("2026-11-27T10:15:00Z")};
};

TEST_F(InferenceLogTest, RecordsFromManyThreadsRoundTrip) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  InferenceLogOptions options = Options();
  options.segment_bytes = 4096;  // several segments
  auto log = InferenceLog::Open(*lake_, options, clock_);
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        while (!(*log)->Append(fmt::format(R"({{"thread":{},"i":{}}})", t, i), clock_.Now())) {
          std::this_thread::yield();  // the default queue never fills here; retry if it does
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  (*log)->Close();

  EXPECT_EQ((*log)->appended(), kThreads * kPerThread);
  EXPECT_EQ((*log)->dropped(), 0);
  EXPECT_EQ((*log)->write_errors(), 0);
  std::set<std::pair<int, int>> seen;
  int64_t total = 0;
  std::vector<std::vector<nlohmann::json>> segments = ReadAll(*lake_);
  EXPECT_EQ(static_cast<int64_t>(segments.size()), (*log)->segments());
  EXPECT_GT(segments.size(), 1u);
  std::vector<int> last(kThreads, -1);
  for (const auto& segment : segments) {
    for (const nlohmann::json& r : segment) {
      ++total;
      int t = r["thread"].get<int>();
      int i = r["i"].get<int>();
      seen.emplace(t, i);
      EXPECT_EQ(i, last[t] + 1) << "thread " << t << "'s lines are out of order";
      last[t] = i;
    }
  }
  EXPECT_EQ(total, kThreads * kPerThread);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));

  // A window around the hour finds the same keys; a window elsewhere finds none.
  auto all = ListInferenceSegments(*lake_, "churn", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(all.ok());
  auto hour = ListInferenceSegments(*lake_, "churn", At("2026-11-27T10:59:00Z"),
                                    At("2026-11-27T11:00:00Z"));
  ASSERT_TRUE(hour.ok()) << hour.status();
  EXPECT_EQ(*hour, *all);
  auto week = ListInferenceSegments(*lake_, "churn", At("2026-11-21T00:00:00Z"),
                                    At("2026-11-28T00:00:00Z"));
  ASSERT_TRUE(week.ok()) << week.status();
  EXPECT_EQ(*week, *all);
  auto later = ListInferenceSegments(*lake_, "churn", At("2026-11-27T11:00:00Z"),
                                     At("2026-11-27T13:00:00Z"));
  ASSERT_TRUE(later.ok());
  EXPECT_THAT(*later, IsEmpty());
  auto other = ListInferenceSegments(*lake_, "other", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(other.ok());
  EXPECT_THAT(*other, IsEmpty());
}

TEST_F(InferenceLogTest, SegmentKeysFollowTheLayoutAndNaming) {
  auto log = InferenceLog::Open(*lake_, Options(), clock_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(R"({"a":1})", At("2026-11-27T10:15:03.123Z")));
  ASSERT_TRUE((*log)->Append(R"({"a":2})", At("2026-11-27T10:15:04Z")));
  ASSERT_TRUE((*log)->Flush().ok());
  auto keys = lake_->List("inference");
  ASSERT_TRUE(keys.ok());
  EXPECT_THAT(
      *keys,
      ElementsAre("inference/churn/2026/11/27/10/20261127T101503.123Z-host-1-000000.jsonl.zst"));
  auto records = ReadInferenceSegment(*lake_, (*keys)[0]);
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_THAT(*records, ElementsAre(nlohmann::json{{"a", 1}}, nlohmann::json{{"a", 2}}));
}

TEST_F(InferenceLogTest, RotatesBySize) {
  InferenceLogOptions options = Options();
  options.segment_bytes = 1000;
  auto log = InferenceLog::Open(*lake_, options, clock_);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 50; ++i) {
    std::string line = fmt::format(R"({{"i":{:2d},"pad":"{}"}})", i, std::string(82, 'x'));
    ASSERT_EQ(line.size(), 99u);  // 100 bytes with its newline
    ASSERT_TRUE((*log)->Append(line, clock_.Now()));
  }
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  // Five full segments committed by size alone (no flush, no age).
  EXPECT_EQ((*log)->segments(), 5);
  std::vector<std::vector<nlohmann::json>> segments = ReadAll(*lake_);
  ASSERT_THAT(segments, SizeIs(5));
  int next = 0;
  for (const auto& segment : segments) {
    EXPECT_THAT(segment, SizeIs(10));
    for (const nlohmann::json& r : segment) EXPECT_EQ(r["i"].get<int>(), next++);
  }
}

TEST_F(InferenceLogTest, RotatesByAgeOnTheClock) {
  InferenceLogOptions options = Options();
  options.segment_age = absl::Minutes(1);
  auto log = InferenceLog::Open(*lake_, options, clock_);
  ASSERT_TRUE(log.ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE((*log)->Append(fmt::format(R"({{"i":{}}})", i), clock_.Now()));
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  EXPECT_EQ((*log)->segments(), 0);
  clock_.Advance(absl::Seconds(59));
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  EXPECT_EQ((*log)->segments(), 0);
  EXPECT_THAT(ReadAll(*lake_), IsEmpty());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  EXPECT_EQ((*log)->segments(), 1);
  std::vector<std::vector<nlohmann::json>> segments = ReadAll(*lake_);
  ASSERT_THAT(segments, SizeIs(1));
  EXPECT_THAT(segments[0], SizeIs(3));
}

TEST_F(InferenceLogTest, HourBoundarySplitsSegmentsIntoHourFolders) {
  auto log = InferenceLog::Open(*lake_, Options(), clock_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(R"({"n":"a1"})", At("2026-11-27T10:59:59.500Z")));
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  EXPECT_EQ((*log)->segments(), 0);  // the 10:00 segment is still open
  ASSERT_TRUE((*log)->Append(R"({"n":"b1"})", At("2026-11-27T11:00:00.100Z")));
  ASSERT_TRUE((*log)->RunWriterPassForTest().ok());
  EXPECT_EQ((*log)->segments(), 1);  // a record of 11:00 closed the 10:00 segment
  // A straggler of 10:00 gets a segment of its own in the 10 folder.
  ASSERT_TRUE((*log)->Append(R"({"n":"a2"})", At("2026-11-27T10:59:59.900Z")));
  ASSERT_TRUE((*log)->Append(R"({"n":"b2"})", At("2026-11-27T11:00:00.200Z")));
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->segments(), 3);

  auto ten = ListInferenceSegments(*lake_, "churn", At("2026-11-27T10:00:00Z"),
                                   At("2026-11-27T11:00:00Z"));
  ASSERT_TRUE(ten.ok());
  EXPECT_THAT(*ten, ElementsAre("inference/churn/2026/11/27/10/"
                                "20261127T105959.500Z-host-1-000000.jsonl.zst",
                                "inference/churn/2026/11/27/10/"
                                "20261127T105959.900Z-host-1-000002.jsonl.zst"));
  auto eleven = ListInferenceSegments(*lake_, "churn", At("2026-11-27T11:30:00Z"),
                                      At("2026-11-27T11:30:01Z"));
  ASSERT_TRUE(eleven.ok());
  ASSERT_THAT(*eleven, ElementsAre("inference/churn/2026/11/27/11/"
                                   "20261127T110000.100Z-host-1-000001.jsonl.zst"));
  auto records = ReadInferenceSegment(*lake_, (*eleven)[0]);
  ASSERT_TRUE(records.ok());
  EXPECT_THAT(*records, ElementsAre(nlohmann::json{{"n", "b1"}}, nlohmann::json{{"n", "b2"}}));
}

TEST_F(InferenceLogTest, FullQueueDropsAndCountsWithoutBlocking) {
  GatedStore gated(*lake_);
  InferenceLogOptions options = Options();
  options.queue_records = 8;
  InferenceLog log(gated, options, clock_);
  ASSERT_TRUE(log.Append(R"({"i":0})", clock_.Now()));
  absl::Status flushed = absl::UnknownError("not run");
  std::thread flusher([&] { flushed = log.Flush(); });
  ASSERT_TRUE(gated.AwaitPutWaiting());  // the writer is stuck in Put with record 0

  // The queue takes 8 more and refuses the rest at once, while the writer cannot drain.
  for (int i = 1; i <= 8; ++i)
    EXPECT_TRUE(log.Append(fmt::format(R"({{"i":{}}})", i), clock_.Now()));
  EXPECT_FALSE(log.Append(R"({"i":9})", clock_.Now()));
  EXPECT_FALSE(log.Append(R"({"i":10})", clock_.Now()));
  EXPECT_EQ(log.appended(), 9);
  EXPECT_EQ(log.dropped(), 2);
  EXPECT_EQ(log.segments(), 0);

  gated.Open();
  flusher.join();
  EXPECT_TRUE(flushed.ok()) << flushed;
  log.Close();
  EXPECT_EQ(log.dropped(), 2);
  std::vector<int> got;
  for (const auto& segment : ReadAll(*lake_)) {
    for (const nlohmann::json& r : segment) got.push_back(r["i"].get<int>());
  }
  EXPECT_THAT(got, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8));
}

TEST_F(InferenceLogTest, FlushCommitsTheOpenSegment) {
  auto log = InferenceLog::Open(*lake_, Options(), clock_);
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE((*log)->Flush().ok());  // nothing to commit
  EXPECT_EQ((*log)->segments(), 0);
  ASSERT_TRUE((*log)->Append(R"({"i":0})", clock_.Now()));
  ASSERT_TRUE((*log)->Append(R"({"i":1})", clock_.Now()));
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->segments(), 1);
  auto segments = ReadAll(*lake_);
  ASSERT_THAT(segments, SizeIs(1));
  EXPECT_THAT(segments[0], SizeIs(2));
  ASSERT_TRUE((*log)->Append(R"({"i":2})", clock_.Now()));
  ASSERT_TRUE((*log)->Flush().ok());
  EXPECT_EQ((*log)->segments(), 2);
  EXPECT_THAT(ReadAll(*lake_), SizeIs(2));
}

TEST_F(InferenceLogTest, CloseFlushesAndRefusesLaterAppends) {
  auto log = InferenceLog::Open(*lake_, Options(), clock_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(R"({"i":0})", clock_.Now()));
  (*log)->Close();
  (*log)->Close();  // idempotent
  EXPECT_EQ((*log)->segments(), 1);
  EXPECT_FALSE((*log)->Append(R"({"i":1})", clock_.Now()));
  EXPECT_EQ((*log)->dropped(), 1);
  EXPECT_TRUE((*log)->Flush().ok());
  auto segments = ReadAll(*lake_);
  ASSERT_THAT(segments, SizeIs(1));
  EXPECT_THAT(segments[0], ElementsAre(nlohmann::json{{"i", 0}}));
}

TEST_F(InferenceLogTest, FailedPutIsCountedKeptAndRetried) {
  FlakyStore flaky(*lake_);
  InferenceLog log(flaky, Options(), clock_);
  ASSERT_TRUE(log.Append(R"({"i":0})", clock_.Now()));
  ASSERT_TRUE(log.Append(R"({"i":1})", clock_.Now()));
  absl::Status status = log.Flush();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("inference/churn/2026/11/27/10/"));
  EXPECT_EQ(log.write_errors(), 1);
  EXPECT_EQ(log.segments(), 0);
  EXPECT_THAT(ReadAll(*lake_), IsEmpty());

  flaky.failing = false;
  EXPECT_TRUE(log.Flush().ok());
  EXPECT_EQ(log.write_errors(), 1);
  EXPECT_EQ(log.segments(), 1);
  EXPECT_EQ(log.dropped(), 0);
  auto segments = ReadAll(*lake_);
  ASSERT_THAT(segments, SizeIs(1));
  EXPECT_THAT(segments[0], ElementsAre(nlohmann::json{{"i", 0}}, nlohmann::json{{"i", 1}}));
}

TEST_F(InferenceLogTest, KeptLinesAreBoundedByTheQueueSizeOldestDroppedFirst) {
  FlakyStore flaky(*lake_);
  InferenceLogOptions options = Options();
  options.queue_records = 4;
  InferenceLog log(flaky, options, clock_);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(log.Append(fmt::format(R"({{"i":{}}})", i), clock_.Now()));
  EXPECT_FALSE(log.Flush().ok());
  EXPECT_EQ(log.dropped(), 0);
  for (int i = 3; i < 6; ++i)
    ASSERT_TRUE(log.Append(fmt::format(R"({{"i":{}}})", i), clock_.Now()));
  EXPECT_FALSE(log.Flush().ok());
  EXPECT_EQ(log.dropped(), 2);  // 6 kept lines, bound 4: lines 0 and 1 go
  EXPECT_GE(log.write_errors(), 2);

  flaky.failing = false;
  EXPECT_TRUE(log.Flush().ok());
  std::vector<int> got;
  for (const auto& segment : ReadAll(*lake_)) {
    for (const nlohmann::json& r : segment) got.push_back(r["i"].get<int>());
  }
  EXPECT_THAT(got, ElementsAre(2, 3, 4, 5));
  EXPECT_EQ(log.appended(), 6);
}

TEST_F(InferenceLogTest, CloseCountsLinesItCannotWriteAsDropped) {
  FlakyStore flaky(*lake_);
  InferenceLog log(flaky, Options(), clock_);
  ASSERT_TRUE(log.Append(R"({"i":0})", clock_.Now()));
  log.Close();
  EXPECT_EQ(log.dropped(), 1);
  EXPECT_EQ(log.segments(), 0);
  EXPECT_EQ(log.Flush().code(), absl::StatusCode::kUnavailable);
}

TEST_F(InferenceLogTest, OpenRejectsInvalidOptions) {
  InferenceLogOptions options = Options();
  options.endpoint = "../x";
  auto log = InferenceLog::Open(*lake_, options, clock_);
  EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(log.status().message(), HasSubstr("endpoint"));
  options = Options();
  options.instance = "";
  EXPECT_THAT(ValidateInferenceLogOptions(options).message(), HasSubstr("instance"));
  options = Options();
  options.queue_records = 0;
  EXPECT_THAT(ValidateInferenceLogOptions(options).message(), HasSubstr("queue_records"));
  options = Options();
  options.segment_age = absl::ZeroDuration();
  EXPECT_THAT(ValidateInferenceLogOptions(options).message(), HasSubstr("segment_age"));
  EXPECT_TRUE(ValidateInferenceLogOptions(Options()).ok());
  EXPECT_EQ(ListInferenceSegments(*lake_, "a/b", absl::InfinitePast(), absl::InfiniteFuture())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(InferenceLogTest, ReadRejectsDamagedSegments) {
  auto log = InferenceLog::Open(*lake_, Options(), clock_);
  ASSERT_TRUE(log.ok());
  ASSERT_TRUE((*log)->Append(R"({"i":0,"pad":"abcdefghijklmnopqrstuvwxyz"})", clock_.Now()));
  ASSERT_TRUE((*log)->Flush().ok());
  auto keys = ListInferenceSegments(*lake_, "churn", absl::InfinitePast(), absl::InfiniteFuture());
  ASSERT_TRUE(keys.ok());
  ASSERT_THAT(*keys, SizeIs(1));
  auto whole = lake_->Get((*keys)[0]);
  ASSERT_TRUE(whole.ok());

  auto key = storage::layout::InferenceSegment("churn", clock_.Now(), "damaged");
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(lake_->Put(*key, whole->substr(0, whole->size() - 3)).ok());
  auto cut = ReadInferenceSegment(*lake_, *key);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(cut.status().message(), HasSubstr("damaged"));
  ASSERT_TRUE(lake_->Put(*key, "not zstd").ok());
  EXPECT_EQ(ReadInferenceSegment(*lake_, *key).status().code(), absl::StatusCode::kDataLoss);
}

// A child process logs continuously with small segments and is killed with SIGKILL mid-flight:
// every segment in the lake must be whole and every line JSON; temp files are never listed.
TEST_F(InferenceLogTest, KillNineLeavesOnlyWholeSegments) {
  const std::string lake_root = root_ + "/lake";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lake = storage::LocalArtifactStore::Open(lake_root);
    if (!lake.ok()) ::_exit(2);
    InferenceLogOptions options = Options();
    options.segment_bytes = 2048;
    options.instance = fmt::format("child-{}", ::getpid());
    InferenceLog log(**lake, options, SystemClock::Get());
    absl::Time give_up = absl::Now() + absl::Seconds(60);  // bounded if the parent goes away
    for (int64_t i = 0; absl::Now() < give_up; ++i) {
      log.Append(
          fmt::format(R"({{"transaction_id":"t{}","row":0,"pad":"{}"}})", i, std::string(100, 'p')),
          absl::Now());
    }
    ::_exit(0);
  }

  // Wait (bounded) until the child has committed at least 3 segments, then kill it.
  std::vector<std::string> keys;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    auto listed = lake_->List("inference/churn");
    ASSERT_TRUE(listed.ok()) << listed.status();
    keys = *listed;
    if (keys.size() >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a polling interval, not a wait
  }
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the child ended by itself: status " << wstatus;
  EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);
  ASSERT_GE(keys.size(), 3u) << "the child committed fewer than 3 segments in 30 s";

  auto all = lake_->List("");
  ASSERT_TRUE(all.ok());
  ASSERT_GE(all->size(), 3u);
  int64_t lines = 0;
  for (const std::string& key : *all) {
    EXPECT_TRUE(key.starts_with("inference/churn/")) << key;
    EXPECT_TRUE(key.ends_with(".jsonl.zst")) << key;
    EXPECT_EQ(key.find(".tmp."), std::string::npos) << key;
    auto records = ReadInferenceSegment(*lake_, key);
    ASSERT_TRUE(records.ok()) << records.status();
    EXPECT_FALSE(records->empty()) << key;
    for (const nlohmann::json& r : *records) {
      EXPECT_EQ(r["pad"], std::string(100, 'p'));
      ++lines;
    }
  }
  EXPECT_GE(lines, 3 * 2048 / 160);
}

}  // namespace
}  // namespace ferry::audit
