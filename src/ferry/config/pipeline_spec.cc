#include "ferry/config/pipeline_spec.h"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <queue>

#include "ferry/common/ids.h"
#include "ferry/config/internal/yaml_util.h"
#include "fmt/format.h"

namespace ferry::config {
namespace {

using internal::Describe;
using internal::Entry;
using internal::YamlFile;

const std::vector<std::string> kTopKeys = {"name", "description", "params", "max_parallel",
                                           "steps"};
// The keys every step may have, whatever its kind; the resource keys come in between.
const std::vector<std::string> kStepKeysBefore = {"needs", "template"};
const std::vector<std::string> kStepKeysAfter = {"files", "cache", "description"};

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A name as written, for the needs check that runs once every step is known.
struct NameRef {
  std::string name;
  SourceLoc loc;
};

class PipelineParser {
 public:
  PipelineParser(const YamlFile& file, const ProjectConfig& project, const StepKindSchemas& kinds,
                 PipelineSpec* spec, Diagnostics* diags)
      : file_(file), project_(project), kinds_(kinds), spec_(spec), diags_(diags) {
    generic_keys_ = kStepKeysBefore;
    const std::vector<std::string>& resource_keys = internal::ResourceKeys();
    generic_keys_.insert(generic_keys_.end(), resource_keys.begin(), resource_keys.end());
    generic_keys_.insert(generic_keys_.end(), kStepKeysAfter.begin(), kStepKeysAfter.end());
    for (const auto& [kind, schema] : kinds_) kind_keys_.push_back(kind);
  }

  void Parse() {
    const YAML::Node& root = file_.root;
    if (!root.IsDefined() || root.IsNull()) {
      diags_->Add(SourceLoc{file_.path, 0, 0},
                  "the pipeline file is empty; it needs at least a steps: mapping");
      return;
    }
    if (!root.IsMap()) {
      diags_->Add(
          internal::LocOf(file_, root),
          fmt::format("a pipeline must be a mapping with a steps: key, got {}", Describe(root)));
      return;
    }
    std::vector<Entry> entries = internal::Entries(file_, root, diags_);
    // Parameters first: the template expressions of every step are checked against them.
    for (const Entry& e : entries) {
      if (e.key != "params") continue;
      for (internal::Param& p : internal::ParseParams(file_, e, diags_)) {
        param_names_.push_back(p.name);
        spec_->params.push_back(ParamSpec{p.name, std::move(p.value), p.loc});
      }
    }
    std::optional<Entry> steps;
    std::optional<Entry> name;
    bool steps_typo = false;
    for (const Entry& e : entries) {
      if (e.key == "params") continue;
      if (e.key == "name") {
        name = e;
      } else if (e.key == "description") {
        if (std::optional<std::string> text = Text(e, "description must be text")) {
          spec_->description = *text;
        }
      } else if (e.key == "max_parallel") {
        std::optional<int64_t> n = internal::AsInt(e.value);
        if (!n || *n <= 0 || *n > std::numeric_limits<int>::max()) {
          diags_->Add(e.value_loc, fmt::format("max_parallel must be a positive integer, got {}",
                                               Describe(e.value)));
        } else {
          spec_->max_parallel = static_cast<int>(*n);
        }
      } else if (e.key == "steps") {
        steps = e;
      } else {
        if (DidYouMean(e.key, kTopKeys) == "steps") steps_typo = true;
        diags_->Add(e.key_loc, fmt::format("unknown top-level key '{}'{}", e.key,
                                           UnknownKeyHint(e.key, kTopKeys)));
      }
    }
    ParseName(name);
    // A misspelt steps: has been reported as such; "no steps" would say it twice.
    if (steps || !steps_typo) ParseSteps(steps);
    CheckNeeds();
    CheckCycles();
  }

 private:
  std::optional<std::string> Text(const Entry& e, std::string_view message) {
    if (!e.value.IsScalar()) {
      diags_->Add(e.value_loc, fmt::format("{}, got {}", message, Describe(e.value)));
      return std::nullopt;
    }
    return e.value.Scalar();
  }

  // The name defaults to the file's stem ("pipelines/train.yaml" is "train").
  void ParseName(const std::optional<Entry>& entry) {
    if (!entry) {
      spec_->name = std::filesystem::path(file_.path).stem().string();
      if (!IsValidName(spec_->name)) {
        diags_->Add(SourceLoc{file_.path, 0, 0},
                    fmt::format("{} (taken from the file name); rename the file or set name:",
                                internal::InvalidNameMessage("pipeline", spec_->name)));
      }
      return;
    }
    std::optional<std::string> name = Text(*entry, "name must be a pipeline name");
    if (!name) return;
    if (!IsValidName(*name)) {
      diags_->Add(entry->value_loc, internal::InvalidNameMessage("pipeline", *name));
    }
    spec_->name = *name;
  }

  void ParseSteps(const std::optional<Entry>& steps) {
    if (!steps) {
      diags_->Add(SourceLoc{file_.path, 0, 0},
                  "the pipeline has no steps: add a steps: mapping of step names to steps");
      return;
    }
    if (steps->value.IsNull() || (steps->value.IsMap() && steps->value.size() == 0)) {
      diags_->Add(steps->key_loc, "steps is empty; add at least one step");
      return;
    }
    if (!steps->value.IsMap()) {
      diags_->Add(steps->value_loc, fmt::format("steps must be a mapping of step names to steps "
                                                "(prepare: {{command: ...}}), got {}",
                                                Describe(steps->value)));
      return;
    }
    for (const Entry& e : internal::Entries(file_, steps->value, diags_)) ParseStep(e);
  }

  void ParseStep(const Entry& entry) {
    StepSpec step;
    step.name = entry.key;
    step.loc = entry.key_loc;
    needs_.emplace_back();
    if (!IsValidName(step.name)) {
      diags_->Add(entry.key_loc, internal::InvalidNameMessage("step", step.name));
    }
    // The step is kept even when broken, so that its dependents do not also report it unknown.
    if (entry.value.IsNull()) {
      diags_->Add(entry.key_loc, fmt::format("step '{}' is empty; give it a kind: one of {}",
                                             step.name, JoinNames(kind_keys_)));
    } else if (!entry.value.IsMap()) {
      diags_->Add(entry.value_loc,
                  fmt::format("step '{}' must be a mapping (e.g. command: ...), got {}", step.name,
                              Describe(entry.value)));
    } else {
      ParseStepFields(entry, &step);
    }
    spec_->steps.push_back(std::move(step));
  }

  void ParseStepFields(const Entry& step_entry, StepSpec* step) {
    std::vector<Entry> entries = internal::Entries(file_, step_entry.value, diags_);
    std::vector<std::string> kinds;  // the kind keys present, in file order
    std::set<std::string> extras;    // the keys they allow besides their kind key
    for (const Entry& e : entries) {
      auto it = kinds_.find(e.key);
      if (it == kinds_.end()) continue;
      kinds.push_back(e.key);
      extras.insert(it->second.keys.begin(), it->second.keys.end());
    }
    std::string where = fmt::format("step '{}'", step->name);
    bool kind_typo = false;  // an unknown key that is a near miss of a kind key
    for (const Entry& e : entries) {
      if (Contains(generic_keys_, e.key)) {
        ParseGenericField(e, where, step);
      } else if (kinds_.contains(e.key)) {
        if (e.key == kinds.front()) {
          step->kind = e.key;
        } else if (e.key == kinds[1]) {
          diags_->Add(e.key_loc,
                      fmt::format("step '{}' has more than one kind key ({}); keep exactly one",
                                  step->name, JoinNames(kinds)));
        }
        RecordField(e, step);
        if (kinds_.at(e.key).value_is_step) StepRefOfKind(e, where);
      } else if (extras.contains(e.key) || (kinds.empty() && !KindOwning(e.key).empty())) {
        RecordField(e, step);
        if (!kinds.empty() && kinds_.at(kinds.front()).step_keys.contains(e.key)) {
          StepRefOfKind(e, where);
        }
      } else if (std::string owner = KindOwning(e.key); !owner.empty()) {
        diags_->Add(e.key_loc, fmt::format("key '{}' is for {} steps, not {} steps", e.key, owner,
                                           kinds.front()));
      } else {
        std::vector<std::string> candidates = kind_keys_;
        candidates.insert(candidates.end(), extras.begin(), extras.end());
        candidates.insert(candidates.end(), generic_keys_.begin(), generic_keys_.end());
        if (Contains(kind_keys_, DidYouMean(e.key, candidates))) kind_typo = true;
        diags_->Add(e.key_loc, fmt::format("unknown key '{}' in {}{}", e.key, where,
                                           UnknownKeyHint(e.key, candidates)));
      }
    }
    // A misspelt kind key has been reported as such; "has no kind" would say it twice.
    if (kinds.empty() && !kind_typo) {
      diags_->Add(step->loc, fmt::format("step '{}' has no kind: add one of: {}", step->name,
                                         JoinNames(kind_keys_)));
    }
  }

  // `validate: extract` / `train: features.train`: the value (up to a dot) is an upstream step.
  // A list names several upstream steps (`register: [eval_a, eval_b]` picks among them).
  void StepRefOfKind(const Entry& e, const std::string& where) {
    if (e.value.IsSequence() && e.value.size() > 0) {
      for (NameRef& ref : NameList(e, where)) {
        needs_.back().push_back(NameRef{ref.name.substr(0, ref.name.find('.')), ref.loc});
      }
      return;
    }
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      diags_->Add(e.value_loc,
                  fmt::format("invalid {} in {}: must name the upstream step whose output it "
                              "reads (e.g. {}: extract), got {}",
                              e.key, where, e.key, Describe(e.value)));
      return;
    }
    const std::string& v = e.value.Scalar();
    needs_.back().push_back(NameRef{v.substr(0, v.find('.')), e.value_loc});
  }

  // The kind whose extra keys include `key`, or "".
  std::string KindOwning(const std::string& key) const {
    for (const auto& [kind, schema] : kinds_) {
      if (schema.keys.contains(key)) return kind;
    }
    return "";
  }

  // Kind-specific values are kept as JSON for the kind's implementation to check.
  void RecordField(const Entry& e, StepSpec* step) {
    step->fields[e.key] = internal::ToJson(e.value);
    step->field_locs[e.key] = e.value_loc;
    // A kind whose value is a mapping (`batch: {model: ..., input: ...}`) reports its keys'
    // errors where they were written: "batch.model".
    if (e.value.IsMap()) {
      for (const auto& kv : e.value) {
        if (kv.first.IsScalar()) {
          step->field_locs[e.key + "." + kv.first.Scalar()] = internal::LocOf(file_, kv.second);
        }
      }
    }
    internal::CheckTemplates(file_, e.value, &param_names_, diags_);
  }

  void ParseGenericField(const Entry& e, const std::string& where, StepSpec* step) {
    if (e.key == "needs") {
      for (NameRef& ref : NameList(e, where)) needs_.back().push_back(std::move(ref));
    } else if (e.key == "template") {
      ParseTemplateRef(e, step);
    } else if (e.key == "files") {
      for (NameRef& ref : NameList(e, where)) step->files.push_back(std::move(ref.name));
      // Paths are rendered at run start like every other string of the step.
      internal::CheckTemplates(file_, e.value, &param_names_, diags_);
    } else if (e.key == "cache") {
      std::optional<bool> cache = internal::AsBool(e.value);
      if (!cache) {
        diags_->Add(e.value_loc, fmt::format("invalid cache in {}: must be true or false, got {}",
                                             where, Describe(e.value)));
      } else {
        step->cache = *cache;
      }
    } else if (e.key == "description") {
      if (std::optional<std::string> text =
              Text(e, fmt::format("invalid description in {}: must be text", where))) {
        step->description = *text;
      }
    } else {
      internal::ParseResourceField(file_, e, where, &step->overrides, diags_);
      if (e.key == "env" && e.value.IsMap()) {
        internal::CheckTemplates(file_, e.value, &param_names_, diags_);
      }
    }
  }

  // `needs` and `files`: one string or a list of them.
  std::vector<NameRef> NameList(const Entry& e, const std::string& where) {
    std::vector<NameRef> out;
    auto bad = [&](const YAML::Node& node, const SourceLoc& loc) {
      diags_->Add(loc, fmt::format("invalid {} in {}: must be a name or a list of names, got {}",
                                   e.key, where, Describe(node)));
    };
    if (e.value.IsScalar() && !e.value.Scalar().empty()) {
      out.push_back(NameRef{e.value.Scalar(), e.value_loc});
    } else if (e.value.IsSequence()) {
      for (const YAML::Node& item : e.value) {
        SourceLoc loc = internal::LocOf(file_, item);
        if (!item.IsScalar() || item.Scalar().empty()) {
          bad(item, item.IsNull() ? e.value_loc : loc);
          continue;
        }
        out.push_back(NameRef{item.Scalar(), loc});
      }
    } else {
      bad(e.value, e.value_loc);
    }
    return out;
  }

  void ParseTemplateRef(const Entry& e, StepSpec* step) {
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      diags_->Add(e.value_loc, fmt::format("invalid template in step '{}': must be a template "
                                           "name, got {}",
                                           step->name, Describe(e.value)));
      return;
    }
    std::string name = e.value.Scalar();
    step->template_name = name;
    if (project_.templates.contains(name)) return;
    std::vector<std::string> known;
    for (const auto& [n, t] : project_.templates) known.push_back(n);
    std::string hint;
    if (known.empty()) {
      hint = "; ferry.yaml defines no templates (add them under templates:)";
    } else if (std::string suggestion = DidYouMean(name, known); !suggestion.empty()) {
      hint = fmt::format("; did you mean '{}'?", suggestion);
    } else {
      hint = fmt::format("; known templates: {}", JoinNames(known));
    }
    diags_->Add(e.value_loc,
                fmt::format("step '{}' uses unknown template '{}'{}", step->name, name, hint));
  }

  // Every need names another step; duplicates are dropped.
  void CheckNeeds() {
    std::vector<std::string> names;
    for (const StepSpec& s : spec_->steps) names.push_back(s.name);
    for (size_t i = 0; i < spec_->steps.size(); ++i) {
      StepSpec& step = spec_->steps[i];
      for (const NameRef& need : needs_[i]) {
        if (need.name == step.name) {
          diags_->Add(need.loc, fmt::format("step '{}' needs itself", step.name));
          continue;
        }
        if (!Contains(names, need.name)) {
          std::string suggestion = DidYouMean(need.name, names);
          diags_->Add(
              need.loc,
              fmt::format("step '{}' needs unknown step '{}'{}", step.name, need.name,
                          suggestion.empty() ? fmt::format("; steps: {}", JoinNames(names))
                                             : fmt::format("; did you mean '{}'?", suggestion)));
          continue;
        }
        if (!Contains(step.needs, need.name)) step.needs.push_back(need.name);
      }
    }
  }

  // Reports each group of steps that need each other (a strongly connected component) once, as
  // one cycle through its first step in file order, at that step.
  void CheckCycles() {
    const std::vector<StepSpec>& steps = spec_->steps;
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < steps.size(); ++i) index.emplace(steps[i].name, i);
    std::vector<std::vector<size_t>> edges(steps.size());  // i -> the steps it needs
    for (size_t i = 0; i < steps.size(); ++i) {
      for (const std::string& n : steps[i].needs) edges[i].push_back(index.at(n));
    }
    for (const std::vector<size_t>& component : StronglyConnected(edges)) {
      if (component.size() < 2) continue;
      size_t start = *std::min_element(component.begin(), component.end());
      std::string chain;
      for (size_t i : ShortestCycle(edges, component, start)) {
        chain += (chain.empty() ? "" : " -> ") + steps[i].name;
      }
      diags_->Add(steps[start].loc, fmt::format("cycle in needs: {}", chain));
    }
  }

  // Tarjan's algorithm; pipelines are small enough for recursion.
  static std::vector<std::vector<size_t>> StronglyConnected(
      const std::vector<std::vector<size_t>>& edges) {
    constexpr size_t kUnvisited = std::numeric_limits<size_t>::max();
    size_t n = edges.size(), counter = 0;
    std::vector<size_t> order(n, kUnvisited), low(n, 0);
    std::vector<bool> on_stack(n, false);
    std::vector<size_t> stack;
    std::vector<std::vector<size_t>> components;
    std::function<void(size_t)> visit = [&](size_t v) {
      order[v] = low[v] = counter++;
      stack.push_back(v);
      on_stack[v] = true;
      for (size_t w : edges[v]) {
        if (order[w] == kUnvisited) {
          visit(w);
          low[v] = std::min(low[v], low[w]);
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], order[w]);
        }
      }
      if (low[v] != order[v]) return;
      std::vector<size_t> component;
      size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        component.push_back(w);
      } while (w != v);
      components.push_back(std::move(component));
    };
    for (size_t v = 0; v < n; ++v) {
      if (order[v] == kUnvisited) visit(v);
    }
    return components;
  }

  // Breadth-first from `start` inside `component`, following needs in the order written; the
  // result starts and ends with `start`.
  static std::vector<size_t> ShortestCycle(const std::vector<std::vector<size_t>>& edges,
                                           const std::vector<size_t>& component, size_t start) {
    constexpr size_t kNone = std::numeric_limits<size_t>::max();
    std::vector<size_t> parent(edges.size(), kNone);
    std::deque<size_t> queue = {start};
    parent[start] = start;
    while (!queue.empty()) {
      size_t v = queue.front();
      queue.pop_front();
      for (size_t w : edges[v]) {
        if (w == start) {
          std::vector<size_t> path = {start};
          for (size_t u = v; u != start; u = parent[u]) path.push_back(u);
          std::reverse(path.begin() + 1, path.end());
          path.push_back(start);
          return path;
        }
        if (parent[w] != kNone || !std::count(component.begin(), component.end(), w)) continue;
        parent[w] = v;
        queue.push_back(w);
      }
    }
    return {start, start};  // unreachable for a component of two or more steps
  }

  const YamlFile& file_;
  const ProjectConfig& project_;
  const StepKindSchemas& kinds_;
  PipelineSpec* spec_;
  Diagnostics* diags_;
  std::vector<std::string> generic_keys_;
  std::vector<std::string> kind_keys_;
  std::vector<std::string> param_names_;
  std::vector<std::vector<NameRef>> needs_;  // per step, as written
};

}  // namespace

const StepSpec* PipelineSpec::FindStep(const std::string& name) const {
  for (const StepSpec& step : steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

PipelineSpec ParsePipeline(const std::string& path, const ProjectConfig& project,
                           const StepKindSchemas& kinds, Diagnostics* diags) {
  PipelineSpec spec;
  spec.file = path;
  if (std::optional<YamlFile> file = internal::LoadYamlFile(path, diags)) {
    PipelineParser(*file, project, kinds, &spec, diags).Parse();
  }
  return spec;
}

absl::StatusOr<PipelineSpec> LoadPipeline(const std::string& path, const ProjectConfig& project,
                                          const StepKindSchemas& kinds, Diagnostics* diags) {
  Diagnostics found;
  PipelineSpec spec = ParsePipeline(path, project, kinds, &found);
  // Appended, so that a caller collecting the errors of several files keeps them all.
  if (diags != nullptr) {
    for (const Diagnostic& d : found.items()) diags->Add(d.loc, d.message);
  }
  if (!found.empty()) return found.ToStatus();
  return spec;
}

std::vector<std::string> TopologicalOrder(const PipelineSpec& spec) {
  // Kahn's algorithm with the ready steps taken smallest file index first, so that the order is
  // the file order wherever the needs allow it.
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < spec.steps.size(); ++i) index.emplace(spec.steps[i].name, i);
  std::vector<std::vector<size_t>> dependents(spec.steps.size());
  std::vector<size_t> waiting(spec.steps.size(), 0);
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    for (const std::string& need : spec.steps[i].needs) {
      auto it = index.find(need);
      if (it == index.end() || it->second == i) continue;
      dependents[it->second].push_back(i);
      ++waiting[i];
    }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    if (waiting[i] == 0) ready.push(i);
  }
  std::vector<std::string> order;
  std::vector<bool> placed(spec.steps.size(), false);
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    order.push_back(spec.steps[i].name);
    placed[i] = true;
    for (size_t d : dependents[i]) {
      if (--waiting[d] == 0) ready.push(d);
    }
  }
  // Only a spec that failed validation has a cycle; its steps still appear, in file order.
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    if (!placed[i]) order.push_back(spec.steps[i].name);
  }
  return order;
}

}  // namespace ferry::config
