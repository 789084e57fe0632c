#include "ferry/batch/batch_job.h"

#include <fnmatch.h>
#include <glob.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "ferry/audit/inference_log.h"
#include "ferry/batch/internal/engine.h"
#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/state/kinds.h"
#include "ferry/storage/layout.h"
#include "fmt/format.h"

namespace ferry::batch {
namespace {

using json = nlohmann::json;
constexpr std::string_view kLake = "lake://";

bool HasGlob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

std::string BaseName(std::string_view path) {
  const size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

// One input file, expanded from a pattern.
struct Input {
  std::string uri;    // "lake://incoming/a.csv" or an absolute local path
  std::string key;    // the lake key (lake inputs)
  std::string local;  // where it can be read here
  int64_t size = 0;
  int64_t mtime = 0;
};

absl::StatusOr<Input> StatLocal(Input in) {
  struct stat st;
  if (::stat(in.local.c_str(), &st) != 0) return ErrnoError("cannot read input", in.local);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(fmt::format("{} is not a regular file", in.local));
  }
  in.size = st.st_size;
  in.mtime = st.st_mtime;
  return in;
}

absl::StatusOr<std::vector<Input>> ExpandPattern(storage::ArtifactStore& lake,
                                                 const std::string& project_dir,
                                                 const std::string& pattern) {
  std::vector<Input> out;
  if (pattern.rfind(kLake, 0) == 0) {
    const std::string rest = pattern.substr(kLake.size());
    if (!HasGlob(rest)) {
      FERRY_ASSIGN_OR_RETURN(std::string key, storage::NormalizeKey(rest));
      FERRY_ASSIGN_OR_RETURN(bool exists, lake.Exists(key));
      if (exists) {
        FERRY_ASSIGN_OR_RETURN(std::string local, lake.LocalPath(key));
        FERRY_ASSIGN_OR_RETURN(
            Input in,
            StatLocal({.uri = fmt::format("lake://{}", key), .key = key, .local = local}));
        out.push_back(std::move(in));
      }
    } else {
      const size_t glob_at = rest.find_first_of("*?[");
      const size_t slash = rest.rfind('/', glob_at);
      const std::string prefix = slash == std::string::npos ? "" : rest.substr(0, slash);
      absl::StatusOr<std::vector<std::string>> keys = lake.List(prefix);
      if (!keys.ok() && !absl::IsNotFound(keys.status())) return keys.status();
      for (const std::string& key : keys.ok() ? *keys : std::vector<std::string>{}) {
        if (::fnmatch(rest.c_str(), key.c_str(), FNM_PATHNAME) != 0) continue;
        FERRY_ASSIGN_OR_RETURN(std::string local, lake.LocalPath(key));
        FERRY_ASSIGN_OR_RETURN(
            Input in,
            StatLocal({.uri = fmt::format("lake://{}", key), .key = key, .local = local}));
        out.push_back(std::move(in));
      }
    }
  } else {
    const std::string path = AbsolutePath(pattern, project_dir);
    if (!HasGlob(path)) {
      if (PathExists(path)) {
        FERRY_ASSIGN_OR_RETURN(Input in, StatLocal({.uri = path, .local = path}));
        out.push_back(std::move(in));
      }
    } else {
      glob_t g{};
      if (::glob(path.c_str(), 0, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) {
          absl::StatusOr<Input> in = StatLocal({.uri = g.gl_pathv[i], .local = g.gl_pathv[i]});
          if (in.ok()) out.push_back(std::move(*in));  // folders matched by the glob are left out
        }
      }
      ::globfree(&g);
    }
  }
  if (out.empty()) {
    return absl::NotFoundError(fmt::format(
        "input '{}' matches no file ({}); check the path or pattern", pattern,
        pattern.rfind(kLake, 0) == 0 ? "in the lake" : "on disk, relative to the project"));
  }
  std::sort(out.begin(), out.end(), [](const Input& a, const Input& b) { return a.uri < b.uri; });
  return out;
}

absl::StatusOr<std::vector<Input>> ExpandInputs(storage::ArtifactStore& lake,
                                                const std::string& project_dir,
                                                const std::vector<std::string>& patterns) {
  if (patterns.empty()) {
    return absl::InvalidArgumentError("a batch job needs at least one input (file or pattern)");
  }
  std::vector<Input> all;
  std::set<std::string> seen, names;
  for (const std::string& p : patterns) {
    FERRY_ASSIGN_OR_RETURN(std::vector<Input> ins, ExpandPattern(lake, project_dir, p));
    for (Input& in : ins) {
      if (!seen.insert(in.uri).second) continue;
      bool zstd = false;
      FERRY_RETURN_IF_ERROR(internal::FormatOf(in.uri, &zstd).status());
      if (!names.insert(BaseName(in.uri)).second) {
        return absl::InvalidArgumentError(fmt::format(
            "two inputs are named '{}' (one is {}); outputs keep the input's file name, so "
            "score them in separate jobs or rename one",
            BaseName(in.uri), in.uri));
      }
      all.push_back(std::move(in));
    }
  }
  return all;
}

// Where the outputs go: a lake prefix or a local folder.
struct OutputDir {
  bool lake = false;
  std::string base;  // the key prefix or the absolute folder
};

absl::StatusOr<OutputDir> ResolveOutput(const std::string& output, const std::string& project_dir,
                                        const std::string& job_id) {
  if (output.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::string dir, storage::layout::BatchJob(job_id));
    return OutputDir{true, dir + "/output"};
  }
  if (output.rfind(kLake, 0) == 0) {
    FERRY_ASSIGN_OR_RETURN(std::string key, storage::NormalizeKey(output.substr(kLake.size())));
    return OutputDir{true, key};
  }
  return OutputDir{false, AbsolutePath(output, project_dir)};
}

std::string OutputUri(const OutputDir& out, const std::string& name) {
  return out.lake ? fmt::format("lake://{}/{}", out.base, name) : out.base + "/" + name;
}
std::string QuarantineName(const std::string& name) { return "_quarantine/" + name + ".csv"; }

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

bool PidAlive(int64_t pid) {
  if (pid <= 0) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

absl::StatusOr<std::string> ModelFolder(storage::ArtifactStore& lake, const std::string& uri) {
  absl::StatusOr<std::string> key = storage::KeyOf(lake, uri);
  if (key.ok()) return lake.LocalPath(*key);
  constexpr std::string_view kFile = "file:///";
  if (uri.rfind(kFile, 0) == 0) return uri.substr(kFile.size() - 1);
  return key.status();
}

json FileResultToJson(const FileResult& f) {
  return {{"input", f.input},     {"output", f.output},  {"quarantine", f.quarantine},
          {"rows", f.rows},       {"scored", f.scored},  {"bad", f.bad},
          {"skipped", f.skipped}, {"seconds", f.seconds}};
}

// A temp file for an output on its way to `final_path` (local) or the lake.
std::string TempPath(const OutputDir& out, const std::string& rel) {
  if (!out.lake) {
    const std::string final_path = out.base + "/" + rel;
    const size_t slash = final_path.rfind('/');
    // The name keeps its ending: ".zst" decides the compression.
    return fmt::format("{}/.tmp-{}-{}", final_path.substr(0, slash), ::getpid(),
                       final_path.substr(slash + 1));
  }
  std::string flat = rel;
  std::replace(flat.begin(), flat.end(), '/', '_');
  return fmt::format("{}/ferry-batch-{}-{}", std::filesystem::temp_directory_path().string(),
                     ::getpid(), flat);
}

// Removes the temp files ("<dir>/.tmp-<pid>-<name>") that a killed process left in `dir`: those
// of processes no longer alive. A live process's temp files are its own business.
void RemoveDeadTempFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) != 0) continue;
    const int64_t pid = std::atoll(name.c_str() + 5);
    if (pid > 0 && !PidAlive(pid)) std::filesystem::remove(entry.path(), ec);
  }
}

absl::Status CommitFile(storage::ArtifactStore& lake, const OutputDir& out, const std::string& rel,
                        const std::string& temp) {
  if (out.lake) {
    absl::Status s = lake.PutFile(out.base + "/" + rel, temp);
    std::remove(temp.c_str());
    return s;
  }
  const std::string final_path = out.base + "/" + rel;
  if (std::rename(temp.c_str(), final_path.c_str()) != 0) {
    absl::Status s = ErrnoError("cannot commit output", final_path);
    std::remove(temp.c_str());
    return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> OutputExists(storage::ArtifactStore& lake, const OutputDir& out,
                                  const std::string& rel) {
  if (out.lake) return lake.Exists(out.base + "/" + rel);
  return PathExists(out.base + "/" + rel);
}

}  // namespace

json BatchSpecToJson(const BatchSpec& s) {
  return {{"model_ref", s.model_ref},
          {"model", s.model},
          {"model_version", s.model_version},
          {"inputs", s.inputs},
          {"output", s.output},
          {"threads", s.threads},
          {"bad_rows",
           {{"max_bad_rows", s.bad_rows.max_bad_rows},
            {"max_bad_fraction", s.bad_rows.max_bad_fraction}}},
          {"log_endpoint", s.log_endpoint},
          {"time_column", s.time_column}};
}

absl::StatusOr<BatchSpec> BatchSpecFromJson(const json& j) {
  if (!j.is_object()) {
    return absl::InvalidArgumentError("a batch job's spec must be a JSON object");
  }
  BatchSpec s;
  auto str = [&](const char* k, std::string* v) -> absl::Status {
    if (!j.contains(k) || j[k].is_null()) return absl::OkStatus();
    if (!j[k].is_string()) {
      return absl::InvalidArgumentError(fmt::format("batch spec: '{}' must be a string", k));
    }
    *v = j[k].get<std::string>();
    return absl::OkStatus();
  };
  FERRY_RETURN_IF_ERROR(str("model_ref", &s.model_ref));
  FERRY_RETURN_IF_ERROR(str("model", &s.model));
  FERRY_RETURN_IF_ERROR(str("output", &s.output));
  FERRY_RETURN_IF_ERROR(str("log_endpoint", &s.log_endpoint));
  FERRY_RETURN_IF_ERROR(str("time_column", &s.time_column));
  if (j.contains("model_version")) {
    if (!j["model_version"].is_number_integer()) {
      return absl::InvalidArgumentError("batch spec: 'model_version' must be an integer");
    }
    s.model_version = j["model_version"].get<int64_t>();
  }
  if (j.contains("inputs")) {
    if (!j["inputs"].is_array()) {
      return absl::InvalidArgumentError("batch spec: 'inputs' must be an array of strings");
    }
    for (const json& in : j["inputs"]) {
      if (!in.is_string()) {
        return absl::InvalidArgumentError("batch spec: 'inputs' must be an array of strings");
      }
      s.inputs.push_back(in.get<std::string>());
    }
  }
  if (j.contains("threads")) {
    if (!j["threads"].is_number_integer() || j["threads"].get<int>() < 0) {
      return absl::InvalidArgumentError("batch spec: 'threads' must be an integer >= 0");
    }
    s.threads = j["threads"].get<int>();
  }
  if (j.contains("bad_rows")) {
    const json& b = j["bad_rows"];
    if (!b.is_object()) {
      return absl::InvalidArgumentError(
          "batch spec: 'bad_rows' must be an object {max_bad_rows, max_bad_fraction}");
    }
    if (b.contains("max_bad_rows")) {
      if (!b["max_bad_rows"].is_number_integer() || b["max_bad_rows"].get<int64_t>() < 0) {
        return absl::InvalidArgumentError("batch spec: 'max_bad_rows' must be an integer >= 0");
      }
      s.bad_rows.max_bad_rows = b["max_bad_rows"].get<int64_t>();
    }
    if (b.contains("max_bad_fraction")) {
      if (!b["max_bad_fraction"].is_number() || b["max_bad_fraction"].get<double>() < 0 ||
          b["max_bad_fraction"].get<double>() > 1) {
        return absl::InvalidArgumentError(
            "batch spec: 'max_bad_fraction' must be a number from 0 to 1");
      }
      s.bad_rows.max_bad_fraction = b["max_bad_fraction"].get<double>();
    }
  }
  return s;
}

json BatchResultToJson(const BatchResult& r) {
  json files = json::array();
  for (const FileResult& f : r.files) files.push_back(FileResultToJson(f));
  return {{"files", files},
          {"rows", r.rows},
          {"scored", r.scored},
          {"bad", r.bad},
          {"seconds", r.seconds}};
}

absl::StatusOr<state::JobRecord> SubmitBatchJob(state::StateStore& store,
                                                storage::ArtifactStore& lake,
                                                const std::string& project_dir,
                                                const BatchSpec& spec_in, const Clock& clock,
                                                const std::string& actor) {
  BatchSpec spec = spec_in;
  FERRY_ASSIGN_OR_RETURN(state::ModelVersionRecord v,
                         state::ResolveModelRef(store, spec.model_ref));
  spec.model = v.model;
  spec.model_version = v.version;
  FERRY_ASSIGN_OR_RETURN(std::vector<Input> inputs, ExpandInputs(lake, project_dir, spec.inputs));
  if (spec.threads < 0) {
    return absl::InvalidArgumentError("threads must be 0 (one per core) or more");
  }
  if (!spec.log_endpoint.empty()) {
    FERRY_RETURN_IF_ERROR(
        audit::ValidateInferenceLogOptions({.endpoint = spec.log_endpoint, .instance = "batch"}));
  }
  const std::string id = state::NewJobId('b', clock);
  FERRY_ASSIGN_OR_RETURN(OutputDir out, ResolveOutput(spec.output, project_dir, id));
  if (!out.lake) {
    // Writable: the folder exists or can be made, and a file can be created in it.
    FERRY_RETURN_IF_ERROR(MakeDirs(out.base));
    const std::string probe = fmt::format("{}/.ferry-write-test-{}", out.base, ::getpid());
    FERRY_RETURN_IF_ERROR(WriteFileAtomic(probe, "", /*durable=*/false));
    std::remove(probe.c_str());
  }

  Sha256 key;
  key.Field(spec.model);
  key.Field(std::to_string(spec.model_version));
  for (const std::string& in : spec.inputs) key.Field(in);
  // The files the patterns match now, so that new files arriving under the same pattern make a
  // new job, while a re-run over the same files (after a crash) finds this one and resumes it.
  for (const Input& in : inputs) {
    key.Field(in.uri);
    key.Field(std::to_string(in.size));
    key.Field(std::to_string(in.mtime));
  }
  key.Field("output");
  key.Field(spec.output);
  FERRY_ASSIGN_OR_RETURN(
      state::JobRecord job,
      store.CreateJob({.id = id,
                       .kind = std::string(state::BatchJobKind().name),
                       .subject = fmt::format("{}:{}", spec.model, spec.model_version),
                       .spec_json = BatchSpecToJson(spec).dump(),
                       .idempotency_key = "batch-" + key.HexDigest(),
                       .actor = actor}));
  if (job.id == id) {
    json files = json::array();
    for (const Input& in : inputs) {
      files.push_back({{"input", in.uri}, {"size", in.size}, {"mtime", in.mtime}});
    }
    FERRY_ASSIGN_OR_RETURN(std::string dir, storage::layout::BatchJob(id));
    FERRY_RETURN_IF_ERROR(
        lake.Put(dir + "/input-manifest.json", json{{"inputs", files}}.dump(2) + "\n"));
  }
  return job;
}

absl::StatusOr<BatchResult> RunBatchJob(state::StateStore& store, storage::ArtifactStore& lake,
                                        const std::string& project_dir, const std::string& job_id,
                                        const Clock& clock, const ProgressFn& progress,
                                        const std::atomic<bool>* stop) {
  using namespace state::batch_state;
  const auto t0 = std::chrono::steady_clock::now();
  FERRY_ASSIGN_OR_RETURN(state::JobRecord job, store.GetJob(job_id));
  if (job.kind != state::BatchJobKind().name) {
    return absl::InvalidArgumentError(
        fmt::format("job {} is a {}, not a batch job", job_id, job.kind));
  }
  json spec_json = json::parse(job.spec_json, nullptr, false);
  FERRY_ASSIGN_OR_RETURN(BatchSpec spec, BatchSpecFromJson(spec_json));
  json previous = json::parse(job.result_json, nullptr, false);
  std::map<std::string, FileResult> done;  // input -> its committed result
  if (previous.is_object() && previous.contains("files") && previous["files"].is_array()) {
    for (const json& f : previous["files"]) {
      FileResult r{.input = f.value("input", ""),
                   .output = f.value("output", ""),
                   .quarantine = f.value("quarantine", ""),
                   .rows = f.value("rows", int64_t{0}),
                   .scored = f.value("scored", int64_t{0}),
                   .bad = f.value("bad", int64_t{0}),
                   .skipped = true};
      done[r.input] = r;
    }
  }
  const std::string host = Hostname();
  const int64_t pid = ::getpid();

  if (job.state == kCompleted) {
    BatchResult r;
    for (auto& [input, f] : done) {
      r.files.push_back(f);
      r.rows += f.rows;
      r.scored += f.scored;
      r.bad += f.bad;
    }
    return r;
  }
  if (job.state == kRunning || job.state == kStopping) {
    if (job.owner_host != host || PidAlive(job.owner_pid)) {
      return absl::FailedPreconditionError(
          fmt::format("batch job {} is {} in process {} on {}; wait for it, or stop it with `ferry "
                      "batch-job stop {}`",
                      job_id, job.state, job.owner_pid, job.owner_host, job_id));
    }
    FERRY_ASSIGN_OR_RETURN(job, store.TransitionJob({.id = job_id,
                                                     .from = job.state,
                                                     .to = kFailed,
                                                     .expected_version = job.version,
                                                     .reason = "the owner died",
                                                     .actor = "batch",
                                                     .message = "the owner died"}));
  }
  FERRY_ASSIGN_OR_RETURN(
      job, store.TransitionJob({.id = job_id,
                                .from = job.state,
                                .to = kRunning,
                                .expected_version = job.version,
                                .reason = job.state == kQueued ? "started" : "resumed",
                                .actor = "batch",
                                .message = "",
                                .owner_pid = pid,
                                .owner_host = host}));

  BatchResult result;
  auto fail = [&](const absl::Status& error) -> absl::Status {
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    absl::StatusOr<state::JobRecord> cur = store.GetJob(job_id);
    if (cur.ok() && (cur->state == kRunning || cur->state == kStopping)) {
      (void)store.TransitionJob({.id = job_id,
                                 .from = cur->state,
                                 .to = kFailed,
                                 .expected_version = cur->version,
                                 .reason = std::string(error.message()),
                                 .actor = "batch",
                                 .result_json = BatchResultToJson(result).dump(),
                                 .message = std::string(error.message())});
    }
    return error;
  };

  // The inputs as expanded at submission (the manifest), so a resume scores the same files.
  std::vector<Input> inputs;
  {
    absl::StatusOr<std::string> dir = storage::layout::BatchJob(job_id);
    if (!dir.ok()) return fail(dir.status());
    absl::StatusOr<std::string> manifest = lake.Get(*dir + "/input-manifest.json");
    json m = manifest.ok() ? json::parse(*manifest, nullptr, false) : json();
    if (m.is_object() && m.contains("inputs") && m["inputs"].is_array()) {
      for (const json& f : m["inputs"]) {
        const std::string uri = f.value("input", "");
        Input in{.uri = uri};
        if (uri.rfind(kLake, 0) == 0) {
          in.key = uri.substr(kLake.size());
          absl::StatusOr<std::string> local = lake.LocalPath(in.key);
          if (!local.ok()) return fail(local.status());
          in.local = *local;
        } else {
          in.local = uri;
        }
        absl::StatusOr<Input> st = StatLocal(in);
        if (!st.ok()) return fail(st.status());
        inputs.push_back(std::move(*st));
      }
    } else {
      absl::StatusOr<std::vector<Input>> expanded = ExpandInputs(lake, project_dir, spec.inputs);
      if (!expanded.ok()) return fail(expanded.status());
      inputs = std::move(*expanded);
    }
  }
  absl::StatusOr<OutputDir> out = ResolveOutput(spec.output, project_dir, job_id);
  if (!out.ok()) return fail(out.status());

  // The model version the job was submitted with.
  absl::StatusOr<state::ModelVersionRecord> v =
      state::ResolveModelRef(store, fmt::format("{}:{}", spec.model, spec.model_version));
  if (!v.ok()) return fail(v.status());
  absl::StatusOr<std::string> folder = ModelFolder(lake, v->artifact_uri);
  if (!folder.ok()) return fail(folder.status());
  absl::StatusOr<model::Bundle> bundle = model::LoadBundle(*folder);
  if (!bundle.ok()) {
    return fail(absl::Status(
        bundle.status().code(),
        fmt::format("model {}:{}: {}", spec.model, spec.model_version, bundle.status().message())));
  }

  std::unique_ptr<audit::InferenceLog> log;
  if (!spec.log_endpoint.empty()) {
    absl::StatusOr<std::unique_ptr<audit::InferenceLog>> opened =
        audit::InferenceLog::Open(lake,
                                  {.endpoint = spec.log_endpoint,
                                   .instance = fmt::format("{}-{}", job_id, pid),
                                   .queue_records = 1 << 18},
                                  clock);
    if (!opened.ok()) return fail(opened.status());
    log = std::move(*opened);
  }
  auto close_log = [&]() -> absl::Status {
    if (log == nullptr) return absl::OkStatus();
    absl::Status s = log->Flush();
    log->Close();
    return s;
  };

  BatchProgress prog;
  prog.files_total = static_cast<int>(inputs.size());
  for (const Input& in : inputs) prog.bytes_total += in.size;
  auto last_progress = std::chrono::steady_clock::time_point{};
  auto report = [&](bool force) {
    if (!progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_progress < std::chrono::milliseconds(100)) return;
    last_progress = now;
    progress(prog);
  };

  for (const Input& in : inputs) {
    const std::string name = BaseName(in.uri);
    auto it = done.find(in.uri);
    if (it != done.end()) {
      absl::StatusOr<bool> exists = OutputExists(lake, *out, name);
      if (exists.ok() && *exists) {
        result.files.push_back(it->second);
        result.rows += it->second.rows;
        result.scored += it->second.scored;
        result.bad += it->second.bad;
        ++prog.files_done;
        prog.bytes_done += in.size;
        report(false);
        continue;
      }
    }
    if (stop != nullptr && stop->load()) break;
    const auto f0 = std::chrono::steady_clock::now();
    if (!out->lake) {
      absl::Status made = MakeDirs(out->base + "/_quarantine");
      if (!made.ok()) return fail(made);
      RemoveDeadTempFiles(out->base);
      RemoveDeadTempFiles(out->base + "/_quarantine");
    }
    const std::string temp = TempPath(*out, name);
    const std::string qname = QuarantineName(name);
    const std::string qtemp = TempPath(*out, qname);
    internal::ScoreFileOptions o{.input_path = in.local,
                                 .display = in.uri,
                                 .output_path = temp,
                                 .quarantine_path = qtemp,
                                 .threads = spec.threads,
                                 .policy = spec.bad_rows,
                                 .model_name = spec.model,
                                 .model_version = spec.model_version,
                                 .log = log.get(),
                                 .log_endpoint = spec.log_endpoint,
                                 .time_column = spec.time_column,
                                 .clock = &clock};
    const int64_t bytes_before = prog.bytes_done, rows_before = prog.rows_done;
    o.on_progress = [&](int64_t bytes, int64_t rows) {
      prog.bytes_done = bytes_before + std::min(bytes, in.size);
      prog.rows_done = rows_before + rows;
      report(false);
    };
    absl::StatusOr<internal::ScoreFileStats> stats = internal::ScoreFile(*bundle, o);
    FileResult fr{.input = in.uri, .output = OutputUri(*out, name)};
    const bool has_quarantine = PathExists(qtemp);
    if (has_quarantine) {
      absl::Status q = CommitFile(lake, *out, qname, qtemp);
      if (!q.ok()) {
        std::remove(temp.c_str());
        return fail(q);
      }
      fr.quarantine = OutputUri(*out, qname);
    }
    if (!stats.ok()) {
      std::remove(temp.c_str());
      (void)close_log();
      std::string msg(stats.status().message());
      if (has_quarantine) msg += fmt::format(" (bad rows: {})", fr.quarantine);
      return fail(absl::Status(stats.status().code(), msg));
    }
    absl::Status committed = CommitFile(lake, *out, name, temp);
    if (!committed.ok()) return fail(committed);
    fr.rows = stats->rows;
    fr.scored = stats->scored;
    fr.bad = stats->bad;
    fr.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count();
    result.files.push_back(fr);
    result.rows += fr.rows;
    result.scored += fr.scored;
    result.bad += fr.bad;
    ++prog.files_done;
    prog.bytes_done = bytes_before + in.size;
    prog.rows_done = rows_before + fr.rows;
    report(true);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    absl::Status saved = store.SetJobResult(job_id, kRunning, BatchResultToJson(result).dump());
    if (absl::IsFailedPrecondition(saved)) {
      // `ferry batch-job stop` moved the job to stopping while this file was scored: record the
      // file (it is committed) and stop here.
      absl::StatusOr<state::JobRecord> now = store.GetJob(job_id);
      if (now.ok() && now->state == kStopping) {
        saved = store.SetJobResult(job_id, kStopping, BatchResultToJson(result).dump());
        if (!saved.ok()) return fail(saved);
        break;
      }
    }
    if (!saved.ok()) return fail(saved);
  }

  // The quarantine folder of a local output is made before each file; left empty, it goes.
  if (!out->lake) ::rmdir((out->base + "/_quarantine").c_str());

  absl::Status logged = close_log();
  if (!logged.ok()) {
    return fail(absl::Status(logged.code(), fmt::format("the inference log of endpoint {}: {}",
                                                        spec.log_endpoint, logged.message())));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  FERRY_ASSIGN_OR_RETURN(job, store.GetJob(job_id));
  const bool stopped = (stop != nullptr && stop->load() && result.files.size() < inputs.size()) ||
                       job.state == kStopping;
  if (stopped) {
    if (job.state == kRunning) {
      FERRY_ASSIGN_OR_RETURN(job, store.TransitionJob({.id = job_id,
                                                       .from = kRunning,
                                                       .to = kStopping,
                                                       .expected_version = job.version,
                                                       .reason = "stop requested",
                                                       .actor = "batch"}));
    }
    FERRY_ASSIGN_OR_RETURN(job,
                           store.TransitionJob({.id = job_id,
                                                .from = kStopping,
                                                .to = kStopped,
                                                .expected_version = job.version,
                                                .reason = "finished the file in hand",
                                                .actor = "batch",
                                                .result_json = BatchResultToJson(result).dump()}));
    return absl::CancelledError(
        fmt::format("batch job {} stopped after {} of {} files; run it again to resume", job_id,
                    result.files.size(), inputs.size()));
  }
  FERRY_ASSIGN_OR_RETURN(job,
                         store.TransitionJob({.id = job_id,
                                              .from = kRunning,
                                              .to = kCompleted,
                                              .expected_version = job.version,
                                              .reason = "every output is committed",
                                              .actor = "batch",
                                              .result_json = BatchResultToJson(result).dump()}));
  return result;
}

}  // namespace ferry::batch
