#include "ferry/pipeline/model_steps.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "ferry/config/project.h"
#include "ferry/model/metrics.h"
#include "ferry/pipeline/data_steps.h"
#include "fmt/format.h"

extern char** environ;

namespace ferry::pipeline::model_steps {

using json = nlohmann::json;

absl::StatusOr<std::unique_ptr<state::StateStore>> OpenStore(const TaskContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(config::ProjectConfig project, config::LoadProject(ctx.project_dir));
  return state::OpenStateStore(project.state_uri);
}

absl::Status LinkTree(const std::string& from, const std::string& to) {
  FERRY_ASSIGN_OR_RETURN(std::vector<std::string> files, ListFilesRecursive(from));
  FERRY_RETURN_IF_ERROR(MakeDirs(to));
  for (const std::string& f : files) {
    if (size_t slash = f.rfind('/'); slash != std::string::npos) {
      FERRY_RETURN_IF_ERROR(MakeDirs(to + "/" + f.substr(0, slash)));
    }
    FERRY_RETURN_IF_ERROR(data_steps::LinkOrCopy(from, to, f));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactFolder(storage::ArtifactStore& lake, const std::string& uri) {
  absl::StatusOr<std::string> key = storage::KeyOf(lake, uri);
  if (key.ok()) return lake.LocalPath(*key);
  // A version registered through another lake root (a copied or moved project): an absolute
  // file:// URI is still a readable folder here.
  constexpr std::string_view kFile = "file:///";
  if (uri.rfind(kFile, 0) == 0) return uri.substr(kFile.size() - 1);
  return key.status();
}

void CheckModelField(const config::StepSpec& step, config::Diagnostics* diags) {
  const config::SourceLoc loc = data_steps::FieldLoc(step, "model");
  if (!step.fields.contains("model") || !step.fields["model"].is_object()) {
    diags->Add(loc, fmt::format("step '{}': a train step needs model: a map with type: (one of {}) "
                                "or command: (a Python model), and target:",
                                step.name, fmt::join(model::ModelTypeNames(), ", ")));
    return;
  }
  const json& m = step.fields["model"];
  static const std::set<std::string> kKeys = {"type", "command", "target", "hyperparameters"};
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!kKeys.contains(it.key())) {
      diags->Add(loc, fmt::format("step '{}': unknown key '{}' in model (expected type, command, "
                                  "target, hyperparameters)",
                                  step.name, it.key()));
    }
  }
  const bool has_type = m.contains("type"), has_command = m.contains("command");
  if (has_type == has_command) {
    diags->Add(loc, fmt::format("step '{}': model needs exactly one of type: (a built-in: {}) and "
                                "command: (a Python model, e.g. \"python3 models/churn.py\")",
                                step.name, fmt::join(model::ModelTypeNames(), ", ")));
  } else if (has_type) {
    if (!m["type"].is_string()) {
      diags->Add(loc, fmt::format("step '{}': model.type must be text", step.name));
    } else if (std::string t = m["type"].get<std::string>();
               t.find("{{") == std::string::npos && model::FindModelType(t) == nullptr) {
      diags->Add(loc, fmt::format("step '{}': unknown model type '{}'; the built-in types: {} "
                                  "(or give command: for a Python model)",
                                  step.name, t, fmt::join(model::ModelTypeNames(), ", ")));
    }
  } else if (!m["command"].is_string() || m["command"].get<std::string>().empty()) {
    diags->Add(loc, fmt::format("step '{}': model.command must be a command line", step.name));
  }
  if (!m.contains("target") || !m["target"].is_string() || m["target"].get<std::string>().empty()) {
    diags->Add(loc, fmt::format("step '{}': model needs target: the label column", step.name));
  }
  if (m.contains("hyperparameters") && !m["hyperparameters"].is_object()) {
    diags->Add(loc, fmt::format("step '{}': model.hyperparameters must be a map (e.g. {{C: 1.0}})",
                                step.name));
  }
}

absl::Status RunModelCommand(const std::string& command, const std::vector<std::string>& args,
                             const std::string& cwd,
                             const std::map<std::string, std::string>& env) {
  std::string line = command;
  for (const std::string& a : args) {
    // Single-quoted for the shell: the arguments are ferry's own paths and flags.
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += " " + quoted + "'";
  }
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) vars[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) vars[k] = v;
  std::vector<std::string> strings;
  for (const auto& [k, v] : vars) strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh", dash_c = "-c", cd_line = "cd \"$0\" && exec sh -c \"$1\"";
  // sh -c 'cd "$0" && exec sh -c "$1"' <cwd> <line>: no string of ours is parsed twice.
  std::vector<char*> argv = {sh.data(),      dash_c.data(),
                             cd_line.data(), const_cast<char*>(cwd.c_str()),
                             line.data(),    nullptr};
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, sh.c_str(), nullptr, nullptr, argv.data(), envp.data());
  if (rc != 0) {
    return absl::InternalError(fmt::format("cannot start /bin/sh: {}", std::strerror(rc)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError("cannot wait for", line);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(
      fmt::format("`{}` failed ({}); its output is above in this log", line,
                  WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                    : fmt::format("signal {}", WTERMSIG(status))));
}

absl::StatusOr<model::Predictions> PredictionsFromJson(const json& predictions, model::Task task,
                                                       const std::vector<std::string>& classes) {
  if (!predictions.is_array()) {
    return absl::InvalidArgumentError("\"predictions\" must be an array, one entry per row");
  }
  model::Predictions p{.task = task, .rows = predictions.size(), .classes = classes};
  if (task == model::Task::kRegression) p.classes.clear();
  p.values.reserve(p.rows * std::max<size_t>(1, p.classes.size()));
  for (size_t r = 0; r < predictions.size(); ++r) {
    const json& row = predictions[r];
    if (task == model::Task::kRegression) {
      if (row.is_number()) {
        p.values.push_back(row.get<double>());
      } else if (row.is_object() && row.contains("value") && row["value"].is_number()) {
        p.values.push_back(row["value"].get<double>());
      } else {
        return absl::InvalidArgumentError(
            fmt::format("predictions[{}]: expected a number or {{\"value\": <number>}}, got {}", r,
                        row.dump()));
      }
      continue;
    }
    // {"label": ..., "probabilities": {class: p}} (ferry's form) or {class: p} (a Python model's).
    const json& probs =
        row.is_object() && row.contains("probabilities") ? row["probabilities"] : row;
    if (!probs.is_object()) {
      return absl::InvalidArgumentError(
          fmt::format("predictions[{}]: expected the class probabilities {{class: p, ...}}, got {}",
                      r, row.dump()));
    }
    for (const std::string& c : p.classes) {
      if (!probs.contains(c) || !probs[c].is_number()) {
        return absl::InvalidArgumentError(
            fmt::format("predictions[{}]: no probability for class '{}'", r, c));
      }
      p.values.push_back(probs[c].get<double>());
    }
  }
  return p;
}

std::string PythonHyperparameters(const json& params, const json& hps) {
  json out = json::object();
  for (const json* source : {&params, &hps}) {
    if (!source->is_object()) continue;
    for (auto it = source->begin(); it != source->end(); ++it) {
      out[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    }
  }
  return out.dump();
}

absl::StatusOr<model::Predictions> PythonPredict(const json& meta, const std::string& model_dir,
                                                 const std::string& input, const std::string& part,
                                                 const std::string& scratch, const std::string& cwd,
                                                 const std::map<std::string, std::string>& env,
                                                 size_t expected_rows) {
  const std::string command = meta.value("command", "");
  if (command.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "a '{}' model without a \"command\" cannot predict here; only built-in types and Python "
        "models (model: {{command: ...}}) can",
        meta.value("type", "")));
  }
  FERRY_RETURN_IF_ERROR(MakeDirs(scratch));
  const std::string out = scratch + "/predictions.json";
  std::vector<std::string> args = {"predict", "--model-dir", model_dir, "--input",
                                   input,     "--output",    out};
  if (!part.empty()) {
    args.push_back("--part");
    args.push_back(part);
  }
  // `exec 1>&2` first: what the model prints must not mix with what ferry prints on stdout.
  FERRY_RETURN_IF_ERROR(RunModelCommand("exec 1>&2; " + command, args, cwd, env));
  FERRY_ASSIGN_OR_RETURN(std::string text, ReadFile(out));
  json doc = json::parse(text, nullptr, false);
  if (!doc.is_object() || !doc.contains("predictions")) {
    return absl::InvalidArgumentError(fmt::format(
        "`{} predict` wrote no {{\"predictions\": [...]}} document (docs/python-models.md)",
        command));
  }
  const std::string task = meta.value("task", "");
  std::optional<model::Task> t = model::ParseTaskName(task);
  if (!t) {
    return absl::InvalidArgumentError(fmt::format(
        "the model's model.json has task '{}', not binary, multiclass or regression", task));
  }
  FERRY_ASSIGN_OR_RETURN(model::Predictions p,
                         PredictionsFromJson(doc["predictions"], *t,
                                             meta.value("classes", std::vector<std::string>{})));
  if (expected_rows > 0 && p.rows != expected_rows) {
    return absl::InvalidArgumentError(fmt::format(
        "`{} predict` returned {} predictions for {} rows", command, p.rows, expected_rows));
  }
  return p;
}

absl::StatusOr<json> Score(const data::Table& table, const std::string& target,
                           const model::Predictions& p) {
  if (table.Find(target) == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("the evaluation rows have no target column '{}'", target));
  }
  if (p.task == model::Task::kRegression) {
    const data::Column& y = table.column(target);
    std::vector<double> truth(y.size());
    for (size_t i = 0; i < y.size(); ++i) {
      if (y.is_null(i)) {
        return absl::InvalidArgumentError(
            fmt::format("target '{}' is null in row {}: drop or impute it", target, i + 1));
      }
      truth[i] = y.AsDouble(i);
    }
    FERRY_ASSIGN_OR_RETURN(model::RegressionMetrics m, model::Regress(truth, p));
    return model::ToJson(m);
  }
  FERRY_ASSIGN_OR_RETURN(model::Labels labels, model::ToLabels(table, target));
  // Map the rows' classes onto the model's (a class the model never saw counts as wrong).
  std::vector<int> index(labels.index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    const std::string& c = labels.classes[labels.index[i]];
    auto it = std::find(p.classes.begin(), p.classes.end(), c);
    if (it == p.classes.end()) {
      return absl::InvalidArgumentError(fmt::format(
          "row {} has class '{}' of '{}', which the model was not trained on (its classes: {})",
          i + 1, c, target, fmt::join(p.classes, ", ")));
    }
    index[i] = static_cast<int>(it - p.classes.begin());
  }
  FERRY_ASSIGN_OR_RETURN(model::ClassificationMetrics m, model::Classify(index, p));
  return model::ToJson(m);
}

double MaxAbsDiff(const model::Predictions& a, const model::Predictions& b) {
  if (a.rows != b.rows || a.values.size() != b.values.size() || a.classes != b.classes) {
    return std::numeric_limits<double>::infinity();
  }
  double worst = 0;
  for (size_t i = 0; i < a.values.size(); ++i) {
    double d = std::fabs(a.values[i] - b.values[i]);
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, d);
  }
  return worst;
}

bool Templated(const nlohmann::json& value) {
  return value.is_string() && value.get<std::string>().find("{{") != std::string::npos;
}

void CheckEndpointAndWindow(const nlohmann::json& m, std::string_view purpose,
                            std::string_view example_window,
                            const std::function<void(const std::string&)>& error) {
  if (!m.contains("endpoint") || !m["endpoint"].is_string()) {
    error(fmt::format("endpoint: name the endpoint whose inference log to {} (endpoint: churn)",
                      purpose));
  } else if (!Templated(m["endpoint"]) && !IsValidName(m["endpoint"].get<std::string>())) {
    error(fmt::format("endpoint '{}' is not a valid name (letters, digits, _ . -)",
                      m["endpoint"].get<std::string>()));
  }
  if (m.contains("window")) {
    const nlohmann::json& w = m["window"];
    absl::StatusOr<absl::Duration> d =
        w.is_string() ? ParseDuration(w.get<std::string>())
                      : absl::StatusOr<absl::Duration>(absl::InvalidArgumentError("not a string"));
    if (!Templated(w) && (!d.ok() || *d <= absl::ZeroDuration())) {
      error(fmt::format("window {}: write a positive duration like 1d, 36h, {}", w.dump(),
                        example_window));
    }
  }
}

}  // namespace ferry::pipeline::model_steps
