#pragma once
// InferenceService: the routes of `ferry serve` (docs/serving.md) on top of HttpServer's Handler.
//
//   GET  /ping, /ready, /v2/health/live, /v2/health/ready, /metrics
//   GET  /endpoint                       the variants, weights and model versions (admin)
//   POST /invocations                    SageMaker-style JSON or text/csv rows (invoke)
//   GET  /v2/models/<name>[/ready]       Open Inference Protocol v2 metadata (invoke)
//   POST /v2/models/<name>/infer         Open Inference Protocol v2 inference (invoke)
//
// Every answer to an inference carries the predictions, {"model": {name, version, variant}},
// a transaction id (UUIDv7, or the client's X-Ferry-Transaction-Id when it is a UUID; also the
// X-Ferry-Transaction-Id response header) and, when the endpoint says so, the inputs echoed.
// Errors are JSON: {"error": {"code": "invalid_input", "message": "instances[0]: missing feature
// 'plan' ..."}, "transaction_id": "..."}. Each request's rows go to the inference log (sampled)
// without blocking; shadow variants get a copy of the rows on a background thread (a bounded
// queue: a full one drops the copy and counts it).
//
// Thread-safety: Handle runs concurrently on every event loop; SetSnapshot and SetKeys may be
// called from any thread at any time (an atomic swap: a request uses the snapshot it started
// with).

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ferry/audit/inference_log.h"
#include "ferry/common/clock.h"
#include "ferry/serve/auth.h"
#include "ferry/serve/http_server.h"
#include "ferry/serve/metrics.h"
#include "ferry/serve/router.h"

namespace ferry::serve {

struct ServiceOptions {
  std::string endpoint;
  size_t shadow_queue = 1024;  // requests waiting for their shadow copies; more are dropped
};

class InferenceService final : public Handler {
 public:
  // All borrowed; `log` may be null (no inference log). `in_flight` reports the server's gauge.
  InferenceService(ServiceOptions options, ServeMetrics& metrics, audit::InferenceLog* log,
                   const Clock& clock, std::function<int64_t()> in_flight);
  ~InferenceService() override;  // stops the shadow thread (queued copies are dropped)

  void SetSnapshot(std::shared_ptr<const EndpointSnapshot> snapshot);
  std::shared_ptr<const EndpointSnapshot> snapshot() const;
  void SetKeys(std::shared_ptr<const KeySet> keys);

  void Handle(const Request& request, Response& response) noexcept override;

  int64_t shadow_dropped() const { return shadow_dropped_.load(); }

 private:
  struct ShadowJob {
    std::shared_ptr<const EndpointSnapshot> snapshot;
    std::shared_ptr<const nlohmann::json> rows;
    std::string transaction_id;
    absl::Time at;
  };
  enum class Format { kSageMaker, kV2 };

  void Route(const Request& request, Response& response);
  // `snap` is the snapshot Route loaded for this request (null before the first config).
  void Invoke(const Request& request, Response& response, Format format, std::string_view name,
              const std::shared_ptr<const EndpointSnapshot>& snap);
  void Metadata(std::string_view name, const EndpointSnapshot* snap, Response& response);
  bool Authorize(const Request& request, std::string_view role, const EndpointSnapshot& snap,
                 Response& response);
  // One log line per row; `inputs` and `outputs` are the rows and predictions as JSON texts.
  void LogRows(const HostedVariant& variant, const std::string& transaction_id, absl::Time at,
               const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
               double latency_ms);
  void ShadowLoop();

  const ServiceOptions options_;
  ServeMetrics& metrics_;
  audit::InferenceLog* const log_;
  const Clock& clock_;
  const std::function<int64_t()> in_flight_;
  VariantMetrics* const unrouted_;  // requests answered before a variant was chosen

  std::atomic<std::shared_ptr<const EndpointSnapshot>> snapshot_;
  std::atomic<std::shared_ptr<const KeySet>> keys_;

  std::mutex shadow_mu_;
  std::condition_variable shadow_cv_;
  std::deque<ShadowJob> shadow_jobs_;
  bool stopping_ = false;
  std::atomic<int64_t> shadow_dropped_{0};
  std::thread shadow_thread_;
};

}  // namespace ferry::serve
