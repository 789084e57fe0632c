// Endpoints on the command line (docs/serving.md):
//   ferry endpoints [--json]                 every endpoint: state, variants, deployment in flight
//   ferry endpoint show ENDPOINT [--json]    its config, serving processes and deployments

#include <cmath>

#include "ferry/cli/cli_common.h"
#include "ferry/controller/rollout.h"
#include "ferry/serve/endpoint_config.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

constexpr absl::Duration kFresh = absl::Seconds(10);

std::string VariantsText(const std::string& config_json) {
  absl::StatusOr<serve::EndpointConfig> c = serve::ParseEndpointConfig(config_json);
  if (!c.ok()) return "(unreadable config)";
  std::string out;
  for (const serve::VariantConfig& v : c->variants) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}={}:{} {}", v.name, v.model, v.version,
                       v.mode == "shadow" ? "shadow" : fmt::format("{}%", v.weight));
  }
  return out.empty() ? "-" : out;
}

json ObjectOf(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

json DeploymentJson(const state::DeploymentRecord& d) {
  return {{"id", d.id},
          {"state", d.state},
          {"strategy", d.strategy},
          {"spec", ObjectOf(d.spec_json)},
          {"created_at", ShowTime(d.created_at)},
          {"finished_at", ShowTime(d.finished_at)},
          {"message", d.message}};
}

std::optional<state::DeploymentRecord> InFlight(state::StateStore& store,
                                                const std::string& endpoint) {
  absl::StatusOr<std::vector<state::DeploymentRecord>> ds = store.ListDeployments(endpoint, 5);
  if (!ds.ok()) return std::nullopt;
  for (const state::DeploymentRecord& d : *ds) {
    if (!state::IsTerminal(state::DeploymentKind(), d.state)) return d;
  }
  return std::nullopt;
}

int EndpointsMain(const GlobalOptions& g, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<std::vector<state::EndpointRecord>> eps = project->store->ListEndpoints();
  if (!eps.ok()) return Fail(eps.status());
  json out = json::array();
  if (!as_json) {
    fmt::print("{:<16} {:<13} {:>4}  {:<40} {}\n", "ENDPOINT", "STATE", "VER", "VARIANTS",
               "DEPLOYMENT");
  }
  for (const state::EndpointRecord& e : *eps) {
    std::optional<state::DeploymentRecord> d = InFlight(*project->store, e.name);
    if (as_json) {
      out.push_back({{"endpoint", e.name},
                     {"state", e.state},
                     {"version", e.version},
                     {"config", ObjectOf(e.config_json)},
                     {"deployment", d ? DeploymentJson(*d) : json(nullptr)}});
    } else {
      fmt::print("{:<16} {:<13} {:>4}  {:<40} {}\n", e.name, e.state, e.version,
                 VariantsText(e.config_json),
                 d ? fmt::format("{} {} ({})", d->id, d->strategy, d->state) : "-");
    }
  }
  if (as_json) fmt::print("{}\n", out.dump(2));
  return kExitOk;
}

int EndpointShowMain(const GlobalOptions& g, const std::string& name, bool as_json) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<state::EndpointRecord> e = project->store->GetEndpoint(name);
  if (!e.ok()) return Fail(e.status());
  absl::StatusOr<std::vector<state::DeploymentRecord>> ds =
      project->store->ListDeployments(name, 10);
  if (!ds.ok()) return Fail(ds.status());
  absl::StatusOr<std::vector<state::VariantStatsRecord>> stats =
      project->store->ListVariantStats(name);
  if (!stats.ok()) return Fail(stats.status());
  const absl::Time now = absl::Now();

  if (as_json) {
    json deployments = json::array();
    for (const auto& d : *ds) deployments.push_back(DeploymentJson(d));
    json instances = json::array();
    for (const auto& s : *stats) {
      controller::VariantHealth h =
          controller::AggregateVariantStats({s}, s.variant, s.model, s.model_version, now, kFresh);
      instances.push_back({{"instance", s.instance},
                           {"variant", s.variant},
                           {"model", fmt::format("{}:{}", s.model, s.model_version)},
                           {"endpoint_version", s.endpoint_version},
                           {"ready", s.ready},
                           {"fresh", h.fresh_instances > 0},
                           {"requests", s.requests},
                           {"errors", s.errors},
                           {"p99_ms", std::isnan(h.p99_ms) ? json(nullptr) : json(h.p99_ms)}});
    }
    fmt::print("{}\n", json{{"endpoint", e->name},
                            {"state", e->state},
                            {"version", e->version},
                            {"config", ObjectOf(e->config_json)},
                            {"updated_at", ShowTime(e->updated_at)},
                            {"message", e->message},
                            {"instances", instances},
                            {"deployments", deployments}}
                           .dump(2));
    return kExitOk;
  }
  fmt::print("endpoint {}  state {}  version {}  updated {}\n", e->name, e->state, e->version,
             ShowTime(e->updated_at));
  absl::StatusOr<serve::EndpointConfig> c = serve::ParseEndpointConfig(e->config_json);
  if (c.ok()) {
    fmt::print("  echo_inputs {}  log_sampling {}  auth {}  sticky_header {}\n",
               c->echo_inputs ? "on" : "off", c->log_sampling, c->auth ? "on" : "off",
               c->sticky_header.empty() ? "-" : c->sticky_header);
    fmt::print("\nVARIANT  MODEL            MODE    WEIGHT\n");
    for (const serve::VariantConfig& v : c->variants) {
      fmt::print("{:<8} {:<16} {:<7} {:>6}\n", v.name, fmt::format("{}:{}", v.model, v.version),
                 v.mode, v.weight);
    }
  }
  fmt::print(
      "\nSERVING PROCESS              VARIANT  MODEL        READY  REQUESTS  ERRORS  P99_MS\n");
  if (stats->empty()) fmt::print("(none: start one with `ferry serve --endpoint {}`)\n", name);
  for (const auto& s : *stats) {
    controller::VariantHealth h =
        controller::AggregateVariantStats({s}, s.variant, s.model, s.model_version, now, kFresh);
    fmt::print("{:<28} {:<8} {:<12} {:<6} {:>8}  {:>6}  {:>6}{}\n", s.instance, s.variant,
               fmt::format("{}:{}", s.model, s.model_version), s.ready ? "yes" : "no", s.requests,
               s.errors, std::isnan(h.p99_ms) ? "-" : fmt::format("{:.3f}", h.p99_ms),
               h.fresh_instances > 0 ? "" : "  (stale)");
  }
  fmt::print(
      "\nDEPLOYMENT                   STRATEGY    STATE        CREATED              MESSAGE\n");
  for (const auto& d : *ds) {
    fmt::print("{:<28} {:<11} {:<12} {:<20} {}\n", d.id, d.strategy, d.state,
               ShowTime(d.created_at), d.message);
  }
  return kExitOk;
}

}  // namespace

void RegisterEndpointsCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = app.add_subcommand("endpoints", "List the endpoints");
  list->add_flag("--json", *list_json, "JSON output");
  list->callback([&g, &rc, list_json] { rc = EndpointsMain(g, *list_json); });

  CLI::App* endpoint = app.add_subcommand("endpoint", "Inspect an endpoint");
  endpoint->require_subcommand(1);
  auto name = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* show = endpoint->add_subcommand(
      "show", "An endpoint: its variants, serving processes and deployments");
  show->add_option("ENDPOINT", *name, "The endpoint")->required();
  show->add_flag("--json", *show_json, "JSON output");
  show->callback([&g, &rc, name, show_json] { rc = EndpointShowMain(g, *name, *show_json); });
}

}  // namespace ferry::cli
