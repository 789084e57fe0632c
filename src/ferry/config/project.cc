#include "ferry/config/project.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/common/units.h"
#include "ferry/config/internal/yaml_util.h"
#include "fmt/format.h"

namespace ferry::config {
namespace {

using internal::Describe;
using internal::Entry;
using internal::YamlFile;

const std::vector<std::string> kTopKeys = {"name",        "state",  "lake",     "executor",
                                           "connections", "params", "templates"};
const std::vector<std::string> kExecutorKeys = {"kind", "max_parallel", "kill_grace"};
const std::vector<std::string> kConnectionKeys = {"uri", "password_env", "password_file"};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
  });
}

// Where a postgresql:// URI spells a password ("user:secret@host" or "?password=..."), or
// nullopt.
std::optional<size_t> PasswordOffset(std::string_view uri) {
  size_t begin = uri.find("://") + 3;
  size_t end = uri.find_first_of("/?", begin);
  std::string_view authority =
      uri.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    size_t colon = authority.substr(0, at).find(':');
    if (colon != std::string_view::npos) return begin + colon + 1;
  }
  for (size_t sep = uri.find('?'); sep != std::string_view::npos; sep = uri.find('&', sep + 1)) {
    if (uri.substr(sep + 1, 9) == "password=") return sep + 1;
  }
  return std::nullopt;
}

// "sqlite://" or "file://" followed by a path: relative paths are taken from the project root,
// and the result is always absolute ("sqlite:///abs/path").
std::string ResolveLocal(std::string_view scheme, std::string_view uri, const std::string& root) {
  return std::string(scheme) + AbsolutePath(std::string(uri.substr(scheme.size())), root);
}

std::string CurrentDir() {
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  return ec ? "/" : cwd;
}

// The path to show in messages: the root as the caller named it, so relative stays relative.
std::string DisplayPath(const std::string& root_dir) {
  if (root_dir.empty() || root_dir == ".") return "ferry.yaml";
  return root_dir.back() == '/' ? root_dir + "ferry.yaml" : root_dir + "/ferry.yaml";
}

class ProjectParser {
 public:
  ProjectParser(const YamlFile& file, ProjectConfig* config, Diagnostics* diags)
      : file_(file), config_(config), diags_(diags) {}

  void Parse() {
    const YAML::Node& root = file_.root;
    if (!root.IsDefined() || root.IsNull()) return;  // an empty ferry.yaml: every default
    if (!root.IsMap()) {
      diags_->Add(internal::LocOf(file_, root),
                  fmt::format("ferry.yaml must be a mapping of settings, got {}", Describe(root)));
      return;
    }
    for (const Entry& e : internal::Entries(file_, root, diags_)) {
      if (e.key == "name") {
        ParseName(e);
      } else if (e.key == "state") {
        ParseState(e);
      } else if (e.key == "lake") {
        ParseLake(e);
      } else if (e.key == "executor") {
        ParseExecutor(e);
      } else if (e.key == "connections") {
        ParseConnections(e);
      } else if (e.key == "params") {
        for (const internal::Param& p : internal::ParseParams(file_, e, diags_)) {
          config_->params[p.name] = p.value;
        }
      } else if (e.key == "templates") {
        ParseTemplates(e);
      } else {
        diags_->Add(e.key_loc, fmt::format("unknown key '{}' in ferry.yaml{}", e.key,
                                           UnknownKeyHint(e.key, kTopKeys)));
      }
    }
    CheckExtends();
  }

 private:
  // A non-empty scalar, else a diagnostic saying what `e.key` should have been.
  std::optional<std::string> Text(const Entry& e, std::string_view what) {
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      diags_->Add(e.value_loc,
                  fmt::format("{} must be {}, got {}", e.key, what, Describe(e.value)));
      return std::nullopt;
    }
    return e.value.Scalar();
  }

  void ParseName(const Entry& e) {
    std::optional<std::string> name = Text(e, "a name");
    if (!name) return;
    if (!IsValidName(*name)) {
      diags_->Add(e.value_loc, internal::InvalidNameMessage("project", *name));
      return;
    }
    config_->name = *name;
  }

  void ParseState(const Entry& e) {
    std::optional<std::string> uri = Text(e, "a URI");
    if (!uri) return;
    if (StartsWith(*uri, "sqlite://") && uri->size() > 9) {
      config_->state_uri = ResolveLocal("sqlite://", *uri, config_->root_dir);
    } else if ((StartsWith(*uri, "postgresql://") && uri->size() > 13) ||
               (StartsWith(*uri, "postgres://") && uri->size() > 11)) {
      config_->state_uri = *uri;
    } else {
      diags_->Add(e.value_loc,
                  fmt::format("unsupported state store '{}': use sqlite://PATH (relative to the "
                              "project, or sqlite:///absolute/path) or postgresql://USER@HOST/DB",
                              *uri));
    }
  }

  void ParseLake(const Entry& e) {
    std::optional<std::string> uri = Text(e, "a URI");
    if (!uri) return;
    if (StartsWith(*uri, "file://") && uri->size() > 7) {
      config_->lake_uri = ResolveLocal("file://", *uri, config_->root_dir);
    } else if (StartsWith(*uri, "s3://") && uri->size() > 5) {
      config_->lake_uri = *uri;
    } else {
      diags_->Add(e.value_loc,
                  fmt::format("unsupported lake '{}': use file://PATH (relative to the project, "
                              "or file:///absolute/path) or s3://BUCKET/PREFIX",
                              *uri));
    }
  }

  void ParseExecutor(const Entry& executor) {
    if (!executor.value.IsMap()) {
      diags_->Add(executor.value_loc,
                  fmt::format("executor must be a mapping (kind, max_parallel, kill_grace), got {}",
                              Describe(executor.value)));
      return;
    }
    ExecutorConfig& out = config_->executor;
    for (const Entry& e : internal::Entries(file_, executor.value, diags_)) {
      if (e.key == "kind") {
        if (std::optional<std::string> kind = Text(e, "an executor name such as local")) {
          out.kind = *kind;
        }
      } else if (e.key == "max_parallel") {
        std::optional<int64_t> n = internal::AsInt(e.value);
        if (!n || *n < 0 || *n > std::numeric_limits<int>::max()) {
          diags_->Add(e.value_loc,
                      fmt::format("max_parallel must be a non-negative integer (0 = one per core), "
                                  "got {}",
                                  Describe(e.value)));
        } else {
          out.max_parallel = static_cast<int>(*n);
        }
      } else if (e.key == "kill_grace") {
        absl::StatusOr<absl::Duration> d =
            e.value.IsScalar() ? ParseDuration(e.value.Scalar())
                               : absl::InvalidArgumentError(fmt::format(
                                     "must be a duration like 10s, got {}", Describe(e.value)));
        if (!d.ok()) {
          diags_->Add(e.value_loc,
                      fmt::format("invalid kill_grace: {}", std::string(d.status().message())));
        } else {
          out.kill_grace = *d;
        }
      } else {
        diags_->Add(e.key_loc, fmt::format("unknown key '{}' in executor{}", e.key,
                                           UnknownKeyHint(e.key, kExecutorKeys)));
      }
    }
  }

  // A connection is `NAME: {uri: ..., password_env: ..., password_file: ...}` or, for short,
  // `NAME: URI`.
  void ParseConnections(const Entry& connections) {
    if (!connections.value.IsMap()) {
      diags_->Add(connections.value_loc,
                  fmt::format("connections must be a mapping of names to URIs, got {}",
                              Describe(connections.value)));
      return;
    }
    for (const Entry& c : internal::Entries(file_, connections.value, diags_)) {
      if (!IsValidName(c.key))
        diags_->Add(c.key_loc, internal::InvalidNameMessage("connection", c.key));
      Connection conn{.name = c.key, .loc = c.key_loc};
      std::optional<Entry> uri;
      std::optional<Entry> password_key;  // the first of password_env / password_file
      if (c.value.IsScalar()) {
        uri = c;
      } else if (c.value.IsMap()) {
        bool bad_password = false;
        for (const Entry& e : internal::Entries(file_, c.value, diags_)) {
          if (e.key == "uri") {
            uri = e;
          } else if (e.key == "password_env" || e.key == "password_file") {
            if (password_key) {
              diags_->Add(e.key_loc, fmt::format("connection '{}' has both {} and {}; keep one",
                                                 c.key, password_key->key, e.key));
              bad_password = true;
              continue;
            }
            password_key = e;
            std::optional<std::string> text =
                Text(e, e.key == "password_env" ? "an environment variable name"
                                                : "a file path (relative to the project)");
            if (!text) {
              bad_password = true;
            } else if (e.key == "password_env") {
              if (!IsEnvName(*text)) {
                diags_->Add(e.value_loc, fmt::format("connection '{}': password_env '{}' is not "
                                                     "an environment variable name (letters, "
                                                     "digits and '_', not starting with a digit)",
                                                     c.key, *text));
                bad_password = true;
              }
              conn.password_env = *text;
            } else {
              conn.password_file = AbsolutePath(*text, config_->root_dir);
            }
          } else {
            diags_->Add(e.key_loc, fmt::format("unknown key '{}' in connection '{}'{}", e.key,
                                               c.key, UnknownKeyHint(e.key, kConnectionKeys)));
          }
        }
        if (!uri) {
          diags_->Add(c.key_loc, fmt::format("connection '{}' has no uri", c.key));
          continue;
        }
        if (bad_password) continue;
      } else {
        diags_->Add(c.value_loc,
                    fmt::format("connection '{}' must be a URI or {{uri: URI}}, got {}", c.key,
                                Describe(c.value)));
        continue;
      }
      std::optional<std::string> text = Text(*uri, "a URI");
      if (!text) continue;
      if (text->find("://") == std::string::npos) {
        diags_->Add(uri->value_loc, fmt::format("connection '{}': '{}' is not a URI; write e.g. "
                                                "sqlite://data/crm.db (relative to the project) or "
                                                "postgresql://USER@HOST/DB",
                                                c.key, *text));
        continue;
      }
      if (StartsWith(*text, "sqlite://") && text->size() > 9) {
        // SQLite paths are made absolute like the state store's, so that a step running in
        // another folder opens the same file.
        conn.uri = ResolveLocal("sqlite://", *text, config_->root_dir);
        if (password_key) {
          diags_->Add(password_key->key_loc,
                      fmt::format("connection '{}': {} applies to postgresql connections only; "
                                  "SQLite has no passwords",
                                  c.key, password_key->key));
          continue;
        }
      } else if ((StartsWith(*text, "postgresql://") && text->size() > 13) ||
                 (StartsWith(*text, "postgres://") && text->size() > 11)) {
        // The URI itself is not echoed: it holds the secret.
        if (std::optional<size_t> at = PasswordOffset(*text)) {
          diags_->Add(internal::LocInScalar(file_, uri->value, *at),
                      fmt::format("connection '{}': the URI holds a password, and ferry.yaml "
                                  "belongs in git; remove it from the URI and set "
                                  "password_env: VAR (an environment variable holding it) or "
                                  "password_file: PATH (a file kept out of git, first line)",
                                  c.key));
          continue;
        }
        conn.uri = *text;
      } else {
        diags_->Add(uri->value_loc,
                    fmt::format("connection '{}': unsupported URI '{}'; supported: "
                                "sqlite://PATH (relative to the project, or sqlite:///absolute/"
                                "path), postgresql://USER@HOST:PORT/DB (or postgres://)",
                                c.key, *text));
        continue;
      }
      config_->connections[c.key] = std::move(conn);
    }
  }

  void ParseTemplates(const Entry& templates) {
    if (!templates.value.IsMap()) {
      diags_->Add(templates.value_loc,
                  fmt::format("templates must be a mapping of template names to resource fields, "
                              "got {}",
                              Describe(templates.value)));
      return;
    }
    std::vector<std::string> keys = {"extends"};
    const std::vector<std::string>& resource_keys = internal::ResourceKeys();
    keys.insert(keys.end(), resource_keys.begin(), resource_keys.end());
    for (const Entry& t : internal::Entries(file_, templates.value, diags_)) {
      if (!IsValidName(t.key))
        diags_->Add(t.key_loc, internal::InvalidNameMessage("template", t.key));
      ResourceTemplate tmpl;
      tmpl.name = t.key;
      tmpl.loc = t.key_loc;
      std::string where = fmt::format("template '{}'", t.key);
      if (!t.value.IsMap()) {
        diags_->Add(t.value_loc, fmt::format("{} must be a mapping of resource fields ({}), got {}",
                                             where, JoinNames(keys), Describe(t.value)));
      } else {
        for (const Entry& e : internal::Entries(file_, t.value, diags_)) {
          if (e.key == "extends") {
            if (std::optional<std::string> base = Text(e, "a template name")) {
              tmpl.extends = *base;
              extends_locs_[t.key] = e.value_loc;
            }
          } else if (std::count(resource_keys.begin(), resource_keys.end(), e.key) > 0) {
            internal::ParseResourceField(file_, e, where, &tmpl.spec, diags_);
          } else {
            diags_->Add(e.key_loc, fmt::format("unknown key '{}' in {}{}", e.key, where,
                                               UnknownKeyHint(e.key, keys)));
          }
        }
      }
      template_order_.push_back(t.key);
      config_->templates[t.key] = std::move(tmpl);
    }
  }

  // Every `extends` names another template and the chains end.
  void CheckExtends() {
    const auto& templates = config_->templates;
    std::set<std::string> broken;  // extends itself or something unknown: the chain stops there
    for (const std::string& name : template_order_) {
      const std::string& base = templates.at(name).extends;
      if (base.empty()) continue;
      if (base == name) {
        diags_->Add(extends_locs_[name], fmt::format("template '{}' extends itself", name));
        broken.insert(name);
      } else if (!templates.contains(base)) {
        std::string suggestion = DidYouMean(base, template_order_);
        diags_->Add(
            extends_locs_[name],
            fmt::format("template '{}' extends unknown template '{}'{}", name, base,
                        suggestion.empty()
                            ? fmt::format("; known templates: {}", JoinNames(template_order_))
                            : fmt::format("; did you mean '{}'?", suggestion)));
        broken.insert(name);
      }
    }
    // Each template has at most one base, so a cycle is found by walking from each template;
    // it is reported once, from its first template in file order.
    std::set<std::string> in_reported_cycle;
    for (const std::string& start : template_order_) {
      std::vector<std::string> path;
      std::string cur = start;
      while (!cur.empty() && !broken.contains(cur) &&
             std::find(path.begin(), path.end(), cur) == path.end()) {
        path.push_back(cur);
        cur = templates.at(cur).extends;
      }
      if (cur != start || broken.contains(cur) || in_reported_cycle.contains(start)) continue;
      in_reported_cycle.insert(path.begin(), path.end());
      path.push_back(start);
      std::string chain;
      for (const std::string& n : path) chain += (chain.empty() ? "" : " -> ") + n;
      diags_->Add(templates.at(start).loc,
                  fmt::format("cycle in template extends: {}; remove one of the extends", chain));
    }
  }

  const YamlFile& file_;
  ProjectConfig* config_;
  Diagnostics* diags_;
  std::vector<std::string> template_order_;  // file order, for messages and cycle reports
  std::map<std::string, SourceLoc> extends_locs_;
};

// Applies the `extends` chain of `name`, base first.
absl::Status ApplyChain(const ProjectConfig& project, const std::string& name, Resources* out) {
  std::vector<const ResourceTemplate*> chain;
  std::string cur = name;
  while (!cur.empty()) {
    auto it = project.templates.find(cur);
    if (it == project.templates.end()) {
      if (chain.empty()) return absl::NotFoundError(fmt::format("unknown template '{}'", cur));
      return absl::NotFoundError(
          fmt::format("template '{}' extends unknown template '{}'", chain.back()->name, cur));
    }
    if (std::find(chain.begin(), chain.end(), &it->second) != chain.end()) {
      return absl::FailedPreconditionError(
          fmt::format("template '{}' is part of an extends cycle", name));
    }
    chain.push_back(&it->second);
    cur = it->second.extends;
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) MergeInto((*it)->spec, out);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ProjectConfig> LoadProject(const std::string& root_dir) {
  ProjectConfig config;
  config.root_dir = AbsolutePath(root_dir.empty() ? "." : root_dir, CurrentDir());
  config.name = std::filesystem::path(config.root_dir).filename().string();
  config.state_uri = "sqlite://" + AbsolutePath(".ferry/state.db", config.root_dir);
  config.lake_uri = "file://" + AbsolutePath(".ferry/lake", config.root_dir);

  std::string file = AbsolutePath("ferry.yaml", config.root_dir);
  if (!PathExists(file)) return config;
  config.file = file;
  // Read through the path as the caller named it (relative stays relative), so that messages
  // point where the user looks; it names the same file as `file`.
  Diagnostics diags;
  if (std::optional<YamlFile> yaml = internal::LoadYamlFile(DisplayPath(root_dir), &diags)) {
    ProjectParser(*yaml, &config, &diags).Parse();
  }
  FERRY_RETURN_IF_ERROR(diags.ToStatus());
  return config;
}

absl::StatusOr<ProjectConfig> FindProject(const std::string& path,
                                          const std::string& fallback_dir) {
  std::filesystem::path dir(AbsolutePath(path.empty() ? "." : path, CurrentDir()));
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) dir = dir.parent_path();
  while (true) {
    if (PathExists((dir / "ferry.yaml").string())) return LoadProject(dir.string());
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return LoadProject(fallback_dir);
}

absl::StatusOr<Resources> ResolveTemplate(const ProjectConfig& project, const std::string& name) {
  if (!name.empty() && !project.templates.contains(name)) {
    std::vector<std::string> known;
    for (const auto& [n, t] : project.templates) known.push_back(n);
    return absl::NotFoundError(
        known.empty()
            ? fmt::format("unknown template '{}': ferry.yaml defines no templates", name)
            : fmt::format("unknown template '{}'; known templates: {}", name, JoinNames(known)));
  }
  Resources resources;
  if (project.templates.contains("default")) {
    FERRY_RETURN_IF_ERROR(ApplyChain(project, "default", &resources));
  }
  if (!name.empty() && name != "default") {
    FERRY_RETURN_IF_ERROR(ApplyChain(project, name, &resources));
  }
  return resources;
}

}  // namespace ferry::config
