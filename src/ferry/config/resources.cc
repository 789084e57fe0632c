#include "ferry/config/resources.h"

#include <algorithm>

namespace ferry::config {

void MergeInto(const ResourceSpec& over, Resources* base) {
  if (over.cpu) base->cpu = *over.cpu;
  if (over.memory_bytes) base->memory_bytes = *over.memory_bytes;
  if (over.gpu) base->gpu = *over.gpu;
  if (over.timeout) base->timeout = *over.timeout;
  if (over.retries) base->retries = *over.retries;
  if (over.retry_backoff) base->retry_backoff = *over.retry_backoff;
  if (over.retry_backoff_max) base->retry_backoff_max = *over.retry_backoff_max;
  if (over.image) base->image = *over.image;
  for (const auto& [key, value] : over.env) base->env[key] = value;
}

absl::Duration RetryDelay(const Resources& r, int retry) {
  if (retry < 1) return absl::ZeroDuration();
  absl::Duration delay = r.retry_backoff;
  // Doubling stops at the cap, so a large retry count cannot overflow the duration.
  for (int i = 1; i < retry && delay < r.retry_backoff_max; ++i) delay *= 2;
  return std::min(delay, r.retry_backoff_max);
}

}  // namespace ferry::config
