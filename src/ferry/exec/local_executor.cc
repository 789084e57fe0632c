#include "ferry/exec/local_executor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

std::string LocalExecutor::FindProgram(const std::string& name, const std::string& path) {
  if (name.find('/') != std::string::npos) return name;  // a path: exec'd as given
  auto key = std::make_pair(name, path);
  if (auto it = programs_.find(key); it != programs_.end()) return it->second;
  // The search execvp(3) would do: the first executable regular file named `name` on PATH.
  std::string found = name;  // not found: exec fails with ENOENT, reported by Launch
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = end > start ? path.substr(start, end - start) : ".";
    std::string candidate = dir + "/" + name;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      found = candidate;
      break;
    }
    start = end + 1;
  }
  // Only successes are remembered: a program installed later is found on the next launch.
  if (found != name) programs_[key] = found;
  return found;
}

LocalExecutor::~LocalExecutor() {
  // An executor going away with live processes (an error path of the caller) must not leak them.
  for (auto& [pid, proc] : procs_) {
    ::kill(static_cast<pid_t>(-pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    ::close(proc.pidfd);
  }
}

// The locals read by the vfork child are set before vfork and not changed after it; the parent
// reads back only the volatile ones the child writes.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
absl::StatusOr<int64_t> LocalExecutor::Launch(const LaunchSpec& spec) {
  if (spec.argv.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: empty command", spec.label));
  }
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv = CStrings(argv_strings);
  auto path_it = spec.env.find("PATH");
  const char* inherited_path = std::getenv("PATH");
  const std::string program =
      FindProgram(spec.argv[0], path_it != spec.env.end()   ? path_it->second
                                : inherited_path != nullptr ? inherited_path
                                                            : "/usr/local/bin:/usr/bin:/bin");
  const char* program_path = program.c_str();
  std::vector<std::string> env_strings = ChildEnvironment(spec.env);
  std::vector<char*> envp = CStrings(env_strings);
  struct rlimit memory_limit;
  memory_limit.rlim_cur = memory_limit.rlim_max = static_cast<rlim_t>(spec.resources.memory_bytes);
  const bool limit_memory = spec.resources.memory_bytes > 0;
  const char* log_path = spec.log_path.c_str();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const pid_t parent = ::getpid();

  // vfork + exec, as posix_spawn does, plus what posix_spawn cannot do: PR_SET_PDEATHSIG, so that
  // a task dies with the `ferry run` that owns it (kill -9 included) instead of running on as an
  // orphan while `--resume` starts it again. Between vfork and exec the child only makes
  // async-signal-safe system calls; all signals stay blocked until it resets them.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  volatile int child_errno = 0;
  volatile const char* failed_step = nullptr;
  pid_t pid = ::vfork();
  if (pid == 0) {
    auto fail = [&](const char* step) {
      child_errno = errno;
      failed_step = step;
      ::_exit(127);
    };
    if (::setsid() < 0) fail("setsid");
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail("prctl");
    if (::getppid() != parent) ::_exit(127);  // the owner died before the prctl
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction sa;
      if (::sigaction(sig, nullptr, &sa) == 0 && sa.sa_handler != SIG_DFL &&
          sa.sa_handler != SIG_IGN) {
        ::signal(sig, SIG_DFL);
      }
    }
    ::signal(SIGPIPE, SIG_DFL);
    int in = ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0) fail("open /dev/null");
    int out = ::open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out < 0) fail("open the log file");
    if (::dup2(out, 1) < 0 || ::dup2(out, 2) < 0) fail("dup2");
    if (in > 2) ::close(in);
    if (out > 2) ::close(out);
    if (cwd != nullptr && ::chdir(cwd) != 0) fail("chdir");
    if (limit_memory && ::setrlimit(RLIMIT_AS, &memory_limit) != 0) fail("setrlimit");
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(program_path, argv.data(), envp.data());
    fail("exec");
  }
  int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    return absl::InternalError(
        fmt::format("{}: cannot start a process: {}", spec.label, std::strerror(vfork_errno)));
  }
  if (failed_step != nullptr) {
    // The child has exited (vfork returns once it has exec'd or died): reap it.
    ::waitpid(pid, nullptr, 0);
    int e = child_errno;
    std::string msg = fmt::format("{}: cannot start '{}' ({} failed): {}", spec.label, spec.argv[0],
                                  const_cast<const char*>(failed_step), std::strerror(e));
    if (e == ENOENT) return absl::NotFoundError(msg + " (is it installed and on PATH?)");
    if (e == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
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
#pragma GCC diagnostic pop

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
  // Nothing live and nothing to wait for: return rather than block forever. Otherwise sleep until
  // the timeout even with no process (a retry's backoff), so the caller does not spin.
  if (procs_.empty() && timeout == absl::InfiniteDuration()) return exits;

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
