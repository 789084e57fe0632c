#include "ferry/serve/worker_pool.h"

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace ferry::serve {
namespace {

using nlohmann::json;

// A ferry_model.Model configured by model/tiny.json: predicts x * scale, after sleeping `sleep`
// seconds per call; {"boom": true} in a row makes predict raise; mode "proba" answers class
// probabilities {"0": 1 - p, "1": p} with p = x / 10.
constexpr char kTinyModel[] = R"(import json, os, time
import ferry_model


class Tiny(ferry_model.Model):
    thread_safe = True

    def train(self, data, hyperparameters):
        pass

    def save(self, model_dir):
        pass

    def load(self, model_dir):
        with open(os.path.join(model_dir, "tiny.json")) as f:
            cfg = json.load(f)
        self.scale = cfg.get("scale", 1)
        self.sleep = cfg.get("sleep", 0)
        self.mode = cfg.get("mode", "value")

    def predict(self, rows):
        if self.sleep:
            time.sleep(self.sleep)
        out = []
        for r in rows:
            if r.get("boom"):
                raise RuntimeError("boom requested")
            if self.mode == "proba":
                p = r["x"] / 10
                out.append({"0": 1 - p, "1": p})
            else:
                out.append(r["x"] * self.scale)
        return out


if __name__ == "__main__":
    ferry_model.main(Tiny)
)";

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// Polls `cond` until it holds or `limit` passes; returns whether it held.
bool WaitFor(const std::function<bool()>& cond, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a poll interval, not a wait
  }
  return cond();
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 without one.
char StateOf(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  return paren == std::string::npos || paren + 2 >= text.size() ? 0 : text[paren + 2];
}

bool ProcessGone(int64_t pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "worker_pool_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    WriteText(dir_ + "/tiny.py", kTinyModel);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  WorkerPoolOptions Options(const json& config) {
    WriteText(dir_ + "/bundle/model/tiny.json", config.dump());
    WorkerPoolOptions o;
    o.command = "/usr/bin/python3 tiny.py";
    o.model_dir = dir_ + "/bundle/model";
    o.cwd = dir_;
    o.env = {{"PYTHONPATH", std::string(FERRY_SOURCE_DIR) + "/python"},
             {"PYTHONDONTWRITEBYTECODE", "1"}};
    o.start_timeout = absl::Seconds(60);
    o.health_every = absl::Milliseconds(200);
    o.backoff_initial = absl::Milliseconds(50);
    return o;
  }

  std::unique_ptr<WorkerPool> StartPool(WorkerPoolOptions o) {
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Start(std::move(o));
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(*pool) : nullptr;
  }

  std::string dir_;
};

TEST_F(WorkerPoolTest, PredictReturnsTheModelsPredictions) {
  std::unique_ptr<WorkerPool> pool = StartPool(Options({{"scale", 2}}));
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->Ready());
  std::vector<WorkerPool::WorkerInfo> workers = pool->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_GT(workers[0].pid, 0);
  EXPECT_GT(workers[0].port, 0);
  EXPECT_TRUE(workers[0].ready);
  EXPECT_EQ(workers[0].restarts, 0);

  absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 1}, {"x": 2.5}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json::parse("[2, 5.0]"));
  // Again, over the pooled connection.
  out = pool->Predict(json::parse(R"([{"x": 4}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json::parse("[8]"));
  EXPECT_EQ(pool->Workers()[0].outstanding, 0);
}

TEST_F(WorkerPoolTest, ConcurrentPredictsAllRight) {
  std::unique_ptr<WorkerPool> pool = StartPool(Options({{"scale", 3}}));
  ASSERT_NE(pool, nullptr);
  std::atomic<int> right{0}, wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int x = t * 1000 + i;
        absl::StatusOr<json> out = pool->Predict(json::array({{{"x", x}}, {{"x", x + 1}}}));
        if (out.ok() && *out == json::array({3 * x, 3 * (x + 1)})) {
          ++right;
        } else {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(right.load(), 8 * 25);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(WorkerPoolTest, WorkerClientErrorIsInvalidArgument) {
  std::unique_ptr<WorkerPool> pool = StartPool(Options({{"scale", 1}}));
  ASSERT_NE(pool, nullptr);
  absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 1}, 7])"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find("instance 1 is a int, expected an object"),
            absl::string_view::npos)
      << out.status();
  EXPECT_NE(out.status().message().find("400 bad_instance"), absl::string_view::npos)
      << out.status();
  // The worker is fine afterwards.
  out = pool->Predict(json::parse(R"([{"x": 6}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json::parse("[6]"));
}

TEST_F(WorkerPoolTest, PredictRaisingIsInternal) {
  std::unique_ptr<WorkerPool> pool = StartPool(Options({{"scale", 1}}));
  ASSERT_NE(pool, nullptr);
  absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 1, "boom": true}])"));
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(out.status().message().find("RuntimeError: boom requested"), absl::string_view::npos)
      << out.status();
  EXPECT_NE(out.status().message().find("500 prediction_failed"), absl::string_view::npos)
      << out.status();
  EXPECT_EQ(pool->Workers()[0].restarts, 0);  // a model error is not a dead worker
}

TEST_F(WorkerPoolTest, KilledWorkerIsRestarted) {
  std::unique_ptr<WorkerPool> pool = StartPool(Options({{"scale", 2}}));
  ASSERT_NE(pool, nullptr);
  const int64_t pid = pool->Workers()[0].pid;
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        WorkerPool::WorkerInfo w = pool->Workers()[0];
        return w.ready && w.pid != pid && w.pid != 0;
      },
      std::chrono::seconds(60)));
  WorkerPool::WorkerInfo w = pool->Workers()[0];
  EXPECT_EQ(w.restarts, 1);
  EXPECT_TRUE(ProcessGone(pid));  // reaped, not a zombie
  absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 5}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json::parse("[10]"));
}

TEST_F(WorkerPoolTest, RequestToAKilledWorkerGoesToAnother) {
  WorkerPoolOptions o = Options({{"scale", 2}});
  o.min_workers = 2;
  o.backoff_initial = absl::Seconds(30);  // the killed one stays down during the test
  o.health_every = absl::Seconds(30);     // and only a request notices
  std::unique_ptr<WorkerPool> pool = StartPool(std::move(o));
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(WaitFor([&] { return pool->Workers()[0].ready && pool->Workers()[1].ready; },
                      std::chrono::seconds(60)));
  // Every worker gets a pooled connection, then both workers die in turn.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool->Predict(json::parse(R"([{"x": 1}])")).ok());
  const int64_t victim = pool->Workers()[0].pid;
  ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
  // Dead (a zombie until the supervisor reaps it): its sockets are closed.
  ASSERT_TRUE(WaitFor([&] { return ProcessGone(victim) || StateOf(victim) == 'Z'; },
                      std::chrono::seconds(30)));
  int ok = 0;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 3}])"));
    ASSERT_TRUE(out.ok()) << out.status();
    ok += *out == json::parse("[6]");
  }
  EXPECT_EQ(ok, 4);
  EXPECT_TRUE(pool->Workers()[1].ready);
}

TEST_F(WorkerPoolTest, ScalesUpUnderLoad) {
  WorkerPoolOptions o = Options({{"scale", 1}, {"sleep", 0.05}});
  o.min_workers = 1;
  o.max_workers = 3;
  o.max_outstanding_per_worker = 2;
  std::unique_ptr<WorkerPool> pool = StartPool(std::move(o));
  ASSERT_NE(pool, nullptr);
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t) {
    threads.emplace_back([&, t] {
      while (!done.load()) {
        absl::StatusOr<json> out = pool->Predict(json::array({{{"x", t}}}));
        if (!out.ok() || *out != json::array({t})) ++wrong;
      }
    });
  }
  const bool scaled = WaitFor(
      [&] {
        int ready = 0;
        for (const WorkerPool::WorkerInfo& w : pool->Workers()) ready += w.ready;
        return ready >= 2;
      },
      std::chrono::seconds(60));
  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(scaled);
  EXPECT_GE(pool->Workers().size(), 2u);
  EXPECT_LE(pool->Workers().size(), 3u);
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(WorkerPoolTest, ScalesDownToMinWhenIdle) {
  WorkerPoolOptions o = Options({{"scale", 1}, {"sleep", 0.05}});
  o.max_workers = 2;
  o.max_outstanding_per_worker = 1;
  o.idle_scale_down = absl::Milliseconds(500);
  std::unique_ptr<WorkerPool> pool = StartPool(std::move(o));
  ASSERT_NE(pool, nullptr);
  std::vector<std::thread> threads;
  std::atomic<bool> done{false};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      while (!done.load()) (void)pool->Predict(json::parse(R"([{"x": 1}])"));
    });
  }
  const bool up = WaitFor([&] { return pool->Workers().size() == 2; }, std::chrono::seconds(60));
  const int64_t second = up ? pool->Workers()[1].pid : 0;
  done = true;
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(up);
  ASSERT_TRUE(WaitFor([&] { return pool->Workers().size() == 1; }, std::chrono::seconds(60)));
  // The retired worker is stopped and reaped, when it had started at all.
  if (second != 0) {
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(second); }, std::chrono::seconds(30)));
  }
  absl::StatusOr<json> out = pool->Predict(json::parse(R"([{"x": 2}])"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, json::parse("[2]"));
}

TEST_F(WorkerPoolTest, DestructionLeavesNoChildProcess) {
  WorkerPoolOptions o = Options({{"scale", 1}});
  o.min_workers = 2;
  std::unique_ptr<WorkerPool> pool = StartPool(std::move(o));
  ASSERT_NE(pool, nullptr);
  ASSERT_TRUE(WaitFor([&] { return pool->Workers()[0].ready && pool->Workers()[1].ready; },
                      std::chrono::seconds(60)));
  ASSERT_TRUE(pool->Predict(json::parse(R"([{"x": 1}])")).ok());  // a pooled connection open
  std::vector<int64_t> pids;
  for (const WorkerPool::WorkerInfo& w : pool->Workers()) pids.push_back(w.pid);
  ASSERT_EQ(pids.size(), 2u);
  pool.reset();
  for (int64_t pid : pids) {
    EXPECT_GT(pid, 0);
    EXPECT_TRUE(ProcessGone(pid)) << "pid " << pid;
  }
}

TEST_F(WorkerPoolTest, StartFailsWithTheWorkersStderr) {
  WriteText(dir_ + "/broken.py", "import no_such_module_here\n");
  WorkerPoolOptions o = Options({{"scale", 1}});
  o.command = "/usr/bin/python3 broken.py";
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Start(std::move(o));
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(pool.status().message().find("No module named 'no_such_module_here'"),
            absl::string_view::npos)
      << pool.status();
  EXPECT_NE(pool.status().message().find("exited with status 1"), absl::string_view::npos)
      << pool.status();
}

TEST_F(WorkerPoolTest, StartRejectsBadOptions) {
  WorkerPoolOptions o = Options({{"scale", 1}});
  o.min_workers = 3;
  o.max_workers = 2;
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Start(std::move(o));
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::serve
