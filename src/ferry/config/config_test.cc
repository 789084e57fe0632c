// ferry.yaml loading, resource templates, retry delays, templating, diagnostics and the
// topological order. Files are written to a fresh temp folder per test.

#include <stdlib.h>

#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/config/diagnostics.h"
#include "ferry/config/pipeline_spec.h"
#include "ferry/config/project.h"
#include "ferry/config/resources.h"
#include "ferry/config/templating.h"
#include "gtest/gtest.h"

namespace ferry::config {
namespace {

class TempDirTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_config_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  // Writes `text` to `name` under the temp folder and returns its path.
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    size_t slash = path.rfind('/');
    EXPECT_TRUE(MakeDirs(path.substr(0, slash)).ok());
    EXPECT_TRUE(WriteFileAtomic(path, text, /*durable=*/false).ok());
    return path;
  }

  // The error message of loading a project whose ferry.yaml is `text`.
  std::string ProjectError(const std::string& text) {
    Write("ferry.yaml", text);
    absl::StatusOr<ProjectConfig> project = LoadProject(dir_);
    EXPECT_FALSE(project.ok());
    EXPECT_EQ(project.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(project.status().message());
  }

  std::string dir_;
};

// --- ferry.yaml ---------------------------------------------------------------------------------

using ProjectTest = TempDirTest;

TEST_F(ProjectTest, DefaultsWithoutFerryYaml) {
  absl::StatusOr<ProjectConfig> project = LoadProject(dir_);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->root_dir, dir_);
  EXPECT_EQ(project->file, "");
  EXPECT_EQ(project->name, dir_.substr(dir_.rfind('/') + 1));
  EXPECT_EQ(project->state_uri, "sqlite://" + dir_ + "/.ferry/state.db");
  EXPECT_EQ(project->lake_uri, "file://" + dir_ + "/.ferry/lake");
  EXPECT_EQ(project->executor.kind, "local");
  EXPECT_EQ(project->executor.max_parallel, 0);
  EXPECT_EQ(project->executor.kill_grace, absl::Seconds(10));
  EXPECT_TRUE(project->connections.empty());
  EXPECT_TRUE(project->templates.empty());
  EXPECT_EQ(project->params, nlohmann::json::object());
}

TEST_F(ProjectTest, EmptyFerryYamlGivesDefaults) {
  Write("ferry.yaml", "# nothing yet\n");
  absl::StatusOr<ProjectConfig> project = LoadProject(dir_);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->file, dir_ + "/ferry.yaml");
  EXPECT_EQ(project->state_uri, "sqlite://" + dir_ + "/.ferry/state.db");
}

TEST_F(ProjectTest, FullFerryYaml) {
  Write("ferry.yaml", R"(name: churn
state: postgresql://ferry@db.internal/ferry
lake: s3://ml-bucket/churn
executor: { kind: slurm, max_parallel: 8, kill_grace: 30s }
connections:
  crm: { uri: "sqlite://data/crm.db" }
  warehouse: postgresql://reader@wh/sales
params:
  since: "2026-01-01"
  limit: 1000
  ratio: 0.25
  full: true
templates:
  default: { retries: 1, env: { TZ: UTC } }
  small:
    cpu: 1
    memory: 512Mi
    gpu: 0
    timeout: 10m
    retries: 2
    retry_backoff: 5s
    retry_backoff_max: 2m
    image: python:3.12-slim
    env: { OMP_NUM_THREADS: 1 }
  big: { extends: small, cpu: 4, memory: 8Gi }
)");
  absl::StatusOr<ProjectConfig> project = LoadProject(dir_);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->name, "churn");
  EXPECT_EQ(project->file, dir_ + "/ferry.yaml");
  EXPECT_EQ(project->state_uri, "postgresql://ferry@db.internal/ferry");
  EXPECT_EQ(project->lake_uri, "s3://ml-bucket/churn");
  EXPECT_EQ(project->executor.kind, "slurm");
  EXPECT_EQ(project->executor.max_parallel, 8);
  EXPECT_EQ(project->executor.kill_grace, absl::Seconds(30));

  ASSERT_EQ(project->connections.size(), 2u);
  EXPECT_EQ(project->connections.at("crm").name, "crm");
  EXPECT_EQ(project->connections.at("crm").uri, "sqlite://" + dir_ + "/data/crm.db");
  EXPECT_EQ(project->connections.at("crm").loc.line, 6);
  EXPECT_EQ(project->connections.at("crm").loc.column, 3);
  EXPECT_EQ(project->connections.at("warehouse").uri, "postgresql://reader@wh/sales");

  EXPECT_EQ(project->params, nlohmann::json::parse(
                                 R"({"since": "2026-01-01", "limit": 1000, "ratio": 0.25,
                                     "full": true})"));

  ASSERT_EQ(project->templates.size(), 3u);
  const ResourceTemplate& small = project->templates.at("small");
  EXPECT_EQ(small.name, "small");
  EXPECT_EQ(small.extends, "");
  EXPECT_EQ(small.loc.line, 15);
  EXPECT_EQ(small.spec.cpu, 1.0);
  EXPECT_EQ(small.spec.memory_bytes, int64_t{512} << 20);
  EXPECT_EQ(small.spec.gpu, 0);
  EXPECT_EQ(small.spec.timeout, absl::Minutes(10));
  EXPECT_EQ(small.spec.retries, 2);
  EXPECT_EQ(small.spec.retry_backoff, absl::Seconds(5));
  EXPECT_EQ(small.spec.retry_backoff_max, absl::Minutes(2));
  EXPECT_EQ(small.spec.image, "python:3.12-slim");
  EXPECT_EQ(small.spec.env, (std::map<std::string, std::string>{{"OMP_NUM_THREADS", "1"}}));
  const ResourceTemplate& big = project->templates.at("big");
  EXPECT_EQ(big.extends, "small");
  EXPECT_EQ(big.spec.cpu, 4.0);
  EXPECT_EQ(big.spec.memory_bytes, int64_t{8} << 30);
  EXPECT_FALSE(big.spec.timeout.has_value());  // inherited only when resolved
}

TEST_F(ProjectTest, RelativeAndAbsoluteLocalUris) {
  Write("ferry.yaml", R"(state: sqlite://.ferry/other.db
lake: file://data/lake
connections:
  up: sqlite://../shared/up.db
  abs: { uri: "sqlite:///var/lib/crm.db" }
)");
  absl::StatusOr<ProjectConfig> project = LoadProject(dir_);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->state_uri, "sqlite://" + dir_ + "/.ferry/other.db");
  EXPECT_EQ(project->lake_uri, "file://" + dir_ + "/data/lake");
  std::string parent = dir_.substr(0, dir_.rfind('/'));
  EXPECT_EQ(project->connections.at("up").uri, "sqlite://" + parent + "/shared/up.db");
  EXPECT_EQ(project->connections.at("abs").uri, "sqlite:///var/lib/crm.db");

  Write("ferry.yaml", "state: sqlite:///var/lib/ferry//state.db\nlake: file:///srv/lake/\n");
  project = LoadProject(dir_);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->state_uri, "sqlite:///var/lib/ferry/state.db");
  EXPECT_EQ(project->lake_uri, "file:///srv/lake");
}

TEST_F(ProjectTest, RelativeRootDirIsMadeAbsolute) {
  absl::StatusOr<ProjectConfig> project = LoadProject(dir_ + "/sub/..");
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->root_dir, dir_);
}

TEST_F(ProjectTest, UnknownKeySuggestsTheClosestOne) {
  std::string file = dir_ + "/ferry.yaml";
  EXPECT_EQ(ProjectError("name: churn\nstat: sqlite://x.db\n"),
            file + ":2:1: error: unknown key 'stat' in ferry.yaml; did you mean 'state'?");
  EXPECT_EQ(ProjectError("colour: blue\n"),
            file +
                ":1:1: error: unknown key 'colour' in ferry.yaml; expected one of: name, state, "
                "lake, executor, connections, params, templates");
}

TEST_F(ProjectTest, ReportsEveryBadValueWithItsLocation) {
  std::string file = dir_ + "/ferry.yaml";
  std::string message = ProjectError(R"(executor:
  max_parallel: lots
  kill_grace: forever
  kind: local
  workers: 2
lake: /srv/lake
templates:
  small: { memory: 12xb, timeout: forever, retries: -1, cpu: 0 }
  big: { extends: smal, env: { A: [1] } }
  bad name: { cpu: 1 }
connections:
  crm: { url: "sqlite://crm.db" }
params:
  since: "{{ params.until }}"
)");
  EXPECT_EQ(message,
            file +
                ":2:17: error: max_parallel must be a non-negative integer (0 = one per core), "
                "got 'lots'\n" +
                file +
                ":3:15: error: invalid kill_grace: 'forever' is not a duration; write a "
                "number with a unit: 500ms, 30s, 10m, 2h, 1d\n" +
                file +
                ":5:3: error: unknown key 'workers' in executor; expected one of: kind, "
                "max_parallel, kill_grace\n" +
                file +
                ":6:7: error: unsupported lake '/srv/lake': use file://PATH (relative to "
                "the project, or file:///absolute/path) or s3://BUCKET/PREFIX\n" +
                file +
                ":8:20: error: invalid memory in template 'small': unknown size unit 'xb' "
                "in '12xb'; use k, M, G, Ki, Mi, Gi, Ti\n" +
                file +
                ":8:35: error: invalid timeout in template 'small': 'forever' is not a "
                "duration; write a number with a unit: 500ms, 30s, 10m, 2h, 1d\n" +
                file +
                ":8:53: error: invalid retries in template 'small': must be a non-negative "
                "integer, got '-1'\n" +
                file +
                ":8:62: error: invalid cpu in template 'small': must be a positive number "
                "of cores, got '0'\n" +
                file +
                ":9:19: error: template 'big' extends unknown template 'smal'; did you "
                "mean 'small'?\n" +
                file +
                ":9:35: error: env A in template 'big' must be a string, number or bool, "
                "got a list (write \"\" for an empty value)\n" +
                file +
                ":10:3: error: invalid template name 'bad name': use letters, digits, '_', "
                "'-' and '.', starting with a letter, digit or '_' (at most 128 "
                "characters, no '..')\n" +
                file + ":12:3: error: connection 'crm' has no uri\n" + file +
                ":12:10: error: unknown key 'url' in connection 'crm'; did you mean "
                "'uri'?\n" +
                file +
                ":14:11: error: a parameter's value cannot use {{ params.until }}: "
                "parameters may refer only to run.id, run.date, run.ts, run.pipeline and "
                "today");
}

TEST_F(ProjectTest, ExtendsCycleIsReportedOnceAtItsFirstTemplate) {
  std::string file = dir_ + "/ferry.yaml";
  EXPECT_EQ(ProjectError(R"(templates:
  base: { cpu: 1 }
  a: { extends: b }
  b: { extends: c }
  c: { extends: a }
  d: { extends: a }
  e: { extends: e }
)"),
            file +
                ":3:3: error: cycle in template extends: a -> b -> c -> a; remove one of the "
                "extends\n" +
                file + ":7:17: error: template 'e' extends itself");
}

TEST_F(ProjectTest, SyntaxErrorIsLocated) {
  EXPECT_EQ(ProjectError("name: churn\nexecutor: { kind: local\n"),
            dir_ + "/ferry.yaml:3:1: error: invalid YAML: end of map flow not found");
}

TEST_F(ProjectTest, FindProjectWalksUpToTheNearestFerryYaml) {
  Write("ferry.yaml", "name: outer\n");
  std::string pipeline = Write("pipelines/deep/train.yaml", "steps: {}\n");
  absl::StatusOr<ProjectConfig> project = FindProject(pipeline, "/nonexistent");
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->name, "outer");
  EXPECT_EQ(project->root_dir, dir_);

  project = FindProject(dir_ + "/pipelines/deep", "/nonexistent");
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->root_dir, dir_);
}

TEST_F(ProjectTest, FindProjectFallsBackWithDefaults) {
  // /tmp has no ferry.yaml above it (a test machine would be odd to have one there).
  ASSERT_FALSE(PathExists("/tmp/ferry.yaml"));
  ASSERT_FALSE(PathExists("/ferry.yaml"));
  std::string pipeline = Write("train.yaml", "steps: {}\n");
  std::string fallback = dir_ + "/fallback";
  absl::StatusOr<ProjectConfig> project = FindProject(pipeline, fallback);
  ASSERT_TRUE(project.ok()) << project.status();
  EXPECT_EQ(project->root_dir, fallback);
  EXPECT_EQ(project->file, "");
  EXPECT_EQ(project->state_uri, "sqlite://" + fallback + "/.ferry/state.db");
}

// --- resource templates -------------------------------------------------------------------------

ProjectConfig ProjectWithTemplates() {
  ProjectConfig project;
  auto add = [&](const std::string& name, const std::string& extends, ResourceSpec spec) {
    project.templates[name] = ResourceTemplate{name, extends, std::move(spec), SourceLoc{}};
  };
  ResourceSpec defaults;
  defaults.retries = 1;
  defaults.timeout = absl::Hours(1);
  defaults.env = {{"TZ", "UTC"}, {"MODE", "default"}};
  add("default", "", defaults);
  ResourceSpec small;
  small.cpu = 1;
  small.memory_bytes = 512 << 20;
  small.timeout = absl::Minutes(10);
  small.env = {{"MODE", "small"}, {"THREADS", "1"}};
  add("small", "", small);
  ResourceSpec big;
  big.cpu = 4;
  big.env = {{"THREADS", "4"}};
  add("big", "small", big);
  ResourceSpec gpu;
  gpu.gpu = 1;
  gpu.image = "cuda:12";
  add("gpu", "big", gpu);
  return project;
}

TEST(ResolveTemplateTest, EmptyNameGivesBuiltinsAndDefault) {
  absl::StatusOr<Resources> r = ResolveTemplate(ProjectWithTemplates(), "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cpu, 1);
  EXPECT_EQ(r->memory_bytes, 0);
  EXPECT_EQ(r->retries, 1);
  EXPECT_EQ(r->timeout, absl::Hours(1));
  EXPECT_EQ(r->retry_backoff, absl::Seconds(1));
  EXPECT_EQ(r->retry_backoff_max, absl::Minutes(5));
  EXPECT_EQ(r->env, (std::map<std::string, std::string>{{"MODE", "default"}, {"TZ", "UTC"}}));
}

TEST(ResolveTemplateTest, BuiltinsOnlyWithoutTemplates) {
  absl::StatusOr<Resources> r = ResolveTemplate(ProjectConfig{}, "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cpu, 1);
  EXPECT_EQ(r->gpu, 0);
  EXPECT_EQ(r->retries, 0);
  EXPECT_EQ(r->timeout, absl::ZeroDuration());
  EXPECT_TRUE(r->env.empty());
  EXPECT_EQ(r->image, "");
}

TEST(ResolveTemplateTest, DefaultThenExtendsChainBaseFirstThenNamed) {
  absl::StatusOr<Resources> r = ResolveTemplate(ProjectWithTemplates(), "gpu");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cpu, 4);                      // big over small
  EXPECT_EQ(r->memory_bytes, 512 << 20);     // from small
  EXPECT_EQ(r->timeout, absl::Minutes(10));  // small over default
  EXPECT_EQ(r->retries, 1);                  // from default
  EXPECT_EQ(r->gpu, 1);                      // gpu itself
  EXPECT_EQ(r->image, "cuda:12");
  EXPECT_EQ(r->env, (std::map<std::string, std::string>{
                        {"MODE", "small"}, {"THREADS", "4"}, {"TZ", "UTC"}}));
}

TEST(ResolveTemplateTest, StepOverridesComeLast) {
  absl::StatusOr<Resources> r = ResolveTemplate(ProjectWithTemplates(), "big");
  ASSERT_TRUE(r.ok()) << r.status();
  ResourceSpec step;
  step.memory_bytes = int64_t{2} << 30;
  step.retries = 0;
  step.env = {{"MODE", "step"}};
  MergeInto(step, &*r);
  EXPECT_EQ(r->cpu, 4);
  EXPECT_EQ(r->memory_bytes, int64_t{2} << 30);
  EXPECT_EQ(r->retries, 0);  // an explicit zero replaces, unset would inherit
  EXPECT_EQ(r->timeout, absl::Minutes(10));
  EXPECT_EQ(r->env, (std::map<std::string, std::string>{
                        {"MODE", "step"}, {"THREADS", "4"}, {"TZ", "UTC"}}));
}

TEST(ResolveTemplateTest, UnknownTemplateNamesTheKnownOnes) {
  absl::StatusOr<Resources> r = ResolveTemplate(ProjectWithTemplates(), "huge");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "unknown template 'huge'; known templates: big, default, gpu, "
            "small");
  r = ResolveTemplate(ProjectConfig{}, "small");
  EXPECT_EQ(r.status().message(), "unknown template 'small': ferry.yaml defines no templates");
}

TEST(ResolveTemplateTest, CycleInAHandBuiltProjectIsAnError) {
  ProjectConfig project;
  project.templates["a"] = ResourceTemplate{"a", "b", {}, {}};
  project.templates["b"] = ResourceTemplate{"b", "a", {}, {}};
  EXPECT_EQ(ResolveTemplate(project, "a").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RetryDelayTest, DoublesUpToTheCap) {
  Resources r;
  r.retry_backoff = absl::Seconds(1);
  r.retry_backoff_max = absl::Seconds(5);
  EXPECT_EQ(RetryDelay(r, 0), absl::ZeroDuration());
  EXPECT_EQ(RetryDelay(r, 1), absl::Seconds(1));
  EXPECT_EQ(RetryDelay(r, 2), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(r, 3), absl::Seconds(4));
  EXPECT_EQ(RetryDelay(r, 4), absl::Seconds(5));
  EXPECT_EQ(RetryDelay(r, 1000), absl::Seconds(5));
  r.retry_backoff = absl::Seconds(10);  // a first delay above the cap is capped too
  EXPECT_EQ(RetryDelay(r, 1), absl::Seconds(5));
}

// --- templating ---------------------------------------------------------------------------------

TEST(TemplatingTest, FindsReferencesWithOffsets) {
  absl::StatusOr<std::vector<TemplateRef>> refs =
      FindTemplateRefs("a {{params.x}} b {{  run.id }}{{ '{{' }}");
  ASSERT_TRUE(refs.ok()) << refs.status();
  ASSERT_EQ(refs->size(), 3u);
  EXPECT_EQ((*refs)[0].offset, 2u);
  EXPECT_EQ((*refs)[0].expr, "params.x");
  EXPECT_EQ((*refs)[1].offset, 17u);
  EXPECT_EQ((*refs)[1].expr, "run.id");
  EXPECT_EQ((*refs)[2].offset, 30u);
  EXPECT_EQ((*refs)[2].expr, "'{{'");
  EXPECT_TRUE(FindTemplateRefs("no braces } here }}")->empty());
}

TEST(TemplatingTest, UnclosedBracesNameTheirOffset) {
  absl::StatusOr<std::vector<TemplateRef>> refs = FindTemplateRefs("ok {{ today }} then {{ x");
  EXPECT_EQ(refs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refs.status().message(),
            "at offset 20: unclosed '{{'; close it with '}}', or write a literal '{{' as "
            "{{ '{{' }}");
}

TEST(TemplatingTest, ChecksExpressions) {
  std::vector<std::string> params = {"since", "limit"};
  for (const char* ok :
       {"params.since", "run.id", "run.date", "run.ts", "run.pipeline", "today", "'{{'"}) {
    EXPECT_EQ(CheckTemplateExpr(ok, params), "") << ok;
  }
  EXPECT_EQ(CheckTemplateExpr("params.sinse", params),
            "unknown parameter 'sinse' in {{ params.sinse }}; did you mean 'since'?");
  EXPECT_EQ(CheckTemplateExpr("params.x", params),
            "unknown parameter 'x' in {{ params.x }}; declared parameters: since, limit");
  EXPECT_EQ(CheckTemplateExpr("params.x", {}),
            "unknown parameter 'x' in {{ params.x }}; no parameters are declared (add them under "
            "params:)");
  EXPECT_EQ(CheckTemplateExpr("run.foo", params),
            "unknown run variable 'run.foo' in {{ run.foo }}; use run.id, run.date, run.ts or "
            "run.pipeline");
  EXPECT_EQ(CheckTemplateExpr("now", params),
            "unknown template expression 'now' in {{ now }}; use params.NAME, run.id, run.date, "
            "run.ts, run.pipeline or today (a literal '{{' is written {{ '{{' }})");
  EXPECT_EQ(CheckTemplateExpr("", params),
            "empty template expression {{ }}; use params.NAME, run.id, run.date, run.ts, "
            "run.pipeline or today");
}

TemplateContext TestContext() {
  TemplateContext ctx;
  ctx.params = {{"since", "2026-01-01"}, {"n", 10}, {"rate", 0.5}, {"dry", false}};
  ctx.vars = {{"run.id", "r20261127-121700-3f9a1c"},
              {"run.date", "2026-11-27"},
              {"run.ts", "2026-11-27T12:17:00Z"},
              {"run.pipeline", "train"}};
  return ctx;
}

TEST(TemplatingTest, RendersValues) {
  absl::StatusOr<std::string> out = RenderTemplate(
      "--since {{ params.since }} --n {{params.n}} --rate {{ params.rate }} --dry "
      "{{ params.dry }} {{ run.pipeline }}/{{ run.id }} at {{ run.ts }} on {{ today }}",
      TestContext());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out,
            "--since 2026-01-01 --n 10 --rate 0.5 --dry false train/r20261127-121700-3f9a1c at "
            "2026-11-27T12:17:00Z on 2026-11-27");
  EXPECT_EQ(*RenderTemplate("plain text }} stays", TestContext()), "plain text }} stays");
}

TEST(TemplatingTest, RendersLiteralBraces) {
  EXPECT_EQ(*RenderTemplate("{{ '{{' }} x }}", TestContext()), "{{ x }}");
  EXPECT_EQ(*RenderTemplate("a{{'{{'}}b", TestContext()), "a{{b");
}

TEST(TemplatingTest, RenderErrorsNameExpressionAndOffset) {
  absl::StatusOr<std::string> out = RenderTemplate("x {{ params.nope }}", TestContext());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(),
            "at offset 2: unknown parameter 'nope' in {{ params.nope }}; declared parameters: "
            "dry, n, rate, since");
  out = RenderTemplate("{{ run.id }}", TemplateContext{});
  EXPECT_EQ(out.status().message(), "at offset 0: no value for 'run.id' in this context");
  out = RenderTemplate("abc {{ run.id", TestContext());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

// --- diagnostics --------------------------------------------------------------------------------

TEST(DiagnosticsTest, FormatsAndSortsByFileLineColumn) {
  EXPECT_EQ(FormatLoc(SourceLoc{"a.yaml", 3, 7}), "a.yaml:3:7");
  EXPECT_EQ(FormatLoc(SourceLoc{"a.yaml", 0, 0}), "a.yaml");
  Diagnostics diags;
  EXPECT_TRUE(diags.empty());
  EXPECT_TRUE(diags.ToStatus().ok());
  diags.Add(SourceLoc{"b.yaml", 1, 1}, "third");
  diags.Add(SourceLoc{"a.yaml", 10, 2}, "second");
  diags.Add(SourceLoc{"a.yaml", 2, 5}, "first");
  diags.Add(SourceLoc{"a.yaml", 0, 0}, "whole file");
  EXPECT_EQ(diags.size(), 4u);
  EXPECT_EQ(diags.items()[0].message, "third");  // items keep the order they were found in
  EXPECT_EQ(diags.ToString(),
            "a.yaml: error: whole file\n"
            "a.yaml:2:5: error: first\n"
            "a.yaml:10:2: error: second\n"
            "b.yaml:1:1: error: third");
  absl::Status status = diags.ToStatus();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), diags.ToString());
}

// --- topological order --------------------------------------------------------------------------

PipelineSpec SpecWithNeeds(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& steps) {
  PipelineSpec spec;
  for (const auto& [name, needs] : steps) {
    StepSpec step;
    step.name = name;
    step.needs = needs;
    spec.steps.push_back(step);
  }
  return spec;
}

TEST(TopologicalOrderTest, FileOrderWhenNoNeeds) {
  EXPECT_EQ(TopologicalOrder(SpecWithNeeds({{"c", {}}, {"a", {}}, {"b", {}}})),
            (std::vector<std::string>{"c", "a", "b"}));
}

TEST(TopologicalOrderTest, NeedsFirstThenFileOrder) {
  // d needs b and c; b needs a; c needs nothing.
  PipelineSpec spec = SpecWithNeeds({{"d", {"b", "c"}}, {"b", {"a"}}, {"c", {}}, {"a", {}}});
  EXPECT_EQ(TopologicalOrder(spec), (std::vector<std::string>{"c", "a", "b", "d"}));
}

TEST(TopologicalOrderTest, Diamond) {
  PipelineSpec spec = SpecWithNeeds({{"extract", {}},
                                     {"left", {"extract"}},
                                     {"right", {"extract"}},
                                     {"join", {"right", "left"}}});
  EXPECT_EQ(TopologicalOrder(spec), (std::vector<std::string>{"extract", "left", "right", "join"}));
}

TEST(TopologicalOrderTest, StepsOfACycleStillAppearOnce) {
  PipelineSpec spec = SpecWithNeeds({{"a", {"b"}}, {"b", {"a"}}, {"c", {}}});
  EXPECT_EQ(TopologicalOrder(spec), (std::vector<std::string>{"c", "a", "b"}));
}

}  // namespace
}  // namespace ferry::config
