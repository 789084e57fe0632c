"""Shared helpers of ferry's end-to-end tests (Python 3 stdlib only).

Each test builds a real project in a temporary folder (ferry.yaml, pipeline YAML files, step
scripts), runs the real `ferry` binary on it ($FERRY_BIN, default build/ferry of this checkout)
and asserts on what the binary says: exit codes, `ferry show RUN --json`, the lake, and marker
files the steps write outside the lake (under <project>/marks/).

Rules every helper follows: every subprocess call has a timeout; waiting for a state is a bounded
poll of `ferry show --json` or of a marker file, never a sleep that hopes the state is reached;
temporary folders are removed and processes started by a test are killed by id in its cleanup.
"""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
FERRY = os.environ.get("FERRY_BIN") or os.path.join(_HERE, "..", "..", "build", "ferry")
FERRY = os.path.abspath(FERRY)

# Default bound of one ferry command, and of one poll for a state.
COMMAND_TIMEOUT = 60
WAIT_TIMEOUT = 30
POLL_INTERVAL = 0.02

# Exit codes (src/ferry/cli/cli_common.h).
EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_CANCELLED = 5

# The generic step of most tests: run as `sh steps/step.sh` from the project folder (the cwd ferry
# gives tasks). Knobs are files under marks/, so they never touch the cache key:
#   marks/hold.<task>      while it exists the step blocks (bounded: 60 s, then it fails)
#   marks/fail.<task>      holds N: attempts 1..N fail (exit 1, output/failure says why)
#   inputs/<task>.txt      when present, its content becomes part of the step's output
# It records, outside the lake:
#   marks/ledger           "start <task> <attempt>" and "done <task> <attempt>" lines
#   marks/pid.<task>       the pid of its latest attempt (a process group leader)
#   marks/pids             every such pid (the cleanup kills what is left of them)
#   marks/started.<task>.<attempt>
# and writes output/data/out.txt = "<task>(<upstream outputs>)[<inputs/task.txt>]".
STEP_SH = textwrap.dedent(r"""
    m="$FERRY_PROJECT_DIR/marks"
    t="$FERRY_TASK"
    a="$FERRY_ATTEMPT"
    echo "start $t $a" >> "$m/ledger"
    echo $$ > "$m/pid.$t"
    echo $$ >> "$m/pids"
    : > "$m/started.$t.$a"
    echo "task $t attempt $a of run $FERRY_RUN_ID"
    i=0
    while [ -e "$m/hold.$t" ]; do
      i=$((i + 1))
      if [ $i -gt 1200 ]; then
        echo "held for more than 60 s" > "$SM_OUTPUT_DIR/failure"
        exit 3
      fi
      sleep 0.05
    done
    if [ -e "$m/fail.$t" ] && [ "$a" -le "$(cat "$m/fail.$t")" ]; then
      echo "attempt $a of $t failed on purpose"
      echo "attempt $a of $t failed on purpose" > "$SM_OUTPUT_DIR/failure"
      echo "failed $t $a" >> "$m/ledger"
      exit 1
    fi
    up=""
    for f in "$SM_INPUT_DIR"/data/*/out.txt; do
      if [ -e "$f" ]; then up="$up$(cat "$f")"; fi
    done
    extra=""
    if [ -e "inputs/$t.txt" ]; then extra="[$(cat "inputs/$t.txt")]"; fi
    echo "$t($up)$extra" > "$SM_OUTPUT_DATA_DIR/out.txt"
    echo "done $t $a" >> "$m/ledger"
""").lstrip()


class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed

    def __repr__(self):
        return "ferry {} -> exit {}\n--- stdout ---\n{}--- stderr ---\n{}".format(
            " ".join(self.args), self.rc, self.out, self.err)


def pid_alive(pid):
    """True when `pid` exists and is not a zombie."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            stat = f.read()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat[stat.rfind(")") + 2] not in "ZX"


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def wait_until(predicate, what, timeout=WAIT_TIMEOUT):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` s pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after {} s waiting for {}".format(timeout, what))
        time.sleep(POLL_INTERVAL)


class Background:
    """A `ferry` process started with Popen; stdout and stderr go to files."""

    def __init__(self, project, args, out_path, err_path, proc):
        self.project, self.args, self.proc = project, args, proc
        self.out_path, self.err_path = out_path, err_path
        self.started = time.monotonic()

    @property
    def pid(self):
        return self.proc.pid

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def run_id(self, timeout=WAIT_TIMEOUT):
        """The run's id, from the first line `ferry run` prints."""
        def find():
            m = re.search(r"^run (r[0-9]{8}-[0-9]{6}-[0-9a-f]{6}) of pipeline ", self.stdout(),
                          re.M)
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                raise AssertionError("ferry exited ({}) before it printed a run id:\n{}{}".format(
                    self.proc.returncode, self.stdout(), self.stderr()))
            return None
        return wait_until(find, "the run id of " + " ".join(self.args), timeout)

    def wait(self, timeout=COMMAND_TIMEOUT):
        """Waits for the process to exit; returns a Result."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("ferry {} did not exit within {} s:\n{}{}".format(
                " ".join(self.args), timeout, self.stdout(), self.stderr()))
        return Result(self.args, rc, self.stdout(), self.stderr(), time.monotonic() - self.started)

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class Project:
    """A temporary ferry project, removed (and its processes killed) when the test ends."""

    def __init__(self, test, ferry_yaml="name: e2e\n", pipelines=None, files=None):
        self.test = test
        self.root = os.path.realpath(tempfile.mkdtemp(prefix="ferry-e2e-"))
        self.marks = os.path.join(self.root, "marks")
        self.lake = os.path.join(self.root, ".ferry", "lake")
        self._background = []
        self._count = 0
        test.addCleanup(self._cleanup)
        os.makedirs(self.marks)
        if ferry_yaml is not None:
            self.write("ferry.yaml", ferry_yaml)
        self.write("steps/step.sh", STEP_SH)
        for name, text in (pipelines or {}).items():
            self.write("pipelines/{}.yaml".format(name), text)
        for rel, text in (files or {}).items():
            self.write(rel, text)

    # --- files --------------------------------------------------------------------------------

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, rel, text):
        path = self.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text) if text.startswith("\n") else text)
        return path

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def exists(self, rel):
        return os.path.exists(self.path(rel))

    def mark(self, name):
        """Creates marks/<name> (e.g. a hold file)."""
        with open(os.path.join(self.marks, name), "w"):
            pass

    def unmark(self, name):
        os.remove(os.path.join(self.marks, name))

    def marked(self, name):
        return os.path.exists(os.path.join(self.marks, name))

    def ledger(self):
        """The generic step's ledger: a list of (event, task, attempt) tuples, in order."""
        path = os.path.join(self.marks, "ledger")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [(e, t, int(a)) for e, t, a in (line.split() for line in f if line.strip())]

    def starts(self, task=None):
        """Attempt numbers that started, per task (or for `task`)."""
        out = {}
        for event, t, a in self.ledger():
            if event == "start":
                out.setdefault(t, []).append(a)
        return out.get(task, []) if task is not None else out

    def task_pid(self, task):
        with open(os.path.join(self.marks, "pid." + task)) as f:
            return int(f.read())

    def task_dir(self, pipeline, run_id, task):
        return os.path.join(self.lake, "runs", pipeline, run_id, task)

    def output(self, pipeline, run_id, task, name="out.txt"):
        with open(os.path.join(self.task_dir(pipeline, run_id, task), "output", "data", name)) as f:
            return f.read()

    # --- ferry --------------------------------------------------------------------------------

    def ferry(self, *args, timeout=COMMAND_TIMEOUT, cwd=None):
        """Runs ferry in the project folder; returns a Result (never raises on exit codes)."""
        start = time.monotonic()
        try:
            p = subprocess.run([FERRY] + list(args), cwd=cwd or self.root, capture_output=True,
                               text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("ferry {} did not exit within {} s\n{}{}".format(
                " ".join(args), timeout, e.stdout, e.stderr))
        return Result(list(args), p.returncode, p.stdout, p.stderr, time.monotonic() - start)

    def ok(self, *args, **kw):
        """Runs ferry and asserts exit 0."""
        r = self.ferry(*args, **kw)
        self.test.assertEqual(r.rc, EXIT_OK, r)
        return r

    def start(self, *args):
        """Starts ferry in the background (Popen); killed by id at cleanup if still running."""
        self._count += 1
        out = self.path(".e2e-ferry-{}.out".format(self._count))
        err = self.path(".e2e-ferry-{}.err".format(self._count))
        with open(out, "w") as fo, open(err, "w") as fe:
            proc = subprocess.Popen([FERRY] + list(args), cwd=self.root, stdout=fo, stderr=fe,
                                    stdin=subprocess.DEVNULL)
        bg = Background(self, list(args), out, err, proc)
        self._background.append(bg)
        return bg

    def run(self, pipeline, *args, expect=EXIT_OK, timeout=COMMAND_TIMEOUT):
        """`ferry run pipelines/<pipeline>.yaml ARGS`; asserts the exit code; returns
        (run_id, Result)."""
        r = self.ferry("run", "pipelines/{}.yaml".format(pipeline), *args, timeout=timeout)
        self.test.assertEqual(r.rc, expect, r)
        m = re.search(r"^run (\S+) of pipeline ", r.out, re.M)
        self.test.assertIsNotNone(m, r)
        return m.group(1), r

    def show(self, run_id):
        r = self.ok("show", run_id, "--json")
        return json.loads(r.out)

    def tasks(self, run_id):
        """{task: task json} of `ferry show RUN --json`."""
        return {t["task"]: t for t in self.show(run_id)["tasks"]}

    def states(self, run_id):
        return {name: t["state"] for name, t in self.tasks(run_id).items()}

    def wait_task(self, run_id, task, state, timeout=WAIT_TIMEOUT):
        """Polls `ferry show` until `task` is in `state`; returns the run's json."""
        def check():
            run = self.show(run_id)
            for t in run["tasks"]:
                if t["task"] == task and t["state"] == state:
                    return run
            return None
        return wait_until(check, "task {} of {} to be {}".format(task, run_id, state), timeout)

    def wait_launched(self, run_id, task, timeout=WAIT_TIMEOUT):
        """Polls `ferry show` until the store records the pid of `task`'s live attempt (the one in
        marks/pid.<task>): from then on, a new owner can find and kill that process."""
        def check():
            pid = self.task_pid(task)
            for t in self.show(run_id)["tasks"]:
                if t["task"] == task and t["attempts"] and t["attempts"][-1]["pid"] == pid:
                    return True
            return False
        wait_until(check, "the pid of task {} of {} in the store".format(task, run_id), timeout)

    def wait_mark(self, name, timeout=WAIT_TIMEOUT, bg=None):
        """Polls for marks/<name>; fails early when `bg` (a Background ferry) has exited."""
        def check():
            if self.marked(name):
                return True
            if bg is not None and bg.proc.poll() is not None:
                raise AssertionError("ferry exited ({}) before marks/{} appeared:\n{}{}".format(
                    bg.proc.returncode, name, bg.stdout(), bg.stderr()))
            return False
        return wait_until(check, "marks/" + name, timeout)

    def wait_gone(self, pid, timeout=WAIT_TIMEOUT):
        wait_until(lambda: not pid_alive(pid), "process {} to end".format(pid), timeout)

    # --- cleanup ------------------------------------------------------------------------------

    def _cleanup(self):
        for bg in self._background:
            if bg.proc.poll() is None:
                bg.proc.kill()
                bg.proc.wait(timeout=10)
        # Task processes a test left behind (e.g. orphans of a killed ferry): their groups, by id.
        pids = set()
        if os.path.isdir(self.marks):
            for name in os.listdir(self.marks):
                if name.startswith("pid.") or name == "pids":
                    try:
                        with open(os.path.join(self.marks, name)) as f:
                            pids.update(int(x) for x in f.read().split())
                    except (OSError, ValueError):
                        pass
        for pid in pids:
            if pid_alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(self.root, ignore_errors=True)


class FerryTestCase(unittest.TestCase):
    """Base class: checks the binary exists and gives `self.project(...)`."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        # Not a skip: a suite that passes without the binary would be a test that cannot fail.
        if not os.access(FERRY, os.X_OK):
            raise AssertionError("no ferry binary at {} (build it, or set FERRY_BIN)".format(FERRY))

    def project(self, **kw):
        return Project(self, **kw)

    def assertSubstring(self, needle, haystack, msg=None):
        self.assertIn(needle, haystack, msg if msg is not None else haystack)
