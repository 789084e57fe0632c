"""`ferry run --from STEP` (that step and everything downstream, forced) and `--only STEP`
(just that step, forced), reusing the checkpoints of everything upstream."""

import json
import unittest

from ferry_e2e import EXIT_CONFLICT, EXIT_USAGE, FerryTestCase

#   a -> b -> c
#    \-> d
PIPELINE = """
steps:
  a:
    command: sh steps/step.sh
  b:
    needs: [a]
    command: sh steps/step.sh
  c:
    needs: [b]
    command: sh steps/step.sh
  d:
    needs: [a]
    command: sh steps/step.sh
    files: [inputs/d.txt]
"""


class SelectionTest(FerryTestCase):
    def make(self):
        return self.project(pipelines={"sel": PIPELINE}, files={"inputs/d.txt": "D"})

    def test_from_reruns_the_step_and_downstream_reusing_upstream_checkpoints(self):
        p = self.make()
        run1, _ = p.run("sel")
        run2, r = p.run("sel", "--from", "b")
        tasks = p.tasks(run2)
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {"a": "cached", "b": "succeeded", "c": "succeeded", "d": "skipped"})
        self.assertEqual(tasks["a"]["output"], "file://" + p.task_dir("sel", run1, "a"))
        self.assertEqual(p.show(run2)["state"], "succeeded")
        # b and c ran again although they were cache hits; a and d did not.
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 1], "c": [1, 1], "d": [1]})
        self.assertEqual(p.output("sel", run2, "c"), "c(b(a()))\n")
        self.assertIn("\ntasks: 1 cached, 1 skipped, 2 succeeded\n", r.out)
        events = p.ok("show", run2, "--events").out
        self.assertRegex(events, r"/d\s+pending -> skipped\s+not selected by --only/--from")
        self.assertRegex(events, r"/b\s+pending -> queued\s+selected")

    def test_only_runs_just_that_step(self):
        p = self.make()
        p.run("sel")
        run2, _ = p.run("sel", "--only", "b")
        self.assertEqual(p.states(run2),
                         {"a": "cached", "b": "succeeded", "c": "skipped", "d": "skipped"})
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 1], "c": [1], "d": [1]})
        # A comma list, and both flags together.
        run3, _ = p.run("sel", "--only", "c,d")
        self.assertEqual(p.states(run3),
                         {"a": "cached", "b": "cached", "c": "succeeded", "d": "succeeded"})
        run4, _ = p.run("sel", "--only", "d", "--from", "c")
        self.assertEqual(p.states(run4),
                         {"a": "cached", "b": "cached", "c": "succeeded", "d": "succeeded"})
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 1], "c": [1, 1, 1], "d": [1, 1, 1]})

    def test_only_without_upstream_checkpoints_is_refused(self):
        p = self.make()
        r = p.ferry("run", "pipelines/sel.yaml", "--only", "c")
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertEqual(r.err, "ferry: error: step 'a' is upstream of the selected steps and has "
                                "no checkpoint for its current inputs; run the pipeline without "
                                "--only/--from first, or select 'a' too\n")
        self.assertEqual(json.loads(p.ok("runs", "--json").out), [])
        self.assertEqual(p.ledger(), [])
        # Selecting the upstream step too works, and then --only c alone does.
        run, _ = p.run("sel", "--from", "a")
        self.assertEqual(p.states(run), {"a": "succeeded", "b": "succeeded", "c": "succeeded",
                                         "d": "succeeded"})
        run, _ = p.run("sel", "--only", "c")
        self.assertEqual(p.states(run), {"a": "cached", "b": "cached", "c": "succeeded",
                                         "d": "skipped"})

    def test_only_after_an_upstream_input_changed_is_refused(self):
        p = self.project(pipelines={"sel": PIPELINE.replace(
            "  b:\n    needs: [a]\n", "  b:\n    needs: [a]\n    files: [inputs/b.txt]\n")},
            files={"inputs/d.txt": "D", "inputs/b.txt": "B1"})
        p.run("sel")
        p.write("inputs/b.txt", "B2")
        r = p.ferry("run", "pipelines/sel.yaml", "--only", "c")
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertIn("step 'b' is upstream of the selected steps and has no checkpoint for its "
                      "current inputs", r.err)

    def test_unknown_step(self):
        p = self.make()
        for flag in ("--only", "--from"):
            r = p.ferry("run", "pipelines/sel.yaml", flag, "b,zz")
            self.assertEqual(r.rc, EXIT_USAGE, r)
            self.assertEqual(r.err, "ferry: error: {} zz: pipeline 'sel' has no step 'zz'; steps: "
                                    "a, b, c, d\n".format(flag))
        self.assertEqual(p.ledger(), [])


if __name__ == "__main__":
    unittest.main()
