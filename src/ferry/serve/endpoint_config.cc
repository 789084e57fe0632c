#include "ferry/serve/endpoint_config.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <vector>

#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "nlohmann/json.hpp"

namespace ferry::serve {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const std::vector<std::string_view> kVariantKeys = {"name", "model", "version", "weight", "mode"};
const std::vector<std::string_view> kConfigKeys = {"variants", "echo_inputs", "log_sampling",
                                                   "auth", "sticky_header"};

std::string TypeName(const json& v) { return v.type_name(); }

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(fmt::format("endpoint config: {}: {}", field, what));
}

// `where` is the object's path ("variants[1]"), "" for the top level.
absl::Status CheckKeys(const json& obj, const std::string& where,
                       const std::vector<std::string_view>& allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) != allowed.end()) continue;
    return Bad(where.empty() ? it.key() : fmt::format("{}.{}", where, it.key()),
               fmt::format("unknown key (expected {})", fmt::join(allowed, ", ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<VariantConfig> ParseVariant(const json& v, const std::string& where) {
  if (!v.is_object()) {
    return Bad(where, fmt::format("must be an object {{\"name\", \"model\", \"version\", "
                                  "\"weight\", \"mode\"}}, got {}",
                                  TypeName(v)));
  }
  FERRY_RETURN_IF_ERROR(CheckKeys(v, where, kVariantKeys));
  VariantConfig out;
  for (const char* key : {"name", "model"}) {
    auto it = v.find(key);
    if (it == v.end()) return Bad(fmt::format("{}.{}", where, key), "missing");
    if (!it->is_string()) {
      return Bad(fmt::format("{}.{}", where, key),
                 fmt::format("must be a string, got {}", TypeName(*it)));
    }
    (std::string_view(key) == "name" ? out.name : out.model) = it->get<std::string>();
  }
  auto version = v.find("version");
  if (version == v.end()) return Bad(where + ".version", "missing");
  if (!version->is_number_integer()) {
    return Bad(where + ".version", fmt::format("must be a whole number, got {}", version->dump()));
  }
  out.version = version->get<int64_t>();
  if (auto weight = v.find("weight"); weight != v.end()) {
    if (!weight->is_number_integer()) {
      return Bad(where + ".weight",
                 fmt::format("must be a whole number 0..100, got {}", weight->dump()));
    }
    const int64_t w = weight->get<int64_t>();
    if (w < 0 || w > 100) return Bad(where + ".weight", fmt::format("must be 0..100, got {}", w));
    out.weight = static_cast<int>(w);
  }
  if (auto mode = v.find("mode"); mode != v.end()) {
    if (!mode->is_string()) {
      return Bad(where + ".mode",
                 fmt::format("must be \"live\" or \"shadow\", got {}", mode->dump()));
    }
    out.mode = mode->get<std::string>();
  }
  return out;
}

absl::Status CheckVariant(const VariantConfig& v, const std::string& where) {
  if (!IsValidName(v.name)) {
    return Bad(where + ".name",
               fmt::format("'{}' is not a valid name ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most "
                           "128 characters)",
                           v.name));
  }
  if (!IsValidName(v.model)) {
    return Bad(where + ".model", fmt::format("'{}' is not a valid model name", v.model));
  }
  if (v.version < 1) {
    return Bad(where + ".version",
               fmt::format("must be a registered version number (1, 2, ...), got {}", v.version));
  }
  if (v.weight < 0 || v.weight > 100) {
    return Bad(where + ".weight", fmt::format("must be 0..100, got {}", v.weight));
  }
  if (v.mode != "live" && v.mode != "shadow") {
    return Bad(where + ".mode", fmt::format("must be \"live\" or \"shadow\", got \"{}\"", v.mode));
  }
  if (v.mode == "shadow" && v.weight != 0) {
    return Bad(where + ".weight",
               fmt::format("a shadow variant gets a copy of every request; its weight must be "
                           "0, got {}",
                           v.weight));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckEndpointConfig(const EndpointConfig& config) {
  std::set<std::string> names;
  int live = 0;
  int live_sum = 0;
  std::string weights;
  for (size_t i = 0; i < config.variants.size(); ++i) {
    const VariantConfig& v = config.variants[i];
    const std::string where = fmt::format("variants[{}]", i);
    FERRY_RETURN_IF_ERROR(CheckVariant(v, where));
    if (!names.insert(v.name).second) {
      return Bad(where + ".name",
                 fmt::format("'{}' is used by another variant; names must be unique", v.name));
    }
    if (v.mode == "live") {
      ++live;
      live_sum += v.weight;
      weights += fmt::format("{}{} {}", weights.empty() ? "" : ", ", v.name, v.weight);
    }
  }
  if (live > 0 && live_sum != 100) {
    return Bad("variants", fmt::format("the live variants' weights must sum to 100, got {} ({})",
                                       live_sum, weights));
  }
  if (!(config.log_sampling >= 0 && config.log_sampling <= 1)) {  // also rejects NaN
    return Bad("log_sampling", fmt::format("must be a fraction 0..1, got {}", config.log_sampling));
  }
  return absl::OkStatus();
}

absl::StatusOr<EndpointConfig> ParseEndpointConfig(const std::string& text) {
  EndpointConfig out;
  if (text.empty()) return out;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(
        fmt::format("endpoint config: not valid JSON: {}",
                    text.size() > 80 ? text.substr(0, 80) + "..." : text));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        fmt::format("endpoint config: must be a JSON object, got {}", TypeName(j)));
  }
  FERRY_RETURN_IF_ERROR(CheckKeys(j, "", kConfigKeys));
  if (auto variants = j.find("variants"); variants != j.end()) {
    if (!variants->is_array()) {
      return Bad("variants", fmt::format("must be an array, got {}", TypeName(*variants)));
    }
    for (size_t i = 0; i < variants->size(); ++i) {
      FERRY_ASSIGN_OR_RETURN(VariantConfig v,
                             ParseVariant((*variants)[i], fmt::format("variants[{}]", i)));
      out.variants.push_back(std::move(v));
    }
  }
  for (const char* key : {"echo_inputs", "auth"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (!it->is_boolean()) {
      return Bad(key, fmt::format("must be true or false, got {}", it->dump()));
    }
    (std::string_view(key) == "auth" ? out.auth : out.echo_inputs) = it->get<bool>();
  }
  if (auto it = j.find("log_sampling"); it != j.end()) {
    if (!it->is_number()) {
      return Bad("log_sampling", fmt::format("must be a fraction 0..1, got {}", it->dump()));
    }
    out.log_sampling = it->get<double>();
  }
  if (auto it = j.find("sticky_header"); it != j.end()) {
    if (!it->is_string()) {
      return Bad("sticky_header",
                 fmt::format("must be a header name (a string), got {}", it->dump()));
    }
    out.sticky_header = it->get<std::string>();
  }
  FERRY_RETURN_IF_ERROR(CheckEndpointConfig(out));
  return out;
}

std::string EndpointConfigToJson(const EndpointConfig& config) {
  ordered_json variants = ordered_json::array();
  for (const VariantConfig& v : config.variants) {
    variants.push_back(ordered_json{{"name", v.name},
                                    {"model", v.model},
                                    {"version", v.version},
                                    {"weight", v.weight},
                                    {"mode", v.mode}});
  }
  ordered_json out{{"variants", std::move(variants)},
                   {"echo_inputs", config.echo_inputs},
                   {"log_sampling", config.log_sampling},
                   {"auth", config.auth},
                   {"sticky_header", config.sticky_header}};
  return out.dump();
}

}  // namespace ferry::serve
