// Malformed pipeline files (tests/fixtures/bad_pipelines) and the exact first error each must
// produce, plus files with several errors that must all be reported, and good pipelines that
// must parse into the right values.

#include <stdlib.h>

#include <ostream>
#include <string>
#include <vector>

#include "ferry/common/fs.h"
#include "ferry/config/pipeline_spec.h"
#include "gtest/gtest.h"

namespace ferry::config {
namespace {

const StepKindSchemas kCommandOnly = {{"command", {}}};

std::string Fixture(const std::string& name) {
  return std::string(FERRY_FIXTURES_DIR) + "/bad_pipelines/" + name;
}

ProjectConfig TestProject() {
  ProjectConfig project;
  project.root_dir = "/project";
  project.templates["small"].name = "small";
  project.templates["big"].name = "big";
  return project;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

struct BadCase {
  std::string file;
  std::string first_error;  // after "FILE:"
  StepKindSchemas kinds = kCommandOnly;
};

// Names the case in gtest's output instead of dumping its bytes.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.file; }

class BadPipelineTest : public testing::TestWithParam<BadCase> {};

TEST_P(BadPipelineTest, ReportsExactFirstError) {
  const BadCase& c = GetParam();
  std::string path = Fixture(c.file);
  Diagnostics diags;
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), c.kinds, &diags);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Lines(std::string(spec.status().message())).front(), path + ":" + c.first_error);
  // The structured copy holds the same errors as the message.
  EXPECT_EQ(diags.ToString(), std::string(spec.status().message()));
}

const StepKindSchemas kCommandAndSql = {{"command", {}}, {"sql", {.keys = {"connection"}}}};

INSTANTIATE_TEST_SUITE_P(
    Fixtures, BadPipelineTest,
    testing::Values(
        BadCase{"yaml_syntax.yaml", "4:8: error: invalid YAML: end of sequence flow not found"},
        BadCase{"unknown_top_key.yaml",
                "2:1: error: unknown top-level key 'stepz'; did you mean 'steps'?"},
        BadCase{"unknown_step_key.yaml",
                "3:5: error: unknown key 'comand' in step 'prepare'; did you mean 'command'?"},
        BadCase{"no_kind.yaml", "2:3: error: step 'prepare' has no kind: add one of: command"},
        BadCase{"two_kinds.yaml",
                "4:5: error: step 'extract' has more than one kind key (command, sql); keep "
                "exactly one",
                kCommandAndSql},
        BadCase{"other_kind_key.yaml",
                "4:5: error: key 'connection' is for sql steps, not command steps", kCommandAndSql},
        BadCase{"unknown_needs.yaml",
                "5:13: error: step 'train' needs unknown step 'prepar'; did you mean 'prepare'?"},
        BadCase{"cycle.yaml", "2:3: error: cycle in needs: a -> c -> b -> a"},
        BadCase{"self_need.yaml", "4:13: error: step 'a' needs itself"},
        BadCase{"bad_retries.yaml",
                "4:14: error: invalid retries in step 'train': must be a non-negative integer, "
                "got 'three'"},
        BadCase{"bad_timeout.yaml",
                "4:14: error: invalid timeout in step 'train': 'forever' is not a duration; "
                "write a number with a unit: 500ms, 30s, 10m, 2h, 1d"},
        BadCase{"bad_memory.yaml",
                "4:13: error: invalid memory in step 'train': unknown size unit 'xb' in '12xb'; "
                "use k, M, G, Ki, Mi, Gi, Ti"},
        BadCase{"unknown_template.yaml",
                "4:15: error: step 'train' uses unknown template 'huge'; known templates: big, "
                "small"},
        BadCase{"unresolved_param.yaml",
                "5:68: error: unknown parameter 'x' in {{ params.x }}; declared parameters: "
                "since"},
        BadCase{"unknown_run_var.yaml",
                "3:20: error: unknown run variable 'run.foo' in {{ run.foo }}; use run.id, "
                "run.date, run.ts or run.pipeline"},
        BadCase{"unclosed_template.yaml",
                "5:48: error: unclosed '{{'; close it with '}}', or write a literal '{{' as "
                "{{ '{{' }}"},
        BadCase{"bad_param_type.yaml",
                "3:12: error: param 'columns' must be a string, number or bool, got a list"},
        BadCase{"invalid_step_name.yaml",
                "2:3: error: invalid step name '-prepare': use letters, digits, '_', '-' and '.', "
                "starting with a letter, digit or '_' (at most 128 characters, no '..')"},
        BadCase{"steps_list.yaml",
                "3:3: error: steps must be a mapping of step names to steps (prepare: {command: "
                "...}), got a list"},
        BadCase{"duplicate_step.yaml", "4:3: error: duplicate key 'prepare' (first set on line 2)"},
        BadCase{"unquoted_template.yaml",
                "5:14: error: a value that starts with '{{' must be quoted, e.g. "
                "\"{{ params.x }}\"; unquoted, YAML reads it as a mapping"},
        BadCase{"block_template.yaml",
                "6:31: error: unknown parameter 'out' in {{ params.out }}; no parameters are "
                "declared (add them under params:)"}),
    [](const testing::TestParamInfo<BadCase>& info) {
      std::string name = info.param.file.substr(0, info.param.file.find('.'));
      return name;
    });

TEST(BadPipelineTest, ReportsEveryErrorOfAFileSortedByLine) {
  std::string path = Fixture("many_errors.yaml");
  Diagnostics diags;
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), kCommandOnly, &diags);
  ASSERT_FALSE(spec.ok());
  std::vector<std::string> expected = {
      "2:15: error: max_parallel must be a positive integer, got '0'",
      "5:3: error: invalid parameter name 'bad name': use letters, digits, '_', '-' and '.', "
      "starting with a letter, digit or '_' (at most 128 characters, no '..')",
      "9:10: error: invalid cpu in step 'prepare': must be a positive number of cores, got 'lots'",
      "10:12: error: invalid cache in step 'prepare': must be true or false, got 'maybe'",
      "13:13: error: env LIST in step 'prepare' must be a string, number or bool, got a list "
      "(write \"\" for an empty value)",
      "14:3: error: cycle in needs: train -> evaluate -> train",
      "16:36: error: unknown parameter 'n' in {{ params.n }}; declared parameters: since",
      "17:20: error: invalid retry_backoff in step 'train': 'soon' is not a duration; write a "
      "number with a unit: 500ms, 30s, 10m, 2h, 1d",
      "20:5: error: unknown key 'comand' in step 'evaluate'; did you mean 'command'?",
      "21:12: error: invalid files in step 'evaluate': must be a name or a list of names, got a "
      "mapping",
  };
  for (std::string& e : expected) e = path + ":" + e;
  EXPECT_EQ(Lines(std::string(spec.status().message())), expected);
  EXPECT_EQ(diags.size(), expected.size());
}

TEST(BadPipelineTest, MissingFileIsNamed) {
  std::string path = Fixture("does_not_exist.yaml");
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), kCommandOnly);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(), path + ": error: no such file");
}

TEST(BadPipelineTest, KindKeyUnknownToTheBinaryIsAnUnknownKey) {
  std::string path = Fixture("two_kinds.yaml");
  // With no `sql` kind registered, the sql key is merely an unknown key of a command step.
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), kCommandOnly);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().message(),
            path +
                ":4:5: error: unknown key 'sql' in step 'extract'; expected one of: command, "
                "needs, template, cpu, memory, gpu, timeout, retries, retry_backoff, "
                "retry_backoff_max, image, env, files, cache, description");
}

// Good pipelines are written to a fresh temp folder, never into the repository.
class GoodPipelineTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_pipeline_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).ok()); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, text, /*durable=*/false).ok());
    return path;
  }

  std::string dir_;
};

TEST_F(GoodPipelineTest, ParsesEveryField) {
  std::string path = Write("train.yaml", R"(name: churn-train
description: nightly churn model
params: { since: "{{ run.date }}", n: 10, rate: 0.5, dry: false, label: "7" }
max_parallel: 4
steps:
  prepare:
    command: python3 steps/prepare.py --since {{ params.since }}
    files: [steps/prepare.py, sql/extract.sql]
    template: small
    retries: 2
  train:
    needs: [prepare]
    command: ["python3", "steps/train.py", "--n", "{{ params.n }}", 3, 1.5, true]
    timeout: 30m
    memory: 2Gi
    cpu: 0.5
    gpu: 1
    env: { SEED: 42, MODE: fast }
    cache: false
    image: python:3.12
    retry_backoff: 2s
    retry_backoff_max: 1m
    description: fit the model
  report:
    needs: train
    files: report.py
    command: "echo {{ '{{' }} done"
)");
  Diagnostics diags;
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), kCommandOnly, &diags);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(diags.empty());
  EXPECT_EQ(spec->file, path);
  EXPECT_EQ(spec->name, "churn-train");
  EXPECT_EQ(spec->description, "nightly churn model");
  EXPECT_EQ(spec->max_parallel, 4);

  ASSERT_EQ(spec->params.size(), 5u);
  EXPECT_EQ(spec->params[0].name, "since");
  EXPECT_EQ(spec->params[0].default_value, nlohmann::json("{{ run.date }}"));
  EXPECT_EQ(spec->params[0].loc.line, 3);
  EXPECT_EQ(spec->params[0].loc.column, 11);
  EXPECT_EQ(spec->params[1].default_value, nlohmann::json(10));
  EXPECT_TRUE(spec->params[1].default_value.is_number_integer());
  EXPECT_EQ(spec->params[2].default_value, nlohmann::json(0.5));
  EXPECT_EQ(spec->params[3].default_value, nlohmann::json(false));
  EXPECT_EQ(spec->params[4].default_value, nlohmann::json("7"));  // quoted stays a string

  ASSERT_EQ(spec->steps.size(), 3u);
  const StepSpec& prepare = spec->steps[0];
  EXPECT_EQ(prepare.name, "prepare");
  EXPECT_EQ(prepare.loc.file, path);
  EXPECT_EQ(prepare.loc.line, 6);
  EXPECT_EQ(prepare.loc.column, 3);
  EXPECT_EQ(prepare.kind, "command");
  EXPECT_EQ(prepare.fields,
            nlohmann::json({{"command", "python3 steps/prepare.py --since {{ params.since }}"}}));
  EXPECT_EQ(prepare.field_locs.at("command").line, 7);
  EXPECT_EQ(prepare.field_locs.at("command").column, 14);
  EXPECT_EQ(prepare.files, (std::vector<std::string>{"steps/prepare.py", "sql/extract.sql"}));
  EXPECT_EQ(prepare.template_name, "small");
  EXPECT_EQ(prepare.overrides.retries, 2);
  EXPECT_FALSE(prepare.overrides.cpu.has_value());
  EXPECT_TRUE(prepare.needs.empty());
  EXPECT_EQ(prepare.cache, std::nullopt);  // the kind's default

  const StepSpec& train = spec->steps[1];
  EXPECT_EQ(train.needs, std::vector<std::string>{"prepare"});
  EXPECT_EQ(train.fields["command"],
            nlohmann::json::parse(R"(["python3", "steps/train.py", "--n", "{{ params.n }}", 3,
                                     1.5, true])"));
  EXPECT_EQ(train.overrides.timeout, absl::Minutes(30));
  EXPECT_EQ(train.overrides.memory_bytes, int64_t{2} << 30);
  EXPECT_EQ(train.overrides.cpu, 0.5);
  EXPECT_EQ(train.overrides.gpu, 1);
  EXPECT_EQ(train.overrides.env,
            (std::map<std::string, std::string>{{"MODE", "fast"}, {"SEED", "42"}}));
  EXPECT_EQ(train.cache, false);
  EXPECT_EQ(train.overrides.image, "python:3.12");
  EXPECT_EQ(train.overrides.retry_backoff, absl::Seconds(2));
  EXPECT_EQ(train.overrides.retry_backoff_max, absl::Minutes(1));
  EXPECT_EQ(train.description, "fit the model");

  const StepSpec& report = spec->steps[2];
  EXPECT_EQ(report.needs, std::vector<std::string>{"train"});
  EXPECT_EQ(report.files, std::vector<std::string>{"report.py"});
  EXPECT_EQ(report.fields["command"], "echo {{ '{{' }} done");

  EXPECT_EQ(spec->FindStep("train"), &spec->steps[1]);
  EXPECT_EQ(spec->FindStep("nope"), nullptr);
}

TEST_F(GoodPipelineTest, AKindValueNamingAStepBecomesANeed) {
  std::string path = Write("data.yaml", R"(steps:
  extract: { command: echo e }
  check: { validate: extract }
  features: { validate: check.train, needs: [extract] }
  typo: { validate: extrat }
  many: { validate: [extract, check.test] }
  bad: { validate: {a: 1} }
  eval: { validate: extract, on: features.test }
)");
  StepKindSchemas kinds = {
      {"command", {}}, {"validate", {.keys = {"on"}, .value_is_step = true, .step_keys = {"on"}}}};
  Diagnostics diags;
  PipelineSpec spec = ParsePipeline(path, TestProject(), kinds, &diags);
  ASSERT_EQ(spec.steps.size(), 7u);
  EXPECT_EQ(spec.steps[1].needs, (std::vector<std::string>{"extract"}));
  EXPECT_EQ(spec.steps[2].needs, (std::vector<std::string>{"check", "extract"}));  // part dropped
  // A list names several steps (whether the kind accepts several is the kind's own check).
  EXPECT_EQ(spec.steps[4].needs, (std::vector<std::string>{"extract", "check"}));
  // A step key of the kind (`on:`) names a step too.
  EXPECT_EQ(spec.steps[6].needs, (std::vector<std::string>{"extract", "features"}));
  ASSERT_EQ(diags.size(), 2u) << diags.ToString();
  // In the order found: the kind's value as it is parsed, the needs once every step is known.
  EXPECT_EQ(diags.items()[0].message,
            "invalid validate in step 'bad': must name the upstream step whose output it reads "
            "(e.g. validate: extract), got a mapping");
  EXPECT_EQ(diags.items()[1].message,
            "step 'typo' needs unknown step 'extrat'; did you mean 'extract'?");
  EXPECT_EQ(diags.items()[1].loc.line, 5);
}

TEST_F(GoodPipelineTest, KeepsFileOrderAndKindExtrasAndDefaultsTheNameToTheStem) {
  std::string path = Write("nightly.yaml", R"(steps:
  report: { command: echo r, needs: [train, extra, train] }
  train: { command: echo t, needs: prepare, workdir: out/train }
  prepare: { command: [echo, p] }
  extra: { command: echo e }
)");
  StepKindSchemas kinds = {{"command", {.keys = {"workdir"}}}};
  absl::StatusOr<PipelineSpec> spec = LoadPipeline(path, TestProject(), kinds);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "nightly");
  EXPECT_EQ(spec->max_parallel, 0);
  std::vector<std::string> names;
  for (const StepSpec& s : spec->steps) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"report", "train", "prepare", "extra"}));
  EXPECT_EQ(spec->steps[0].needs, (std::vector<std::string>{"train", "extra"}));  // deduplicated
  EXPECT_EQ(spec->steps[1].fields,
            nlohmann::json({{"command", "echo t"}, {"workdir", "out/train"}}));
  EXPECT_EQ(spec->steps[1].field_locs.at("workdir").line, 3);
  EXPECT_EQ(spec->steps[1].field_locs.at("workdir").column, 54);
  EXPECT_EQ(spec->steps[2].fields["command"], nlohmann::json::parse(R"(["echo", "p"])"));
  EXPECT_EQ(TopologicalOrder(*spec),
            (std::vector<std::string>{"prepare", "train", "extra", "report"}));
}

}  // namespace
}  // namespace ferry::config
