#include "ferry/monitor/monitor.h"

#include <chrono>

#include "ferry/common/fs.h"
#include "ferry/monitor/dataset.h"
#include "ferry/monitor/internal/test_util.h"
#include "ferry/monitor/labels.h"
#include "ferry/monitor/window.h"
#include "ferry/state/sqlite_state_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::monitor {
namespace {

using nlohmann::json;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000 - 8 * 3600);  // 2027-01-15T00:00Z

json Schema() {
  return json::parse(R"([{"name":"tenure","type":"int64"},{"name":"plan","type":"string"},
                         {"name":"charges","type":"float64"},{"name":"tickets","type":"int64"}])");
}

// 1000 training rows: tenure 0..49, plan basic/pro 60/40, charges 20..99.9, tickets 0..4.
data::Table Training() {
  data::Table t;
  t.AddColumn("tenure", data::ColumnType::kInt64);
  t.AddColumn("plan", data::ColumnType::kString);
  t.AddColumn("charges", data::ColumnType::kFloat64);
  t.AddColumn("tickets", data::ColumnType::kInt64);
  t.AddColumn("churned", data::ColumnType::kInt64);
  for (int i = 0; i < 1000; ++i) {
    t.FindMutable("tenure")->AppendInt(i % 50);
    t.FindMutable("plan")->AppendString(i % 5 < 3 ? "basic" : "pro");
    t.FindMutable("charges")->AppendDouble(20 + (i * 37 % 800) / 10.0);
    t.FindMutable("tickets")->AppendInt(i % 5);
    t.FindMutable("churned")->AppendInt(i % 2);
  }
  return t;
}

const json kOutput = json::parse(R"({"label":"1","probabilities":{"0":0.2,"1":0.8}})");

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir();
    ASSERT_FALSE(root_.empty());
    lake_ = testing::MakeLake(root_);
    auto store = state::SqliteStateStore::Open(root_ + "/state.db", clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    testing::WriteModel(*lake_, Training(), Schema());
  }
  const json* FindCheck(const json& report, const std::string& check, const json& feature,
                        const json& segment = nullptr) {
    for (const json& c : report["quality"]["checks"]) {
      if (c["check"] == check && c["feature"] == feature && c["segment"] == segment) return &c;
    }
    return nullptr;
  }
  std::string root_;
  FakeClock clock_{kNow + absl::Minutes(5)};
  std::unique_ptr<storage::LocalArtifactStore> lake_;
  std::unique_ptr<state::StateStore> store_;
};

// A week of traffic: charges drift (shifted up by 40 + 5 a day), tenure/plan/tickets as in
// training; accuracy falls by exactly 0.05 a day (0.95 on day 0).
void WriteWeek(storage::ArtifactStore& lake, std::string* labels_csv) {
  std::vector<std::string> lines;
  std::vector<absl::Time> times;
  *labels_csv = "transaction_id,churned\n";
  const absl::Time start = kNow - absl::Hours(24 * 7);
  for (int d = 0; d < 7; ++d) {
    const int correct = 200 - 10 - 10 * d;  // of 200: 0.95 - 0.05 d
    for (int i = 0; i < 200; ++i) {
      const int k = d * 200 + i;
      const std::string tx = fmt::format("tx-{}", k);
      json inputs = {{"tenure", i % 50},
                     {"plan", i % 5 < 3 ? "basic" : "pro"},
                     {"charges", 60 + 5 * d + (i * 37 % 400) / 10.0},
                     {"tickets", i % 5}};
      times.push_back(start + absl::Hours(24 * d) + absl::Seconds(i * 400));
      lines.push_back(testing::Record(tx, times.back(), inputs, kOutput));
      *labels_csv += fmt::format("{},{}\n", tx, i < correct ? 1 : 0);
    }
  }
  testing::WriteLog(lake, lines, times);
}

TEST_F(MonitorTest, SyntheticWeekDriftDegradationAndSchema) {
  std::string csv;
  WriteWeek(*lake_, &csv);
  ASSERT_TRUE(WriteFileAtomic(root_ + "/labels.csv", csv, false).ok());
  auto in =
      IngestLabels(*lake_, "churn", root_ + "/labels.csv", "transaction_id", "churned", clock_);
  ASSERT_TRUE(in.ok()) << in.status();
  ASSERT_EQ(in->rows, 1400);

  MonitorSpec spec{.endpoint = "churn", .segment_by = {"plan"}, .now = kNow};
  const auto t0 = std::chrono::steady_clock::now();
  auto out = RunMonitor(*store_, *lake_, spec, clock_, "tester");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LT(seconds, 10.0);
  const json& r = out->report;

  // Every top-level key, with its type.
  EXPECT_EQ(r["schema"], "ferry.monitor.report/1");
  EXPECT_EQ(r["id"], out->run.id);
  EXPECT_EQ(r["endpoint"], "churn");
  EXPECT_EQ(r["created"], "2027-01-15T00:05:00Z");
  EXPECT_EQ(r["status"], "alerted");
  EXPECT_EQ(r["window"]["from"], "2027-01-08T00:00:00Z");
  EXPECT_EQ(r["window"]["to"], "2027-01-15T00:00:00Z");
  EXPECT_EQ(r["window"]["days"], 7);
  EXPECT_EQ(r["baseline"]["kind"], "training");
  EXPECT_EQ(r["baseline"]["model"], "churn");
  EXPECT_EQ(r["baseline"]["version"], 7);
  EXPECT_EQ(r["baseline"]["rows"], 1000);
  ASSERT_EQ(r["models"].size(), 1u);
  EXPECT_EQ(r["models"][0]["rows"], 1400);
  EXPECT_EQ(r["rows"], 1400);
  EXPECT_EQ(r["labelled_rows"], 1400);
  EXPECT_TRUE(r["alerts"].is_array());
  EXPECT_TRUE(r["features"].is_array());
  EXPECT_TRUE(r["quality"].is_object());
  EXPECT_TRUE(r["performance"].is_object());

  // Drift: charges drifted and alerted, the others not.
  std::map<std::string, json> features;
  for (const json& f : r["features"]) features[f["name"]] = f;
  ASSERT_EQ(features.size(), 4u);
  EXPECT_EQ(features["charges"]["kind"], "numeric");
  EXPECT_EQ(features["plan"]["kind"], "categorical");
  EXPECT_GT(features["charges"]["drift"]["psi"].get<double>(), 0.2);
  EXPECT_LT(features["tenure"]["drift"]["psi"].get<double>(), 0.1);
  EXPECT_LT(features["plan"]["drift"]["psi"].get<double>(), 0.1);
  EXPECT_EQ(features["charges"]["daily"].size(), 7u);
  EXPECT_EQ(features["charges"]["daily"][0]["rows"], 200);
  EXPECT_EQ(features["charges"]["reference"]["count"], 1000);
  EXPECT_EQ(features["charges"]["current"]["count"], 1400);
  EXPECT_EQ(features["charges"]["reference"]["counts"].size() + 1,
            features["charges"]["reference"]["edges"].size());
  std::set<std::string> alerted;
  for (const json& a : r["alerts"]) {
    if (a["feature"].is_string()) alerted.insert(a["feature"]);
  }
  EXPECT_TRUE(alerted.count("charges"));
  EXPECT_FALSE(alerted.count("tenure"));
  EXPECT_FALSE(alerted.count("plan"));
  EXPECT_EQ(r["alerts"][0]["rule"], "psi > 0.2");
  EXPECT_THAT(r["alerts"][0]["message"].get<std::string>(),
              ::testing::HasSubstr("training profile of churn:7"));

  // Performance: daily accuracy and the known slope.
  const json& perf = r["performance"];
  EXPECT_EQ(perf["metric"], "accuracy");
  ASSERT_EQ(perf["daily"].size(), 7u);
  EXPECT_EQ(perf["daily"][0]["day"], "2027-01-08");
  EXPECT_EQ(perf["daily"][0]["n"], 200);
  EXPECT_NEAR(perf["daily"][0]["accuracy"].get<double>(), 0.95, 1e-12);
  EXPECT_NEAR(perf["daily"][6]["accuracy"].get<double>(), 0.65, 1e-12);
  EXPECT_NEAR(perf["trend"]["slope_per_day"].get<double>(), -0.05, 1e-9);
  EXPECT_EQ(perf["trend"]["days"], 7);
  EXPECT_EQ(perf["trend"]["ci95"].size(), 2u);
  ASSERT_EQ(perf["segments"].size(), 2u);
  EXPECT_EQ(perf["segments"][0]["segment"], "plan=basic");

  // Quality: nothing wrong here.
  EXPECT_EQ(r["quality"]["missing_columns"].size(), 0u);
  EXPECT_EQ(r["quality"]["new_columns"].size(), 0u);
  EXPECT_EQ(r["quality"]["type_errors"], 0);
  EXPECT_EQ(r["quality"]["stale"]["stale"], false);

  // The run and the files.
  EXPECT_TRUE(out->alerted);
  EXPECT_EQ(out->run.state, "alerted");
  EXPECT_EQ(out->run.kind, "MonitorRun");
  EXPECT_EQ(out->run.subject, "churn");
  json result = json::parse(out->run.result_json);
  EXPECT_EQ(result["rows"], 1400);
  EXPECT_EQ(result["alerts"], r["alerts"].size());
  const std::string key = "monitoring/churn/" + out->run.id + "/report.json";
  EXPECT_EQ(out->report_json, lake_->Uri(key));
  auto stored = lake_->Get(key);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(json::parse(*stored), r);
  auto html = lake_->Get("monitoring/churn/" + out->run.id + "/report.html");
  ASSERT_TRUE(html.ok());
  EXPECT_THAT(*html, ::testing::HasSubstr("<html"));
}

TEST_F(MonitorTest, EachQualityCheckFires) {
  std::vector<std::string> lines;
  std::vector<absl::Time> times;
  const absl::Time start = kNow - absl::Hours(24 * 3);
  for (int i = 0; i < 100; ++i) {
    json inputs = {{"tenure", 5},  // constant
                   {"plan", i % 2 ? json(nullptr) : json(i % 4 ? "basic" : "enterprise")},
                   {"charges", i == 7 ? json("abc") : json(20.0 + i)},  // one type error
                   {"coupon", "X1"}};                                   // new; tickets missing
    times.push_back(start + absl::Minutes(i));
    lines.push_back(testing::Record(fmt::format("q{}", i), times.back(), inputs, kOutput));
  }
  testing::WriteLog(*lake_, lines, times);
  auto rules = ParseAlertRules(
      "missing_rate>0.05,type_errors>0,unseen_categories>0,new_columns>0,missing_columns>0,"
      "stale_hours>24");
  ASSERT_TRUE(rules.ok());
  MonitorSpec spec{.endpoint = "churn",
                   .window = absl::Hours(24 * 7),
                   .alerts = *rules,
                   .segment_by = {"plan"},
                   .now = kNow};
  auto out = RunMonitor(*store_, *lake_, spec, clock_, "tester");
  ASSERT_TRUE(out.ok()) << out.status();
  const json& r = out->report;
  EXPECT_EQ(r["quality"]["missing_columns"], json::array({"tickets"}));
  EXPECT_EQ(r["quality"]["new_columns"], json::array({"coupon"}));
  EXPECT_EQ(r["quality"]["type_errors"], 1);
  EXPECT_EQ(r["quality"]["stale"]["stale"], true);
  EXPECT_NEAR(r["quality"]["stale"]["hours_since_last"].get<double>(), 72 - 99 / 60.0, 1e-6);
  EXPECT_EQ(r["performance"], nullptr);
  EXPECT_EQ(r["labelled_rows"], 0);

  const json* missing = FindCheck(r, "missing_columns", nullptr);
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ((*missing)["value"], 1);
  EXPECT_EQ((*missing)["passed"], false);
  const json* tickets = FindCheck(r, "missing_rate", "tickets");
  ASSERT_NE(tickets, nullptr);
  EXPECT_EQ((*tickets)["value"], 1.0);
  EXPECT_EQ((*tickets)["passed"], false);
  const json* newc = FindCheck(r, "new_columns", nullptr);
  ASSERT_NE(newc, nullptr);
  EXPECT_EQ((*newc)["passed"], false);
  const json* types = FindCheck(r, "type_errors", "charges");
  ASSERT_NE(types, nullptr);
  EXPECT_EQ((*types)["value"], 1);
  EXPECT_EQ((*types)["passed"], false);
  const json* spike = FindCheck(r, "missing_rate", "plan");
  ASSERT_NE(spike, nullptr);
  EXPECT_NEAR((*spike)["value"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR((*spike)["threshold"].get<double>(), 0.05, 1e-12);
  EXPECT_EQ((*spike)["passed"], false);
  const json* charges_missing = FindCheck(r, "missing_rate", "charges");
  ASSERT_NE(charges_missing, nullptr);
  EXPECT_NEAR((*charges_missing)["value"].get<double>(), 0.01, 1e-12);  // the type error's null
  EXPECT_EQ((*charges_missing)["passed"], true);
  const json* unseen = FindCheck(r, "unseen_categories", "plan");
  ASSERT_NE(unseen, nullptr);
  EXPECT_EQ((*unseen)["value"], 1);
  EXPECT_EQ((*unseen)["passed"], false);
  const json* constant = FindCheck(r, "constant", "tenure");
  ASSERT_NE(constant, nullptr);
  EXPECT_EQ((*constant)["value"], 1);
  EXPECT_EQ((*constant)["passed"], false);
  const json* not_constant = FindCheck(r, "constant", "charges");
  ASSERT_NE(not_constant, nullptr);
  EXPECT_EQ((*not_constant)["passed"], true);
  const json* stale = FindCheck(r, "stale_hours", nullptr);
  ASSERT_NE(stale, nullptr);
  EXPECT_EQ((*stale)["passed"], false);
  const json* seg = FindCheck(r, "missing_rate", "charges", "plan=basic");
  ASSERT_NE(seg, nullptr);
  EXPECT_EQ((*seg)["passed"], true);
  std::map<std::string, json> features;
  for (const json& f : r["features"]) features[f["name"]] = f;
  EXPECT_EQ(features["plan"]["quality"]["unseen_categories"], json::array({"enterprise"}));
  EXPECT_EQ(features["tenure"]["quality"]["constant"], true);
  EXPECT_EQ(features["charges"]["quality"]["type_errors"], 1);

  std::set<std::string> rules_fired;
  for (const json& a : r["alerts"]) rules_fired.insert(a["rule"]);
  EXPECT_EQ(rules_fired, (std::set<std::string>{"missing_rate > 0.05", "type_errors > 0",
                                                "unseen_categories > 0", "new_columns > 0",
                                                "missing_columns > 0", "stale_hours > 24"}));
  EXPECT_EQ(out->run.state, "alerted");
}

TEST_F(MonitorTest, NoTrafficPassesWithDefaultsAndIsStale) {
  ASSERT_TRUE(store_->CreateEndpoint({.name = "churn"}).ok());
  MonitorSpec spec{.endpoint = "churn", .now = kNow};
  auto out = RunMonitor(*store_, *lake_, spec, clock_, "tester");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->report["rows"], 0);
  EXPECT_EQ(out->report["status"], "passed");
  EXPECT_EQ(out->report["quality"]["stale"]["stale"], true);
  EXPECT_EQ(out->report["quality"]["stale"]["last_record"], nullptr);
  EXPECT_EQ(out->run.state, "passed");
}

TEST_F(MonitorTest, BadSpecAndFailedRun) {
  MonitorSpec bad{.endpoint = "../x", .now = kNow};
  EXPECT_EQ(RunMonitor(*store_, *lake_, bad, clock_, "t").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Neither an endpoint nor a log of that name: a typo, and no run is made.
  MonitorSpec unknown{.endpoint = "nosuch", .now = kNow};
  EXPECT_EQ(RunMonitor(*store_, *lake_, unknown, clock_, "t").status().code(),
            absl::StatusCode::kNotFound);
  std::string csv;
  WriteWeek(*lake_, &csv);
  MonitorSpec seg{.endpoint = "churn", .segment_by = {"region"}, .now = kNow};
  auto out = RunMonitor(*store_, *lake_, seg, clock_, "t");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), ::testing::HasSubstr("'region'"));
  auto runs = store_->ListJobs("MonitorRun", "churn", 0);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].state, "failed");
  EXPECT_THAT((*runs)[0].message, ::testing::HasSubstr("region"));
}

TEST_F(MonitorTest, InferenceDatasetWithAndWithoutLabels) {
  std::string csv;
  WriteWeek(*lake_, &csv);
  // A shadow record is left out of the dataset.
  testing::WriteLog(*lake_,
                    {testing::Record("tx-0", kNow - absl::Hours(1), {{"tenure", 1}}, kOutput,
                                     "churn", 8, "shadow")},
                    {kNow - absl::Hours(1)});
  auto all = InferenceDataset(*lake_, "churn", kNow - absl::Hours(48), kNow, false, "churned");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->num_rows(), 400u);
  EXPECT_EQ(all->ColumnNames(), (std::vector<std::string>{"charges", "plan", "tenure", "tickets",
                                                          "transaction_id", "model", "time"}));
  EXPECT_EQ(all->column("model").string_at(0), "churn:7");
  EXPECT_EQ(all->column("tenure").type(), data::ColumnType::kInt64);
  EXPECT_EQ(all->column("transaction_id").string_at(0), "tx-1000");

  auto none = InferenceDataset(*lake_, "churn", kNow - absl::Hours(48), kNow, true, "churned");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(
      WriteFileAtomic(root_ + "/l.csv", "transaction_id,churned\ntx-1000,1\ntx-1001,0\n", false)
          .ok());
  ASSERT_TRUE(
      IngestLabels(*lake_, "churn", root_ + "/l.csv", "transaction_id", "churned", clock_).ok());
  auto joined = InferenceDataset(*lake_, "churn", kNow - absl::Hours(48), kNow, true, "churned");
  ASSERT_TRUE(joined.ok()) << joined.status();
  ASSERT_EQ(joined->num_rows(), 2u);
  EXPECT_EQ(joined->column("churned").type(), data::ColumnType::kInt64);
  EXPECT_EQ(joined->column("churned").int_at(0), 1);
  EXPECT_EQ(joined->column("churned").int_at(1), 0);
  auto clash = InferenceDataset(*lake_, "churn", kNow - absl::Hours(48), kNow, true, "plan");
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MonitorTest, WindowTypesBySchemaAndKeepsTheRange) {
  std::string csv;
  WriteWeek(*lake_, &csv);
  auto w = ReadInferenceWindow(*lake_, "churn", kNow - absl::Hours(24), kNow, Schema());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->times.size(), 200u);
  EXPECT_EQ(w->inputs.num_rows(), 200u);
  EXPECT_EQ(w->inputs.column("charges").type(), data::ColumnType::kFloat64);
  EXPECT_EQ(w->models[0], "churn:7");
  EXPECT_EQ(w->modes[0], "live");
  EXPECT_EQ(w->outputs[0]["label"], "1");
  EXPECT_GE(w->segments, 1);
  for (absl::Time t : w->times) {
    EXPECT_GE(t, kNow - absl::Hours(24));
    EXPECT_LT(t, kNow);
  }
}

}  // namespace
}  // namespace ferry::monitor
