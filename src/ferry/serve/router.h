#pragma once
// Router: an endpoint's variants as one serving process hosts them at one config version — the
// loaded models, the traffic split, the shadows — and the choice of a variant per request.
// An EndpointSnapshot is immutable; the service swaps a whole new one in when the endpoint
// changes (hot swap: requests in flight finish on the snapshot they started with, and the models
// of the old one are released when its last request ends). ModelCache is used by one thread (the
// serving process's control loop).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/serve/endpoint_config.h"
#include "ferry/serve/metrics.h"
#include "ferry/serve/predictor.h"
#include "ferry/state/state_store.h"
#include "ferry/storage/artifact_store.h"

namespace ferry::serve {

struct HostedVariant {
  VariantConfig config;
  std::shared_ptr<const ServedModel> model;
  VariantMetrics* metrics = nullptr;  // owned by ServeMetrics, lives as long as the process
  std::string model_json;  // {"name": "churn", "version": 7, "variant": "blue"}, pre-rendered
  // The fields of its inference-log records that do not change per request, pre-rendered:
  // "endpoint":"churn","variant":"blue","mode":"live","model":{"name":"churn","version":7}
  std::string log_fields;
};

struct EndpointSnapshot {
  std::string endpoint;
  int64_t version = 0;  // the endpoint record's version this was built from
  EndpointConfig config;
  std::vector<HostedVariant> variants;  // as configured
  std::vector<size_t> live;             // indexes of live variants with weight > 0
  std::vector<uint32_t> cumulative;     // running sum of their weights (last = 100)
  std::vector<size_t> shadows;          // indexes of shadow variants

  bool ready() const { return !live.empty(); }
  // The live variant for a uniformly random (or sticky-hash) value; null when not ready.
  const HostedVariant* Pick(uint64_t value) const;
  const HostedVariant* Find(std::string_view variant) const;
};

// Loaded models by "model:version", so that a config change reloads only what changed.
class ModelCache {
 public:
  ModelCache(state::StateStore& store, storage::ArtifactStore& lake,
             ExternalPredictorFactory external)
      : store_(store), lake_(lake), external_(std::move(external)) {}
  absl::StatusOr<std::shared_ptr<const ServedModel>> Get(const std::string& model, int64_t version);
  // Forgets models that `snapshot` does not use (in-flight requests keep theirs alive).
  void Retain(const EndpointSnapshot& snapshot);

 private:
  state::StateStore& store_;
  storage::ArtifactStore& lake_;
  ExternalPredictorFactory external_;
  std::map<std::string, std::shared_ptr<const ServedModel>> models_;
};

// Builds the snapshot of `endpoint` at its current config. InvalidArgument for a config that
// does not parse, or any variant's model that cannot be loaded (the message names the variant):
// the caller keeps serving the last good snapshot.
absl::StatusOr<std::shared_ptr<const EndpointSnapshot>> BuildSnapshot(
    const state::EndpointRecord& endpoint, ModelCache& cache, ServeMetrics& metrics);

}  // namespace ferry::serve
