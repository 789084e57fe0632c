"""kill -9 of `ferry run` at several points, then `ferry run --resume`: nothing that had
succeeded runs again, what was interrupted runs again (a higher attempt), the orphaned task
processes of the dead owner are killed, every output is intact, and the events tell the story.
Plus the refusals: resuming a run whose owner is alive, or a run that succeeded."""

import json
import os
import re
import signal
import unittest

from ferry_e2e import (EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_RUN_FAILED, EXIT_USAGE, FerryTestCase,
                       wait_until)

#   a -> b -> c --> e -> f
#         \-> d -/
DIAMOND = """
max_parallel: 2
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
    needs: [b]
    command: sh steps/step.sh
  e:
    needs: [c, d]
    command: sh steps/step.sh
  f:
    needs: [e]
    command: sh steps/step.sh
"""
TASKS = ["a", "b", "c", "d", "e", "f"]
OUTPUTS = {
    "a": "a()", "b": "b(a())", "c": "c(b(a()))", "d": "d(b(a()))",
    "e": "e(c(b(a()))d(b(a())))", "f": "f(e(c(b(a()))d(b(a()))))",
}

RETRY = """
steps:
  a:
    command: sh steps/step.sh
  flaky:
    needs: [a]
    command: sh steps/step.sh
    retries: 2
    retry_backoff: 2s
  z:
    needs: [flaky]
    command: sh steps/step.sh
"""


class KillAndResumeTest(FerryTestCase):
    def start(self, holds, pipeline="diamond", text=DIAMOND, fails=None):
        p = self.project(pipelines={pipeline: text})
        for t, n in (fails or {}).items():
            p.write("marks/fail." + t, str(n))
        for t in holds:
            p.mark("hold." + t)
        bg = p.start("run", "pipelines/{}.yaml".format(pipeline))
        return p, bg, bg.run_id()

    def kill(self, p, bg, run):
        """kill -9 the owner; returns the tasks as the store holds them after its death and the
        pids of the task processes it left running. Those may die with their owner (the local
        executor may ask for SIGKILL on its death) or be killed by the resume; either way they
        must be gone once the resume has started again, and never finish their attempt.
        Waits first until the store knows the pid of each running task (the launch window before
        that is test_g's)."""
        for name, state in p.states(run).items():
            if state == "running":
                p.wait_launched(run, name)
        bg.kill9()
        before = p.tasks(run)
        self.assertEqual(p.show(run)["state"], "running")  # nobody moved it: the owner died
        orphans = {name: p.task_pid(name) for name, t in before.items()
                   if t["state"] == "running"}
        return before, orphans

    def resume(self, p, run, before, orphans):
        """Resumes in the background; once every interrupted task has started its next attempt
        (held, as before), checks that the orphans are gone, then lets everything finish."""
        res = p.start("run", "--resume", run)
        self.assertEqual(res.run_id(), run)
        for name in orphans:
            attempt = len(before[name]["attempts"]) + 1
            p.wait_mark("started.{}.{}".format(name, attempt), bg=res)
        for name, pid in orphans.items():
            p.wait_gone(pid)
        for name in os.listdir(p.marks):
            if name.startswith("hold."):
                p.unmark(name)
        r = res.wait()
        self.assertEqual(r.rc, 0, r)
        return r

    def check_resumed(self, p, run, before, interrupted, pipeline="diamond", outputs=OUTPUTS,
                      killed_midway=True):
        show = p.show(run)
        self.assertEqual(show["state"], "succeeded", show)
        tasks = {t["task"]: t for t in show["tasks"]}
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {k: "succeeded" for k in outputs})
        starts = p.starts()
        for name, t in before.items():
            if t["state"] == "succeeded":
                # Succeeded before the kill: never ran again.
                self.assertEqual(starts[name], [1], name)
                self.assertEqual(len(tasks[name]["attempts"]), 1, name)
            elif name in interrupted:
                # Interrupted: ran again, as the next attempt; the dead owner's attempt is failed.
                n = len(t["attempts"])
                self.assertEqual(starts[name], list(range(1, n + 2)), name)
                self.assertEqual([a["outcome"] for a in tasks[name]["attempts"]],
                                 ["failed"] * n + ["succeeded"], name)
            elif t["state"] in ("pending", "queued"):
                self.assertEqual(starts[name], [1], name)
        # The orphans were killed midway: their attempt never finished.
        for event, name, attempt in p.ledger():
            if event == "done" and name in interrupted and killed_midway:
                self.assertGreater(attempt, len(before[name]["attempts"]), name)
        # Every output intact: committed (manifest last) and with the right content.
        for name, text in outputs.items():
            d = p.task_dir(pipeline, run, name)
            self.assertEqual(tasks[name]["output"], "file://" + d)
            with open(os.path.join(d, "manifest.json")) as f:
                manifest = json.load(f)
            self.assertEqual(manifest["task"], name)
            self.assertEqual(manifest["attempt"], len(tasks[name]["attempts"]))
            self.assertEqual([f["path"] for f in manifest["files"]], ["output/data/out.txt"])
            self.assertEqual(p.output(pipeline, run, name), text + "\n")
        return tasks

    def check_events(self, p, run, dead_pid, interrupted):
        events = p.ok("show", run, "--events").out
        esc = re.escape(run)
        self.assertRegex(events, r"{}\s+running -> failed\s+its owner \(pid {} on \S+\) died  "
                                 r"\(ferry run --resume pid \d+@".format(esc, dead_pid))
        self.assertRegex(events, r"{}\s+failed -> running\s+resume  \(ferry run --resume pid "
                         .format(esc))
        for name in interrupted:
            self.assertRegex(events, r"{}/{}\s+running -> failed\s+its owner died while it ran  "
                                     r"\(ferry run --resume".format(esc, name))
            self.assertRegex(events, r"{}/{}\s+failed -> pending\s+resume".format(esc, name))
        self.assertEqual(len(re.findall(r"its owner died while it ran", events)),
                         len(interrupted), events)
        self.assertRegex(events, r"{}\s+running -> succeeded\s+all tasks done  \(ferry run "
                                 r"--resume".format(esc))

    def test_a_kill_while_the_first_step_runs(self):
        p, bg, run = self.start(holds=["a"])
        p.wait_mark("started.a.1", bg=bg)
        dead = bg.pid
        before, orphans = self.kill(p, bg, run)
        self.assertEqual({k: v["state"] for k, v in before.items()},
                         {"a": "running", "b": "pending", "c": "pending", "d": "pending",
                          "e": "pending", "f": "pending"})
        self.resume(p, run, before, orphans)
        self.check_resumed(p, run, before, orphans)
        self.assertEqual(p.starts(), {"a": [1, 2], "b": [1], "c": [1], "d": [1], "e": [1],
                                      "f": [1]})
        self.check_events(p, run, dead, ["a"])

    def test_b_kill_mid_chain(self):
        p, bg, run = self.start(holds=["b"])
        p.wait_mark("started.b.1", bg=bg)
        dead = bg.pid
        before, orphans = self.kill(p, bg, run)
        self.assertEqual(before["a"]["state"], "succeeded")
        self.assertEqual(before["b"]["state"], "running")
        self.assertEqual(before["c"]["state"], "pending")
        self.resume(p, run, before, orphans)
        self.check_resumed(p, run, before, orphans)
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 2], "c": [1], "d": [1], "e": [1],
                                      "f": [1]})
        self.check_events(p, run, dead, ["b"])

    def test_c_kill_while_two_parallel_steps_run(self):
        p, bg, run = self.start(holds=["c", "d"])
        p.wait_mark("started.c.1", bg=bg)
        p.wait_mark("started.d.1", bg=bg)
        dead = bg.pid
        before, orphans = self.kill(p, bg, run)
        self.assertEqual({k: v["state"] for k, v in before.items()},
                         {"a": "succeeded", "b": "succeeded", "c": "running", "d": "running",
                          "e": "pending", "f": "pending"})
        self.assertEqual(set(orphans), {"c", "d"})
        self.resume(p, run, before, orphans)
        self.check_resumed(p, run, before, orphans)
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1, 2], "d": [1, 2], "e": [1],
                                      "f": [1]})
        self.check_events(p, run, dead, ["c", "d"])

    def test_c2_kill_after_one_parallel_step_succeeded_while_the_other_runs(self):
        p, bg, run = self.start(holds=["c", "d"])
        p.wait_mark("started.c.1", bg=bg)
        p.wait_mark("started.d.1", bg=bg)
        p.unmark("hold.c")
        p.wait_task(run, "c", "succeeded")
        dead = bg.pid
        before, orphans = self.kill(p, bg, run)
        self.assertEqual(before["c"]["state"], "succeeded")
        self.assertEqual(before["d"]["state"], "running")
        self.assertEqual(before["e"]["state"], "pending")
        self.resume(p, run, before, orphans)
        self.check_resumed(p, run, before, orphans)
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1], "d": [1, 2], "e": [1],
                                      "f": [1]})
        self.check_events(p, run, dead, ["d"])

    def test_d_kill_after_a_step_exited_before_its_owner_recorded_it(self):
        # Freeze ferry while b runs, let b finish (its process exits, a zombie of the frozen
        # ferry), then kill ferry: b ended but its end was never recorded nor its output committed.
        p, bg, run = self.start(holds=["b"])
        p.wait_mark("started.b.1", bg=bg)
        p.wait_launched(run, "b")
        b_pid = p.task_pid("b")
        os.kill(bg.pid, signal.SIGSTOP)
        try:
            p.unmark("hold.b")
            wait_until(lambda: ("done", "b", 1) in p.ledger(), "b to finish its work")
            p.wait_gone(b_pid)
        finally:
            dead = bg.pid
            bg.kill9()
        before = p.tasks(run)
        self.assertEqual(before["b"]["state"], "running")
        self.assertEqual(before["c"]["state"], "pending")
        self.assertFalse(os.path.exists(os.path.join(p.task_dir("diamond", run, "b"),
                                                     "manifest.json")))
        r = p.ferry("run", "--resume", run)
        self.assertEqual(r.rc, 0, r)
        # Not committed, so not trusted: b runs again; nothing else twice.
        self.check_resumed(p, run, before, {"b"}, killed_midway=False)
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 2], "c": [1], "d": [1], "e": [1],
                                      "f": [1]})
        self.check_events(p, run, dead, ["b"])

    def test_d2_kill_after_a_checkpoint_was_committed_but_not_recorded(self):
        # As test_d, and the checkpoint of b is committed in the lake (the test writes its
        # manifest, standing in for the frozen owner, which commits before it records success):
        # the resume trusts the committed checkpoint and does not run b again.
        p, bg, run = self.start(holds=["b"])
        p.wait_mark("started.b.1", bg=bg)
        p.wait_launched(run, "b")
        b_pid = p.task_pid("b")
        os.kill(bg.pid, signal.SIGSTOP)
        try:
            p.unmark("hold.b")
            wait_until(lambda: ("done", "b", 1) in p.ledger(), "b to finish its work")
            p.wait_gone(b_pid)
        finally:
            bg.kill9()
        b_dir = p.task_dir("diamond", run, "b")
        with open(os.path.join(b_dir, "manifest.json"), "w") as f:
            json.dump({"pipeline": "diamond", "run_id": run, "task": "b", "attempt": 1,
                       "output_hash": "e2e-committed-hash", "files": []}, f)
        r = p.ferry("run", "--resume", run)
        self.assertEqual(r.rc, 0, r)
        tasks = p.tasks(run)
        self.assertEqual({k: v["state"] for k, v in tasks.items()}, {k: "succeeded" for k in TASKS})
        self.assertEqual(p.starts(), {k: [1] for k in TASKS})
        self.assertEqual(tasks["b"]["output"], "file://" + b_dir)
        self.assertEqual([a["outcome"] for a in tasks["b"]["attempts"]], ["succeeded"])
        self.assertEqual(p.output("diamond", run, "f"), OUTPUTS["f"] + "\n")
        events = p.ok("show", run, "--events").out
        self.assertRegex(events, r"{}/b\s+running -> succeeded\s+its checkpoint was committed "
                                 r"before the owner died  \(ferry run --resume"
                         .format(re.escape(run)))
        # The resume indexed that checkpoint: a new run is all cache hits.
        run2, _ = p.run("diamond")
        self.assertEqual(set(p.states(run2).values()), {"cached"})
        self.assertEqual(p.tasks(run2)["b"]["output"], "file://" + b_dir)

    def test_e_kill_during_retry_backoff(self):
        p, bg, run = self.start(holds=[], pipeline="retry", text=RETRY, fails={"flaky": 1})
        p.wait_task(run, "flaky", "retrying")
        dead = bg.pid
        before, orphans = self.kill(p, bg, run)
        self.assertEqual(orphans, {})
        self.assertEqual(before["flaky"]["state"], "retrying")
        self.assertEqual(before["z"]["state"], "pending")
        # The retry time is persisted: the resumed owner waits out the rest of the 2 s backoff
        # (not a fresh one, not forever).
        r = p.ferry("run", "--resume", run, timeout=20)
        self.assertEqual(r.rc, 0, r)
        self.assertLess(r.elapsed, 10, r)
        show = p.show(run)
        self.assertEqual(show["state"], "succeeded")
        tasks = {t["task"]: t for t in show["tasks"]}
        self.assertEqual([a["outcome"] for a in tasks["flaky"]["attempts"]],
                         ["retrying", "succeeded"])
        self.assertEqual(p.starts(), {"a": [1], "flaky": [1, 2], "z": [1]})
        events = p.ok("show", run, "--events").out
        self.assertRegex(events, r"{}\s+running -> failed\s+its owner \(pid {} on \S+\) died"
                         .format(re.escape(run), dead))
        self.assertRegex(events, r"/flaky\s+retrying -> queued\s+backoff elapsed  \(ferry run "
                                 r"--resume")
        self.assertNotIn("its owner died while it ran", events)

    def test_f_kill_the_resumer_too(self):
        p, bg, run = self.start(holds=["b"])
        p.wait_mark("started.b.1", bg=bg)
        first = p.task_pid("b")
        self.kill(p, bg, run)
        res = p.start("run", "--resume", run)
        p.wait_mark("started.b.2", bg=res)
        second = p.task_pid("b")
        p.wait_gone(first)
        before, orphans = self.kill(p, res, run)
        self.assertEqual(orphans, {"b": second})
        self.assertEqual(len(before["b"]["attempts"]), 2)
        self.resume(p, run, before, orphans)
        self.check_resumed(p, run, before, orphans)
        self.assertEqual(p.starts(), {"a": [1], "b": [1, 2, 3], "c": [1], "d": [1], "e": [1],
                                      "f": [1]})

    def test_g_kill_right_after_a_launch(self):
        # No waiting for the store to record the task's pid: ferry dies as soon as the task has
        # started. Whatever the timing, the task must not survive the resume (a dead owner's task
        # whose pid was never recorded must still be stopped), nor ever finish its attempt.
        # Timing-dependent by nature: a failure here is real, a pass on one try proves little.
        for i in range(3):
            with self.subTest(i=i):
                p = self.project(pipelines={"one": "steps:\n  a:\n    command: sh steps/step.sh\n"})
                p.mark("hold.a")
                bg = p.start("run", "pipelines/one.yaml")
                run = bg.run_id()
                p.wait_mark("started.a.1", bg=bg)
                orphan = p.task_pid("a")
                bg.kill9()
                res = p.start("run", "--resume", run)
                p.wait_mark("started.a.2", bg=res)
                p.wait_gone(orphan, timeout=10)
                p.unmark("hold.a")
                self.assertEqual(res.wait().rc, 0)
                self.assertEqual(p.starts(), {"a": [1, 2]})
                self.assertNotIn(("done", "a", 1), p.ledger())


class ResumeRulesTest(FerryTestCase):
    def test_resume_of_a_live_run_then_of_a_succeeded_run_is_refused(self):
        p = self.project(pipelines={"diamond": DIAMOND})
        p.mark("hold.a")
        bg = p.start("run", "pipelines/diamond.yaml")
        run = bg.run_id()
        p.wait_mark("started.a.1", bg=bg)
        r = p.ferry("run", "--resume", run)
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertRegex(r.err, r"^ferry: error: run {} is being driven by pid {} on \S+; wait "
                                r"for it, or `ferry cancel {}` first\n$".format(run, bg.pid, run))
        self.assertEqual(p.starts(), {"a": [1]})
        p.unmark("hold.a")
        self.assertEqual(bg.wait().rc, 0)
        r = p.ferry("run", "--resume", run)
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertEqual(r.err, "ferry: error: run {} already succeeded; there is nothing to "
                                "resume\n".format(run))
        self.assertEqual(len(p.starts()), 6)
        self.assertEqual(p.starts("a"), [1])

    def test_resume_of_a_failed_run_reruns_only_what_did_not_succeed(self):
        p = self.project(pipelines={"diamond": DIAMOND})
        p.write("marks/fail.c", "1")
        run, r = p.run("diamond", expect=EXIT_RUN_FAILED)
        self.assertEqual(p.states(run), {"a": "succeeded", "b": "succeeded", "c": "failed",
                                         "d": "succeeded", "e": "upstream_failed",
                                         "f": "upstream_failed"})
        r = p.ok("run", "--resume", run)
        self.assertIn("run {}: succeeded".format(run), r.out)
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1, 2], "d": [1], "e": [1],
                                      "f": [1]})
        self.assertEqual(p.show(run)["state"], "succeeded")
        self.assertEqual(p.output("diamond", run, "f"), OUTPUTS["f"] + "\n")

    def test_resume_reruns_a_succeeded_task_whose_checkpoint_is_gone(self):
        # As after a power loss (checkpoints are ordered, not flushed): c is recorded succeeded
        # but its manifest never reached the disk. The resume runs c again, and what needs it.
        p = self.project(pipelines={"diamond": DIAMOND})
        p.write("marks/fail.e", "1")
        run, _ = p.run("diamond", expect=EXIT_RUN_FAILED)
        self.assertEqual(p.states(run)["c"], "succeeded")
        os.remove(os.path.join(p.task_dir("diamond", run, "c"), "manifest.json"))
        p.ok("run", "--resume", run)
        tasks = p.tasks(run)
        self.assertEqual({k: v["state"] for k, v in tasks.items()}, {k: "succeeded" for k in TASKS})
        self.assertEqual(p.starts(), {"a": [1], "b": [1], "c": [1, 2], "d": [1], "e": [1, 2],
                                      "f": [1]})
        self.assertEqual([a["outcome"] for a in tasks["c"]["attempts"]],
                         ["succeeded", "succeeded"])
        self.assertTrue(os.path.exists(os.path.join(p.task_dir("diamond", run, "c"),
                                                    "manifest.json")))
        self.assertEqual(p.output("diamond", run, "f"), OUTPUTS["f"] + "\n")
        events = p.ok("show", run, "--events").out
        self.assertRegex(events, r"{}/c\s+succeeded -> pending\s+resume: checkpoint \S+ is gone"
                         .format(re.escape(run)))

    def test_resume_argument_errors(self):
        p = self.project(pipelines={"diamond": DIAMOND})
        r = p.ferry("run", "--resume", "r20000101-000000-000000")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        r = p.ferry("run", "--resume", "r20000101-000000-000000", "--param", "x=1")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertIn("--resume runs the frozen spec of the run", r.err)
        r = p.ferry("run", "pipelines/diamond.yaml", "--resume", "r20000101-000000-000000")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        r = p.ferry("run")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertEqual(p.ledger(), [])


if __name__ == "__main__":
    unittest.main()
