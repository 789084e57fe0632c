#include "ferry/pipeline/resolve.h"

#include <filesystem>
#include <thread>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/config/templating.h"
#include "fmt/format.h"

namespace ferry::pipeline {
namespace {

using nlohmann::json;

// Renders every string inside `value` (recursively).
absl::StatusOr<json> RenderJson(const json& value, const config::TemplateContext& ctx,
                                const std::string& where) {
  if (value.is_string()) {
    // A value that is one parameter and nothing else keeps the parameter's type
    // (`test: "{{ params.test_fraction }}"` is the number 0.25, not the text "0.25").
    const std::string& text = value.get<std::string>();
    if (text.starts_with("{{") && text.ends_with("}}") && text.find("{{", 2) == std::string::npos) {
      std::string inner = text.substr(2, text.size() - 4);
      inner.erase(0, inner.find_first_not_of(' '));
      inner.erase(inner.find_last_not_of(' ') + 1);
      if (inner.starts_with("params.") && ctx.params.contains(inner.substr(7))) {
        return ctx.params[inner.substr(7)];
      }
    }
    absl::StatusOr<std::string> s = config::RenderTemplate(text, ctx);
    if (!s.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", where, s.status().message()));
    }
    return json(*s);
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& v : value) {
      FERRY_ASSIGN_OR_RETURN(json r, RenderJson(v, ctx, where));
      out.push_back(std::move(r));
    }
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      FERRY_ASSIGN_OR_RETURN(json r, RenderJson(it.value(), ctx, where));
      out[it.key()] = std::move(r);
    }
    return out;
  }
  return value;
}

// Converts a --param value to the type of the parameter's default. `source` names where the
// text came from in the error message (default: "--param NAME=TEXT").
absl::StatusOr<json> Coerce(const std::string& name, const std::string& text, const json& like,
                            const std::string& source = "") {
  auto bad = [&](std::string_view type) {
    return absl::InvalidArgumentError(
        fmt::format("{}: '{}' is not {} (the type of the parameter's default {})",
                    source.empty() ? fmt::format("--param {}={}", name, text) : source, text, type,
                    like.dump()));
  };
  if (like.is_boolean()) {
    if (text == "true" || text == "1" || text == "yes") return json(true);
    if (text == "false" || text == "0" || text == "no") return json(false);
    return bad("a boolean");
  }
  if (like.is_number_integer()) {
    try {
      size_t used = 0;
      long long v = std::stoll(text, &used);
      if (used == text.size()) return json(v);
    } catch (...) {
    }
    return bad("an integer");
  }
  if (like.is_number()) {
    try {
      size_t used = 0;
      double v = std::stod(text, &used);
      if (used == text.size()) return json(v);
    } catch (...) {
    }
    return bad("a number");
  }
  return json(text);
}

// A ferry.yaml `params:` value takes the type of the pipeline's default, as a --param does, so
// that a typo there cannot turn an integer parameter into text (which later --param values would
// then follow): text is converted like a --param, an integer becomes a float where the default is
// one, a number or boolean becomes text where the default is text; anything else is an error.
absl::StatusOr<json> FromProject(const config::ProjectConfig& project, const std::string& pipeline,
                                 const std::string& name, const json& value, const json& like) {
  std::string source =
      fmt::format("{}: params.{} (parameter of pipeline '{}')",
                  project.file.empty() ? "ferry.yaml" : project.file, name, pipeline);
  if (like.is_string()) {
    if (value.is_number() || value.is_boolean()) return json(value.dump());
    if (value.is_string()) return value;
  } else if (value.is_string()) {
    return Coerce(name, value.get<std::string>(), like, source);
  } else if (like.is_boolean()) {
    if (value.is_boolean()) return value;
  } else if (like.is_number_integer()) {
    if (value.is_number_integer()) return value;
  } else if (like.is_number()) {
    if (value.is_number()) return json(value.get<double>());
  } else {
    return value;
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: {} does not have the type of the parameter's default {}", source,
                  value.dump(), like.dump()));
}

}  // namespace

const ResolvedStep* ResolvedPipeline::FindStep(const std::string& name) const {
  for (const ResolvedStep& s : steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

json ResourcesToJson(const config::Resources& r) {
  return json{{"cpu", r.cpu},
              {"memory_bytes", r.memory_bytes},
              {"gpu", r.gpu},
              {"timeout_ms", absl::ToInt64Milliseconds(r.timeout)},
              {"retries", r.retries},
              {"retry_backoff_ms", absl::ToInt64Milliseconds(r.retry_backoff)},
              {"retry_backoff_max_ms", absl::ToInt64Milliseconds(r.retry_backoff_max)},
              {"image", r.image},
              {"env", r.env}};
}

static config::Resources ResourcesFromJson(const json& j) {
  config::Resources r;
  r.cpu = j.at("cpu").get<double>();
  r.memory_bytes = j.at("memory_bytes").get<int64_t>();
  r.gpu = j.at("gpu").get<int>();
  r.timeout = absl::Milliseconds(j.at("timeout_ms").get<int64_t>());
  r.retries = j.at("retries").get<int>();
  r.retry_backoff = absl::Milliseconds(j.at("retry_backoff_ms").get<int64_t>());
  r.retry_backoff_max = absl::Milliseconds(j.at("retry_backoff_max_ms").get<int64_t>());
  r.image = j.at("image").get<std::string>();
  r.env = j.at("env").get<std::map<std::string, std::string>>();
  return r;
}

json StepToJson(const ResolvedStep& s) {
  return json{{"name", s.name},     {"kind", s.kind},
              {"needs", s.needs},   {"resources", ResourcesToJson(s.resources)},
              {"fields", s.fields}, {"files", s.files},
              {"cache", s.cache},   {"argv", s.argv}};
}

json ResolvedPipeline::ToJson() const {
  json steps_json = json::array();
  for (const ResolvedStep& s : steps) steps_json.push_back(StepToJson(s));
  return json{{"name", name},
              {"file", file},
              {"project_dir", project_dir},
              {"run_id", run_id},
              {"executor", executor},
              {"max_parallel", max_parallel},
              {"kill_grace_ms", absl::ToInt64Milliseconds(kill_grace)},
              {"params", params},
              {"vars", vars},
              {"steps", steps_json}};
}

absl::StatusOr<ResolvedPipeline> ResolvedPipeline::FromJson(const json& j) {
  try {
    ResolvedPipeline p;
    p.name = j.at("name").get<std::string>();
    p.file = j.at("file").get<std::string>();
    p.project_dir = j.at("project_dir").get<std::string>();
    p.run_id = j.at("run_id").get<std::string>();
    p.executor = j.at("executor").get<std::string>();
    p.max_parallel = j.at("max_parallel").get<int>();
    p.kill_grace = absl::Milliseconds(j.at("kill_grace_ms").get<int64_t>());
    p.params = j.at("params");
    p.vars = j.at("vars").get<std::map<std::string, std::string>>();
    for (const json& s : j.at("steps")) {
      ResolvedStep step;
      step.name = s.at("name").get<std::string>();
      step.kind = s.at("kind").get<std::string>();
      step.needs = s.at("needs").get<std::vector<std::string>>();
      step.resources = ResourcesFromJson(s.at("resources"));
      step.fields = s.at("fields");
      step.files = s.at("files").get<std::vector<std::string>>();
      step.cache = s.at("cache").get<bool>();
      step.argv = s.at("argv").get<std::vector<std::string>>();
      p.steps.push_back(std::move(step));
    }
    return p;
  } catch (const json::exception& e) {
    return absl::DataLossError(fmt::format("the run's frozen spec is unreadable: {}", e.what()));
  }
}

absl::StatusOr<ResolvedPipeline> Resolve(
    const config::PipelineSpec& spec, const config::ProjectConfig& project,
    const StepKindRegistry& registry,
    const std::vector<std::pair<std::string, std::string>>& overrides, const std::string& run_id,
    absl::Time start, const std::string& self_exe) {
  ResolvedPipeline p;
  p.name = spec.name;
  // A relative pipeline path is as the user typed it: relative to the current folder.
  p.file = AbsolutePath(spec.file, std::filesystem::current_path().string());
  p.project_dir = project.root_dir;
  p.run_id = run_id;
  p.executor = project.executor.kind;
  int parallel = spec.max_parallel > 0 ? spec.max_parallel : project.executor.max_parallel;
  if (parallel <= 0) parallel = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  p.max_parallel = parallel;
  p.kill_grace = project.executor.kill_grace;
  std::string date = absl::FormatTime("%Y-%m-%d", start, absl::UTCTimeZone());
  p.vars = {{"run.id", run_id},
            {"run.date", date},
            {"today", date},
            {"run.ts", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", start, absl::UTCTimeZone())},
            {"run.pipeline", spec.name}};

  // Parameters: defaults (which may use run.* templates), then ferry.yaml, then --param.
  config::TemplateContext ctx;
  ctx.vars = p.vars;
  json params = json::object();
  for (const config::ParamSpec& ps : spec.params) {
    FERRY_ASSIGN_OR_RETURN(
        params[ps.name],
        RenderJson(ps.default_value, ctx,
                   fmt::format("{}: parameter '{}'", config::FormatLoc(ps.loc), ps.name)));
    if (project.params.contains(ps.name)) {
      // ferry.yaml values may use run.* and today too, like the pipeline's defaults.
      FERRY_ASSIGN_OR_RETURN(json value,
                             RenderJson(project.params[ps.name], ctx,
                                        fmt::format("ferry.yaml: parameter '{}'", ps.name)));
      FERRY_ASSIGN_OR_RETURN(params[ps.name],
                             FromProject(project, spec.name, ps.name, value, params[ps.name]));
    }
  }
  for (const auto& [name, value] : overrides) {
    if (!params.contains(name)) {
      std::string known;
      for (const config::ParamSpec& ps : spec.params)
        known += (known.empty() ? "" : ", ") + ps.name;
      return absl::InvalidArgumentError(
          fmt::format("--param {}: pipeline '{}' has no parameter '{}'; declared: {}", name,
                      spec.name, name, known.empty() ? "(none)" : known));
    }
    FERRY_ASSIGN_OR_RETURN(params[name], Coerce(name, value, params[name]));
  }
  p.params = params;
  ctx.params = params;

  for (const std::string& name : config::TopologicalOrder(spec)) {
    const config::StepSpec& s = *spec.FindStep(name);
    ResolvedStep step;
    step.name = s.name;
    step.kind = s.kind;
    step.needs = s.needs;
    const StepKind* kind = registry.Find(s.kind);
    if (kind == nullptr) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}: unknown step kind '{}'", config::FormatLoc(s.loc), s.name, s.kind));
    }
    step.cache = s.cache.value_or(kind->DefaultCache());
    FERRY_ASSIGN_OR_RETURN(step.resources, config::ResolveTemplate(project, s.template_name));
    config::MergeInto(s.overrides, &step.resources);
    std::string where = fmt::format("{}: step '{}'", config::FormatLoc(s.loc), s.name);
    for (auto& [k, v] : step.resources.env) {
      FERRY_ASSIGN_OR_RETURN(v, config::RenderTemplate(v, ctx));
    }
    FERRY_ASSIGN_OR_RETURN(step.fields, RenderJson(s.fields, ctx, where));
    for (const std::string& f : s.files) {
      FERRY_ASSIGN_OR_RETURN(std::string rendered, config::RenderTemplate(f, ctx));
      step.files.push_back(rendered);
    }
    for (std::string& f : kind->Files(step)) {
      if (std::find(step.files.begin(), step.files.end(), f) == step.files.end()) {
        step.files.push_back(std::move(f));
      }
    }
    FERRY_ASSIGN_OR_RETURN(step.argv, kind->Argv(step, self_exe));
    p.steps.push_back(std::move(step));
  }
  return p;
}

}  // namespace ferry::pipeline
