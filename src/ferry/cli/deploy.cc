// Deployments on the command line (docs/serving.md "Deployments and rollback"):
//   ferry deploy ENDPOINT --model REF [--strategy blue-green|canary|shadow] [--weight N]
//                [--bake 10m] [--rollback-on 'error_rate>0.01,p99_ms>25'] [--wait] ...
//   ferry rollback ENDPOINT [--reason TEXT]
// `deploy` records the deployment and advances it as far as it can go now; with --wait it keeps
// advancing it (the rollout reconciler, controller/rollout.h) until it is promoted, rolled back
// or failed. Without --wait, `ferry serve` for the endpoint advances it every second.

#include <csignal>
#include <optional>

#include "absl/time/clock.h"
#include "ferry/cli/cli_common.h"
#include "ferry/common/units.h"
#include "ferry/controller/rollout.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::cli {
namespace {

using json = nlohmann::json;

struct DeployOptions {
  std::string endpoint;
  std::string model;
  std::string strategy = "blue-green";
  int weight = 10;
  std::string bake = "0s";
  std::string rollback_on;
  int64_t min_requests = 0;
  std::string ready_timeout = "2m";
  bool wait = false;
  std::string echo_inputs, auth, sticky_header;
  std::optional<double> log_sampling;
  std::string idempotency_key;
  bool as_json = false;
};

std::string Actor(std::string_view what) { return fmt::format("ferry {} pid {}", what, getpid()); }

absl::StatusOr<std::optional<bool>> OnOff(const std::string& flag, const std::string& value) {
  if (value.empty()) return std::optional<bool>();
  if (value == "on" || value == "true") return std::optional<bool>(true);
  if (value == "off" || value == "false") return std::optional<bool>(false);
  return absl::InvalidArgumentError(fmt::format("{} {}: use on or off", flag, value));
}

void PrintDeployment(const state::DeploymentRecord& d) {
  fmt::print("deployment {} of endpoint {}: {}{}\n", d.id, d.endpoint, d.state,
             d.message.empty() ? "" : fmt::format(" — {}", d.message));
}

int DeployMain(const GlobalOptions& g, const DeployOptions& o) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  controller::DeployRequest r;
  r.endpoint = o.endpoint;
  r.model_ref = o.model;
  r.strategy = o.strategy == "blue-green" ? "blue_green" : o.strategy;
  r.weight = o.weight;
  absl::StatusOr<absl::Duration> bake = ParseDuration(o.bake);
  if (!bake.ok())
    return Fail(absl::InvalidArgumentError(fmt::format("--bake: {}", bake.status().message())));
  r.bake = *bake;
  absl::StatusOr<absl::Duration> ready = ParseDuration(o.ready_timeout);
  if (!ready.ok()) {
    return Fail(
        absl::InvalidArgumentError(fmt::format("--ready-timeout: {}", ready.status().message())));
  }
  r.ready_timeout = *ready;
  r.rollback_on = o.rollback_on;
  r.min_requests = o.min_requests;
  absl::StatusOr<std::optional<bool>> echo = OnOff("--echo-inputs", o.echo_inputs);
  if (!echo.ok()) return Fail(echo.status());
  absl::StatusOr<std::optional<bool>> auth = OnOff("--auth", o.auth);
  if (!auth.ok()) return Fail(auth.status());
  r.echo_inputs = *echo;
  r.auth = *auth;
  r.log_sampling = o.log_sampling;
  if (!o.sticky_header.empty()) r.sticky_header = o.sticky_header == "none" ? "" : o.sticky_header;
  r.idempotency_key = o.idempotency_key;
  r.actor = Actor("deploy");

  absl::StatusOr<state::DeploymentRecord> d =
      controller::StartDeployment(*project->store, *project->lake, r, SystemClock::Get());
  if (!d.ok()) return Fail(d.status());
  if (!o.as_json) {
    fmt::print("deployment {}: {} of {} to endpoint {}\n", d->id, o.strategy, o.model, o.endpoint);
  }
  controller::RolloutReconciler reconciler(*project->store, *project->lake, SystemClock::Get(),
                                           r.actor);
  absl::StatusOr<state::DeploymentRecord> after =
      o.wait ? reconciler.RunUntilDone(
                   d->id, [](absl::Duration dt) { absl::SleepFor(dt); },
                   [&](const state::DeploymentRecord& now) {
                     if (!o.as_json) PrintDeployment(now);
                   })
             : reconciler.Step(d->id);
  if (!after.ok()) return Fail(after.status());
  if (o.as_json) {
    fmt::print("{}\n", json{{"id", after->id},
                            {"endpoint", after->endpoint},
                            {"state", after->state},
                            {"strategy", after->strategy},
                            {"message", after->message},
                            {"spec", json::parse(after->spec_json, nullptr, false)}}
                           .dump(2));
  } else if (!o.wait) {
    PrintDeployment(*after);
    if (!state::IsTerminal(state::DeploymentKind(), after->state)) {
      fmt::print(
          "`ferry serve --endpoint {}` advances it; follow it with `ferry endpoint show {}`, "
          "or wait for it with --wait\n",
          o.endpoint, o.endpoint);
    }
  }
  if (after->state == state::deployment_state::kRolledBack ||
      after->state == state::deployment_state::kFailed) {
    return kExitRunFailed;
  }
  return kExitOk;
}

int RollbackMain(const GlobalOptions& g, const std::string& endpoint, const std::string& reason) {
  absl::StatusOr<Project> project = OpenProject(g, "");
  if (!project.ok()) return Fail(project.status());
  absl::StatusOr<state::DeploymentRecord> d =
      controller::Rollback(*project->store, endpoint, reason.empty() ? "`ferry rollback`" : reason,
                           Actor("rollback"), SystemClock::Get());
  if (!d.ok()) return Fail(d.status());
  PrintDeployment(*d);
  return kExitOk;
}

}  // namespace

void RegisterDeployCommand(CLI::App& app, GlobalOptions& g, int& rc) {
  auto o = std::make_shared<DeployOptions>();
  CLI::App* deploy = app.add_subcommand(
      "deploy", "Deploy a model version to an endpoint (blue-green, canary or shadow)");
  deploy->add_option("ENDPOINT", o->endpoint, "The endpoint (created by its first deployment)")
      ->required();
  deploy->add_option("--model", o->model, "The model version: churn:8, churn:champion, churn")
      ->required();
  deploy->add_option("--strategy", o->strategy, "blue-green (default), canary or shadow")
      ->check(CLI::IsMember({"blue-green", "canary", "shadow"}));
  deploy->add_option("--weight", o->weight, "canary: percent of live traffic (default 10)")
      ->check(CLI::Range(1, 99));
  deploy->add_option("--bake", o->bake,
                     "canary/shadow: how long to watch before promoting (10m, 30s; default 0s)");
  deploy->add_option("--rollback-on", o->rollback_on,
                     "Roll back when the new variant crosses one of these: "
                     "'error_rate>0.01,p99_ms>25' (metrics: error_rate, p99_ms, p50_ms)");
  deploy->add_option("--min-requests", o->min_requests,
                     "Roll back at the end of the bake when the new variant saw fewer requests");
  deploy->add_option("--ready-timeout", o->ready_timeout,
                     "Fail when the new variant is not ready within this (default 2m)");
  deploy->add_flag("--wait", o->wait,
                   "Advance the deployment until it is promoted, rolled back or failed (exit 1 "
                   "unless promoted)");
  deploy->add_option("--echo-inputs", o->echo_inputs, "on|off: responses carry the inputs");
  deploy->add_option("--auth", o->auth, "on|off: require an API key (`ferry keys create`)");
  deploy->add_option("--log-sampling", o->log_sampling,
                     "Fraction of requests written to the inference log (0..1)");
  deploy->add_option("--sticky-header", o->sticky_header,
                     "Requests with the same value of this header go to the same variant "
                     "('none' to turn off)");
  deploy->add_option("--idempotency-key", o->idempotency_key,
                     "A retried deploy with the same key returns the first deployment");
  deploy->add_flag("--json", o->as_json, "JSON output");
  deploy->callback([&g, &rc, o] { rc = DeployMain(g, *o); });

  auto endpoint = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  CLI::App* rollback = app.add_subcommand(
      "rollback",
      "Abort the endpoint's deployment in flight, or restore the config before its "
      "last one");
  rollback->add_option("ENDPOINT", *endpoint, "The endpoint")->required();
  rollback->add_option("--reason", *reason, "Recorded with the rollback");
  rollback->callback([&g, &rc, endpoint, reason] { rc = RollbackMain(g, *endpoint, *reason); });
}

}  // namespace ferry::cli
