#include "ferry/batch/batch_job.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "ferry/audit/inference_log.h"
#include "ferry/batch/internal/engine.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/data/transform.h"
#include "ferry/model/bundle.h"
#include "ferry/state/kinds.h"
#include "ferry/state/sqlite_state_store.h"
#include "ferry/storage/local_artifact_store.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ferry::batch {
namespace {

using data::ColumnType;
using json = nlohmann::json;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "batch_job_test.XXXXXX";
    FERRY_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Raw customer rows: an id, a text plan, a tenure with nulls, charges, a 0/1 target.
data::Table RawRows(int n, uint64_t seed = 11) {
  data::Table t;
  t.AddColumn("customer", ColumnType::kString);
  t.AddColumn("plan", ColumnType::kString);
  t.AddColumn("tenure", ColumnType::kInt64);
  t.AddColumn("charges", ColumnType::kFloat64);
  t.AddColumn("churned", ColumnType::kInt64);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  const char* plans[] = {"basic", "pro", "team"};
  for (int i = 0; i < n; ++i) {
    const int p = static_cast<int>(rng() % 3);
    t.mutable_column(0).AppendString(fmt::format("c{}", i));
    t.mutable_column(1).AppendString(plans[p]);
    const int64_t months = static_cast<int64_t>(rng() % 72);
    if (i % 17 == 0) {
      t.mutable_column(2).AppendNull();
    } else {
      t.mutable_column(2).AppendInt(months);
    }
    const double c = 20 + 80 * u(rng);
    t.mutable_column(3).AppendDouble(c);
    const double score = 1.5 - 0.05 * static_cast<double>(months) + 0.02 * c - 0.8 * p + u(rng);
    t.mutable_column(4).AppendInt(score > 1.0 ? 1 : 0);
  }
  return t;
}

// The input rows of a batch: the raw rows without the target.
data::Table Inputs(int n, uint64_t seed = 11) {
  data::Table t = RawRows(n, seed);
  t.RemoveColumn("churned");
  return t;
}

std::string Zstd(std::string_view s) {
  std::string out(ZSTD_compressBound(s.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), s.data(), s.size(), 3));
  return out;
}

std::string Jsonl(const data::Table& t) {
  std::string out;
  for (const json& row : model::TableToInstances(t)) out += row.dump() + "\n";
  return out;
}

class BatchJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    project_ = tmp_.path() + "/project";
    ASSERT_TRUE(MakeDirs(project_ + "/data").ok());
    auto lake = storage::LocalArtifactStore::Open(tmp_.path() + "/lake");
    ASSERT_TRUE(lake.ok()) << lake.status();
    lake_ = std::move(*lake);
    auto store = state::SqliteStateStore::Open(tmp_.path() + "/state.db", clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);

    // Train a logistic model with a transform and register it as churn:1.
    auto ops = data::ParseOps(json::parse(R"([{"drop": ["customer"]},
        {"impute": {"tenure": "median"}}, {"one_hot": ["plan"]},
        {"standardize": ["tenure", "charges"]}])"));
    ASSERT_TRUE(ops.ok()) << ops.status();
    auto fitted = data::FitTransform(*ops, RawRows(400));
    ASSERT_TRUE(fitted.ok()) << fitted.status();
    auto m = model::FindModelType("logistic_regression")
                 ->Fit(fitted->train, {.target = "churned", .seed = 5, .threads = 1});
    ASSERT_TRUE(m.ok()) << m.status();
    auto dir = lake_->LocalPath("models/churn/1");
    ASSERT_TRUE(dir.ok());
    ASSERT_TRUE(MakeDirs(*dir + "/model").ok());
    ASSERT_TRUE((*m)->Save(*dir + "/model").ok());
    json meta = model::BundleMeta(**m, fitted->train, "churned", fitted->state);
    ASSERT_TRUE(WriteFileAtomic(*dir + "/model.json", meta.dump()).ok());
    auto v = store_->RegisterModelVersion(
        {.model = "churn", .artifact_uri = lake_->Uri("models/churn/1"), .actor = "test"});
    ASSERT_TRUE(v.ok()) << v.status();
    auto b = model::LoadBundle(*dir);
    ASSERT_TRUE(b.ok()) << b.status();
    bundle_ = std::move(*b);
  }

  // The serving answer for `rows`: {"label", "probabilities"} per row.
  json Served(const data::Table& rows) {
    absl::StatusOr<json> s =
        model::ScoreInstances(bundle_, {{"instances", model::TableToInstances(rows)}});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? (*s)["predictions"] : json::array();
  }

  absl::StatusOr<BatchResult> Run(const BatchSpec& spec, std::string* job_id = nullptr,
                                  const ProgressFn& progress = nullptr,
                                  const std::atomic<bool>* stop = nullptr) {
    FERRY_ASSIGN_OR_RETURN(state::JobRecord job,
                           SubmitBatchJob(*store_, *lake_, project_, spec, clock_, "test"));
    if (job_id != nullptr) *job_id = job.id;
    return RunBatchJob(*store_, *lake_, project_, job.id, clock_, progress, stop);
  }

  // Checks a scored CSV against serving: every input column unchanged, prediction and
  // probabilities equal to ScoreInstances exactly, a UUIDv7 per row, the model.
  void ExpectScoredCsv(const std::string& text, const data::Table& inputs) {
    auto read = data::ReadCsvString(
        text, {.types = {{"prediction", ColumnType::kString}, {"customer", ColumnType::kString}}});
    ASSERT_TRUE(read.ok()) << read.status();
    const data::Table& out = read->table;
    ASSERT_EQ(out.num_rows(), inputs.num_rows());
    EXPECT_EQ(out.ColumnNames(), (std::vector<std::string>{
                                     "customer", "plan", "tenure", "charges", "prediction",
                                     "probability_0", "probability_1", "transaction_id", "model"}));
    const json served = Served(inputs);
    std::set<std::string> ids;
    for (size_t r = 0; r < out.num_rows(); ++r) {
      ASSERT_EQ(out.column("customer").ToText(r), inputs.column("customer").ToText(r));
      ASSERT_EQ(out.column("tenure").ToText(r), inputs.column("tenure").ToText(r));
      ASSERT_EQ(out.column("prediction").ToText(r), served[r]["label"].get<std::string>());
      ASSERT_EQ(out.column("probability_0").float_at(r),
                served[r]["probabilities"]["0"].get<double>());
      ASSERT_EQ(out.column("probability_1").float_at(r),
                served[r]["probabilities"]["1"].get<double>());
      const std::string id(out.column("transaction_id").string_at(r));
      ASSERT_TRUE(IsUuid(id)) << id;
      ASSERT_EQ(id[14], '7') << id;
      ids.insert(id);
      ASSERT_EQ(out.column("model").string_at(r), "churn:1");
    }
    EXPECT_EQ(ids.size(), out.num_rows());
  }

  TempDir tmp_;
  FakeClock clock_{absl::FromUnixSeconds(1'795'000'000)};
  std::string project_;
  std::unique_ptr<storage::LocalArtifactStore> lake_;
  std::unique_ptr<state::StateStore> store_;
  model::Bundle bundle_;
};

TEST_F(BatchJobTest, CsvOutputEqualsServingExactly) {
  const data::Table in = Inputs(500);
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/a.csv", data::WriteCsvString(in)).ok());
  std::string id;
  auto r =
      Run({.model_ref = "churn", .inputs = {"data/*.csv"}, .output = "scores", .threads = 2}, &id);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->files.size(), 1u);
  EXPECT_EQ(r->files[0].input, project_ + "/data/a.csv");
  EXPECT_EQ(r->files[0].output, project_ + "/scores/a.csv");
  EXPECT_EQ(r->files[0].quarantine, "");
  EXPECT_EQ(r->rows, 500);
  EXPECT_EQ(r->scored, 500);
  EXPECT_EQ(r->bad, 0);
  auto text = ReadFile(project_ + "/scores/a.csv");
  ASSERT_TRUE(text.ok());
  ExpectScoredCsv(*text, in);

  auto job = store_->GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "completed");
  EXPECT_EQ(job->subject, "churn:1");
  EXPECT_EQ(json::parse(job->result_json)["scored"], 500);
  auto spec = BatchSpecFromJson(json::parse(job->spec_json));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->model, "churn");
  EXPECT_EQ(spec->model_version, 1);
  auto manifest = lake_->Get("batch/" + id + "/input-manifest.json");
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(json::parse(*manifest)["inputs"][0]["input"], project_ + "/data/a.csv");
}

TEST_F(BatchJobTest, JsonlZstdFromTheLakeToTheJobFolder) {
  const data::Table in = Inputs(300);
  ASSERT_TRUE(lake_->Put("incoming/2026-11-01.jsonl.zst", Zstd(Jsonl(in))).ok());
  std::string id;
  auto r = Run({.model_ref = "churn:1", .inputs = {"lake://incoming/2026-11-*.jsonl.zst"}}, &id);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->files.size(), 1u);
  EXPECT_EQ(r->files[0].input, "lake://incoming/2026-11-01.jsonl.zst");
  const std::string key = "batch/" + id + "/output/2026-11-01.jsonl.zst";
  EXPECT_EQ(r->files[0].output, "lake://" + key);
  auto z = lake_->Get(key);
  ASSERT_TRUE(z.ok()) << z.status();
  auto text = data::ZstdDecompress(*z, key);
  ASSERT_TRUE(text.ok()) << text.status();
  const json served = Served(in);
  std::istringstream lines(*text);
  std::string line;
  size_t n = 0;
  const json rows = model::TableToInstances(in);
  while (std::getline(lines, line)) {
    json o = json::parse(line);
    ASSERT_LT(n, rows.size());
    EXPECT_EQ(o["customer"], rows[n]["customer"]);
    EXPECT_EQ(o["tenure"], rows[n]["tenure"]);
    EXPECT_EQ(o["prediction"], served[n]["label"]);
    EXPECT_EQ(o["probability_1"].get<double>(), served[n]["probabilities"]["1"].get<double>());
    EXPECT_EQ(o["probability_0"].get<double>(), served[n]["probabilities"]["0"].get<double>());
    EXPECT_TRUE(IsUuid(o["transaction_id"].get<std::string>()));
    EXPECT_EQ(o["model"], "churn:1");
    ++n;
  }
  EXPECT_EQ(n, 300u);
}

TEST_F(BatchJobTest, CsvZstdOutputIsZstd) {
  const data::Table in = Inputs(200);
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/b.csv.zst", Zstd(data::WriteCsvString(in))).ok());
  auto r = Run({.model_ref = "churn", .inputs = {"data/b.csv.zst"}, .output = "out"});
  ASSERT_TRUE(r.ok()) << r.status();
  auto z = ReadFile(project_ + "/out/b.csv.zst");
  ASSERT_TRUE(z.ok());
  auto text = data::ZstdDecompress(*z, "b.csv.zst");
  ASSERT_TRUE(text.ok()) << text.status();
  ExpectScoredCsv(*text, in);
}

// 1000 rows, 3 bad ones: they go to the quarantine file with their line numbers, the rest is
// scored.
TEST_F(BatchJobTest, BadRowsAreQuarantinedWithLineNumbers) {
  std::string csv = data::WriteCsvString(Inputs(1000));
  std::vector<std::string> lines;
  std::istringstream ss(csv);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  // lines[0] is the header (file line 1); lines[i] is file line i + 1.
  lines[10] = "c9,pro,12,abc";          // line 11: not a number
  lines[20] = "c19,pro,12";             // line 21: a field short
  lines[30] = "c29,basic,twelve,50.5";  // line 31: not an int64
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/c.csv", text).ok());
  auto r = Run({.model_ref = "churn", .inputs = {"data/c.csv"}, .output = "out", .threads = 2});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rows, 1000);
  EXPECT_EQ(r->scored, 997);
  EXPECT_EQ(r->bad, 3);
  EXPECT_EQ(r->files[0].quarantine, project_ + "/out/_quarantine/c.csv.csv");
  auto q = data::ReadCsvFile(project_ + "/out/_quarantine/c.csv.csv",
                             {.types = {{"text", ColumnType::kString}}});
  ASSERT_TRUE(q.ok()) << q.status();
  ASSERT_EQ(q->table.num_rows(), 3u);
  EXPECT_EQ(q->table.column("line").int_at(0), 11);
  EXPECT_EQ(q->table.column("line").int_at(1), 21);
  EXPECT_EQ(q->table.column("line").int_at(2), 31);
  EXPECT_THAT(q->table.column("reason").ToText(0), HasSubstr("column 'charges': 'abc'"));
  EXPECT_THAT(q->table.column("reason").ToText(1), HasSubstr("expected 4 fields, found 3"));
  EXPECT_THAT(q->table.column("reason").ToText(2), HasSubstr("column 'tenure': 'twelve'"));
  EXPECT_EQ(q->table.column("text").ToText(0), "c9,pro,12,abc");
  auto out = data::ReadCsvFile(project_ + "/out/c.csv");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->table.num_rows(), 997u);
  EXPECT_EQ(out->table.column("customer").ToText(9), "c10");  // c9 left out
}

TEST_F(BatchJobTest, TooManyBadRowsFailTheFileAndCommitNoOutput) {
  std::string csv = data::WriteCsvString(Inputs(1000));
  std::vector<std::string> lines;
  std::istringstream ss(csv);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  for (int i = 1; i <= 20; ++i) lines[i * 10] = "x,pro,1,notanumber";
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/d.csv", text).ok());
  std::string id;
  // 20 of 1000 is 2%: more than the default 1%.
  auto r = Run({.model_ref = "churn", .inputs = {"data/d.csv"}, .output = "out"}, &id);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(project_ + "/data/d.csv"));
  EXPECT_THAT(r.status().message(), HasSubstr("20 of 1000 rows are bad"));
  EXPECT_FALSE(PathExists(project_ + "/out/d.csv"));
  EXPECT_TRUE(PathExists(project_ + "/out/_quarantine/d.csv.csv"));
  auto job = store_->GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "failed");
  EXPECT_THAT(job->message, HasSubstr("20 of 1000 rows are bad"));

  // A count threshold fails too, as soon as it is crossed.
  auto r2 = Run({.model_ref = "churn",
                 .inputs = {"data/d.csv"},
                 .output = "out2",
                 .bad_rows = {.max_bad_rows = 5, .max_bad_fraction = 1.0}});
  ASSERT_FALSE(r2.ok());
  EXPECT_THAT(r2.status().message(), HasSubstr("more than 5 bad rows"));
  EXPECT_FALSE(PathExists(project_ + "/out2/d.csv"));
}

TEST_F(BatchJobTest, ARerunOfTheSameJobSkipsCommittedOutputs) {
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/a.csv", data::WriteCsvString(Inputs(50))).ok());
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/b.csv", data::WriteCsvString(Inputs(60, 3))).ok());
  BatchSpec spec{.model_ref = "churn", .inputs = {"data/*.csv"}, .output = "out"};
  std::string id1, id2;
  auto r1 = Run(spec, &id1);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_FALSE(r1->files[0].skipped);
  auto before = ReadFile(project_ + "/out/a.csv");
  auto r2 = Run(spec, &id2);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(id1, id2);  // the same job, by its idempotency key
  ASSERT_EQ(r2->files.size(), 2u);
  EXPECT_TRUE(r2->files[0].skipped);
  EXPECT_TRUE(r2->files[1].skipped);
  EXPECT_EQ(r2->rows, 110);
  EXPECT_EQ(*ReadFile(project_ + "/out/a.csv"), *before);
}

TEST_F(BatchJobTest, AJobLeftRunningByADeadOwnerResumesAfterItsCommittedFile) {
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/a.csv", data::WriteCsvString(Inputs(50))).ok());
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/b.csv", data::WriteCsvString(Inputs(60, 3))).ok());
  auto job = SubmitBatchJob(*store_, *lake_, project_,
                            {.model_ref = "churn", .inputs = {"data/*.csv"}, .output = "out"},
                            clock_, "test");
  ASSERT_TRUE(job.ok()) << job.status();
  // A process that took the job, committed a.csv, and died.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  auto running = store_->TransitionJob({.id = job->id,
                                        .from = "queued",
                                        .to = "running",
                                        .expected_version = job->version,
                                        .reason = "test",
                                        .owner_pid = child,
                                        .owner_host = host});
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_TRUE(MakeDirs(project_ + "/out").ok());
  ASSERT_TRUE(WriteFileAtomic(project_ + "/out/a.csv", "committed before the crash\n").ok());
  BatchResult partial;
  partial.files.push_back({.input = project_ + "/data/a.csv",
                           .output = project_ + "/out/a.csv",
                           .rows = 50,
                           .scored = 50});
  ASSERT_TRUE(store_->SetJobResult(job->id, "running", BatchResultToJson(partial).dump()).ok());

  auto r = RunBatchJob(*store_, *lake_, project_, job->id, clock_, nullptr, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->files.size(), 2u);
  EXPECT_TRUE(r->files[0].skipped);
  EXPECT_FALSE(r->files[1].skipped);
  EXPECT_EQ(r->files[1].scored, 60);
  EXPECT_EQ(*ReadFile(project_ + "/out/a.csv"), "committed before the crash\n");
  EXPECT_TRUE(PathExists(project_ + "/out/b.csv"));
  auto done = store_->GetJob(job->id);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state, "completed");
  EXPECT_EQ(done->owner_pid, ::getpid());

  // A job run by a live process is refused.
  auto live = SubmitBatchJob(*store_, *lake_, project_,
                             {.model_ref = "churn", .inputs = {"data/a.csv"}, .output = "o3"},
                             clock_, "test");
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(store_
                  ->TransitionJob({.id = live->id,
                                   .from = "queued",
                                   .to = "running",
                                   .expected_version = live->version,
                                   .reason = "test",
                                   .owner_pid = ::getpid(),
                                   .owner_host = host})
                  .ok());
  auto refused = RunBatchJob(*store_, *lake_, project_, live->id, clock_, nullptr, nullptr);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(BatchJobTest, StopFinishesTheFileInHandThenResumes) {
  for (const char* f : {"a", "b", "c"}) {
    ASSERT_TRUE(WriteFileAtomic(fmt::format("{}/data/{}.csv", project_, f),
                                data::WriteCsvString(Inputs(40)))
                    .ok());
  }
  std::atomic<bool> stop{false};
  std::string id;
  std::vector<int> files_done;
  auto r = Run(
      {.model_ref = "churn", .inputs = {"data/*.csv"}, .output = "out"}, &id,
      [&](const BatchProgress& p) {
        files_done.push_back(p.files_done);
        if (p.files_done == 1) stop = true;
      },
      &stop);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(PathExists(project_ + "/out/a.csv"));
  EXPECT_FALSE(PathExists(project_ + "/out/b.csv"));
  auto job = store_->GetJob(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state, "stopped");
  EXPECT_FALSE(files_done.empty());

  auto resumed = RunBatchJob(*store_, *lake_, project_, id, clock_, nullptr, nullptr);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  ASSERT_EQ(resumed->files.size(), 3u);
  EXPECT_TRUE(resumed->files[0].skipped);
  EXPECT_FALSE(resumed->files[1].skipped);
  EXPECT_FALSE(resumed->files[2].skipped);
  EXPECT_EQ(store_->GetJob(id)->state, "completed");
}

TEST_F(BatchJobTest, MemoryStaysBoundedByTheChunks) {
  // 200k rows, chunks of 1000 rows on 2 threads: at most 2 x 2 chunks are held at once.
  const std::string path = tmp_.path() + "/big.csv";
  {
    std::string text = "customer,plan,tenure,charges\n";
    text.reserve(200000 * 24);
    for (int i = 0; i < 200000; ++i) {
      text +=
          fmt::format("c{},{},{},{}\n", i, i % 3 == 0 ? "pro" : "basic", i % 72, 20.5 + (i % 80));
    }
    ASSERT_TRUE(WriteFileAtomic(path, text, false).ok());
  }
  internal::ScoreFileOptions o{.input_path = path,
                               .display = path,
                               .output_path = tmp_.path() + "/big.out.csv",
                               .quarantine_path = tmp_.path() + "/big.bad.csv",
                               .threads = 2,
                               .chunk_rows = 1000,
                               .model_name = "churn",
                               .model_version = 1,
                               .clock = &clock_};
  auto stats = internal::ScoreFile(bundle_, o);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->rows, 200000);
  EXPECT_EQ(stats->scored, 200000);
  EXPECT_GT(stats->peak_buffered_rows, 0);
  EXPECT_LE(stats->peak_buffered_rows, 4000);
  auto out = data::ReadCsvFile(tmp_.path() + "/big.out.csv");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->table.num_rows(), 200000u);
  EXPECT_EQ(out->table.column("customer").ToText(199999), "c199999");
}

TEST_F(BatchJobTest, ScoredRowsGoToTheInferenceLogAtTheirTime) {
  data::Table in = Inputs(30);
  data::Column& ts = in.AddColumn("ts", ColumnType::kString);
  for (int i = 0; i < 30; ++i) {
    ts.AppendString(i < 15 ? "2026-11-27T10:15:00Z" : "1795762800");  // 2026-11-27T07:00Z
  }
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/l.csv", data::WriteCsvString(in)).ok());
  auto r = Run({.model_ref = "churn",
                .inputs = {"data/l.csv"},
                .output = "out",
                .log_endpoint = "churn",
                .time_column = "ts"});
  ASSERT_TRUE(r.ok()) << r.status();
  auto keys = audit::ListInferenceSegments(*lake_, "churn", absl::FromUnixSeconds(1795700000),
                                           absl::FromUnixSeconds(1795900000));
  ASSERT_TRUE(keys.ok()) << keys.status();
  std::vector<json> records;
  for (const std::string& k : *keys) {
    auto seg = audit::ReadInferenceSegment(*lake_, k);
    ASSERT_TRUE(seg.ok()) << seg.status();
    records.insert(records.end(), seg->begin(), seg->end());
  }
  ASSERT_EQ(records.size(), 30u);
  std::set<std::string> times;
  const json served = Served(Inputs(30));
  int checked = 0;
  for (const json& rec : records) {
    EXPECT_EQ(rec["mode"], "batch");
    EXPECT_EQ(rec["variant"], "batch");
    EXPECT_EQ(rec["endpoint"], "churn");
    EXPECT_EQ(rec["model"], json({{"name", "churn"}, {"version", 1}}));
    EXPECT_TRUE(IsUuid(rec["transaction_id"].get<std::string>()));
    EXPECT_TRUE(rec["inputs"].contains("charges"));
    times.insert(rec["time"].get<std::string>());
    if (rec["inputs"]["customer"] == "c0") {
      EXPECT_EQ(rec["outputs"], served[0]);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 1);
  EXPECT_EQ(times, (std::set<std::string>{"2026-11-27T10:15:00.000Z", "2026-11-27T07:00:00.000Z"}));
}

TEST_F(BatchJobTest, SubmissionChecksInputsAndModel) {
  auto none =
      SubmitBatchJob(*store_, *lake_, project_,
                     {.model_ref = "churn", .inputs = {"data/nothing-*.csv"}}, clock_, "test");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("data/nothing-*.csv"));
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/a.csv", "customer\n").ok());
  auto model = SubmitBatchJob(*store_, *lake_, project_,
                              {.model_ref = "nope", .inputs = {"data/a.csv"}}, clock_, "test");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteFileAtomic(project_ + "/data/a.txt", "x\n").ok());
  auto format = SubmitBatchJob(*store_, *lake_, project_,
                               {.model_ref = "churn", .inputs = {"data/a.txt"}}, clock_, "test");
  EXPECT_EQ(format.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(BatchSpec, RoundTripsThroughJson) {
  BatchSpec s{.model_ref = "churn:champion",
              .model = "churn",
              .model_version = 7,
              .inputs = {"lake://in/*.csv", "x.jsonl"},
              .output = "lake://scores",
              .threads = 3,
              .bad_rows = {.max_bad_rows = 5, .max_bad_fraction = 0.5},
              .log_endpoint = "churn",
              .time_column = "ts"};
  auto back = BatchSpecFromJson(BatchSpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(BatchSpecToJson(*back), BatchSpecToJson(s));
  EXPECT_EQ(back->bad_rows.max_bad_rows, 5);
  EXPECT_FALSE(BatchSpecFromJson(json{{"threads", "x"}}).ok());
}

TEST(FormatUuidV7, IsAValidTimeOrderedUuid) {
  uint64_t state = 42;
  char a[37] = {}, b[37] = {};
  internal::FormatUuidV7(1'795'000'000'000, &state, a);
  internal::FormatUuidV7(1'795'000'000'001, &state, b);
  EXPECT_TRUE(IsUuid(a));
  EXPECT_EQ(a[14], '7');
  EXPECT_THAT(std::string("89ab"), HasSubstr(std::string(1, a[19])));
  EXPECT_LT(std::string(a), std::string(b));
  EXPECT_EQ(std::string(a, 13), "01a1ee56-5e00");  // 1795000000000 ms = 0x01a1ee565e00
}

}  // namespace
}  // namespace ferry::batch
