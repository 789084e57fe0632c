// `ferry init DIR`: scaffold a project that runs at once:
//   DIR/ferry.yaml, DIR/pipelines/train.yaml, DIR/steps/*.py (stdlib Python), DIR/.gitignore

#include <filesystem>

#include "ferry/cli/cli_common.h"
#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::cli {
namespace {

constexpr char kFerryYaml[] = R"(# The project's configuration: docs/pipeline.md#ferryyaml
name: {name}
# state: sqlite://.ferry/state.db    # the default: SQLite, relative to this folder
# lake: file://.ferry/lake           # the default: a local folder as the data lake
executor:
  kind: local
  max_parallel: 2
templates:
  small: {{ cpu: 1, memory: 2Gi, timeout: 10m, retries: 1, retry_backoff: 2s }}
)";

constexpr char kPipeline[] = R"(# A first pipeline: make data, fit a line, check it. Run it with
#   ferry run pipelines/train.yaml
# and again to see every task cached. Reference: docs/pipeline.md
description: make a data set, fit y = a*x + b, evaluate the fit
params:
  rows: 200
  noise: 0.5
steps:
  prepare:
    command: python3 steps/prepare.py
    files: [steps/prepare.py]
    template: small
  train:
    needs: [prepare]
    command: python3 steps/train.py
    files: [steps/train.py]
    template: small
  evaluate:
    needs: [prepare, train]
    command: python3 steps/evaluate.py
    files: [steps/evaluate.py]
    template: small
)";

constexpr char kPrepare[] =
    R"(# Writes data.csv to this task's output (the runner contract: docs/contract.md).
import csv, json, os, random

params = json.load(open(os.environ["FERRY_PARAMS"]))
out = os.environ["SM_OUTPUT_DATA_DIR"]
rng = random.Random(7)
with open(os.path.join(out, "data.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["x", "y"])
    for _ in range(int(params["rows"])):
        x = rng.uniform(0, 10)
        w.writerow([round(x, 4), round(3 * x + 2 + rng.gauss(0, float(params["noise"])), 4)])
print("wrote", params["rows"], "rows")
)";

constexpr char kTrain[] =
    R"(# Fits y = a*x + b by least squares on the `prepare` channel; saves the model.
import csv, json, os, shutil

rows = list(csv.DictReader(open(os.path.join(os.environ["SM_CHANNEL_PREPARE"], "data.csv"))))
xs = [float(r["x"]) for r in rows]
ys = [float(r["y"]) for r in rows]
n = len(xs)
mx, my = sum(xs) / n, sum(ys) / n
a = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
model = {"a": a, "b": my - a * mx}
path = os.path.join(os.environ["SM_MODEL_DIR"], "model.json")
json.dump(model, open(path, "w"))
shutil.copy(path, os.environ["SM_OUTPUT_DATA_DIR"])  # downstream tasks read it as a channel
print("model", model)
)";

constexpr char kEvaluate[] =
    R"(# Scores the model on the data; fails the task (and the run) if the fit is poor.
import csv, json, os, sys

model = json.load(open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "model.json")))
rows = list(csv.DictReader(open(os.path.join(os.environ["SM_CHANNEL_PREPARE"], "data.csv"))))
mse = sum((float(r["y"]) - (model["a"] * float(r["x"]) + model["b"])) ** 2 for r in rows) / len(rows)
json.dump({"mse": mse}, open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w"))
print("mse", round(mse, 4))
if mse > 5:
    open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w").write(f"mse {mse:.3f} > 5")
    sys.exit(1)
)";

absl::Status Write(const std::string& path, std::string_view text) {
  FERRY_RETURN_IF_ERROR(MakeDirs(std::filesystem::path(path).parent_path().string()));
  return WriteFileAtomic(path, text, false);
}

int InitMain(const std::string& dir) {
  std::string root = AbsolutePath(dir, std::filesystem::current_path().string());
  if (PathExists(root + "/ferry.yaml")) {
    return Fail(absl::AlreadyExistsError(
        fmt::format("{}/ferry.yaml exists: {} is already a ferry project", dir, dir)));
  }
  std::string name = std::filesystem::path(root).filename().string();
  if (!IsValidName(name)) name = "project";
  struct File {
    std::string path;
    std::string text;
  };
  std::vector<File> files = {
      {"ferry.yaml", fmt::format(kFerryYaml, fmt::arg("name", name))},
      {"pipelines/train.yaml", kPipeline},
      {"steps/prepare.py", kPrepare},
      {"steps/train.py", kTrain},
      {"steps/evaluate.py", kEvaluate},
      {".gitignore", ".ferry/\n__pycache__/\n"},
  };
  for (const File& f : files) {
    std::string path = root + "/" + f.path;
    if (PathExists(path)) continue;  // never overwrite the user's files
    if (absl::Status s = Write(path, f.text); !s.ok()) return Fail(s);
  }
  fmt::print("created project '{}' in {}\nnext:\n  cd {}\n  ferry run pipelines/train.yaml\n", name,
             dir, dir);
  return kExitOk;
}

}  // namespace

void RegisterInitCommand(CLI::App& app, GlobalOptions&, int& rc) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd =
      app.add_subcommand("init", "Create a project that runs: ferry.yaml, a pipeline, steps");
  cmd->add_option("dir", *dir, "Folder to create the project in")->required();
  cmd->callback([&rc, dir] { rc = InitMain(*dir); });
}

}  // namespace ferry::cli
