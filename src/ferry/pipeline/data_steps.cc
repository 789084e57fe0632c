#include "ferry/pipeline/data_steps.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/data/profile.h"
#include "ferry/data/transform.h"
#include "ferry/storage/artifact_store.h"
#include "ferry/storage/datasets.h"
#include "fmt/format.h"

namespace ferry::pipeline::data_steps {
namespace {

std::string DataFile(const std::string& part) {
  return part == "data" ? "data.csv.zst" : part + ".csv.zst";
}
std::string ProfileFile(const std::string& part) {
  return part == "data" ? "profile.json" : part + ".profile.json";
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::vector<std::string> BuiltinArgv(const std::string& self_exe, const std::string& kind) {
  return {self_exe, "task", "--kind", kind};
}

config::SourceLoc FieldLoc(const config::StepSpec& step, const std::string& key) {
  auto it = step.field_locs.find(key);
  return it == step.field_locs.end() ? step.loc : it->second;
}

void CheckDatasetName(const config::StepSpec& step, config::Diagnostics* diags) {
  if (step.fields.contains("dataset") &&
      (!step.fields["dataset"].is_string() ||
       !IsValidName(step.fields["dataset"].get<std::string>()))) {
    diags->Add(
        FieldLoc(step, "dataset"),
        fmt::format("step '{}': dataset must be a name (letters, digits, _ . -)", step.name));
  }
}

std::string CheckProjectFile(const config::StepSpec& step, const config::ProjectConfig& project,
                             const std::string& key, const std::string& what,
                             config::Diagnostics* diags) {
  const nlohmann::json& v = step.fields.contains(key) ? step.fields[key] : nlohmann::json();
  if (!v.is_string() || v.get<std::string>().empty()) {
    diags->Add(FieldLoc(step, key),
               fmt::format("step '{}': {} must name {} (a path relative to the project)", step.name,
                           key, what));
    return "";
  }
  std::string rel = v.get<std::string>();
  if (rel.find("{{") != std::string::npos) return rel;  // rendered at run start; checked then
  std::string abs = AbsolutePath(rel, project.root_dir);
  if (!abs.starts_with(project.root_dir + "/")) {
    diags->Add(FieldLoc(step, key), fmt::format("step '{}': {} '{}' is outside the project {}",
                                                step.name, key, rel, project.root_dir));
    return "";
  }
  if (::access(abs.c_str(), R_OK) != 0) {
    diags->Add(FieldLoc(step, key), fmt::format("step '{}': {} file '{}' not found (looked for {})",
                                                step.name, key, rel, abs));
    return "";
  }
  return abs;
}

absl::Status LinkOrCopy(const std::string& from, const std::string& to, const std::string& name) {
  const std::string src = from + "/" + name;
  const std::string dst = to + "/" + name;
  ::unlink(dst.c_str());
  if (::link(src.c_str(), dst.c_str()) == 0) return absl::OkStatus();
  if (errno != EXDEV && errno != EPERM) {
    return ErrnoError(fmt::format("cannot link {} to", dst), src);
  }
  FERRY_ASSIGN_OR_RETURN(std::string bytes, ReadFile(src));
  return WriteFileAtomic(dst, bytes, false);
}

void CheckOneStep(const config::StepSpec& step, config::Diagnostics* diags) {
  if (step.fields.contains(step.kind) && step.fields[step.kind].is_array()) {
    diags->Add(
        FieldLoc(step, step.kind),
        fmt::format("step '{}': {} reads one upstream step (e.g. {}: {}), not a list", step.name,
                    step.kind, step.kind,
                    step.fields[step.kind].empty() ? "extract" : step.fields[step.kind][0].dump()));
  }
}

std::string ChannelDir(const TaskContext& ctx, const std::string& ref) {
  return fmt::format("{}/input/data/{}", ctx.workdir, ref.substr(0, ref.find('.')));
}

std::string PartOf(const std::string& ref) {
  size_t dot = ref.find('.');
  return dot == std::string::npos ? "" : ref.substr(dot + 1);
}

absl::StatusOr<nlohmann::json> WriteAndPublishDataset(
    const TaskContext& ctx, const std::string& dir, const std::string& name,
    const std::vector<std::pair<std::string, const data::Table*>>& parts,
    const DatasetOrigin& origin, const std::vector<std::string>& extra_files) {
  FERRY_RETURN_IF_ERROR(MakeDirs(dir));
  nlohmann::json manifest = nlohmann::json::object();
  nlohmann::json files = nlohmann::json::array();
  nlohmann::json part_json = nlohmann::json::object();
  Sha256 id;
  id.Field(name);
  id.Field(origin.identity);
  int64_t rows = 0;
  for (const auto& [part, table] : parts) {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<data::CsvWriter> w,
                           data::CsvWriter::Open(dir + "/" + DataFile(part)));
    FERRY_RETURN_IF_ERROR(w->Write(*table));
    FERRY_RETURN_IF_ERROR(w->Close(table->ColumnNames()));
    data::Profile profile = data::ComputeProfile(*table);
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + ProfileFile(part),
                                          data::ProfileToJson(profile).dump(1), false));
    id.Field(part);
    id.Field(w->content_sha256());
    rows += static_cast<int64_t>(table->num_rows());
    part_json[part] = {{"file", DataFile(part)},
                       {"profile", ProfileFile(part)},
                       {"rows", table->num_rows()},
                       {"content_sha256", w->content_sha256()}};
    files.push_back({{"path", DataFile(part)}});
    files.push_back({{"path", ProfileFile(part)}});
  }
  for (const std::string& f : extra_files) {
    FERRY_ASSIGN_OR_RETURN(std::string h, Sha256File(dir + "/" + f));
    id.Field(f);
    id.Field(h);
    files.push_back({{"path", f}});
  }
  std::string version = id.HexDigest().substr(0, 16);
  Sha256 content;
  for (const auto& [part, t] : parts)
    content.Field(part_json[part]["content_sha256"].get<std::string>());
  manifest["dataset"] = name;
  manifest["version"] = version;
  manifest["created_at"] =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  manifest["rows"] = rows;
  manifest["columns"] =
      parts.empty() ? nlohmann::json::array() : data::TableSchema(*parts.front().second);
  manifest["content_sha256"] =
      parts.size() == 1 ? part_json[parts.front().first]["content_sha256"].get<std::string>()
                        : content.HexDigest();
  manifest["parts"] = part_json;
  manifest["source"] = origin.source;
  manifest["inputs"] = origin.inputs;
  manifest["produced_by"] = {
      {"pipeline", ctx.pipeline}, {"run_id", ctx.run_id}, {"task", ctx.task}};
  std::string commit = GitCommit(ctx.project_dir);
  manifest["git_commit"] = commit.empty() ? nlohmann::json() : nlohmann::json(commit);
  manifest["files"] = files;

  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                         storage::OpenArtifactStore(ctx.lake_uri));
  bool existed = false;
  FERRY_ASSIGN_OR_RETURN(storage::DatasetVersionInfo info,
                         storage::PublishDataset(*lake, name, version, dir, manifest, &existed));
  // The task's copy says what the catalog holds: for a version that existed, its first creation.
  nlohmann::json published = info.manifest;
  published["ordinal"] = info.ordinal;
  FERRY_RETURN_IF_ERROR(WriteFileAtomic(dir + "/manifest.json", published.dump(2), false));
  std::printf("dataset %s@%d (%s): %lld rows, %zu columns%s\n", name.c_str(), info.ordinal,
              version.c_str(), static_cast<long long>(rows), manifest["columns"].size(),
              existed ? " — unchanged, the existing version" : "");
  std::fflush(stdout);
  return published;
}

absl::StatusOr<nlohmann::json> ReadDatasetManifest(const std::string& dir) {
  absl::StatusOr<std::string> text = ReadFile(dir + "/manifest.json");
  if (!text.ok()) {
    return absl::FailedPreconditionError(fmt::format(
        "{} holds no dataset (no manifest.json): the upstream step must be a sql, validate or "
        "transform step",
        dir));
  }
  nlohmann::json m = nlohmann::json::parse(*text, nullptr, false);
  if (!m.is_object() || !m.contains("parts") || !m["parts"].is_object()) {
    return absl::DataLossError(fmt::format("{}/manifest.json is not a dataset manifest", dir));
  }
  return m;
}

absl::StatusOr<data::Table> ReadDatasetPart(const std::string& dir, const nlohmann::json& manifest,
                                            const std::string& part) {
  const nlohmann::json& parts = manifest["parts"];
  std::string p = part;
  if (p.empty()) p = parts.contains("data") ? "data" : "train";
  if (!parts.contains(p)) {
    std::string known;
    for (auto it = parts.begin(); it != parts.end(); ++it) {
      known += (known.empty() ? "" : ", ") + it.key();
    }
    return absl::NotFoundError(fmt::format("dataset {} has no part '{}'; parts: {}",
                                           manifest.value("dataset", dir), p, known));
  }
  data::CsvReadOptions opts;
  for (const nlohmann::json& c : manifest["columns"]) {
    FERRY_ASSIGN_OR_RETURN(opts.types[c["name"].get<std::string>()],
                           data::ParseTypeName(c["type"].get<std::string>()));
  }
  FERRY_ASSIGN_OR_RETURN(data::CsvReadResult r,
                         data::ReadCsvFile(dir + "/" + parts[p]["file"].get<std::string>(), opts));
  return std::move(r.table);
}

std::string RawPartFile(const std::string& part) { return part + ".input.csv.zst"; }

absl::StatusOr<std::optional<data::Table>> ReadRawPart(const std::string& dir,
                                                       const nlohmann::json& manifest,
                                                       const std::string& part) {
  const std::string file = RawPartFile(part);
  const nlohmann::json files = manifest.value("files", nlohmann::json::array());
  if (!files.is_array() || std::none_of(files.begin(), files.end(), [&](const nlohmann::json& f) {
        return f.is_object() && f.value("path", "") == file;
      })) {
    return std::nullopt;
  }
  data::CsvReadOptions opts;
  const std::string state_path = dir + "/transform.json";
  absl::StatusOr<std::string> text = ReadFile(state_path);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  if (text.ok()) {
    nlohmann::json state = nlohmann::json::parse(*text, nullptr, false);
    if (!state.is_object() || !state.contains("input_columns") ||
        !state["input_columns"].is_array()) {
      return absl::DataLossError(fmt::format(
          "{} has no list of input_columns; the dataset is damaged: re-run the transform step",
          state_path));
    }
    for (const nlohmann::json& c : state["input_columns"]) {
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string() || !c.contains("type") ||
          !c["type"].is_string()) {
        return absl::DataLossError(
            fmt::format("{}: input column {} lacks a name or a type; re-run the transform step",
                        state_path, c.dump()));
      }
      FERRY_ASSIGN_OR_RETURN(opts.types[c["name"].get<std::string>()],
                             data::ParseTypeName(c["type"].get<std::string>()));
    }
  }
  FERRY_ASSIGN_OR_RETURN(data::CsvReadResult r, data::ReadCsvFile(dir + "/" + file, opts));
  return std::optional<data::Table>(std::move(r.table));
}

absl::StatusOr<std::string> DatasetDir(storage::ArtifactStore& lake,
                                       const storage::DatasetVersionInfo& version) {
  return lake.LocalPath(version.key);
}

absl::StatusOr<data::ValidationReport> CheckDataset(const std::string& rules_path,
                                                    const data::Table& table,
                                                    const std::string& dataset_label,
                                                    const std::string& lake_uri,
                                                    int64_t now_micros) {
  FERRY_ASSIGN_OR_RETURN(data::RuleSet rules, data::LoadRules(rules_path));
  std::optional<data::Profile> reference;
  if (!rules.reference.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<storage::ArtifactStore> lake,
                           storage::OpenArtifactStore(lake_uri));
    FERRY_ASSIGN_OR_RETURN(storage::DatasetVersionInfo v,
                           storage::ResolveDataset(*lake, rules.reference));
    const nlohmann::json& parts = v.manifest["parts"];
    std::string part = parts.contains("data") ? "data" : "train";
    FERRY_ASSIGN_OR_RETURN(
        std::string text,
        lake->Get(fmt::format("{}/{}", v.key, parts[part]["profile"].get<std::string>())));
    FERRY_ASSIGN_OR_RETURN(reference,
                           data::ProfileFromJson(nlohmann::json::parse(text, nullptr, false)));
  }
  data::ValidateOptions opts;
  opts.now_micros = now_micros;
  opts.reference = reference ? &*reference : nullptr;
  opts.dataset = dataset_label;
  return data::Validate(rules, table, opts);
}

std::string GitCommit(const std::string& dir) {
  std::string d = dir;
  while (!d.empty()) {
    std::string git = d + "/.git";
    if (absl::StatusOr<std::string> head = ReadFile(git + "/HEAD"); head.ok()) {
      std::string h = Trim(*head);
      if (!h.starts_with("ref: ")) return h;
      std::string ref = h.substr(5);
      if (absl::StatusOr<std::string> sha = ReadFile(git + "/" + ref); sha.ok()) return Trim(*sha);
      if (absl::StatusOr<std::string> packed = ReadFile(git + "/packed-refs"); packed.ok()) {
        size_t at = packed->find(" " + ref + "\n");
        if (at != std::string::npos && at >= 40) return packed->substr(at - 40, 40);
      }
      return "";
    }
    if (d == "/") break;
    size_t slash = d.rfind('/');
    d = slash == 0 ? "/" : d.substr(0, slash);
  }
  return "";
}

}  // namespace ferry::pipeline::data_steps
