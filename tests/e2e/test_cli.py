"""The command line: `ferry init` (the scaffold runs as is), `validate` (every error, with
file:line:column), `states`, `runs`, `show`, `--help`, exit codes, idempotency keys and -C."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from ferry_e2e import (COMMAND_TIMEOUT, EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE, FERRY,
                       FerryTestCase)


def ferry_in(cwd, *args, timeout=COMMAND_TIMEOUT):
    return subprocess.run([FERRY] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class InitTest(FerryTestCase):
    def setUp(self):
        self.dir = os.path.realpath(tempfile.mkdtemp(prefix="ferry-e2e-init-"))
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_the_scaffold_runs_as_is_then_is_cached(self):
        r = ferry_in(self.dir, "init", "churn")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, "created project 'churn' in churn\nnext:\n  cd churn\n"
                                   "  ferry run pipelines/train.yaml\n")
        root = os.path.join(self.dir, "churn")
        for f in ("ferry.yaml", "pipelines/train.yaml", "steps/prepare.py", "steps/train.py",
                  "steps/evaluate.py", ".gitignore"):
            self.assertTrue(os.path.isfile(os.path.join(root, f)), f)
        r = ferry_in(root, "validate")
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, "ok: ferry.yaml and 1 pipeline file(s) valid\n")

        r = ferry_in(root, "run", "pipelines/train.yaml", timeout=120)
        self.assertEqual(r.returncode, 0, r)
        run = re.search(r"^run (\S+) of pipeline train ", r.stdout, re.M).group(1)
        show = json.loads(ferry_in(root, "show", run, "--json").stdout)
        self.assertEqual(show["state"], "succeeded")
        self.assertEqual([(t["task"], t["state"]) for t in show["tasks"]],
                         [("prepare", "succeeded"), ("train", "succeeded"),
                          ("evaluate", "succeeded")])
        metrics = os.path.join(root, ".ferry/lake/runs/train", run,
                               "evaluate/output/data/metrics.json")
        with open(metrics) as f:
            self.assertLess(json.load(f)["mse"], 5)

        r = ferry_in(root, "run", "pipelines/train.yaml")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("\ntasks: 3 cached\n", r.stdout)

    def test_init_refuses_an_existing_project_and_keeps_its_files(self):
        self.assertEqual(ferry_in(self.dir, "init", "p").returncode, 0)
        with open(os.path.join(self.dir, "p", "ferry.yaml"), "w") as f:
            f.write("name: mine\n")
        r = ferry_in(self.dir, "init", "p")
        self.assertEqual(r.returncode, EXIT_CONFLICT, r)
        self.assertEqual(r.stderr, "ferry: error: p/ferry.yaml exists: p is already a ferry "
                                   "project\n")
        with open(os.path.join(self.dir, "p", "ferry.yaml")) as f:
            self.assertEqual(f.read(), "name: mine\n")
        # Into an existing folder without ferry.yaml: fine, and the user's files are kept.
        os.makedirs(os.path.join(self.dir, "q", "steps"))
        with open(os.path.join(self.dir, "q", "steps", "train.py"), "w") as f:
            f.write("# mine\n")
        r = ferry_in(self.dir, "init", "q")
        self.assertEqual(r.returncode, 0, r)
        with open(os.path.join(self.dir, "q", "steps", "train.py")) as f:
            self.assertEqual(f.read(), "# mine\n")


BAD1 = """\
steps:
  a:
    command: echo a
    needs: [zz]
  b:
    comand: echo b
"""

BAD2 = """\
params:
  n: 1
steps:
  x:
    command: "echo {{ params.nope }}"
    retries: lots
"""

GOOD = "steps:\n  ok:\n    command: sh steps/step.sh\n"


class ValidateTest(FerryTestCase):
    def test_every_error_of_every_file_with_its_location(self):
        p = self.project(pipelines={"bad1": BAD1, "bad2": BAD2, "good": GOOD})
        r = p.ferry("validate")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertEqual(r.out, "")
        self.assertEqual(r.err.splitlines(), [
            "pipelines/bad1.yaml:4:13: error: step 'a' needs unknown step 'zz'; steps: a, b",
            "pipelines/bad1.yaml:6:5: error: unknown key 'comand' in step 'b'; did you mean "
            "'command'?",
            "pipelines/bad2.yaml:5:20: error: unknown parameter 'nope' in {{ params.nope }}; "
            "declared parameters: n",
            "pipelines/bad2.yaml:6:14: error: invalid retries in step 'x': must be a non-negative "
            "integer, got 'lots'",
            "4 error(s) in ferry.yaml and 3 pipeline file(s)"])
        # One file.
        r = p.ferry("validate", "pipelines/good.yaml")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "ok: ferry.yaml and 1 pipeline file(s) valid\n")
        # `ferry run` of an invalid pipeline: the same errors, nothing runs.
        r = p.ferry("run", "pipelines/bad2.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertEqual(len(re.findall(r"^pipelines/bad2\.yaml:\d+:\d+: error: ", r.err, re.M)),
                         2, r)
        self.assertEqual(json.loads(p.ok("runs", "--json").out), [])

    def test_errors_in_ferry_yaml(self):
        p = self.project(ferry_yaml="name: e2e\nexecutor: { max_parallel: many }\nbogus: 1\n",
                         pipelines={"good": GOOD})
        r = p.ferry("validate")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        lines = r.err.splitlines()
        self.assertEqual(len(lines), 2, r)
        for line in lines:
            self.assertRegex(line, r"^{}:\d+:\d+: error: ".format(re.escape(p.path("ferry.yaml"))))
        self.assertIn("bogus", r.err)
        self.assertIn("max_parallel", r.err)
        r = p.ferry("run", "pipelines/good.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)


class StatesTest(FerryTestCase):
    def test_text_and_json(self):
        p = self.project()
        r = p.ok("states")
        self.assertTrue(r.out.startswith("PipelineRun\n"), r.out)
        self.assertIn("\nTaskRun\n", r.out)
        self.assertRegex(r.out, r"\n  failed\s+running\s+`ferry run --resume`: re-run what did "
                                r"not succeed\n")
        self.assertRegex(r.out, r"\n  running\s+retrying\s+the attempt failed and retries are "
                                r"left\n")
        self.assertRegex(r.out, r"\n  pending\s+cached\s+a checkpoint with the same cache key "
                                r"exists\n")
        j = json.loads(p.ok("states", "taskrun", "--json").out)
        self.assertEqual(len(j), 1)
        self.assertEqual(j[0]["kind"], "TaskRun")
        self.assertEqual(j[0]["states"], ["pending", "queued", "running", "succeeded", "cached",
                                          "retrying", "failed", "upstream_failed", "skipped",
                                          "cancelled"])
        edges = {(e["from"], e["to"]) for e in j[0]["transitions"]}
        self.assertIn(("running", "retrying"), edges)
        self.assertIn(("retrying", "queued"), edges)
        self.assertNotIn(("pending", "running"), edges)  # every attempt is queued first
        self.assertNotIn(("failed", "running"), edges)  # a retry waits for its backoff
        j = json.loads(p.ok("states", "--json").out)
        self.assertEqual([k["kind"] for k in j], ["PipelineRun", "TaskRun", "ModelVersion",
                                                  "Endpoint", "Deployment", "BatchJob",
                                                  "MonitorRun"])
        self.assertEqual(json.loads(p.ok("states", "pipeline_run", "--json").out)[0]["kind"],
                         "PipelineRun")
        r = p.ferry("states", "Nope")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        self.assertIn("kinds: PipelineRun, TaskRun, ModelVersion", r.err)


class RunsAndShowTest(FerryTestCase):
    def test_runs_newest_first_and_show(self):
        p = self.project(pipelines={"one": GOOD, "two": GOOD})
        r = p.ok("runs")
        self.assertIn("(no runs yet", r.out)
        ids = [p.run(name)[0] for name in ("one", "two", "one")]
        runs = json.loads(p.ok("runs", "--json").out)
        self.assertEqual([x["id"] for x in runs], ids[::-1])
        self.assertEqual([x["pipeline"] for x in runs], ["one", "two", "one"])
        self.assertEqual({x["state"] for x in runs}, {"succeeded"})
        runs = json.loads(p.ok("runs", "--json", "--pipeline", "one").out)
        self.assertEqual([x["id"] for x in runs], [ids[2], ids[0]])
        runs = json.loads(p.ok("runs", "--json", "-n", "1").out)
        self.assertEqual([x["id"] for x in runs], [ids[2]])
        text = p.ok("runs").out.splitlines()
        self.assertRegex(text[0], r"^RUN\s+PIPELINE\s+STATE\s+STARTED\s+TIME$")
        self.assertEqual([line.split()[0] for line in text[1:]], ids[::-1])

        show = p.show(ids[1])
        self.assertEqual(show["id"], ids[1])
        self.assertEqual(show["pipeline"], "two")
        self.assertEqual(show["file"], p.path("pipelines", "two.yaml"))
        text = p.ok("show", ids[1]).out
        self.assertTrue(text.startswith("run       {}\npipeline  two ({})\nstate     succeeded\n"
                                        .format(ids[1], p.path("pipelines", "two.yaml"))), text)

        r = p.ferry("show", "r20000101-000000-000000")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        self.assertTrue(r.err.startswith("ferry: error: no run r20000101-000000-000000"), r.err)

        # -C: the project from anywhere.
        r = subprocess.run([FERRY, "-C", p.root, "runs", "--json"], cwd="/", capture_output=True,
                           text=True, timeout=COMMAND_TIMEOUT)
        self.assertEqual(r.returncode, 0, r)
        self.assertEqual(len(json.loads(r.stdout)), 3)


class HelpAndUsageTest(FerryTestCase):
    def test_help_of_every_subcommand(self):
        p = self.project()
        r = p.ok("--help")
        commands = ["init", "validate", "run", "runs", "show", "logs", "cancel", "states",
                    "render"]
        for c in commands:
            self.assertRegex(r.out, r"\n  {}\s+\S".format(c))
        self.assertNotRegex(r.out, r"\n  task\s")  # internal
        for c in commands + ["task"]:
            with self.subTest(command=c):
                r = p.ferry(c, "--help")
                self.assertEqual(r.rc, 0, r)
                self.assertIn("Usage: ferry {}".format(c), r.out)
        r = p.ok("--version")
        self.assertEqual(r.out, "ferry 0.1.0\n")

    def test_usage_errors_exit_2(self):
        p = self.project()
        for args in ([], ["frobnicate"], ["run", "--bogus-flag"], ["show"], ["runs", "-n", "x"]):
            with self.subTest(args=args):
                r = p.ferry(*args)
                self.assertEqual(r.rc, EXIT_USAGE, r)
        for cmd in ("run", "render"):
            r = p.ferry(cmd, "pipelines/missing.yaml")
            self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
            self.assertEqual(r.err, "ferry: error: no such pipeline file: pipelines/missing.yaml\n")


class IdempotencyKeyTest(FerryTestCase):
    def test_a_live_run_with_the_same_key_refuses_a_second(self):
        p = self.project(pipelines={"one": GOOD})
        p.mark("hold.ok")
        bg = p.start("run", "pipelines/one.yaml", "--idempotency-key", "nightly-2026-11-27")
        run = bg.run_id()
        p.wait_mark("started.ok.1", bg=bg)
        r = p.ferry("run", "pipelines/one.yaml", "--idempotency-key", "nightly-2026-11-27")
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertEqual(r.err, "ferry: error: pipeline one already has a live run with "
                                "idempotency key 'nightly-2026-11-27': {} (running); wait for it "
                                "to finish, cancel it, or use another key\n".format(run))
        self.assertEqual(len(json.loads(p.ok("runs", "--json").out)), 1)
        p.unmark("hold.ok")
        self.assertEqual(bg.wait().rc, 0)
        # Once that run has ended, the key is free again.
        run2, _ = p.run("one", "--idempotency-key", "nightly-2026-11-27")
        self.assertNotEqual(run2, run)
        self.assertEqual(p.starts(), {"ok": [1]})  # the second was a cache hit


if __name__ == "__main__":
    unittest.main()
