#include "ferry/controller/rollout.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <utility>

#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/pipeline/model_steps.h"
#include "ferry/serve/endpoint_config.h"
#include "ferry/serve/metrics.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "nlohmann/json.hpp"

namespace ferry::controller {
namespace {

using json = nlohmann::json;
namespace es = state::endpoint_state;
namespace ds = state::deployment_state;
namespace ms = state::model_state;

constexpr int kMaxMovesPerStep = 16;
const std::vector<std::string> kMetrics = {"error_rate", "p99_ms", "p50_ms"};

bool IsRace(const absl::Status& s) { return s.code() == absl::StatusCode::kFailedPrecondition; }

std::string Percent(double fraction) { return fmt::format("{:.4g}", fraction); }

// What a deployment asked for, as stored in its spec_json.
struct Spec {
  std::string model;
  int64_t version = 0;
  int weight = 0;
  absl::Duration bake;
  std::vector<Threshold> thresholds;
  int64_t min_requests = 0;
  absl::Duration ready_timeout;
  std::optional<bool> echo_inputs, auth;
  std::optional<double> log_sampling;
  std::optional<std::string> sticky_header;
};

json SpecToJson(const DeployRequest& r, const state::ModelVersionRecord& v,
                const std::vector<Threshold>& thresholds) {
  json rollback_on = json::array();
  for (const Threshold& t : thresholds) {
    rollback_on.push_back({{"metric", t.metric}, {"op", t.op}, {"value", t.value}});
  }
  json spec = {{"model_ref", r.model_ref},
               {"model", v.model},
               {"version", v.version},
               {"weight", r.weight},
               {"bake_seconds", absl::ToDoubleSeconds(r.bake)},
               {"rollback_on", rollback_on},
               {"min_requests", r.min_requests},
               {"ready_timeout_seconds", absl::ToDoubleSeconds(r.ready_timeout)}};
  if (r.echo_inputs) spec["echo_inputs"] = *r.echo_inputs;
  if (r.auth) spec["auth"] = *r.auth;
  if (r.log_sampling) spec["log_sampling"] = *r.log_sampling;
  if (r.sticky_header) spec["sticky_header"] = *r.sticky_header;
  return spec;
}

absl::StatusOr<Spec> ParseSpec(const state::DeploymentRecord& d) {
  json j = json::parse(d.spec_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("model") || !j.contains("version")) {
    return absl::InvalidArgumentError(
        fmt::format("deployment {}: spec_json is not a deployment spec (model, version, ...): {}",
                    d.id, d.spec_json));
  }
  Spec s;
  try {
    s.model = j.at("model").get<std::string>();
    s.version = j.at("version").get<int64_t>();
    s.weight = j.value("weight", 0);
    s.bake = absl::Seconds(j.value("bake_seconds", 0.0));
    s.min_requests = j.value("min_requests", int64_t{0});
    s.ready_timeout = absl::Seconds(j.value("ready_timeout_seconds", 120.0));
    for (const json& t : j.value("rollback_on", json::array())) {
      s.thresholds.push_back({t.at("metric").get<std::string>(), t.at("op").get<std::string>(),
                              t.at("value").get<double>()});
    }
    if (j.contains("echo_inputs")) s.echo_inputs = j["echo_inputs"].get<bool>();
    if (j.contains("auth")) s.auth = j["auth"].get<bool>();
    if (j.contains("log_sampling")) s.log_sampling = j["log_sampling"].get<double>();
    if (j.contains("sticky_header")) s.sticky_header = j["sticky_header"].get<std::string>();
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("deployment {}: malformed spec_json ({}): {}", d.id, e.what(), d.spec_json));
  }
  return s;
}

// The configs a deployment moves the endpoint through.
struct Plan {
  bool first = false;  // the endpoint had no live variant: the new one takes all traffic at once
  std::optional<serve::VariantConfig> old;    // the live variant it replaces
  serve::VariantConfig next;                  // the new variant
  std::string bake_json, to_json, from_json;  // canonical (EndpointConfigToJson)
};

absl::StatusOr<Plan> MakePlan(const state::DeploymentRecord& d, const Spec& s) {
  absl::StatusOr<serve::EndpointConfig> from = serve::ParseEndpointConfig(d.from_config_json);
  if (!from.ok()) {
    return absl::FailedPreconditionError(fmt::format(
        "deployment {}: the endpoint's config before it is invalid ({}); `ferry rollback {}` "
        "cannot restore it either",
        d.id, from.status().message(), d.endpoint));
  }
  Plan p;
  p.from_json = serve::EndpointConfigToJson(*from);
  for (const serve::VariantConfig& v : from->variants) {
    if (v.mode == "live" && (!p.old || v.weight > p.old->weight)) p.old = v;
  }
  p.first = !p.old.has_value();
  p.next = {.name = p.first || p.old->name != "blue" ? "blue" : "green",
            .model = s.model,
            .version = s.version,
            .weight = 100};
  serve::EndpointConfig settings = *from;
  settings.variants.clear();
  if (s.echo_inputs) settings.echo_inputs = *s.echo_inputs;
  if (s.auth) settings.auth = *s.auth;
  if (s.log_sampling) settings.log_sampling = *s.log_sampling;
  if (s.sticky_header) settings.sticky_header = *s.sticky_header;

  serve::EndpointConfig to = settings;
  to.variants = {p.next};
  serve::EndpointConfig bake = settings;
  if (p.first) {
    bake = to;
  } else {
    serve::VariantConfig old = *p.old;
    serve::VariantConfig next = p.next;
    old.weight = 100;
    next.weight = 0;
    if (d.strategy == "canary") {
      old.weight = 100 - s.weight;
      next.weight = s.weight;
    } else if (d.strategy == "shadow") {
      next.mode = "shadow";
    }
    bake.variants = {old, next};
  }
  FERRY_RETURN_IF_ERROR(serve::CheckEndpointConfig(bake));
  p.bake_json = serve::EndpointConfigToJson(bake);
  p.to_json = serve::EndpointConfigToJson(to);
  return p;
}

// The canonical form of a stored config, or the text itself when it does not parse.
std::string Canonical(const std::string& config_json) {
  absl::StatusOr<serve::EndpointConfig> c = serve::ParseEndpointConfig(config_json);
  return c.ok() ? serve::EndpointConfigToJson(*c) : config_json;
}

// "blue churn:7 90%, green churn:8 10%", "green churn:8 shadow", "no variants".
std::string Describe(const std::string& config_json) {
  absl::StatusOr<serve::EndpointConfig> c = serve::ParseEndpointConfig(config_json);
  if (!c.ok()) return "an invalid config";
  if (c->variants.empty()) return "no variants";
  std::vector<std::string> parts;
  for (const serve::VariantConfig& v : c->variants) {
    parts.push_back(v.mode == "shadow"
                        ? fmt::format("{} {}:{} shadow", v.name, v.model, v.version)
                        : fmt::format("{} {}:{} {}%", v.name, v.model, v.version, v.weight));
  }
  return fmt::format("{}", fmt::join(parts, ", "));
}

std::string Who(const state::DeploymentRecord& d, const Plan& p) {
  const std::string role = p.first                  ? "first variant"
                           : d.strategy == "canary" ? "canary"
                           : d.strategy == "shadow" ? "shadow"
                                                    : "new variant";
  return fmt::format("{} {} ({}:{})", role, p.next.name, p.next.model, p.next.version);
}

// Moves a model version along from -> to when it is in `from` now and the edge is legal; errors
// are ignored (the registry's lifecycle follows deployments, it does not gate them).
void BestEffortModelMove(state::StateStore& store, const std::string& model, int64_t version,
                         std::string_view from, std::string_view to, const std::string& reason,
                         const std::string& actor) {
  if (!state::IsLegal(state::ModelVersionKind(), from, to)) return;
  absl::StatusOr<state::ModelVersionRecord> v = store.GetModelVersion(model, version);
  if (!v.ok() || v->state != from) return;
  (void)store
      .TransitionModelVersion({.model = model,
                               .version = version,
                               .from = from,
                               .to = to,
                               .expected_revision = v->revision,
                               .reason = reason,
                               .actor = actor,
                               .message = reason})
      .status();
}

// One move of the endpoint towards where the ended deployment `d` leaves it: its to config
// when promoted, its from config otherwise; a rollback (rolled back, or strategy "rollback")
// passes through rolling_back, anything else through updating. Returns false when the endpoint
// is there already. FailedPrecondition when someone else moved it first.
absl::StatusOr<bool> SettleMove(state::StateStore& store, const state::DeploymentRecord& d,
                                const state::EndpointRecord& e, const std::string& actor) {
  const std::string target =
      Canonical(d.state == ds::kPromoted && !d.to_config_json.empty() ? d.to_config_json
                                                                      : d.from_config_json);
  const std::string current = Canonical(e.config_json);
  if (current == target &&
      (e.state == es::kInService || e.state == es::kCreating || e.state == es::kFailed)) {
    return false;
  }
  const bool rollback = d.state == ds::kRolledBack || d.strategy == "rollback";
  state::EndpointTransition t{
      .name = e.name,
      .from = e.state,
      .expected_version = e.version,
      .reason = fmt::format("deployment {} {}: {}", d.id, d.state,
                            d.message.empty() ? Describe(target) : d.message),
      .actor = actor};
  if (e.state == es::kRollingBack || (!rollback && e.state == es::kUpdating) ||
      (e.state == es::kCreating && d.state == ds::kPromoted)) {
    t.to = es::kInService;
    t.config_json = target;
  } else if (e.state == es::kInService || e.state == es::kUpdating) {
    t.to = rollback ? es::kRollingBack : es::kUpdating;
  } else {
    return absl::InternalError(
        fmt::format("endpoint {} is {}: deployment {} ({}) cannot settle it from there; "
                    "`ferry endpoint show {}` and its events tell how it got there",
                    e.name, e.state, d.id, d.state, e.name));
  }
  FERRY_RETURN_IF_ERROR(store.TransitionEndpoint(t).status());
  return true;
}

// Settles the endpoint after its newest deployment ended (no-op when that one is in flight).
absl::Status SettleEndpoint(state::StateStore& store, const std::string& endpoint,
                            const std::string& actor) {
  absl::Status last;
  for (int i = 0; i < 8; ++i) {
    FERRY_ASSIGN_OR_RETURN(std::vector<state::DeploymentRecord> newest,
                           store.ListDeployments(endpoint, 1));
    if (newest.empty() || !state::IsTerminal(state::DeploymentKind(), newest[0].state)) {
      return absl::OkStatus();
    }
    FERRY_ASSIGN_OR_RETURN(state::EndpointRecord e, store.GetEndpoint(endpoint));
    absl::StatusOr<bool> moved = SettleMove(store, newest[0], e, actor);
    if (moved.ok() && !*moved) return absl::OkStatus();
    if (!moved.ok() && !IsRace(moved.status())) return moved.status();
    last = moved.status();
  }
  return absl::AbortedError(
      fmt::format("endpoint {}: could not settle it after its last deployment ({}); try again",
                  endpoint, last.message()));
}

// The newest pending or baking deployment of an endpoint, if any.
absl::StatusOr<std::optional<state::DeploymentRecord>> InFlight(state::StateStore& store,
                                                                const std::string& endpoint) {
  FERRY_ASSIGN_OR_RETURN(std::vector<state::DeploymentRecord> ds,
                         store.ListDeployments(endpoint, 0));
  for (state::DeploymentRecord& d : ds) {
    if (d.state == ds::kPending || d.state == ds::kBaking) return std::move(d);
  }
  return std::nullopt;
}

std::string FormatValue(const std::string& metric, double v) {
  return metric == "error_rate" ? Percent(v) : fmt::format("{:.3g}", v);
}

// Whether every live serving process has reported its counters after `bake_end`: a verdict at
// the end of a bake must count the whole bake, not the last report before it.
bool CoversBake(const std::vector<state::VariantStatsRecord>& rows,
                const std::set<std::string>& fresh, absl::Time bake_end) {
  for (const std::string& instance : fresh) {
    bool covered = false;
    for (const state::VariantStatsRecord& r : rows) {
      covered = covered || (r.instance == instance && r.updated_at >= bake_end);
    }
    if (!covered) return false;
  }
  return true;
}

}  // namespace

// --- Thresholds ---

absl::StatusOr<std::vector<Threshold>> ParseRollbackOn(std::string_view spec) {
  std::vector<Threshold> out;
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  if (trim(spec).empty()) return out;
  size_t pos = 0;
  for (int n = 1; pos <= spec.size(); ++n) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string_view::npos) comma = spec.size();
    const std::string_view term = trim(spec.substr(pos, comma - pos));
    pos = comma + 1;
    auto bad = [&](std::string_view what) {
      return absl::InvalidArgumentError(fmt::format(
          "--rollback-on '{}': term {} '{}': {} (write metric op value, comma-separated, e.g. "
          "'error_rate>0.01,p99_ms>25'; metrics {}; ops > >= < <=)",
          spec, n, term, what, fmt::join(kMetrics, ", ")));
    };
    if (term.empty()) return bad("empty");
    const size_t op_at = term.find_first_of("<>");
    if (op_at == std::string_view::npos) return bad("no comparison (> >= < <=)");
    Threshold t;
    t.metric = std::string(trim(term.substr(0, op_at)));
    const bool eq = op_at + 1 < term.size() && term[op_at + 1] == '=';
    t.op = std::string(term.substr(op_at, eq ? 2 : 1));
    const std::string value(trim(term.substr(op_at + t.op.size())));
    if (std::find(kMetrics.begin(), kMetrics.end(), t.metric) == kMetrics.end()) {
      return bad(fmt::format("unknown metric '{}'", t.metric));
    }
    if (value.empty()) return bad("no value after the comparison");
    char* end = nullptr;
    t.value = std::strtod(value.c_str(), &end);
    if (end != value.c_str() + value.size() || !std::isfinite(t.value)) {
      return bad(fmt::format("'{}' is not a number", value));
    }
    if (t.value < 0) return bad(fmt::format("{} is never negative", t.metric));
    out.push_back(std::move(t));
  }
  return out;
}

std::string ThresholdToString(const Threshold& t) {
  return fmt::format("{}{}{}", t.metric, t.op, FormatValue(t.metric, t.value));
}

double MetricValue(const VariantHealth& h, const std::string& metric) {
  if (metric == "error_rate") return h.error_rate;
  if (metric == "p99_ms") return h.p99_ms;
  if (metric == "p50_ms") return h.p50_ms;
  return std::numeric_limits<double>::quiet_NaN();
}

bool Crossed(const Threshold& t, double v) {
  if (std::isnan(v)) return false;
  if (t.op == ">") return v > t.value;
  if (t.op == ">=") return v >= t.value;
  if (t.op == "<") return v < t.value;
  if (t.op == "<=") return v <= t.value;
  return false;
}

// --- Stats ---

VariantHealth AggregateVariantStats(const std::vector<state::VariantStatsRecord>& rows,
                                    const std::string& variant, const std::string& model,
                                    int64_t version, absl::Time now, absl::Duration freshness) {
  VariantHealth h;
  const size_t buckets = serve::kLatencyBuckets;
  std::vector<int64_t> counts(buckets, 0);
  bool any_latency = false;
  std::set<std::string> fresh, ready;
  for (const state::VariantStatsRecord& r : rows) {
    if (r.variant != variant || r.model != model || r.model_version != version) continue;
    h.requests += r.requests;
    h.errors += r.errors;
    if (r.updated_at >= now - freshness) {
      fresh.insert(r.instance);
      if (r.ready) ready.insert(r.instance);
    }
    const std::optional<std::vector<int64_t>> c = serve::LatencyFromJson(r.latency_json);
    if (!c) continue;
    for (size_t i = 0; i < buckets; ++i) counts[i] += (*c)[i];
    any_latency = true;
  }
  h.fresh_instances = static_cast<int>(fresh.size());
  h.ready_instances = static_cast<int>(ready.size());
  if (h.requests > 0) {
    h.error_rate = static_cast<double>(h.errors) / static_cast<double>(h.requests);
  }
  if (any_latency) {
    h.p50_ms = serve::HistogramQuantileMs(counts, 0.5);
    h.p99_ms = serve::HistogramQuantileMs(counts, 0.99);
  }
  return h;
}

// --- Starting ---

absl::StatusOr<state::DeploymentRecord> StartDeployment(state::StateStore& store,
                                                        storage::ArtifactStore& lake,
                                                        const DeployRequest& r,
                                                        const Clock& clock) {
  FERRY_RETURN_IF_ERROR(state::CheckModelName(r.endpoint));
  if (r.strategy != "blue_green" && r.strategy != "canary" && r.strategy != "shadow") {
    return absl::InvalidArgumentError(
        fmt::format("--strategy '{}': expected blue_green, canary or shadow", r.strategy));
  }
  if (r.strategy == "canary" && (r.weight < 1 || r.weight > 99)) {
    return absl::InvalidArgumentError(fmt::format(
        "--weight {}: a canary takes 1..99 percent of live traffic (blue_green switches all of "
        "it)",
        r.weight));
  }
  if (r.bake < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        fmt::format("--bake {}: must not be negative", absl::FormatDuration(r.bake)));
  }
  if (r.ready_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        fmt::format("--ready-timeout {}: must be positive", absl::FormatDuration(r.ready_timeout)));
  }
  if (r.min_requests < 0) {
    return absl::InvalidArgumentError(
        fmt::format("--min-requests {}: must not be negative", r.min_requests));
  }
  if (r.log_sampling && !(*r.log_sampling >= 0 && *r.log_sampling <= 1)) {
    return absl::InvalidArgumentError(
        fmt::format("--log-sampling {}: must be a fraction 0..1", *r.log_sampling));
  }
  FERRY_ASSIGN_OR_RETURN(std::vector<Threshold> thresholds, ParseRollbackOn(r.rollback_on));

  FERRY_ASSIGN_OR_RETURN(state::ModelVersionRecord v, state::ResolveModelRef(store, r.model_ref));
  FERRY_ASSIGN_OR_RETURN(std::string dir,
                         pipeline::model_steps::ArtifactFolder(lake, v.artifact_uri));
  if (absl::StatusOr<model::Bundle> b = model::LoadBundle(dir); !b.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("model {}:{} cannot be deployed: its bundle at {} does not load: {}", v.model,
                    v.version, dir, b.status().message()));
  }

  absl::StatusOr<state::EndpointRecord> e = store.GetEndpoint(r.endpoint);
  if (absl::IsNotFound(e.status())) {
    e = store.CreateEndpoint({.name = r.endpoint, .config_json = "{}", .actor = r.actor});
    if (absl::IsAlreadyExists(e.status())) e = store.GetEndpoint(r.endpoint);
  }
  FERRY_RETURN_IF_ERROR(e.status());
  // A previous deployment that ended but left the endpoint unsettled (its process stopped in
  // between) is finished first: its end config is what this one starts from.
  FERRY_RETURN_IF_ERROR(SettleEndpoint(store, r.endpoint, r.actor));
  e = store.GetEndpoint(r.endpoint);
  FERRY_RETURN_IF_ERROR(e.status());
  if (e->state == es::kDeleting || e->state == es::kDeleted) {
    return absl::FailedPreconditionError(
        fmt::format("endpoint {} is {}; deploy under another name", r.endpoint, e->state));
  }
  FERRY_ASSIGN_OR_RETURN(state::DeploymentRecord d,
                         store.CreateDeployment({.id = state::NewDeploymentId(clock),
                                                 .endpoint = r.endpoint,
                                                 .strategy = r.strategy,
                                                 .spec_json = SpecToJson(r, v, thresholds).dump(),
                                                 .from_config_json = e->config_json,
                                                 .idempotency_key = r.idempotency_key,
                                                 .actor = r.actor}));
  if (d.state != ds::kPending || d.from_config_json != e->config_json) {
    return d;  // an idempotent retry: the deployment the first call created
  }
  // The endpoint must not have moved between reading its config and creating the deployment
  // (a deployment finishing in between): from_config_json is what a rollback restores.
  FERRY_ASSIGN_OR_RETURN(state::EndpointRecord now, store.GetEndpoint(r.endpoint));
  if (now.version != e->version) {
    const std::string why = fmt::format(
        "endpoint {} changed (version {} -> {}) while deployment {} was being created; run the "
        "command again",
        r.endpoint, e->version, now.version, d.id);
    (void)store
        .TransitionDeployment({.id = d.id,
                               .from = ds::kPending,
                               .to = ds::kFailed,
                               .expected_version = d.version,
                               .reason = why,
                               .actor = r.actor,
                               .message = why,
                               .at = clock.Now()})
        .status();
    return absl::AbortedError(why);
  }
  return d;
}

// --- The reconciler ---

RolloutReconciler::RolloutReconciler(state::StateStore& store, storage::ArtifactStore& lake,
                                     const Clock& clock, std::string actor)
    : store_(store), lake_(lake), clock_(clock), actor_(std::move(actor)) {}

absl::StatusOr<bool> RolloutReconciler::BundleLoads(const std::string& model, int64_t version) {
  auto key = std::make_pair(model, version);
  if (auto it = bundle_loads_.find(key); it != bundle_loads_.end()) return it->second;
  FERRY_ASSIGN_OR_RETURN(state::ModelVersionRecord v, store_.GetModelVersion(model, version));
  absl::StatusOr<std::string> dir = pipeline::model_steps::ArtifactFolder(lake_, v.artifact_uri);
  const bool ok = dir.ok() && model::LoadBundle(*dir).ok();
  bundle_loads_[key] = ok;
  return ok;
}

absl::StatusOr<state::DeploymentRecord> RolloutReconciler::Step(const std::string& id) {
  state::DeploymentRecord d;
  absl::Status last;
  for (int move = 0; move < kMaxMovesPerStep; ++move) {
    FERRY_ASSIGN_OR_RETURN(d, store_.GetDeployment(id));
    if (state::IsTerminal(state::DeploymentKind(), d.state)) {
      // Decided: the endpoint follows (only the endpoint's newest deployment moves it).
      FERRY_RETURN_IF_ERROR(SettleEndpoint(store_, d.endpoint, actor_));
      return store_.GetDeployment(id);
    }
    FERRY_ASSIGN_OR_RETURN(state::EndpointRecord e, store_.GetEndpoint(d.endpoint));
    FERRY_ASSIGN_OR_RETURN(Spec spec, ParseSpec(d));
    FERRY_ASSIGN_OR_RETURN(Plan plan, MakePlan(d, spec));
    const absl::Time now = clock_.Now();
    const std::string who = Who(d, plan);

    // Each pass makes at most one move; a lost race (FailedPrecondition) re-reads.
    absl::Status moved;
    auto decide = [&](std::string_view to, const std::string& why) {
      state::DeploymentTransition t{.id = d.id,
                                    .from = d.state,
                                    .to = to,
                                    .expected_version = d.version,
                                    .reason = why,
                                    .actor = actor_,
                                    .message = why,
                                    .at = now};
      if (to == ds::kPromoted) t.to_config_json = plan.to_json;
      return store_.TransitionDeployment(t).status();
    };
    if (Canonical(e.config_json) != plan.bake_json) {
      // Write the bake config (pending, or a baking deployment whose endpoint lost it).
      state::EndpointTransition t{.name = e.name,
                                  .from = e.state,
                                  .expected_version = e.version,
                                  .reason = fmt::format("deployment {} ({}): {}", d.id, d.strategy,
                                                        Describe(plan.bake_json)),
                                  .actor = actor_,
                                  .config_json = plan.bake_json};
      if (e.state == es::kCreating) {
        t.to = es::kInService;
      } else if (e.state == es::kInService || e.state == es::kFailed) {
        t.to = es::kUpdating;
      } else {
        return absl::FailedPreconditionError(fmt::format(
            "endpoint {} is {} with {}, which deployment {} did not write; `ferry rollback {}` "
            "restores the config before it",
            e.name, e.state, Describe(e.config_json), d.id, e.name));
      }
      moved = store_.TransitionEndpoint(t).status();
    } else if (d.state == ds::kPending) {
      moved = store_
                  .TransitionDeployment({.id = d.id,
                                         .from = ds::kPending,
                                         .to = ds::kBaking,
                                         .expected_version = d.version,
                                         .reason = fmt::format("{} is in the endpoint's config: {}",
                                                               who, Describe(plan.bake_json)),
                                         .actor = actor_,
                                         .to_config_json = plan.to_json,
                                         .at = now})
                  .status();
      if (moved.ok()) {
        BestEffortModelMove(store_, spec.model, spec.version, ms::kValidated, ms::kStaged,
                            fmt::format("{} of endpoint {} (deployment {})", who, d.endpoint, d.id),
                            actor_);
      }
    } else {
      // Baking with the bake config in place: measure, then promote, roll back, fail or wait.
      FERRY_ASSIGN_OR_RETURN(std::vector<state::VariantStatsRecord> rows,
                             store_.ListVariantStats(d.endpoint));
      std::vector<state::VariantStatsRecord> current_rows;
      std::set<std::string> fresh;
      for (const state::VariantStatsRecord& r : rows) {
        if (r.updated_at >= now - kFreshness) fresh.insert(r.instance);
        if (r.endpoint_version >= e.version) current_rows.push_back(r);
      }
      const VariantHealth h = AggregateVariantStats(current_rows, plan.next.name, spec.model,
                                                    spec.version, now, kFreshness);
      std::string crossed;
      if (h.requests >= 1) {
        for (const Threshold& t : spec.thresholds) {
          const double v = MetricValue(h, t.metric);
          if (Crossed(t, v)) {
            crossed =
                fmt::format("{} {} {} {} over {} requests", t.metric, FormatValue(t.metric, v),
                            t.op, FormatValue(t.metric, t.value), h.requests);
            break;
          }
        }
      }
      bool ready = false;
      std::string ready_how;
      if (!fresh.empty()) {
        int ready_count = 0;
        for (const std::string& instance : fresh) {
          for (const state::VariantStatsRecord& r : current_rows) {
            if (r.instance == instance && r.variant == plan.next.name && r.model == spec.model &&
                r.model_version == spec.version && r.ready && r.updated_at >= now - kFreshness) {
              ++ready_count;
              break;
            }
          }
        }
        ready = ready_count == static_cast<int>(fresh.size());
        ready_how = fmt::format("{} of {} serving instances ready at endpoint version >= {}",
                                ready_count, fresh.size(), e.version);
      } else {
        FERRY_ASSIGN_OR_RETURN(ready, BundleLoads(spec.model, spec.version));
        ready_how = ready ? "no serving instance; its bundle loads"
                          : "no serving instance, and its bundle does not load";
      }
      const absl::Duration baked = now - d.baking_since;
      auto promote = [&](const std::string& why) {
        absl::Status s = decide(ds::kPromoted, why);
        if (!s.ok()) return s;
        BestEffortModelMove(store_, spec.model, spec.version, ms::kStaged, ms::kProduction, why,
                            actor_);
        if (plan.old && !(plan.old->model == spec.model && plan.old->version == spec.version)) {
          BestEffortModelMove(store_, plan.old->model, plan.old->version, ms::kProduction,
                              ms::kArchived,
                              fmt::format("replaced on endpoint {} by {}:{} (deployment {})",
                                          d.endpoint, spec.model, spec.version, d.id),
                              actor_);
        }
        return s;
      };
      auto end_unpromoted = [&](std::string_view to, const std::string& why) {
        absl::Status s = decide(to, why);
        if (s.ok()) {
          BestEffortModelMove(store_, spec.model, spec.version, ms::kStaged,
                              to == ds::kFailed ? ms::kArchived : ms::kRejected, why, actor_);
        }
        return s;
      };

      if (!crossed.empty()) {
        moved = end_unpromoted(ds::kRolledBack, fmt::format("{} {}", who, crossed));
      } else if (!ready) {
        if (baked < spec.ready_timeout) return d;  // wait
        moved = end_unpromoted(ds::kFailed,
                               fmt::format("{} not ready within {}: {}", who,
                                           absl::FormatDuration(spec.ready_timeout), ready_how));
      } else if (plan.first || d.strategy == "blue_green") {
        moved = promote(fmt::format("{} ready ({}); it takes 100% of traffic", who, ready_how));
      } else if (baked < spec.bake) {
        return d;  // wait
      } else if (!CoversBake(rows, fresh, d.baking_since + spec.bake)) {
        return d;  // wait for every live serving process to report past the bake's end
      } else if (h.requests < spec.min_requests) {
        moved = end_unpromoted(
            ds::kRolledBack,
            fmt::format("not enough traffic: {} got {} requests in the {} bake, min_requests {}",
                        who, h.requests, absl::FormatDuration(spec.bake), spec.min_requests));
      } else {
        std::vector<std::string> limits;
        for (const Threshold& t : spec.thresholds) limits.push_back(ThresholdToString(t));
        moved = promote(fmt::format(
            "{} baked {} over {} requests: error_rate {}, p50_ms {:.3g}, p99_ms {:.3g}{}", who,
            absl::FormatDuration(absl::Trunc(baked, absl::Seconds(1))), h.requests,
            Percent(h.error_rate), h.p50_ms, h.p99_ms,
            limits.empty() ? std::string() : fmt::format(" (limits {})", fmt::join(limits, ", "))));
      }
    }
    if (!moved.ok() && !IsRace(moved)) return moved;
    last = moved;
  }
  return absl::AbortedError(fmt::format(
      "deployment {}: no end after {} moves in one step (last: {}); other reconcilers keep moving "
      "it, or its endpoint is changed by hand",
      id, kMaxMovesPerStep, last.ok() ? std::string("ok") : std::string(last.message())));
}

absl::StatusOr<state::DeploymentRecord> RolloutReconciler::RunUntilDone(
    const std::string& id, const std::function<void(absl::Duration)>& sleep,
    const std::function<void(const state::DeploymentRecord&)>& on_change) {
  std::string last_state, last_message;
  while (true) {
    FERRY_ASSIGN_OR_RETURN(state::DeploymentRecord d, Step(id));
    if (d.state != last_state || d.message != last_message) {
      last_state = d.state;
      last_message = d.message;
      if (on_change) on_change(d);
    }
    if (state::IsTerminal(state::DeploymentKind(), d.state)) return d;
    absl::Duration wait = absl::Seconds(1);
    if (d.state == ds::kBaking) {
      FERRY_ASSIGN_OR_RETURN(Spec spec, ParseSpec(d));
      const absl::Time now = clock_.Now();
      for (absl::Duration edge : {spec.bake, spec.ready_timeout}) {
        const absl::Duration left = d.baking_since + edge - now;
        if (left > absl::ZeroDuration() && left < wait) wait = left;
      }
    }
    sleep(wait);
  }
}

absl::Status RolloutReconciler::ReconcileEndpoint(const std::string& endpoint) {
  FERRY_ASSIGN_OR_RETURN(std::optional<state::DeploymentRecord> d, InFlight(store_, endpoint));
  if (!d) return SettleEndpoint(store_, endpoint, actor_);
  return Step(d->id).status();
}

// --- Rollback ---

absl::StatusOr<state::DeploymentRecord> Rollback(state::StateStore& store,
                                                 const std::string& endpoint,
                                                 const std::string& reason,
                                                 const std::string& actor, const Clock& clock) {
  const std::string why = reason.empty() ? std::string("`ferry rollback`") : reason;
  FERRY_RETURN_IF_ERROR(store.GetEndpoint(endpoint).status());
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    FERRY_ASSIGN_OR_RETURN(std::optional<state::DeploymentRecord> flight,
                           InFlight(store, endpoint));
    if (flight) {
      const std::string message = fmt::format("rolled back: {}", why);
      absl::StatusOr<state::DeploymentRecord> out =
          store.TransitionDeployment({.id = flight->id,
                                      .from = flight->state,
                                      .to = ds::kRolledBack,
                                      .expected_version = flight->version,
                                      .reason = message,
                                      .actor = actor,
                                      .message = message,
                                      .at = clock.Now()});
      if (!out.ok() && IsRace(out.status())) {
        last = out.status();
        continue;  // a reconciler moved it meanwhile: look again
      }
      FERRY_RETURN_IF_ERROR(out.status());
      if (absl::StatusOr<Spec> spec = ParseSpec(*flight); spec.ok()) {
        BestEffortModelMove(store, spec->model, spec->version, ms::kStaged, ms::kRejected, message,
                            actor);
      }
      FERRY_RETURN_IF_ERROR(SettleEndpoint(store, endpoint, actor));
      return out;
    }

    FERRY_RETURN_IF_ERROR(SettleEndpoint(store, endpoint, actor));
    FERRY_ASSIGN_OR_RETURN(state::EndpointRecord e, store.GetEndpoint(endpoint));
    FERRY_ASSIGN_OR_RETURN(std::vector<state::DeploymentRecord> all,
                           store.ListDeployments(endpoint, 0));
    const state::DeploymentRecord* promoted = nullptr;
    for (const state::DeploymentRecord& d : all) {
      if (d.state == ds::kPromoted) {
        promoted = &d;
        break;
      }
    }
    if (promoted == nullptr) {
      return absl::FailedPreconditionError(fmt::format(
          "endpoint {} has nothing to roll back: no deployment in flight and none promoted yet",
          endpoint));
    }
    absl::StatusOr<serve::EndpointConfig> before =
        serve::ParseEndpointConfig(promoted->from_config_json);
    if (!before.ok() || before->variants.empty()) {
      return absl::FailedPreconditionError(fmt::format(
          "endpoint {} has nothing to roll back to: its last promoted deployment {} was its "
          "first (there was no config before it); deploy another model version instead",
          endpoint, promoted->id));
    }
    const std::string restore = serve::EndpointConfigToJson(*before);
    const std::string message =
        fmt::format("{} -> {} (the config before deployment {}): {}", Describe(e.config_json),
                    Describe(restore), promoted->id, why);
    json spec = {{"rollback_of", promoted->id}, {"reason", why}};
    absl::StatusOr<state::DeploymentRecord> d =
        store.CreateDeployment({.id = state::NewDeploymentId(clock),
                                .endpoint = endpoint,
                                .strategy = "rollback",
                                .spec_json = spec.dump(),
                                .from_config_json = e.config_json,
                                .actor = actor});
    if (!d.ok() && IsRace(d.status())) {
      last = d.status();
      continue;  // a deployment started meanwhile: roll that one back instead
    }
    FERRY_RETURN_IF_ERROR(d.status());
    const absl::Time now = clock.Now();
    FERRY_ASSIGN_OR_RETURN(state::DeploymentRecord baking,
                           store.TransitionDeployment({.id = d->id,
                                                       .from = ds::kPending,
                                                       .to = ds::kBaking,
                                                       .expected_version = d->version,
                                                       .reason = message,
                                                       .actor = actor,
                                                       .to_config_json = restore,
                                                       .at = now}));
    FERRY_ASSIGN_OR_RETURN(state::DeploymentRecord done,
                           store.TransitionDeployment({.id = d->id,
                                                       .from = ds::kBaking,
                                                       .to = ds::kPromoted,
                                                       .expected_version = baking.version,
                                                       .reason = message,
                                                       .actor = actor,
                                                       .to_config_json = restore,
                                                       .message = message,
                                                       .at = now}));
    FERRY_RETURN_IF_ERROR(SettleEndpoint(store, endpoint, actor));
    // The registry follows: the restored live versions serve production again, the ones they
    // replace are archived.
    absl::StatusOr<serve::EndpointConfig> current = serve::ParseEndpointConfig(e.config_json);
    for (const serve::VariantConfig& v : before->variants) {
      if (v.mode != "live" || v.weight == 0) continue;
      BestEffortModelMove(store, v.model, v.version, ms::kArchived, ms::kStaged, message, actor);
      BestEffortModelMove(store, v.model, v.version, ms::kStaged, ms::kProduction, message, actor);
    }
    if (current.ok()) {
      for (const serve::VariantConfig& v : current->variants) {
        bool kept = false;
        for (const serve::VariantConfig& b : before->variants) {
          kept |= b.model == v.model && b.version == v.version;
        }
        if (!kept) {
          BestEffortModelMove(store, v.model, v.version, ms::kProduction, ms::kArchived, message,
                              actor);
        }
      }
    }
    return done;
  }
  return absl::AbortedError(
      fmt::format("rollback of endpoint {}: its deployments kept moving ({}); run it again",
                  endpoint, last.message()));
}

}  // namespace ferry::controller
