// `ferry states [KIND] [--json]`: the state machines' transition tables.

#include "ferry/cli/cli_common.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

int StatesMain(const std::string& kind, bool json) {
  std::vector<const state::KindTable*> kinds;
  if (kind.empty()) {
    kinds = state::AllKinds();
  } else if (const state::KindTable* k = state::FindKind(kind)) {
    kinds.push_back(k);
  } else {
    std::string names;
    for (const auto* k : state::AllKinds())
      names += (names.empty() ? "" : ", ") + std::string(k->name);
    return Fail(absl::NotFoundError(fmt::format("no resource kind '{}'; kinds: {}", kind, names)));
  }
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto* k : kinds) {
      nlohmann::json edges = nlohmann::json::array();
      for (const auto& e : k->edges)
        edges.push_back({{"from", e.from}, {"to", e.to}, {"when", e.why}});
      out.push_back({{"kind", k->name},
                     {"states", k->states},
                     {"terminal", k->terminal},
                     {"transitions", edges}});
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  for (const auto* k : kinds) {
    fmt::print("{}\n\n{}\n\n", k->name, k->diagram);
    fmt::print("  {:<16} {:<16} {}\n", "FROM", "TO", "WHEN");
    for (const auto& e : k->edges) fmt::print("  {:<16} {:<16} {}\n", e.from, e.to, e.why);
    fmt::print("\n");
  }
  return kExitOk;
}

}  // namespace

void RegisterStatesCommand(CLI::App& app, GlobalOptions&, int& rc) {
  auto kind = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand("states", "Print the state machines (transition tables)");
  cmd->add_option("kind", *kind, "PipelineRun, TaskRun or ModelVersion; default: all");
  cmd->add_flag("--json", *json, "JSON output");
  cmd->callback([&rc, kind, json] { rc = StatesMain(*kind, *json); });
}

}  // namespace ferry::cli
