#include "ferry/pipeline/checkpoint.h"

#include <sys/stat.h>

#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::pipeline {

absl::StatusOr<std::string> CacheKey(const ResolvedPipeline& p, const ResolvedStep& step,
                                     const std::map<std::string, std::string>& upstream_hashes) {
  Sha256 h;
  h.Field("ferry-cache-v1");
  h.Field(step.name);
  h.Field(step.kind);
  for (const std::string& a : step.argv) h.Field(a);
  h.Field(step.fields.dump());
  for (const auto& [k, v] : step.resources.env) {
    h.Field(k);
    h.Field(v);
  }
  h.Field(p.params.dump());
  for (const auto& [name, hash] : upstream_hashes) {
    h.Field(name);
    h.Field(hash);
  }
  for (const std::string& f : step.files) {
    std::string path = AbsolutePath(f, p.project_dir);
    absl::StatusOr<std::string> content = Sha256File(path);
    if (!content.ok()) {
      return absl::NotFoundError(
          fmt::format("step '{}' declares file '{}' ({}), which cannot be read: {}", step.name, f,
                      path, content.status().message()));
    }
    h.Field(f);
    h.Field(*content);
  }
  return h.HexDigest();
}

absl::StatusOr<OutputSummary> SummarizeOutput(const std::string& task_dir) {
  OutputSummary out;
  out.files = nlohmann::json::array();
  Sha256 h;
  for (const char* sub : {"model", "output"}) {
    std::string dir = fmt::format("{}/{}", task_dir, sub);
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> files, ListFilesRecursive(dir));
    for (const std::string& rel : files) {
      std::string path = fmt::format("{}/{}", dir, rel);
      FERRY_ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
      struct stat st;
      int64_t bytes = ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
      std::string name = fmt::format("{}/{}", sub, rel);
      h.Field(name);
      h.Field(sha);
      out.files.push_back({{"path", name}, {"bytes", bytes}, {"sha256", sha}});
    }
  }
  out.hash = h.HexDigest();
  return out;
}

}  // namespace ferry::pipeline
