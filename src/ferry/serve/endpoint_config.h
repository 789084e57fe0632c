#pragma once
// EndpointConfig: the typed form of an endpoint's config_json (state::EndpointRecord), shared by
// the serving process (which hosts it) and the rollout reconciler (which writes it). Plain
// values; parse/serialise are pure functions.
//
//   {"variants": [{"name": "blue", "model": "churn", "version": 7, "weight": 90, "mode": "live"},
//                 {"name": "green", "model": "churn", "version": 8, "weight": 10, "mode": "live"}],
//    "echo_inputs": false, "log_sampling": 1.0, "auth": false, "sticky_header": ""}
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(EndpointConfig c, ParseEndpointConfig(record.config_json));
//   c.variants.push_back({.name = "green", .model = "churn", .version = 8, .weight = 0});
//   std::string json = EndpointConfigToJson(c);

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ferry::serve {

struct VariantConfig {
  std::string name;   // IsValidName; unique in the endpoint
  std::string model;  // a registered model
  int64_t version = 0;
  int weight = 0;             // 0..100; live weights sum to 100 when any live variant exists
  std::string mode = "live";  // "live": answers its share of traffic; "shadow": gets a copy of
                              // every request, its answer is logged and discarded
};

struct EndpointConfig {
  std::vector<VariantConfig> variants;
  bool echo_inputs = false;   // responses carry "inputs"
  double log_sampling = 1.0;  // fraction of requests written to the inference log, 0..1
  bool auth = false;          // require an API key (Authorization: Bearer)
  std::string sticky_header;  // when set, requests with the same value of this header go to the
                              // same live variant
};

// InvalidArgument naming the field ("variants[1].weight: must be 0..100, got 140") for a config
// that breaks a rule above. "{}" and "" parse to an empty config (no variants: not ready).
absl::StatusOr<EndpointConfig> ParseEndpointConfig(const std::string& json);
std::string EndpointConfigToJson(const EndpointConfig& config);

// The live variants' weights sum to 100 and names are unique, ...: the checks of
// ParseEndpointConfig on a built value.
absl::Status CheckEndpointConfig(const EndpointConfig& config);

}  // namespace ferry::serve
