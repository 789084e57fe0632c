#include "ferry/exec/local_executor.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "ferry/common/fs.h"
#include "gtest/gtest.h"

namespace ferry::exec {
namespace {

// True once `pid` is gone or a zombie, polled for up to 5 s: a killed process dies when it is
// next scheduled, and its reaper may be slower still.
bool WaitUntilDead(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    auto s = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    if (!s.ok()) return true;
    size_t close = s->rfind(')');
    if (close != std::string::npos && s->at(close + 2) == 'Z') return true;
    ::usleep(10'000);
  }
  return false;
}

class LocalExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_exec_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override { (void)RemoveAll(dir_); }

  LaunchSpec Sh(const std::string& script) {
    LaunchSpec spec;
    spec.label = "test";
    spec.argv = {"/bin/sh", "-c", script};
    spec.cwd = dir_;
    spec.log_path = dir_ + "/log.txt";
    return spec;
  }

  // Waits (bounded) until `n` exits have been reported.
  std::vector<ExitInfo> WaitFor(LocalExecutor& exec, size_t n) {
    std::vector<ExitInfo> all;
    for (int i = 0; i < 200 && all.size() < n; ++i) {
      auto exits = exec.Wait(absl::Milliseconds(100));
      EXPECT_TRUE(exits.ok()) << exits.status();
      for (auto& e : *exits) all.push_back(e);
    }
    return all;
  }

  std::string dir_;
};

TEST_F(LocalExecutorTest, ReportsExitCodeAndWritesLog) {
  LocalExecutor exec;
  LaunchSpec spec = Sh("echo out; echo err >&2; echo \"$GREETING\"; pwd; exit 3");
  spec.env["GREETING"] = "hello";
  auto h = exec.Launch(spec);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(exec.live(), 1);
  auto exits = WaitFor(exec, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].handle, *h);
  EXPECT_EQ(exits[0].exit_code, 3);
  EXPECT_EQ(exits[0].signal, 0);
  EXPECT_EQ(exec.live(), 0);
  EXPECT_EQ(*ReadFile(dir_ + "/log.txt"), "out\nerr\nhello\n" + dir_ + "\n");
}

TEST_F(LocalExecutorTest, MissingProgramIsNotFound) {
  LocalExecutor exec;
  LaunchSpec spec = Sh("");
  spec.argv = {"ferry-no-such-program-xyz"};
  auto h = exec.Launch(spec);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(h.status().message()).find("ferry-no-such-program-xyz"), std::string::npos);
}

TEST_F(LocalExecutorTest, TerminateEscalatesToSigkillWhenTermIsIgnored) {
  LocalExecutor exec;
  // The task ignores SIGTERM and tells us when it is ready to receive it.
  auto h = exec.Launch(Sh("trap '' TERM; echo ready > ready; while :; do :; done"));
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 1000 && !PathExists(dir_ + "/ready"); ++i)
    (void)exec.Wait(absl::Milliseconds(5));
  ASSERT_TRUE(PathExists(dir_ + "/ready"));
  ASSERT_TRUE(exec.Terminate(*h, absl::Milliseconds(200)).ok());
  auto exits = WaitFor(exec, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].signal, SIGKILL);
  EXPECT_EQ(exits[0].exit_code, 128 + SIGKILL);
}

TEST_F(LocalExecutorTest, TerminateStopsACooperativeTaskWithSigterm) {
  LocalExecutor exec;
  auto h = exec.Launch(Sh("echo ready > ready; exec sleep 30"));
  ASSERT_TRUE(h.ok());
  for (int i = 0; i < 1000 && !PathExists(dir_ + "/ready"); ++i)
    (void)exec.Wait(absl::Milliseconds(5));
  ASSERT_TRUE(exec.Terminate(*h, absl::Seconds(20)).ok());
  auto exits = WaitFor(exec, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].signal, SIGTERM);
}

TEST_F(LocalExecutorTest, LeftoverChildrenOfATaskAreKilled) {
  LocalExecutor exec;
  auto h = exec.Launch(Sh("sleep 60 & echo $! > bg.pid; exit 0"));
  ASSERT_TRUE(h.ok());
  auto exits = WaitFor(exec, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].exit_code, 0);
  pid_t bg = std::stoi(*ReadFile(dir_ + "/bg.pid"));
  // The background sleep got SIGKILL along with the rest of the task's group.
  bool gone = WaitUntilDead(bg);
  EXPECT_TRUE(gone) << "background child " << bg << " survived its task";
}

TEST_F(LocalExecutorTest, TasksDieWithTheirOwner) {
  // A child process plays `ferry run`: it launches a long task, records its pid, and dies
  // without cleaning up (as under kill -9). The task must not outlive it.
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    LocalExecutor exec;
    auto h = exec.Launch(Sh("exec sleep 60"));
    if (!h.ok()) ::_exit(2);
    if (!WriteFileAtomic(dir_ + "/task.pid", std::to_string(*h), false).ok()) ::_exit(3);
    ::_exit(0);  // no destructors: nothing kills the task but the kernel
  }
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  pid_t task = std::stoi(*ReadFile(dir_ + "/task.pid"));
  bool gone = WaitUntilDead(task);
  EXPECT_TRUE(gone) << "task " << task << " outlived its owner";
}

TEST_F(LocalExecutorTest, RunsTasksConcurrently) {
  LocalExecutor exec;
  // Two tasks that each wait for the other's file: only possible if both run at once.
  ASSERT_TRUE(exec.Launch(Sh("touch a; while [ ! -e b ]; do :; done")).ok());
  ASSERT_TRUE(exec.Launch(Sh("touch b; while [ ! -e a ]; do :; done")).ok());
  auto exits = WaitFor(exec, 2);
  ASSERT_EQ(exits.size(), 2u);
  EXPECT_EQ(exits[0].exit_code, 0);
  EXPECT_EQ(exits[1].exit_code, 0);
}

TEST_F(LocalExecutorTest, MemoryLimitStopsAGreedyTask) {
  LocalExecutor exec;
  LaunchSpec spec = Sh("exec python3 -c 'x = bytearray(800 * 1024 * 1024); print(len(x))'");
  spec.resources.memory_bytes = 200LL * 1024 * 1024;
  ASSERT_TRUE(exec.Launch(spec).ok());
  auto exits = WaitFor(exec, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_NE(exits[0].exit_code, 0);
  EXPECT_NE(ReadFile(dir_ + "/log.txt")->find("MemoryError"), std::string::npos);
}

}  // namespace
}  // namespace ferry::exec
