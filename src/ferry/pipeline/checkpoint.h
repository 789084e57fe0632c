#pragma once
// Checkpoints and cache keys. A task's checkpoint is its folder in the lake
// (runs/<pipeline>/<run>/<task>/), committed by writing manifest.json last; the state store's
// checkpoint index maps the task's cache key to it. A later task with the same cache key is a
// cache hit and reuses that output instead of running.
//
// The cache key covers what determines a task's output: its name and kind, its argv and rendered
// fields, its env, the run's parameters, each upstream task's output hash, and the content of
// the files the step declares (`files:`). Resources (cpu, memory, timeout, retries) are not in
// it: they change how a task runs, not what it produces. Stateless functions; thread-safe.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "ferry/pipeline/resolve.h"
#include "nlohmann/json.hpp"

namespace ferry::pipeline {

// `upstream_hashes`: need name -> that task's output hash. NotFound names a declared file
// that is missing.
absl::StatusOr<std::string> CacheKey(const ResolvedPipeline& p, const ResolvedStep& step,
                                     const std::map<std::string, std::string>& upstream_hashes);

struct OutputSummary {
  std::string hash;      // over every file's relative path and content
  nlohmann::json files;  // [{path, bytes, sha256}]
};

// Hashes the files a task produced under model/ and output/.
absl::StatusOr<OutputSummary> SummarizeOutput(const std::string& task_dir);

}  // namespace ferry::pipeline
