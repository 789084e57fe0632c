#include "ferry/pipeline/workdir.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

std::string ChannelVar(const std::string& name) {
  std::string out = "SM_CHANNEL_";
  for (char c : name) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : '_');
  }
  return out;
}

absl::Status Symlink(const std::string& target, const std::string& link) {
  ::unlink(link.c_str());
  if (::symlink(target.c_str(), link.c_str()) != 0) {
    return absl::InternalError(fmt::format("cannot link {} -> {}", link, target));
  }
  return absl::OkStatus();
}

// Makes `link` a hard link to `shared` (replacing what a previous attempt left); when that cannot
// be done, writes `content` to `link` instead.
absl::Status LinkOrWrite(const std::string& shared, const std::string& link,
                         std::string_view content) {
  ::unlink(link.c_str());
  if (::link(shared.c_str(), link.c_str()) == 0) return absl::OkStatus();
  // Not fsynced: derived from the run's frozen spec and remade at every attempt.
  return WriteFileAtomic(link, content, false);
}

}  // namespace

nlohmann::json HyperparametersOf(const nlohmann::json& params) {
  nlohmann::json hps = nlohmann::json::object();
  for (auto it = params.begin(); it != params.end(); ++it) {
    hps[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return hps;
}

absl::Status LayOutWorkdir(const ResolvedPipeline& p, const ResolvedStep& step,
                           const RunFiles& run_files, const std::string& task_dir,
                           const std::map<std::string, std::string>& channels) {
  const std::string input = task_dir + "/input";
  const std::string config_dir = input + "/config";
  const std::string model = task_dir + "/model";
  const std::string output = task_dir + "/output";
  // One mkdir per folder, parents first; model/ and output/ are emptied only when an earlier
  // attempt left them (a retry starts clean). This runs once per task on the scheduler's path.
  FERRY_RETURN_IF_ERROR(MakeDirs(task_dir));
  for (const std::string& d :
       {input, config_dir, input + "/data", model, output, output + "/data", task_dir + "/logs"}) {
    if (::mkdir(d.c_str(), 0755) == 0) continue;
    if (errno != EEXIST) {
      return absl::InternalError(
          fmt::format("cannot create folder {}: {}", d, std::strerror(errno)));
    }
    if (d == model || d == output) {
      FERRY_RETURN_IF_ERROR(RemoveAll(d));
      if (::mkdir(d.c_str(), 0755) != 0) {
        return absl::InternalError(
            fmt::format("cannot create folder {}: {}", d, std::strerror(errno)));
      }
    }
  }

  FERRY_RETURN_IF_ERROR(LinkOrWrite(run_files.hyperparameters, config_dir + "/hyperparameters.json",
                                    HyperparametersOf(p.params).dump(2) + "\n"));
  FERRY_RETURN_IF_ERROR(
      LinkOrWrite(run_files.params, config_dir + "/params.json", p.params.dump(2) + "\n"));
  if (step.kind != "command") {
    // Built-in kinds read their step from here (`ferry task`).
    FERRY_RETURN_IF_ERROR(
        WriteFileAtomic(config_dir + "/step.json", StepToJson(step).dump(2), false));
  }
  for (const auto& [name, upstream_dir] : channels) {
    FERRY_RETURN_IF_ERROR(Symlink(upstream_dir + "/output/data", input + "/data/" + name));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> WorkdirEnvironment(
    const ResolvedPipeline& p, const ResolvedStep& step, int attempt, const std::string& task_dir,
    const std::map<std::string, std::string>& channels, const std::string& lake_uri) {
  const std::string input = task_dir + "/input";
  const std::string config_dir = input + "/config";
  const std::string model = task_dir + "/model";
  const std::string output = task_dir + "/output";
  std::map<std::string, std::string> env = step.resources.env;
  nlohmann::json channel_names = nlohmann::json::array();
  for (const auto& [name, upstream_dir] : channels) {
    env[ChannelVar(name)] = input + "/data/" + name;
    channel_names.push_back(name);
  }
  env["SM_CHANNELS"] = channel_names.dump();
  env["SM_HPS"] = HyperparametersOf(p.params).dump();
  env["SM_INPUT_DIR"] = input;
  env["SM_INPUT_CONFIG_DIR"] = config_dir;
  env["SM_INPUT_DATA_CONFIG"] = "{}";
  env["SM_MODEL_DIR"] = model;
  env["SM_OUTPUT_DIR"] = output;
  env["SM_OUTPUT_DATA_DIR"] = output + "/data";
  env["SM_NUM_CPUS"] = fmt::format("{}", static_cast<int>(std::max(1.0, step.resources.cpu)));
  env["SM_NUM_GPUS"] = fmt::format("{}", step.resources.gpu);
  env["SM_CURRENT_HOST"] = "algo-1";
  env["SM_HOSTS"] = "[\"algo-1\"]";
  env["FERRY_RUN_ID"] = p.run_id;
  env["FERRY_PIPELINE"] = p.name;
  env["FERRY_TASK"] = step.name;
  env["FERRY_ATTEMPT"] = fmt::format("{}", attempt);
  env["FERRY_RUN_DATE"] = p.vars.at("run.date");
  env["FERRY_RUN_TS"] = p.vars.at("run.ts");
  env["FERRY_WORKDIR"] = task_dir;
  env["FERRY_PARAMS"] = config_dir + "/params.json";
  env["FERRY_PROJECT_DIR"] = p.project_dir;
  env["FERRY_LAKE"] = lake_uri;
  return env;
}

std::string ReadFailureMessage(const std::string& task_dir) {
  absl::StatusOr<std::string> msg = ReadFile(task_dir + "/output/failure");
  if (!msg.ok()) return "";
  std::string s = msg->substr(0, 4096);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

}  // namespace ferry::pipeline
