#pragma once
// Resource templates: the registry of named defaults in ferry.yaml (`templates:`) that steps
// reference with `template:` and override field by field.
//
// Merge rules (docs/pipeline.md): built-in defaults < the template named `default` in ferry.yaml
// (if any) < the chain of `extends:` templates, base first < the step's `template:` < the step's
// own fields. Scalars replace; `env` merges key by key (later wins); lists replace.
//
// Example (ferry.yaml):
//   templates:
//     small: { cpu: 1, memory: 512Mi, timeout: 10m, retries: 2, env: { OMP_NUM_THREADS: "1" } }
//     big:   { extends: small, cpu: 4, memory: 8Gi }

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "ferry/config/diagnostics.h"

namespace ferry::config {

// Fields a template or a step may set; unset fields inherit.
struct ResourceSpec {
  std::optional<double> cpu;
  std::optional<int64_t> memory_bytes;
  std::optional<int> gpu;
  std::optional<absl::Duration> timeout;        // zero = no limit
  std::optional<int> retries;                   // extra attempts after the first
  std::optional<absl::Duration> retry_backoff;  // first delay; doubles each retry
  std::optional<absl::Duration> retry_backoff_max;
  std::optional<std::string> image;        // for container executors
  std::map<std::string, std::string> env;  // merged key by key
};

struct ResourceTemplate {
  std::string name;
  std::string extends;  // empty = none
  ResourceSpec spec;
  SourceLoc loc;
};

// Fully merged values.
struct Resources {
  double cpu = 1;
  int64_t memory_bytes = 0;  // 0 = no limit
  int gpu = 0;
  absl::Duration timeout = absl::ZeroDuration();  // zero = no limit
  int retries = 0;
  absl::Duration retry_backoff = absl::Seconds(1);
  absl::Duration retry_backoff_max = absl::Minutes(5);
  std::string image;
  std::map<std::string, std::string> env;
};

// Applies `over` on top of `base` (scalars replace, env merges).
void MergeInto(const ResourceSpec& over, Resources* base);

// Delay before retry number `retry` (1-based): backoff * 2^(retry-1), capped at the max.
absl::Duration RetryDelay(const Resources& r, int retry);

}  // namespace ferry::config
