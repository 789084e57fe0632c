#include "ferry/exec/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fmt/format.h"

extern char** environ;

namespace ferry::exec {
namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", sig);
}

// The environment of the child: ours, with `extra` added or replaced.
std::vector<std::string> ChildEnvironment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    std::string key(kv.substr(0, eq));
    if (!extra.count(key)) out.emplace_back(kv);
  }
  for (const auto& [k, v] : extra) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

LocalExecutor::~LocalExecutor() {
  // An executor going away with live processes (an error path of the caller) must not leak them.
  for (auto& [pid, proc] : procs_) {
    ::kill(static_cast<pid_t>(-pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    ::close(proc.pidfd);
  }
}

absl::StatusOr<int64_t> LocalExecutor::Launch(const LaunchSpec& spec) {
  if (spec.argv.empty())
    return absl::InvalidArgumentError(fmt::format("{}: empty command", spec.label));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, spec.log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, spec.cwd.c_str());

  // A new session (and so a process group of its own), no blocked signals, default handlers
  // for the signals the scheduler catches.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigdefault(&attr, &defaults);

  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<std::string> env_strings = ChildEnvironment(spec.env);
  std::vector<char*> envp = CStrings(env_strings);

  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    std::string msg =
        fmt::format("{}: cannot start '{}': {}", spec.label, spec.argv[0], std::strerror(rc));
    if (rc == ENOENT) return absl::NotFoundError(msg + " (is it installed and on PATH?)");
    if (rc == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  if (spec.resources.memory_bytes > 0) {
    // Best effort: the limit lands a few microseconds after the exec, before any real work.
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(spec.resources.memory_bytes);
    ::prlimit(pid, RLIMIT_AS, &lim, nullptr);
  }
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return absl::InternalError(fmt::format("{}: pidfd_open: {}", spec.label, std::strerror(errno)));
  }
  procs_[pid] = Proc{.pidfd = pidfd};
  return static_cast<int64_t>(pid);
}

absl::StatusOr<std::vector<ExitInfo>> LocalExecutor::Wait(absl::Duration timeout) {
  std::vector<ExitInfo> exits;
  absl::Time now = absl::Now();
  // Enforce SIGKILL deadlines of terminated tasks first.
  absl::Time next_kill = absl::InfiniteFuture();
  for (auto& [pid, proc] : procs_) {
    if (proc.terminated && !proc.killed) {
      if (proc.kill_at <= now) {
        ::kill(static_cast<pid_t>(-pid), SIGKILL);
        proc.killed = true;
      } else {
        next_kill = std::min(next_kill, proc.kill_at);
      }
    }
  }
  if (procs_.empty()) return exits;

  absl::Duration wait = std::min(timeout, next_kill - now);
  if (wait < absl::ZeroDuration()) wait = absl::ZeroDuration();
  struct timespec ts = absl::ToTimespec(wait);
  std::vector<struct pollfd> fds;
  std::vector<int64_t> pids;
  fds.reserve(procs_.size());
  for (auto& [pid, proc] : procs_) {
    fds.push_back({proc.pidfd, POLLIN, 0});
    pids.push_back(pid);
  }
  // While waiting, let the termination signals in so that they interrupt us.
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigdelset(&mask, s);
  int n = ::ppoll(
      fds.data(), fds.size(),
      timeout == absl::InfiniteDuration() && next_kill == absl::InfiniteFuture() ? nullptr : &ts,
      &mask);
  if (n < 0) {
    if (errno == EINTR) return exits;
    return absl::InternalError(fmt::format("ppoll: {}", std::strerror(errno)));
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    pid_t pid = static_cast<pid_t>(pids[i]);
    Proc& proc = procs_[pid];
    // The leader is a zombie now, so its pid is still ours: clean up its group before reaping.
    ::kill(-pid, SIGKILL);
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    ExitInfo info;
    info.handle = pid;
    if (WIFEXITED(status)) {
      info.exit_code = WEXITSTATUS(status);
      info.message = fmt::format("exited with code {}", info.exit_code);
    } else if (WIFSIGNALED(status)) {
      info.signal = WTERMSIG(status);
      info.exit_code = 128 + info.signal;
      info.message = fmt::format("killed by {}", SignalName(info.signal));
      if (proc.killed) info.message += " after the grace period";
    }
    ::close(proc.pidfd);
    procs_.erase(pid);
    exits.push_back(std::move(info));
  }
  return exits;
}

absl::Status LocalExecutor::Terminate(int64_t handle, absl::Duration grace) {
  auto it = procs_.find(handle);
  if (it == procs_.end()) return absl::NotFoundError(fmt::format("no live process {}", handle));
  Proc& proc = it->second;
  if (proc.terminated) return absl::OkStatus();
  proc.terminated = true;
  proc.kill_at = absl::Now() + grace;
  if (grace <= absl::ZeroDuration()) {
    ::kill(static_cast<pid_t>(-handle), SIGKILL);
    proc.killed = true;
  } else {
    ::kill(static_cast<pid_t>(-handle), SIGTERM);
  }
  return absl::OkStatus();
}

absl::Status LocalExecutor::KillOrphan(int64_t handle) {
  if (handle <= 0) return absl::OkStatus();
  if (::kill(static_cast<pid_t>(-handle), SIGKILL) != 0 && errno != ESRCH) {
    return absl::InternalError(
        fmt::format("cannot kill process group {}: {}", handle, std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace ferry::exec
