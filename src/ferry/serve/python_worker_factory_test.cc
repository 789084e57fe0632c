#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "ferry/serve/worker_pool.h"
#include "gtest/gtest.h"

namespace ferry::serve {
namespace {

using nlohmann::json;

// A Python model answering the probabilities {"0": 1 - p, "1": p} with p = x / 10, and failing
// to load unless FERRY_PROJECT_DIR is the folder the factory was given.
constexpr char kProbaModel[] = R"(import os
import ferry_model


class Proba(ferry_model.Model):
    def train(self, data, hyperparameters):
        pass

    def save(self, model_dir):
        pass

    def load(self, model_dir):
        if os.environ.get("FERRY_PROJECT_DIR") != os.getcwd():
            raise RuntimeError("FERRY_PROJECT_DIR is not the project folder")

    def predict(self, rows):
        return [{"0": 1 - r["x"] / 10, "1": r["x"] / 10} for r in rows]


if __name__ == "__main__":
    ferry_model.main(Proba)
)";

TEST(PythonWorkerFactoryTest, ServesInTheBuiltInsForm) {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "python_worker_factory_test.XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string dir = std::filesystem::canonical(tmpl).string();
  std::ofstream(dir + "/proba.py") << kProbaModel;
  std::filesystem::create_directories(dir + "/bundle/model");

  WorkerPoolOptions defaults;
  defaults.env = {{"PYTHONPATH", std::string(FERRY_SOURCE_DIR) + "/python"},
                  {"PYTHONDONTWRITEBYTECODE", "1"}};
  defaults.start_timeout = absl::Seconds(60);
  ServedModel m;
  m.model = "proba";
  m.version = 1;
  m.type = "python";
  m.folder = dir + "/bundle";
  m.meta = {{"type", "python"},
            {"command", "/usr/bin/python3 proba.py"},
            {"task", "binary"},
            {"classes", {"0", "1"}},
            {"input_schema", json::array({{{"name", "x"}, {"type", "float64"}}})}};
  ExternalPredictorFactory factory = PythonWorkerFactory(dir, defaults);
  {
    absl::StatusOr<std::shared_ptr<Predictor>> p = factory(m);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE((*p)->Ready());
    absl::StatusOr<json> out = (*p)->Predict(json::parse(R"([{"x": 2}, {"x": 8}])"));
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 2u);
    EXPECT_EQ((*out)[0]["label"], "0");
    EXPECT_DOUBLE_EQ((*out)[0]["probabilities"]["1"].get<double>(), 0.2);
    EXPECT_EQ((*out)[1]["label"], "1");
    EXPECT_DOUBLE_EQ((*out)[1]["probabilities"]["0"].get<double>(), 1 - 0.8);
    // A mistyped feature is the client's error, found before any worker sees it.
    out = (*p)->Predict(json::parse(R"([{"x": "many"}])"));
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  }
  m.meta.erase("command");
  absl::StatusOr<std::shared_ptr<Predictor>> p = factory(m);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::serve
