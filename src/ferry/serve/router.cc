#include "ferry/serve/router.h"

#include <algorithm>

#include "ferry/common/status.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {

const HostedVariant* EndpointSnapshot::Pick(uint64_t value) const {
  if (live.empty()) return nullptr;
  const uint32_t total = cumulative.back();
  const uint32_t point = static_cast<uint32_t>(value % total);
  size_t i = std::upper_bound(cumulative.begin(), cumulative.end(), point) - cumulative.begin();
  return &variants[live[std::min(i, live.size() - 1)]];
}

const HostedVariant* EndpointSnapshot::Find(std::string_view variant) const {
  for (const HostedVariant& v : variants) {
    if (v.config.name == variant) return &v;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const ServedModel>> ModelCache::Get(const std::string& model,
                                                                   int64_t version) {
  const std::string key = fmt::format("{}:{}", model, version);
  auto it = models_.find(key);
  if (it != models_.end()) return it->second;
  FERRY_ASSIGN_OR_RETURN(std::shared_ptr<const ServedModel> loaded,
                         LoadServedModel(store_, lake_, model, version, external_));
  models_[key] = loaded;
  return loaded;
}

void ModelCache::Retain(const EndpointSnapshot& snapshot) {
  std::map<std::string, std::shared_ptr<const ServedModel>> kept;
  for (const HostedVariant& v : snapshot.variants) {
    const std::string key = fmt::format("{}:{}", v.config.model, v.config.version);
    if (auto it = models_.find(key); it != models_.end()) kept[key] = it->second;
  }
  models_ = std::move(kept);
}

absl::StatusOr<std::shared_ptr<const EndpointSnapshot>> BuildSnapshot(
    const state::EndpointRecord& endpoint, ModelCache& cache, ServeMetrics& metrics) {
  absl::StatusOr<EndpointConfig> config = ParseEndpointConfig(endpoint.config_json);
  if (!config.ok()) {
    return absl::InvalidArgumentError(fmt::format("endpoint {} version {}: {}", endpoint.name,
                                                  endpoint.version, config.status().message()));
  }
  auto snap = std::make_shared<EndpointSnapshot>();
  snap->endpoint = endpoint.name;
  snap->version = endpoint.version;
  snap->config = *config;
  uint32_t sum = 0;
  for (const VariantConfig& vc : config->variants) {
    absl::StatusOr<std::shared_ptr<const ServedModel>> model = cache.Get(vc.model, vc.version);
    if (!model.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("endpoint {} version {}: variant {} ({}:{}): {}", endpoint.name,
                      endpoint.version, vc.name, vc.model, vc.version, model.status().message()));
    }
    HostedVariant hv;
    hv.config = vc;
    hv.model = *model;
    hv.metrics = metrics.ForVariant(vc.name, vc.model, vc.version);
    hv.model_json =
        nlohmann::json{{"name", vc.model}, {"version", vc.version}, {"variant", vc.name}}.dump();
    hv.log_fields =
        fmt::format(R"("endpoint":{},"variant":{},"mode":{},"model":{{"name":{},"version":{}}})",
                    nlohmann::json(endpoint.name).dump(), nlohmann::json(vc.name).dump(),
                    nlohmann::json(vc.mode).dump(), nlohmann::json(vc.model).dump(), vc.version);
    const size_t index = snap->variants.size();
    snap->variants.push_back(std::move(hv));
    if (vc.mode == "shadow") {
      snap->shadows.push_back(index);
    } else if (vc.weight > 0) {
      sum += static_cast<uint32_t>(vc.weight);
      snap->live.push_back(index);
      snap->cumulative.push_back(sum);
    }
  }
  return std::shared_ptr<const EndpointSnapshot>(std::move(snap));
}

}  // namespace ferry::serve
