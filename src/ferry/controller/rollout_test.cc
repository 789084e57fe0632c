#include "ferry/controller/rollout.h"

#include <stdlib.h>

#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/model/bundle.h"
#include "ferry/model/model.h"
#include "ferry/serve/endpoint_config.h"
#include "ferry/serve/metrics.h"
#include "ferry/state/kinds.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ferry::controller {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "rollout_test.XXXXXX";
    FERRY_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Counts per bucket (+Inf last) with `n` requests all in the bucket ending at
// kLatencyBoundsMs[bucket].
std::vector<int64_t> CountsAt(size_t bucket, int64_t n) {
  std::vector<int64_t> c(serve::kLatencyBuckets, 0);
  c[bucket] = n;
  return c;
}

std::string LatencyJson(const std::vector<int64_t>& cumulative) {
  return serve::LatencyToJson(cumulative);
}

// ---------------------------------------------------------------- pure parts

TEST(ParseRollbackOn, ReadsTermsWithSpacesAndEveryOp) {
  absl::StatusOr<std::vector<Threshold>> t =
      ParseRollbackOn(" error_rate>0.01 , p99_ms >= 25,p50_ms<3, p99_ms<=1e3");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 4u);
  EXPECT_EQ((*t)[0].metric, "error_rate");
  EXPECT_EQ((*t)[0].op, ">");
  EXPECT_EQ((*t)[0].value, 0.01);
  EXPECT_EQ((*t)[1].metric, "p99_ms");
  EXPECT_EQ((*t)[1].op, ">=");
  EXPECT_EQ((*t)[1].value, 25);
  EXPECT_EQ((*t)[2].op, "<");
  EXPECT_EQ((*t)[3].op, "<=");
  EXPECT_EQ((*t)[3].value, 1000);
  EXPECT_EQ(ThresholdToString((*t)[0]), "error_rate>0.01");
  absl::StatusOr<std::vector<Threshold>> none = ParseRollbackOn("  ");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(ParseRollbackOn, ErrorsNameTheTerm) {
  const std::pair<std::string, std::string> cases[] = {
      {"p95_ms>3", "term 1 'p95_ms>3': unknown metric 'p95_ms'"},
      {"error_rate>0.01,p99>25", "term 2 'p99>25': unknown metric 'p99'"},
      {"error_rate=0.01", "term 1 'error_rate=0.01': no comparison (> >= < <=)"},
      {"error_rate>", "term 1 'error_rate>': no value after the comparison"},
      {"error_rate>abc", "'abc' is not a number"},
      {"p99_ms>25ms", "'25ms' is not a number"},
      {"error_rate>0.01,", "term 2 '': empty"},
      {"p99_ms>-1", "p99_ms is never negative"},
  };
  for (const auto& [spec, message] : cases) {
    SCOPED_TRACE(spec);
    absl::StatusOr<std::vector<Threshold>> t = ParseRollbackOn(spec);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(message));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("metrics error_rate, p99_ms, p50_ms"));
  }
}

TEST(Crossed, ComparesAndNeverCrossesOnNaN) {
  EXPECT_TRUE(Crossed({"error_rate", ">", 0.01}, 0.02));
  EXPECT_FALSE(Crossed({"error_rate", ">", 0.01}, 0.01));
  EXPECT_TRUE(Crossed({"error_rate", ">=", 0.01}, 0.01));
  EXPECT_TRUE(Crossed({"p50_ms", "<", 1}, 0.5));
  EXPECT_FALSE(Crossed({"p50_ms", "<=", 1}, 1.5));
  EXPECT_FALSE(Crossed({"p99_ms", ">", 1}, std::numeric_limits<double>::quiet_NaN()));
}

TEST(AggregateVariantStats, SumsInstancesAndCountsFreshOnes) {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  auto row = [&](std::string instance, std::string variant, int64_t version, bool ready,
                 int64_t requests, int64_t errors, std::vector<int64_t> latency,
                 absl::Duration age) {
    return state::VariantStatsRecord{.endpoint = "churn",
                                     .instance = std::move(instance),
                                     .variant = std::move(variant),
                                     .model = "churn",
                                     .model_version = version,
                                     .endpoint_version = 3,
                                     .ready = ready,
                                     .requests = requests,
                                     .errors = errors,
                                     .latency_json = LatencyJson(latency),
                                     .updated_at = now - age};
  };
  std::vector<state::VariantStatsRecord> rows = {
      // Two fresh instances, one ready: 60 requests in (1, 2.5] ms, 40 in (2.5, 5].
      row("a", "green", 8, true, 60, 3, CountsAt(5, 60), absl::Seconds(2)),
      row("b", "green", 8, false, 40, 1, CountsAt(6, 40), absl::Seconds(9)),
      // Stale: counts for requests, not as an instance.
      row("c", "green", 8, true, 100, 0, CountsAt(5, 100), absl::Seconds(30)),
      // Other variant, other version: ignored.
      row("a", "blue", 7, true, 1000, 500, CountsAt(16, 1000), absl::Seconds(1)),
      row("d", "green", 7, true, 1000, 500, CountsAt(16, 1000), absl::Seconds(1)),
  };
  // Other bounds, or the wrong number of counts: requests count, latency does not.
  rows.push_back(row("e", "green", 8, true, 0, 0, CountsAt(5, 10), absl::Seconds(1)));
  rows.back().latency_json = json{{"bounds_ms", {1, 2}}, {"counts", {0, 0, 7}}}.dump();
  rows.push_back(row("f", "green", 8, false, 0, 0, CountsAt(5, 10), absl::Seconds(30)));
  rows.back().latency_json = json{{"counts", {1, 2}}}.dump();

  VariantHealth h = AggregateVariantStats(rows, "green", "churn", 8, now, absl::Seconds(10));
  EXPECT_EQ(h.requests, 200);
  EXPECT_EQ(h.errors, 4);
  EXPECT_DOUBLE_EQ(h.error_rate, 0.02);
  EXPECT_EQ(h.fresh_instances, 3);  // a, b, e
  EXPECT_EQ(h.ready_instances, 2);  // a, e
  // 160 of 200 in (1, 2.5], 40 in (2.5, 5]: the median is at rank 100 of the first bucket.
  EXPECT_DOUBLE_EQ(h.p50_ms, 1 + 1.5 * 100.0 / 160.0);
  EXPECT_DOUBLE_EQ(h.p99_ms, 2.5 + 2.5 * 38.0 / 40.0);

  VariantHealth none = AggregateVariantStats(rows, "red", "churn", 8, now, absl::Seconds(10));
  EXPECT_EQ(none.requests, 0);
  EXPECT_EQ(none.error_rate, 0);
  EXPECT_TRUE(std::isnan(none.p99_ms));
  EXPECT_EQ(none.fresh_instances, 0);
}

// ---------------------------------------------------------------- against a real store

data::Table Rows(int n, uint64_t seed) {
  data::Table t;
  t.AddColumn("x1", data::ColumnType::kFloat64);
  t.AddColumn("x2", data::ColumnType::kFloat64);
  t.AddColumn("y", data::ColumnType::kInt64);  // (AddColumn's reference lasts until the next)
  data::Column& x1 = t.mutable_column(0);
  data::Column& x2 = t.mutable_column(1);
  data::Column& y = t.mutable_column(2);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0, 1);
  for (int i = 0; i < n; ++i) {
    const double a = g(rng), b = g(rng);
    x1.AppendDouble(a);
    x2.AppendDouble(b);
    y.AppendInt(a + 0.5 * b + 0.3 * g(rng) > 0 ? 1 : 0);
  }
  return t;
}

class RolloutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<state::StateStore>> s =
        state::OpenStateStore("sqlite://" + dir_.path() + "/state.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    absl::StatusOr<std::unique_ptr<storage::ArtifactStore>> l =
        storage::OpenArtifactStore("file://" + dir_.path() + "/lake");
    ASSERT_TRUE(l.ok()) << l.status();
    lake_ = std::move(*l);
    reconciler_ = std::make_unique<RolloutReconciler>(*store_, *lake_, clock_, "reconciler 1");
    for (int i = 1; i <= 2; ++i) RegisterVersion(i);
  }

  // Trains a tiny logistic regression, writes its bundle into the lake and registers it
  // (validated, as the register step leaves it).
  void RegisterVersion(int i) {
    data::Table train = Rows(200, static_cast<uint64_t>(i));
    absl::StatusOr<std::unique_ptr<model::Model>> m =
        model::FindModelType("logistic_regression")
            ->Fit(train, {.target = "y", .seed = 1, .threads = 1});
    ASSERT_TRUE(m.ok()) << m.status();
    const std::string key = fmt::format("bundles/churn-{}", i);
    absl::StatusOr<std::string> folder = lake_->LocalPath(key);
    ASSERT_TRUE(folder.ok());
    ASSERT_TRUE(MakeDirs(*folder + "/" + model::kBundleModelDir).ok());
    ASSERT_TRUE((*m)->Save(*folder + "/" + model::kBundleModelDir).ok());
    ASSERT_TRUE(WriteFileAtomic(*folder + "/" + model::kBundleMeta,
                                model::BundleMeta(**m, train, "y", json()).dump())
                    .ok());
    absl::StatusOr<state::ModelVersionRecord> v =
        store_->RegisterModelVersion({.model = "churn", .artifact_uri = lake_->Uri(key)});
    ASSERT_TRUE(v.ok()) << v.status();
    ASSERT_EQ(v->version, i);
    ASSERT_TRUE(store_
                    ->TransitionModelVersion({.model = "churn",
                                              .version = i,
                                              .from = state::model_state::kRegistered,
                                              .to = state::model_state::kValidated,
                                              .expected_revision = v->revision})
                    .ok());
  }

  absl::StatusOr<state::DeploymentRecord> Start(DeployRequest r) {
    if (r.endpoint.empty()) r.endpoint = "churn";
    r.actor = "test";
    return StartDeployment(*store_, *lake_, r, clock_);
  }

  // Deploys churn:1 blue-green with no serving instance and steps it to promoted.
  void DeployFirst() {
    absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:1"});
    ASSERT_TRUE(d.ok()) << d.status();
    absl::StatusOr<state::DeploymentRecord> done = reconciler_->Step(d->id);
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_EQ(done->state, "promoted") << done->message;
  }

  state::EndpointRecord Endpoint() {
    absl::StatusOr<state::EndpointRecord> e = store_->GetEndpoint("churn");
    FERRY_CHECK(e.ok());
    return *e;
  }

  // The endpoint's config as "name:model:version:weight:mode" terms.
  std::vector<std::string> Variants() {
    absl::StatusOr<serve::EndpointConfig> c = serve::ParseEndpointConfig(Endpoint().config_json);
    FERRY_CHECK(c.ok());
    std::vector<std::string> out;
    for (const serve::VariantConfig& v : c->variants) {
      out.push_back(fmt::format("{}:{}:{}:{}:{}", v.name, v.model, v.version, v.weight, v.mode));
    }
    return out;
  }

  std::string ModelState(int version) {
    absl::StatusOr<state::ModelVersionRecord> v = store_->GetModelVersion("churn", version);
    FERRY_CHECK(v.ok());
    return v->state;
  }

  void Publish(const std::string& instance, const std::string& variant, int64_t version, bool ready,
               int64_t requests = 0, int64_t errors = 0,
               std::vector<int64_t> latency = CountsAt(4, 0),
               std::optional<int64_t> endpoint_version = std::nullopt) {
    ASSERT_TRUE(
        store_
            ->PutVariantStats({.endpoint = "churn",
                               .instance = instance,
                               .variant = variant,
                               .model = "churn",
                               .model_version = version,
                               .endpoint_version = endpoint_version.value_or(Endpoint().version),
                               .ready = ready,
                               .requests = requests,
                               .errors = errors,
                               .latency_json = LatencyJson(latency),
                               .updated_at = clock_.Now()})
            .ok());
  }

  // Every (from, to) of a resource's events, in order.
  std::vector<std::string> Moves(const std::string& resource) {
    absl::StatusOr<std::vector<state::EventRecord>> events = store_->GetEvents(resource);
    FERRY_CHECK(events.ok());
    std::vector<std::string> out;
    for (const state::EventRecord& e : *events) out.push_back(e.from + ">" + e.to);
    return out;
  }

  TempDir dir_;
  // Near the store's own clock, on a whole second (the store keeps times to the microsecond).
  FakeClock clock_{absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()))};
  std::unique_ptr<state::StateStore> store_;
  std::unique_ptr<storage::ArtifactStore> lake_;
  std::unique_ptr<RolloutReconciler> reconciler_;  // made in SetUp, over store_ and lake_
};

TEST_F(RolloutTest, FirstDeploymentAndBlueGreenWithoutInstancesPromoteWhenTheBundleLoads) {
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:1"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->state, "pending");
  EXPECT_EQ(Endpoint().state, "creating");
  absl::StatusOr<state::DeploymentRecord> done = reconciler_->Step(d->id);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, "promoted");
  EXPECT_THAT(done->message, HasSubstr("no serving instance; its bundle loads"));
  EXPECT_EQ(Endpoint().state, "in_service");
  EXPECT_EQ(Variants(), std::vector<std::string>{"blue:churn:1:100:live"});
  EXPECT_EQ(ModelState(1), "production");

  d = Start({.model_ref = "churn:2"});
  ASSERT_TRUE(d.ok()) << d.status();
  done = reconciler_->Step(d->id);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, "promoted");
  EXPECT_EQ(Endpoint().state, "in_service");
  EXPECT_EQ(Variants(), std::vector<std::string>{"green:churn:2:100:live"});
  EXPECT_EQ(serve::EndpointConfigToJson(*serve::ParseEndpointConfig(done->to_config_json)),
            Endpoint().config_json);
  EXPECT_EQ(ModelState(2), "production");
  EXPECT_EQ(ModelState(1), "archived");
  EXPECT_EQ(Moves("churn"),
            (std::vector<std::string>{">creating", "creating>in_service", "in_service>updating",
                                      "updating>in_service"}));
  EXPECT_EQ(Moves(d->id),
            (std::vector<std::string>{">pending", "pending>baking", "baking>promoted"}));
}

TEST_F(RolloutTest, BlueGreenWaitsUntilEveryFreshInstanceReportsTheNewVariantReady) {
  DeployFirst();
  Publish("i1@h:1", "blue", 1, true);
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2"});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "baking");
  EXPECT_EQ(Endpoint().state, "updating");
  EXPECT_EQ(Variants(),
            (std::vector<std::string>{"blue:churn:1:100:live", "green:churn:2:0:live"}));
  const int64_t written = Endpoint().version;

  // Green loaded, but at the endpoint version before the switch: not yet.
  Publish("i1@h:1", "green", 2, true, 0, 0, CountsAt(4, 0), written - 1);
  clock_.Advance(absl::Seconds(1));
  now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state, "baking");
  // Loading, not ready.
  Publish("i1@h:1", "green", 2, false);
  now = reconciler_->Step(d->id);
  EXPECT_EQ(now->state, "baking");
  // A second fresh instance that is ready does not make the first one ready.
  Publish("i2@h:2", "green", 2, true);
  now = reconciler_->Step(d->id);
  EXPECT_EQ(now->state, "baking");

  Publish("i1@h:1", "green", 2, true);
  now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state, "promoted");
  EXPECT_THAT(now->message, HasSubstr("2 of 2 serving instances ready"));
  EXPECT_EQ(Variants(), std::vector<std::string>{"green:churn:2:100:live"});
  EXPECT_EQ(Endpoint().state, "in_service");
}

TEST_F(RolloutTest, CanaryPromotesAfterTheBake) {
  DeployFirst();
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "canary",
                                                     .weight = 10,
                                                     .bake = absl::Minutes(10),
                                                     .rollback_on = "error_rate>0.01,p99_ms>25"});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "baking");
  EXPECT_EQ(Variants(),
            (std::vector<std::string>{"blue:churn:1:90:live", "green:churn:2:10:live"}));
  EXPECT_EQ(ModelState(2), "staged");
  Publish("i1@h:1", "blue", 1, true, 900, 0, CountsAt(4, 900));
  Publish("i1@h:1", "green", 2, true, 100, 1, CountsAt(5, 100));  // 1% errors: at the limit
  clock_.Advance(absl::Minutes(9));
  Publish("i1@h:1", "blue", 1, true, 900, 0, CountsAt(4, 900));
  Publish("i1@h:1", "green", 2, true, 100, 1, CountsAt(5, 100));
  now = reconciler_->Step(d->id);
  EXPECT_EQ(now->state, "baking");
  clock_.Advance(absl::Minutes(1));
  now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state, "promoted");
  EXPECT_THAT(now->message, HasSubstr("canary green (churn:2) baked 10m over 100 requests: "
                                      "error_rate 0.01"));
  EXPECT_EQ(Variants(), std::vector<std::string>{"green:churn:2:100:live"});
  EXPECT_EQ(ModelState(2), "production");
  EXPECT_EQ(ModelState(1), "archived");
}

TEST_F(RolloutTest, CanaryRollsBackOnErrorRate) {
  DeployFirst();
  const std::string before = Endpoint().config_json;
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "canary",
                                                     .weight = 20,
                                                     .bake = absl::Minutes(10),
                                                     .rollback_on = "error_rate>0.01"});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  Publish("i1@h:1", "green", 2, true, 42, 13, CountsAt(5, 42));
  clock_.Advance(absl::Seconds(30));
  Publish("i1@h:1", "green", 2, true, 42, 13, CountsAt(5, 42));
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "rolled_back");
  EXPECT_EQ(now->message, "canary green (churn:2) error_rate 0.3095 > 0.01 over 42 requests");
  EXPECT_EQ(Endpoint().state, "in_service");
  EXPECT_EQ(Endpoint().config_json, before);
  EXPECT_EQ(ModelState(2), "rejected");
  EXPECT_EQ(ModelState(1), "production");
  std::vector<std::string> moves = Moves("churn");
  EXPECT_EQ(std::vector<std::string>(moves.end() - 3, moves.end()),
            (std::vector<std::string>{"in_service>updating", "updating>rolling_back",
                                      "rolling_back>in_service"}));
}

TEST_F(RolloutTest, CanaryRollsBackOnP99) {
  DeployFirst();
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "canary",
                                                     .weight = 10,
                                                     .bake = absl::Minutes(10),
                                                     .rollback_on = "error_rate>0.01,p99_ms>25"});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  // No errors, every request in (50, 100] ms.
  Publish("i1@h:1", "green", 2, true, 50, 0, CountsAt(10, 50));
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "rolled_back");
  EXPECT_EQ(now->message, "canary green (churn:2) p99_ms 99.5 > 25 over 50 requests");
  EXPECT_EQ(Variants(), std::vector<std::string>{"blue:churn:1:100:live"});
}

TEST_F(RolloutTest, ShadowMirrorsThenPromotes) {
  DeployFirst();
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "shadow",
                                                     .bake = absl::Minutes(5),
                                                     .rollback_on = "error_rate>0.05",
                                                     .echo_inputs = true});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  EXPECT_EQ(Variants(),
            (std::vector<std::string>{"blue:churn:1:100:live", "green:churn:2:0:shadow"}));
  EXPECT_TRUE(serve::ParseEndpointConfig(Endpoint().config_json)->echo_inputs);
  clock_.Advance(absl::Minutes(5));
  Publish("i1@h:1", "blue", 1, true, 500, 0, CountsAt(4, 500));
  Publish("i1@h:1", "green", 2, true, 500, 2, CountsAt(4, 500));
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "promoted");
  EXPECT_THAT(now->message, HasSubstr("shadow green (churn:2) baked 5m over 500 requests"));
  EXPECT_EQ(Variants(), std::vector<std::string>{"green:churn:2:100:live"});
  EXPECT_TRUE(serve::ParseEndpointConfig(Endpoint().config_json)->echo_inputs);
}

TEST_F(RolloutTest, NotEnoughTrafficRollsBack) {
  DeployFirst();
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "canary",
                                                     .weight = 5,
                                                     .bake = absl::Minutes(1),
                                                     .min_requests = 100});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  clock_.Advance(absl::Minutes(1));
  Publish("i1@h:1", "green", 2, true, 3, 0, CountsAt(4, 3));
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "rolled_back");
  EXPECT_EQ(now->message,
            "not enough traffic: canary green (churn:2) got 3 requests in the 1m bake, "
            "min_requests 100");
  EXPECT_EQ(Variants(), std::vector<std::string>{"blue:churn:1:100:live"});
}

TEST_F(RolloutTest, ReadyTimeoutFailsAndRestoresTheConfig) {
  DeployFirst();
  const std::string before = Endpoint().config_json;
  Publish("i1@h:1", "blue", 1, true);  // a serving instance: readiness is what it reports
  absl::StatusOr<state::DeploymentRecord> d =
      Start({.model_ref = "churn:2", .ready_timeout = absl::Seconds(30)});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  const int64_t written = Endpoint().version;
  Publish("i1@h:1", "green", 2, false);  // never ready
  clock_.Advance(absl::Seconds(29));
  Publish("i1@h:1", "green", 2, false);
  EXPECT_EQ(reconciler_->Step(d->id)->state, "baking");
  clock_.Advance(absl::Seconds(1));
  Publish("i1@h:1", "green", 2, false);
  absl::StatusOr<state::DeploymentRecord> now = reconciler_->Step(d->id);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, "failed");
  EXPECT_EQ(now->message,
            fmt::format("new variant green (churn:2) not ready within 30s: 0 of 1 serving "
                        "instances ready at endpoint version >= {}",
                        written));
  EXPECT_EQ(Endpoint().state, "in_service");
  EXPECT_EQ(Endpoint().config_json, before);
  EXPECT_EQ(ModelState(2), "archived");
}

TEST_F(RolloutTest, TwoConcurrentDeploysOneProceeds) {
  DeployFirst();
  std::vector<absl::StatusOr<state::DeploymentRecord>> got(2, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<state::StateStore>> s =
          state::OpenStateStore("sqlite://" + dir_.path() + "/state.db");
      FERRY_CHECK(s.ok());
      got[i] = StartDeployment(**s, *lake_,
                               {.endpoint = "churn", .model_ref = "churn:2", .actor = "t"}, clock_);
    });
  }
  for (std::thread& t : threads) t.join();
  const int winner = got[0].ok() ? 0 : 1;
  ASSERT_TRUE(got[winner].ok()) << got[winner].status();
  ASSERT_FALSE(got[1 - winner].ok());
  EXPECT_EQ(got[1 - winner].status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(got[1 - winner].status().message()), HasSubstr(got[winner]->id));
}

TEST_F(RolloutTest, TwoReconcilersAlternatingReachOneEndWithoutDuplicateMoves) {
  DeployFirst();
  RolloutReconciler other(*store_, *lake_, clock_, "reconciler 2");
  absl::StatusOr<state::DeploymentRecord> d =
      Start({.model_ref = "churn:2", .strategy = "canary", .weight = 10, .bake = absl::Minutes(2)});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<state::DeploymentRecord> a, b;
  for (int i = 0; i < 6; ++i) {
    a = reconciler_->Step(d->id);
    b = other.Step(d->id);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->state, b->state);
    Publish("i1@h:1", "green", 2, true, 10 * i, 0, CountsAt(4, 10 * i));
    clock_.Advance(absl::Seconds(30));
  }
  EXPECT_EQ(b->state, "promoted");
  std::vector<std::string> moves = Moves(d->id);
  EXPECT_EQ(moves, (std::vector<std::string>{">pending", "pending>baking", "baking>promoted"}));
  moves = Moves("churn");
  EXPECT_EQ(std::set<std::string>(moves.begin(), moves.end()).size(), moves.size());
  EXPECT_EQ(std::count(moves.begin(), moves.end(), "updating>in_service"), 1);
}

TEST_F(RolloutTest, RollbackOfAnInFlightDeployment) {
  DeployFirst();
  const std::string before = Endpoint().config_json;
  absl::StatusOr<state::DeploymentRecord> d = Start(
      {.model_ref = "churn:2", .strategy = "canary", .weight = 10, .bake = absl::Minutes(10)});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(reconciler_->Step(d->id)->state, "baking");
  absl::StatusOr<state::DeploymentRecord> r =
      Rollback(*store_, "churn", "the on-call said so", "alice", clock_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, d->id);
  EXPECT_EQ(r->state, "rolled_back");
  EXPECT_EQ(r->message, "rolled back: the on-call said so");
  EXPECT_EQ(Endpoint().config_json, before);
  EXPECT_EQ(Endpoint().state, "in_service");
  // A reconciler that comes later finds it finished.
  EXPECT_EQ(reconciler_->Step(d->id)->state, "rolled_back");
  // A pending one is rolled back without touching the endpoint.
  d = Start({.model_ref = "churn:2"});
  ASSERT_TRUE(d.ok()) << d.status();
  const int64_t version = Endpoint().version;
  r = Rollback(*store_, "churn", "", "alice", clock_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->state, "rolled_back");
  EXPECT_EQ(Endpoint().version, version);
}

TEST_F(RolloutTest, RollbackAfterAPromotionRestoresThePreviousConfig) {
  absl::StatusOr<state::DeploymentRecord> nothing = Rollback(*store_, "churn", "", "alice", clock_);
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kNotFound);  // no such endpoint
  DeployFirst();
  nothing = Rollback(*store_, "churn", "", "alice", clock_);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(nothing.status().message()), HasSubstr("was its first"));

  const std::string before = Endpoint().config_json;
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2"});
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(reconciler_->Step(d->id)->state, "promoted");
  absl::StatusOr<state::DeploymentRecord> r =
      Rollback(*store_, "churn", "latency regressed", "alice", clock_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NE(r->id, d->id);
  EXPECT_EQ(r->strategy, "rollback");
  EXPECT_EQ(r->state, "promoted");
  EXPECT_THAT(r->message, HasSubstr("green churn:2 100% -> blue churn:1 100%"));
  EXPECT_THAT(r->message, HasSubstr("latency regressed"));
  EXPECT_EQ(Endpoint().config_json, before);
  EXPECT_EQ(Endpoint().state, "in_service");
  EXPECT_EQ(ModelState(1), "production");
  EXPECT_EQ(ModelState(2), "archived");
  std::vector<std::string> moves = Moves("churn");
  EXPECT_EQ(std::vector<std::string>(moves.end() - 2, moves.end()),
            (std::vector<std::string>{"in_service>rolling_back", "rolling_back>in_service"}));
}

TEST_F(RolloutTest, StartDeploymentChecksTheRequest) {
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:9"});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
  d = Start({.model_ref = "churn:1", .strategy = "purple"});
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("--strategy 'purple'"));
  d = Start({.model_ref = "churn:1", .strategy = "canary", .weight = 100});
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("--weight 100"));
  d = Start({.model_ref = "churn:1", .rollback_on = "p95>1"});
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("unknown metric 'p95'"));
  // A version whose bundle is gone.
  absl::StatusOr<std::string> folder = lake_->LocalPath("bundles/churn-2");
  ASSERT_TRUE(folder.ok());
  std::filesystem::remove(*folder + "/" + model::kBundleMeta);
  d = Start({.model_ref = "churn:2"});
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("model churn:2 cannot be deployed"));
  // Nothing was recorded for the failed requests.
  absl::StatusOr<std::vector<state::DeploymentRecord>> all = store_->ListDeployments("", 0);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(RolloutTest, RunUntilDoneSleepsOnTheClockAndReportsChanges) {
  DeployFirst();
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2",
                                                     .strategy = "canary",
                                                     .weight = 10,
                                                     .bake = absl::Milliseconds(2500)});
  ASSERT_TRUE(d.ok());
  std::vector<std::string> states;
  absl::Duration slept;
  absl::StatusOr<state::DeploymentRecord> done = reconciler_->RunUntilDone(
      d->id,
      [&](absl::Duration t) {
        slept += t;
        clock_.Advance(t);
      },
      [&](const state::DeploymentRecord& r) { states.push_back(r.state); });
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, "promoted");
  EXPECT_EQ(states, (std::vector<std::string>{"baking", "promoted"}));
  EXPECT_EQ(slept, absl::Milliseconds(2500));  // 1s, 1s, then what was left
}

TEST_F(RolloutTest, ReconcileEndpointStepsTheInFlightDeployment) {
  DeployFirst();
  EXPECT_TRUE(reconciler_->ReconcileEndpoint("churn").ok());  // nothing in flight
  absl::StatusOr<state::DeploymentRecord> d = Start({.model_ref = "churn:2"});
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(reconciler_->ReconcileEndpoint("churn").ok());
  EXPECT_EQ(store_->GetDeployment(d->id)->state, "promoted");
}

}  // namespace
}  // namespace ferry::controller
