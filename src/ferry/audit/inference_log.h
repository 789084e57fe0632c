#pragma once
// InferenceLog: the audit trail and feature log of one serving process. Every request of
// `ferry serve` appends one JSON line per input row; a writer thread owned by the log batches the
// lines into zstd-compressed segments and commits each with one ArtifactStore::Put at
//
//   inference/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/<segment>.jsonl.zst        (storage/layout.h)
//
// where <hh> is the UTC hour of the segment's records and <segment> is
// "<yyyymmddThhmmss.mmmZ of its first record>-<instance>-<seq, 6+ digits>": names sort by time and
// never collide across processes that use distinct instances (docs/serving.md).
//
// Thread-safety: Append, Flush, Close and the counters may be called from any number of threads;
// one writer thread, started by the constructor and joined by Close, does all compression and I/O.
//
// What happens when:
//  - The queue is full (queue_records lines waiting for the writer) or the log is closed: Append
//    returns false at once and the line is counted in dropped(). Append never waits for I/O or
//    for the writer; it takes one short mutex to push onto a vector that the writer swaps out.
//  - A segment is committed when its uncompressed bytes reach segment_bytes, when its oldest
//    record (by the `at` given to Append) is segment_age old on the Clock, when a record of a
//    later hour has been drained (the older hour's segment is done), on Flush and on Close. The
//    writer wakes every 100 ms of real time, and early when the queue is half full.
//  - A Put fails: counted in write_errors(), logged to stderr at most once a minute (on the
//    Clock), and the segment is kept and retried (after 1 s of real time, or at once on Flush and
//    Close) under the same key, so a retry that races an earlier partial success overwrites it
//    with the same content. Kept segments hold at most queue_records lines in all; beyond that the
//    oldest lines are dropped and counted in dropped(). Lines still unwritten when Close gives up
//    are counted in dropped() too.
//  - The process is killed (kill -9): lines not yet committed are lost; every segment in the lake
//    is whole (a Put is atomic: temp file, fsync, rename) or absent.
//
// Counters: appended() counts lines accepted by Append; dropped() counts lines refused by Append
// plus accepted lines given up later; segments() counts committed segments.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(auto log, InferenceLog::Open(*lake, {.endpoint = "churn",
//                                                               .instance = "host1-4242"},
//                                                       SystemClock::Get()));
//   log->Append(R"({"transaction_id":"0193...","row":0,...})", absl::Now());
//   ...
//   log->Close();  // on SIGTERM: drains and commits everything

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/common/clock.h"
#include "ferry/storage/artifact_store.h"
#include "nlohmann/json.hpp"

namespace ferry::audit {

struct InferenceLogOptions {
  std::string endpoint;
  std::string instance;             // unique per serving process; part of segment names
  size_t queue_records = 1 << 16;   // bounded queue; full -> drop and count
  size_t segment_bytes = 16 << 20;  // uncompressed bytes before a segment is committed
  absl::Duration segment_age = absl::Minutes(1);  // oldest record's age before commit
};

// InvalidArgument naming the field when the endpoint or instance is not a valid name (letters,
// digits, '_', '-', '.'; the instance at most 96 characters), a bound is zero, or the age is not
// positive.
absl::Status ValidateInferenceLogOptions(const InferenceLogOptions& options);

class InferenceLog {
 public:
  // Validates the options (ValidateInferenceLogOptions) and starts the log.
  static absl::StatusOr<std::unique_ptr<InferenceLog>> Open(storage::ArtifactStore& lake,
                                                            InferenceLogOptions options,
                                                            const Clock& clock);

  // Starts the writer thread. `lake` and `clock` are borrowed and must outlive the log. The
  // options must be valid (Open checks them and reports why; here an invalid one aborts).
  InferenceLog(storage::ArtifactStore& lake, InferenceLogOptions options, const Clock& clock);
  ~InferenceLog();  // Close()

  InferenceLog(const InferenceLog&) = delete;
  InferenceLog& operator=(const InferenceLog&) = delete;

  // Never blocks on I/O or on the writer: false (and counted in dropped()) when the queue is
  // full or the log is closed. `line` is one JSON object without a newline; `at` the request's
  // time (it picks the segment's hour; an infinite time is replaced by the Clock's now).
  bool Append(std::string line, absl::Time at);

  // Commits every open segment now, with every line appended before the call, and retries kept
  // segments; returns when they are in the lake, or the first Put error (the segment is kept for
  // the next try). After Close: OK when Close committed everything, else Close's error.
  absl::Status Flush();

  // Drains the queue, commits the open segments (one more try for kept ones), joins the writer
  // thread. Idempotent; Append returns false afterwards.
  void Close();

  int64_t appended() const { return appended_.load(std::memory_order_relaxed); }
  int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  int64_t segments() const { return segments_.load(std::memory_order_relaxed); }
  int64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

  // Runs one writer pass now, exactly as the 100 ms wake-up does (drain, rotate by size, hour and
  // age, retry kept segments whose backoff has passed) and waits for it; returns the first Put
  // error of the pass. Lets tests drive age rotation with a FakeClock without sleeping.
  absl::Status RunWriterPassForTest();

 private:
  struct Record {
    std::string line;
    absl::Time at;
  };
  // Lines of one UTC hour on their way to one object in the lake.
  struct Segment {
    absl::Time hour;   // start of the UTC hour
    std::string name;  // "<time>-<instance>-<seq>"
    std::string data;  // JSON lines, each ending in '\n'
    int64_t records = 0;
    absl::Time oldest;       // smallest `at`, for age rotation
    std::string compressed;  // cache of data's zstd frame; empty until the first try
  };

  // Asks the writer for a pass (a forced one commits everything) and waits for its status.
  absl::Status RequestPass(bool force);
  void WriterLoop();
  // Writer thread only, below.
  void AddRecord(Record& record);
  void Ready(Segment segment);
  absl::Status CommitReady(bool force);
  absl::Status Put(Segment& segment);
  void BoundKept();
  void ReportWriteError(const absl::Status& status);

  storage::ArtifactStore& lake_;
  const InferenceLogOptions options_;
  const Clock& clock_;

  std::mutex mu_;
  std::condition_variable wake_;  // the writer waits here
  std::condition_variable done_;  // RequestPass waits here
  std::vector<Record> queue_;     // guarded by mu_
  bool closed_ = false;           // guarded by mu_
  bool writer_exited_ = false;    // guarded by mu_
  int64_t pass_requests_ = 0;     // guarded by mu_
  int64_t force_requests_ = 0;    // guarded by mu_: highest request number that forces
  int64_t passes_done_ = 0;       // guarded by mu_: highest request number served
  absl::Status pass_status_;      // guarded by mu_: status of the last served pass
  absl::Status close_status_;     // guarded by mu_: set when the writer exits

  std::once_flag close_once_;
  std::thread writer_;

  // Writer thread state.
  struct Compressor;
  std::unique_ptr<Compressor> compressor_;
  std::string spare_;                // a committed segment's buffer, for the next segment
  std::map<int64_t, Segment> open_;  // by hour (unix seconds)
  std::deque<Segment> ready_;        // waiting for (another) Put, oldest first
  int64_t ready_records_ = 0;        // lines in ready_ (kept after a failed Put included)
  int64_t next_seq_ = 0;
  std::chrono::steady_clock::time_point retry_after_{};
  absl::Time last_error_log_ = absl::InfinitePast();
  int64_t unlogged_errors_ = 0;

  std::atomic<int64_t> appended_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> segments_{0};
  std::atomic<int64_t> write_errors_{0};
};

// Keys of the committed segments of `endpoint` whose hour overlaps [from, to), oldest first
// (sorted by hour, then by segment name). InvalidArgument for an invalid endpoint name.
absl::StatusOr<std::vector<std::string>> ListInferenceSegments(storage::ArtifactStore& lake,
                                                               std::string_view endpoint,
                                                               absl::Time from, absl::Time to);

// The records of one segment, in order. DataLoss naming the key (and line) when the object is not
// a whole zstd frame or a line is not a JSON object.
absl::StatusOr<std::vector<nlohmann::json>> ReadInferenceSegment(storage::ArtifactStore& lake,
                                                                 std::string_view key);

}  // namespace ferry::audit
