#include "ferry/audit/inference_log.h"

#include <sys/resource.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::audit {
namespace {

constexpr auto kWakeEvery = std::chrono::milliseconds(100);
constexpr auto kRetryBackoff = std::chrono::seconds(1);
constexpr absl::Duration kErrorLogEvery = absl::Minutes(1);
constexpr size_t kMaxInstanceChars = 96;
constexpr int kZstdLevel = 1;
// The queue and the writer's batch start with room for this many lines and grow when needed;
// swapping them keeps the capacity, so a steady load appends without allocating the vector.
constexpr size_t kInitialQueueCapacity = 1024;
// Day-by-day listing up to this many days; a longer window lists the endpoint's whole folder.
constexpr int64_t kMaxListedDays = 400;
constexpr std::string_view kSegmentSuffix = ".jsonl.zst";

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

absl::Time HourOf(absl::Time t) {
  return absl::FromUnixSeconds(FloorDiv(absl::ToUnixSeconds(t), 3600) * 3600);
}

// The folder of `key` after dropping its last `levels` components ("a/b/c", 1 -> "a/b").
std::string Parent(std::string key, int levels) {
  for (int i = 0; i < levels; ++i) {
    size_t slash = key.rfind('/');
    key = slash == std::string::npos ? "" : key.substr(0, slash);
  }
  return key;
}

}  // namespace

// The writer's zstd context and output buffer, kept from one segment to the next: a segment is
// megabytes, and a fresh context and a zero-filled buffer of the compressed size's bound for
// each one are page faults and a memset the writer need not pay.
struct InferenceLog::Compressor {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx{ZSTD_createCCtx(), ZSTD_freeCCtx};
  std::unique_ptr<char[]> buffer;  // uninitialised; only the compressed bytes are copied out
  size_t capacity = 0;

  absl::StatusOr<std::string> Compress(std::string_view data) {
    if (cctx == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
    ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kZstdLevel);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
    const size_t bound = ZSTD_compressBound(data.size());
    if (capacity < bound) {
      buffer.reset(new char[bound]);
      capacity = bound;
    }
    size_t n = ZSTD_compress2(cctx.get(), buffer.get(), capacity, data.data(), data.size());
    if (ZSTD_isError(n)) {
      return absl::InternalError(
          fmt::format("zstd compression of an inference segment failed: {}", ZSTD_getErrorName(n)));
    }
    return std::string(buffer.get(), n);
  }
};

absl::Status ValidateInferenceLogOptions(const InferenceLogOptions& o) {
  if (!IsValidName(o.endpoint)) {
    return absl::InvalidArgumentError(
        fmt::format("inference log: invalid endpoint name '{}': use letters, digits, '_', '-', '.'",
                    o.endpoint));
  }
  if (!IsValidName(o.instance) || o.instance.size() > kMaxInstanceChars) {
    return absl::InvalidArgumentError(
        fmt::format("inference log: invalid instance '{}': use at most {} letters, digits, '_', "
                    "'-', '.' (e.g. '<host>-<pid>'), unique per serving process",
                    o.instance, kMaxInstanceChars));
  }
  if (o.queue_records == 0) {
    return absl::InvalidArgumentError("inference log: queue_records must be at least 1");
  }
  if (o.segment_bytes == 0) {
    return absl::InvalidArgumentError("inference log: segment_bytes must be at least 1");
  }
  if (o.segment_age <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        fmt::format("inference log: segment_age must be positive, not {}",
                    absl::FormatDuration(o.segment_age)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<InferenceLog>> InferenceLog::Open(storage::ArtifactStore& lake,
                                                                 InferenceLogOptions options,
                                                                 const Clock& clock) {
  FERRY_RETURN_IF_ERROR(ValidateInferenceLogOptions(options));
  return std::make_unique<InferenceLog>(lake, std::move(options), clock);
}

InferenceLog::InferenceLog(storage::ArtifactStore& lake, InferenceLogOptions options,
                           const Clock& clock)
    : lake_(lake),
      options_(std::move(options)),
      clock_(clock),
      compressor_(std::make_unique<Compressor>()) {
  FERRY_CHECK(ValidateInferenceLogOptions(options_).ok());
  queue_.reserve(std::min(options_.queue_records, kInitialQueueCapacity));
  writer_ = std::thread([this] { WriterLoop(); });
}

InferenceLog::~InferenceLog() { Close(); }

bool InferenceLog::Append(std::string line, absl::Time at) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || queue_.size() >= options_.queue_records) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(Record{std::move(line), at});
    wake = queue_.size() == std::max<size_t>(options_.queue_records / 2, 1);
  }
  appended_.fetch_add(1, std::memory_order_relaxed);
  if (wake) wake_.notify_one();
  return true;
}

absl::Status InferenceLog::Flush() { return RequestPass(/*force=*/true); }

absl::Status InferenceLog::RunWriterPassForTest() { return RequestPass(/*force=*/false); }

absl::Status InferenceLog::RequestPass(bool force) {
  std::unique_lock<std::mutex> lock(mu_);
  if (writer_exited_) return close_status_;
  int64_t request = ++pass_requests_;
  if (force) force_requests_ = request;
  wake_.notify_one();
  done_.wait(lock, [&] { return passes_done_ >= request || writer_exited_; });
  return passes_done_ >= request ? pass_status_ : close_status_;
}

void InferenceLog::Close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    wake_.notify_one();
    writer_.join();
  });
}

void InferenceLog::WriterLoop() {
  // The writer yields to the threads that answer requests: compressing a segment takes tens of
  // milliseconds of CPU, and at normal priority it would share a core with an event loop and
  // delay the requests that loop is answering (with wrk -c1, its p99 about halved). Nice
  // 10 still leaves it about a tenth of a busy core; at 40,000 requests/s it used 10% of one.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
  std::vector<Record> batch;
  batch.reserve(std::min(options_.queue_records, kInitialQueueCapacity));
  for (;;) {
    int64_t serving = 0;
    bool force = false;
    bool closing = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, kWakeEvery, [&] {
        return closed_ || pass_requests_ > passes_done_ ||
               queue_.size() >= std::max<size_t>(options_.queue_records / 2, 1);
      });
      batch.swap(queue_);
      serving = pass_requests_;
      force = force_requests_ > passes_done_;
      closing = closed_;
    }
    for (Record& record : batch) AddRecord(record);
    batch.clear();

    // An older hour is done once a later one has arrived; a segment is done when it is old.
    if (!open_.empty()) {
      int64_t newest = open_.rbegin()->first;
      absl::Time now = clock_.Now();
      for (auto it = open_.begin(); it != open_.end();) {
        if (force || closing || it->first < newest ||
            now - it->second.oldest >= options_.segment_age) {
          Ready(std::move(it->second));
          it = open_.erase(it);
        } else {
          ++it;
        }
      }
    }
    absl::Status status = CommitReady(force || closing);
    if (!ready_.empty()) BoundKept();

    if (closing) {
      if (ready_records_ > 0) {
        dropped_.fetch_add(ready_records_, std::memory_order_relaxed);
        std::fprintf(stderr,
                     "ferry serve: inference log of endpoint %s: %lld line(s) could not be "
                     "written to the lake at shutdown and are lost: %s\n",
                     options_.endpoint.c_str(), static_cast<long long>(ready_records_),
                     std::string(status.message()).c_str());
        ready_.clear();
        ready_records_ = 0;
      }
      std::lock_guard<std::mutex> lock(mu_);
      // Appends are refused once closed_ is set, so the queue drained above was the last.
      passes_done_ = pass_requests_;
      pass_status_ = status;
      close_status_ = status;
      writer_exited_ = true;
      done_.notify_all();
      return;
    }
    if (serving > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      if (serving > passes_done_) {
        passes_done_ = serving;
        pass_status_ = status;
        done_.notify_all();
      }
    }
  }
}

void InferenceLog::AddRecord(Record& record) {
  if (record.at == absl::InfinitePast() || record.at == absl::InfiniteFuture()) {
    record.at = clock_.Now();
  }
  absl::Time hour = HourOf(record.at);
  int64_t hour_key = absl::ToUnixSeconds(hour);
  auto [it, created] = open_.try_emplace(hour_key);
  Segment& segment = it->second;
  if (created) {
    segment.data = std::move(spare_);
    segment.data.clear();
    spare_ = std::string();
    segment.hour = hour;
    segment.oldest = record.at;
    segment.name = fmt::format("{}-{}-{:06d}",
                               absl::FormatTime("%Y%m%dT%H%M%E3SZ", record.at, absl::UTCTimeZone()),
                               options_.instance, next_seq_++);
  }
  segment.oldest = std::min(segment.oldest, record.at);
  segment.data += record.line;
  segment.data += '\n';
  ++segment.records;
  if (segment.data.size() >= options_.segment_bytes) {
    Ready(std::move(segment));
    open_.erase(it);
  }
}

void InferenceLog::Ready(Segment segment) {
  ready_records_ += segment.records;
  ready_.push_back(std::move(segment));
}

absl::Status InferenceLog::CommitReady(bool force) {
  if (ready_.empty()) return absl::OkStatus();
  if (!force && std::chrono::steady_clock::now() < retry_after_) return absl::OkStatus();
  while (!ready_.empty()) {
    absl::Status status = Put(ready_.front());
    if (!status.ok()) {
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      ReportWriteError(status);
      retry_after_ = std::chrono::steady_clock::now() + kRetryBackoff;
      return status;
    }
    segments_.fetch_add(1, std::memory_order_relaxed);
    ready_records_ -= ready_.front().records;
    // The next segment grows into this one's buffer instead of reallocating its way up.
    if (ready_.front().data.capacity() > spare_.capacity()) spare_ = std::move(ready_.front().data);
    ready_.pop_front();
  }
  return absl::OkStatus();
}

absl::Status InferenceLog::Put(Segment& segment) {
  FERRY_ASSIGN_OR_RETURN(std::string key, storage::layout::InferenceSegment(
                                              options_.endpoint, segment.hour, segment.name));
  if (segment.compressed.empty()) {
    FERRY_ASSIGN_OR_RETURN(segment.compressed, compressor_->Compress(segment.data));
  }
  absl::Status status = lake_.Put(key, segment.compressed);
  if (!status.ok()) {
    return absl::Status(status.code(),
                        fmt::format("cannot write inference segment {} ({} line(s)): {}", key,
                                    segment.records, status.message()));
  }
  return absl::OkStatus();
}

void InferenceLog::BoundKept() {
  const int64_t bound = static_cast<int64_t>(options_.queue_records);
  while (ready_records_ > bound && !ready_.empty()) {
    Segment& oldest = ready_.front();
    int64_t excess = ready_records_ - bound;
    if (oldest.records <= excess) {
      dropped_.fetch_add(oldest.records, std::memory_order_relaxed);
      ready_records_ -= oldest.records;
      ready_.pop_front();
      continue;
    }
    // Drop the segment's first `excess` lines; it keeps its name (and so its place in time).
    size_t cut = 0;
    for (int64_t i = 0; i < excess; ++i) cut = oldest.data.find('\n', cut) + 1;
    oldest.data.erase(0, cut);
    oldest.records -= excess;
    oldest.compressed.clear();
    dropped_.fetch_add(excess, std::memory_order_relaxed);
    ready_records_ -= excess;
  }
}

void InferenceLog::ReportWriteError(const absl::Status& status) {
  absl::Time now = clock_.Now();
  if (now - last_error_log_ < kErrorLogEvery) {
    ++unlogged_errors_;
    return;
  }
  std::string more =
      unlogged_errors_ > 0 ? fmt::format(" ({} more since the last report)", unlogged_errors_) : "";
  std::fprintf(stderr,
               "ferry serve: inference log of endpoint %s: %s%s; the segment is kept and retried "
               "(up to %zu lines, then the oldest are dropped)\n",
               options_.endpoint.c_str(), std::string(status.message()).c_str(), more.c_str(),
               options_.queue_records);
  last_error_log_ = now;
  unlogged_errors_ = 0;
}

absl::StatusOr<std::vector<std::string>> ListInferenceSegments(storage::ArtifactStore& lake,
                                                               std::string_view endpoint,
                                                               absl::Time from, absl::Time to) {
  // The layout module builds every path: take the folders from a segment key it builds.
  auto hour_folder = [&](absl::Time hour) -> absl::StatusOr<std::string> {
    FERRY_ASSIGN_OR_RETURN(std::string key, storage::layout::InferenceSegment(endpoint, hour, "x"));
    return Parent(std::move(key), 1);
  };
  FERRY_ASSIGN_OR_RETURN(std::string probe, hour_folder(absl::UnixEpoch()));
  std::vector<std::string> out;
  if (from >= to) return out;

  // The segment's hour, from its key "<endpoint folder>/<yyyy>/<mm>/<dd>/<hh>/<name>".
  auto hour_of_key = [](std::string_view key) -> std::optional<absl::Time> {
    std::string folder = Parent(std::string(key), 1);
    if (folder.size() < 13) return std::nullopt;
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y/%m/%d/%H", folder.substr(folder.size() - 13), absl::UTCTimeZone(), &t,
                         &err)) {
      return std::nullopt;
    }
    return t;
  };
  auto keep = [&](const std::string& key) {
    if (!key.ends_with(kSegmentSuffix)) return;
    std::optional<absl::Time> hour = hour_of_key(key);
    if (hour && *hour + absl::Hours(1) > from && *hour < to) out.push_back(key);
  };

  const bool bounded = from != absl::InfinitePast() && to != absl::InfiniteFuture() &&
                       (to - from) <= absl::Hours(24 * kMaxListedDays);
  if (!bounded) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, lake.List(Parent(probe, 4)));
    for (const std::string& key : keys) keep(key);
  } else {
    absl::Time day = absl::FromUnixSeconds(FloorDiv(absl::ToUnixSeconds(from), 86400) * 86400);
    for (; day < to; day += absl::Hours(24)) {
      FERRY_ASSIGN_OR_RETURN(std::string folder, hour_folder(day));
      FERRY_ASSIGN_OR_RETURN(std::vector<std::string> keys, lake.List(Parent(folder, 1)));
      for (const std::string& key : keys) keep(key);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::vector<nlohmann::json>> ReadInferenceSegment(storage::ArtifactStore& lake,
                                                                 std::string_view key) {
  FERRY_ASSIGN_OR_RETURN(std::string compressed, lake.Get(key));
  absl::StatusOr<std::string> decompressed = data::ZstdDecompress(compressed, key);
  if (!decompressed.ok()) {
    return absl::DataLossError(
        fmt::format("inference segment {}", decompressed.status().message()));
  }
  std::string text = std::move(*decompressed);
  std::vector<nlohmann::json> records;
  size_t start = 0;
  int64_t line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      return absl::DataLossError(
          fmt::format("inference segment {}: line {} has no newline (the segment is cut short)",
                      key, line_no + 1));
    }
    ++line_no;
    nlohmann::json record = nlohmann::json::parse(std::string_view(text).substr(start, end - start),
                                                  nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) {
      return absl::DataLossError(
          fmt::format("inference segment {}: line {} is not a JSON object", key, line_no));
    }
    records.push_back(std::move(record));
    start = end + 1;
  }
  return records;
}

}  // namespace ferry::audit
