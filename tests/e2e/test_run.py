"""A pipeline runs, checkpoints its outputs in the lake, and is a cache hit the second time;
changing a declared file or a parameter re-runs exactly the tasks whose inputs changed. Also the
progress output `ferry run` prints when stdout is not a terminal."""

import json
import os
import re
import unittest

from ferry_e2e import EXIT_RUN_FAILED, FerryTestCase, wait_until

# a -> b -> c, all the generic step. a's output includes inputs/a.txt; inputs/a.notes is
# declared (so in a's cache key) but not read, so changing it re-runs a with the same output.
CHAIN = """
params:
  greeting: hello
steps:
  a:
    command: sh steps/step.sh
    files: [steps/step.sh, inputs/a.txt, inputs/a.notes]
  b:
    needs: [a]
    command: sh steps/step.sh
    files: [steps/step.sh, inputs/b.txt]
  c:
    needs: [b]
    command: sh steps/step.sh
    files: [steps/step.sh]
"""


class RunAndCacheTest(FerryTestCase):
    def make(self):
        return self.project(pipelines={"chain": CHAIN},
                            files={"inputs/a.txt": "A1", "inputs/a.notes": "n1",
                                   "inputs/b.txt": "B1"})

    def test_run_writes_checkpoints_then_everything_is_cached(self):
        p = self.make()
        run1, r = p.run("chain")
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1]})
        show = p.show(run1)
        self.assertEqual(show["state"], "succeeded")
        self.assertEqual(show["pipeline"], "chain")
        self.assertEqual(show["params"], {"greeting": "hello"})
        # Outputs in the lake, with each upstream's output read through its channel.
        self.assertEqual(p.output("chain", run1, "a"), "a()[A1]\n")
        self.assertEqual(p.output("chain", run1, "b"), "b(a()[A1])[B1]\n")
        self.assertEqual(p.output("chain", run1, "c"), "c(b(a()[A1])[B1])\n")
        with open(os.path.join(p.lake, "runs", "chain", run1, "params.json")) as f:
            self.assertEqual(json.load(f), {"greeting": "hello"})
        for task in "abc":
            t = show["tasks"][["a", "b", "c"].index(task)]
            self.assertEqual(t["task"], task)
            self.assertEqual(t["state"], "succeeded")
            self.assertEqual(t["exit_code"], 0)
            self.assertEqual([a["outcome"] for a in t["attempts"]], ["succeeded"])
            task_dir = p.task_dir("chain", run1, task)
            self.assertEqual(t["output"], "file://" + task_dir)
            with open(os.path.join(task_dir, "manifest.json")) as f:
                manifest = json.load(f)
            self.assertEqual(manifest["task"], task)
            self.assertEqual(manifest["run_id"], run1)
            self.assertEqual(manifest["pipeline"], "chain")
            self.assertEqual(manifest["cache_key"], t["cache_key"])
            self.assertEqual([f["path"] for f in manifest["files"]], ["output/data/out.txt"])
            self.assertEqual(len(manifest["output_hash"]), 64)

        # Second run: every task is a cache hit, no task process runs, outputs point at run 1.
        run2, r = p.run("chain")
        self.assertNotEqual(run2, run1)
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1]})
        show2 = p.show(run2)
        self.assertEqual(show2["state"], "succeeded")
        for t in show2["tasks"]:
            self.assertEqual(t["state"], "cached", t)
            self.assertEqual(t["attempts"], [])
            self.assertEqual(t["output"], "file://" + p.task_dir("chain", run1, t["task"]))
        self.assertFalse(os.path.exists(p.task_dir("chain", run2, "a")))

    def test_changing_a_declared_file_reruns_that_task_and_what_its_output_changes(self):
        p = self.make()
        run1, _ = p.run("chain")

        # b's own input changes: a is cached; b re-runs, its output changes, so c re-runs too.
        p.write("inputs/b.txt", "B2")
        run2, _ = p.run("chain")
        self.assertEqual(p.states(run2), {"a": "cached", "b": "succeeded", "c": "succeeded"})
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 1], "c": [1, 1]})
        self.assertEqual(p.output("chain", run2, "c"), "c(b(a()[A1])[B2])\n")

        # A file a declares but does not read: a re-runs, its output hash is unchanged, so b and c
        # stay cache hits (of run 2).
        p.write("inputs/a.notes", "n2")
        run3, _ = p.run("chain")
        tasks = p.tasks(run3)
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {"a": "succeeded", "b": "cached", "c": "cached"})
        self.assertEqual(p.starts(), {"a": [1, 1], "b": [1, 1], "c": [1, 1]})
        self.assertEqual(tasks["c"]["output"], "file://" + p.task_dir("chain", run2, "c"))

        # a's output changes: everything downstream re-runs.
        p.write("inputs/a.txt", "A2")
        run4, _ = p.run("chain")
        self.assertEqual(p.states(run4), {"a": "succeeded", "b": "succeeded", "c": "succeeded"})
        self.assertEqual(p.output("chain", run4, "c"), "c(b(a()[A2])[B2])\n")

        # Back to the first inputs: every task is a hit again, on the checkpoints of run 1 and 2.
        p.write("inputs/a.txt", "A1")
        p.write("inputs/a.notes", "n1")
        p.write("inputs/b.txt", "B1")
        run5, _ = p.run("chain")
        tasks = p.tasks(run5)
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {"a": "cached", "b": "cached", "c": "cached"})
        self.assertEqual(tasks["c"]["output"], "file://" + p.task_dir("chain", run1, "c"))
        self.assertEqual(len(p.starts("a")), 3)

    def test_a_param_is_part_of_every_cache_key(self):
        p = self.make()
        p.run("chain")
        # Parameters are pushed to every task (params.json), so each task's key covers them all.
        run2, _ = p.run("chain", "--param", "greeting=bye")
        self.assertEqual(p.states(run2), {"a": "succeeded", "b": "succeeded", "c": "succeeded"})
        self.assertEqual(p.show(run2)["params"], {"greeting": "bye"})
        self.assertEqual(p.starts(), {"a": [1, 1], "b": [1, 1], "c": [1, 1]})
        # And the same value again is a hit.
        run3, _ = p.run("chain", "--param", "greeting=bye")
        self.assertEqual(p.states(run3), {"a": "cached", "b": "cached", "c": "cached"})

    def test_cache_false_always_runs(self):
        p = self.project(pipelines={"nc": """
            steps:
              a:
                command: sh steps/step.sh
              b:
                needs: [a]
                command: sh steps/step.sh
                cache: false
            """})
        p.run("nc")
        run2, _ = p.run("nc")
        self.assertEqual(p.states(run2), {"a": "cached", "b": "succeeded"})
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 1]})

    def test_a_declared_file_that_is_missing_fails_the_task(self):
        # Its content is part of the cache key: without it the task's inputs are not what the
        # pipeline says, so it fails, naming the file, and is never a cache hit.
        p = self.project(pipelines={"mf": """
            steps:
              a:
                command: sh steps/step.sh
                files: [inputs/missing.txt]
            """})
        for _ in range(2):
            r = p.ferry("run", "pipelines/mf.yaml")
            self.assertEqual(r.rc, 1, r)
            run = re.search(r"^run (\S+) of pipeline ", r.out, re.M).group(1)
            a = p.tasks(run)["a"]
            self.assertEqual(a["state"], "failed")
            self.assertEqual(a["cache_key"], "")
            self.assertIn("inputs/missing.txt", a["message"])
        self.assertEqual(p.starts(), {})


class ProgressOutputTest(FerryTestCase):
    """stdout is a pipe here: one line per task change, then the summary."""

    def test_lines_per_task_and_summary(self):
        p = self.project(pipelines={"chain": CHAIN},
                         files={"inputs/a.txt": "A1", "inputs/a.notes": "n", "inputs/b.txt": "B"})
        run, r = p.run("chain")
        lines = r.out.splitlines()
        self.assertEqual(lines[0], "run {} of pipeline chain (3 tasks, up to {} at once)".format(
            run, os.cpu_count()))
        stamp = r"\d\d:\d\d:\d\d  "
        changes = [l for l in lines if re.match(stamp, l)]
        # queued, running, succeeded for each task, in the order they happened.
        got = [tuple(l.split()[1:3]) for l in changes]
        self.assertEqual(got, [("a", "queued"), ("a", "running"), ("a", "succeeded"),
                               ("b", "queued"), ("b", "running"), ("b", "succeeded"),
                               ("c", "queued"), ("c", "running"), ("c", "succeeded")])
        self.assertTrue(any(re.match(stamp + r"b\s+running\s+attempt 1$", l) for l in changes),
                        r.out)
        self.assertIn("\nrun {}: succeeded in ".format(run), r.out)
        self.assertRegex(r.out, r"\n  TASK\s+STATE\s+ATTEMPTS\s+TIME\s+OUTPUT\n")
        for task in "abc":
            self.assertRegex(r.out, r"\n  {}\s+succeeded\s+1\s+\S+\s+file://{}\n".format(
                task, re.escape(p.task_dir("chain", run, task))))
        self.assertIn("\ntasks: 3 succeeded\n", r.out)
        self.assertIn("details: ferry show {}   logs: ferry logs {} [TASK]".format(run, run), r.out)
        self.assertNotIn("\x1b[", r.out)  # no terminal control codes in a pipe

        run2, r2 = p.run("chain")
        self.assertRegex(r2.out, r"\d\d:\d\d:\d\d  a\s+cached\s+checkpoint hit from run " + run)
        self.assertRegex(r2.out, r"\n  a\s+cached\s+0\s+cached\s+file://")
        self.assertIn("\ntasks: 3 cached\n", r2.out)

    def test_lines_appear_as_the_run_goes(self):
        # Someone following a log file or a CI console sees each change when it happens.
        p = self.project(pipelines={"chain": CHAIN},
                         files={"inputs/a.txt": "A1", "inputs/a.notes": "n", "inputs/b.txt": "B"})
        p.mark("hold.b")
        bg = p.start("run", "pipelines/chain.yaml")
        p.wait_mark("started.b.1", bg=bg)
        line = re.compile(r"^\d\d:\d\d:\d\d  b\s+running\s+attempt 1$", re.M)
        wait_until(lambda: line.search(bg.stdout()), "the line of b's start in ferry's output")
        self.assertRegex(bg.stdout(), r"(?m)^\d\d:\d\d:\d\d  a\s+succeeded\s")
        self.assertNotIn("tasks:", bg.stdout())
        p.unmark("hold.b")
        self.assertEqual(bg.wait().rc, 0)

    def test_quiet_prints_only_the_summary_and_a_failure_says_why(self):
        p = self.project(pipelines={"chain": CHAIN},
                         files={"inputs/a.txt": "A1", "inputs/a.notes": "n", "inputs/b.txt": "B"})
        p.write("marks/fail.b", "9")
        run, r = p.run("chain", "-q", expect=EXIT_RUN_FAILED)
        self.assertFalse(re.search(r"^\d\d:\d\d:\d\d  ", r.out, re.M), r.out)
        self.assertIn("\nrun {}: failed in ".format(run), r.out)
        self.assertRegex(r.out, r"\n  b\s+failed\s+1\s+\S+\s+exited with code 1: attempt 1 of b "
                                r"failed on purpose\n")
        self.assertRegex(r.out, r"\n  c\s+upstream_failed\s+0\s+-\s+-\n")
        self.assertIn("\ntasks: 1 failed, 1 succeeded, 1 upstream_failed\n", r.out)
        self.assertIn("\nwhy: b failed, c upstream_failed\n", r.out)


if __name__ == "__main__":
    unittest.main()
