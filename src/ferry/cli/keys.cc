// API keys for serving (docs/serving.md "Auth"):
//   ferry keys create --role invoke|admin [--name LABEL]   prints the key once
//   ferry keys list [--json]
//   ferry keys revoke ID
// Serving processes pick up new and revoked keys within a second.

#include "ferry/cli/cli_common.h"
#include "ferry/serve/auth.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

int CreateMain(const GlobalOptions& g, const std::string& role, const std::string& name) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<serve::NewApiKey> key = serve::MakeApiKey(name, role);
  if (!key.ok()) return Fail(key.status());
  absl::StatusOr<state::ApiKeyRecord> stored = project->store->CreateApiKey(key->record);
  if (!stored.ok()) return Fail(stored.status());
  // The key on stdout alone (scripts capture it); the explanation on stderr.
  fmt::print("{}\n", key->token);
  fmt::print(stderr,
             "key {} (role {}) created; it is shown only now: send it as `Authorization: Bearer "
             "<key>`\n",
             stored->id, stored->role);
  return kExitOk;
}

int ListMain(const GlobalOptions& g, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<std::vector<state::ApiKeyRecord>> keys = project->store->ListApiKeys();
  if (!keys.ok()) return Fail(keys.status());
  nlohmann::json out = nlohmann::json::array();
  if (!as_json)
    fmt::print("{:<12} {:<8} {:<20} {:<20} {}\n", "ID", "ROLE", "NAME", "CREATED", "REVOKED");
  for (const state::ApiKeyRecord& k : *keys) {
    if (as_json) {
      out.push_back({{"id", k.id},
                     {"role", k.role},
                     {"name", k.name},
                     {"created_at", ShowTime(k.created_at)},
                     {"revoked", k.revoked_at != absl::InfinitePast()}});
    } else {
      fmt::print("{:<12} {:<8} {:<20} {:<20} {}\n", k.id, k.role, k.name.empty() ? "-" : k.name,
                 ShowTime(k.created_at), ShowTime(k.revoked_at));
    }
  }
  if (as_json) fmt::print("{}\n", out.dump(2));
  return kExitOk;
}

int RevokeMain(const GlobalOptions& g, const std::string& id) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  if (absl::Status s = project->store->RevokeApiKey(id); !s.ok()) return Fail(s);
  fmt::print("key {} revoked\n", id);
  return kExitOk;
}

}  // namespace

void RegisterKeysCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  CLI::App* keys = app.add_subcommand("keys", "API keys for endpoints with auth on");
  keys->require_subcommand(1);
  auto role = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  CLI::App* create = keys->add_subcommand("create", "Create a key (printed once)");
  create->add_option("--role", *role, "invoke (call models) or admin (also GET /endpoint)")
      ->required();
  create->add_option("--name", *name, "A label for the key");
  create->callback([&g, &rc, role, name] { rc = CreateMain(g, *role, *name); });

  auto as_json = std::make_shared<bool>(false);
  CLI::App* list = keys->add_subcommand("list", "List the keys (never their secrets)");
  list->add_flag("--json", *as_json, "JSON output");
  list->callback([&g, &rc, as_json] { rc = ListMain(g, *as_json); });

  auto id = std::make_shared<std::string>();
  CLI::App* revoke = keys->add_subcommand("revoke", "Revoke a key");
  revoke->add_option("ID", *id, "The key's id (`ferry keys list`)")->required();
  revoke->callback([&g, &rc, id] { rc = RevokeMain(g, *id); });
}

}  // namespace ferry::cli
