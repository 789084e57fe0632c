"""Failures, retries with backoff, timeouts, `ferry logs`, and the concurrency limit."""

import json
import re
import unittest

from ferry_e2e import EXIT_NOT_FOUND, EXIT_RUN_FAILED, FerryTestCase, wait_until

RETRY = """
steps:
  flaky:
    command: sh steps/step.sh
    retries: 2
    retry_backoff: 100ms
  after:
    needs: [flaky]
    command: sh steps/step.sh
"""

FAILING = """
steps:
  ok:
    command: sh steps/step.sh
  bad:
    command: sh steps/step.sh
    retries: 1
    retry_backoff: 100ms
  child:
    needs: [bad, ok]
    command: sh steps/step.sh
  grandchild:
    needs: [child]
    command: sh steps/step.sh
  sibling:
    needs: [ok]
    command: sh steps/step.sh
"""


class RetryTest(FerryTestCase):
    def test_fails_twice_then_succeeds_with_three_attempts(self):
        p = self.project(pipelines={"retry": RETRY})
        p.write("marks/fail.flaky", "2")
        run, r = p.run("retry")
        tasks = p.tasks(run)
        flaky = tasks["flaky"]
        self.assertEqual(flaky["state"], "succeeded")
        self.assertEqual([a["attempt"] for a in flaky["attempts"]], [1, 2, 3])
        self.assertEqual([a["outcome"] for a in flaky["attempts"]],
                         ["retrying", "retrying", "succeeded"])
        self.assertEqual([a["exit_code"] for a in flaky["attempts"]], [1, 1, 0])
        self.assertEqual(flaky["exit_code"], 0)
        self.assertEqual(tasks["after"]["state"], "succeeded")
        self.assertEqual(p.starts(), {"flaky": [1, 2, 3], "after": [1]})
        self.assertEqual(p.output("retry", run, "flaky"), "flaky()\n")
        # The backoff doubles: 100ms, then 200ms.
        events = p.ok("show", run, "--events").out
        self.assertIn("running -> retrying        exited with code 1: attempt 1 of flaky failed "
                      "on purpose; retry 1 of 2 in 100ms", events)
        self.assertIn("retry 2 of 2 in 200ms", events)
        self.assertEqual(events.count("retrying -> queued          backoff elapsed"), 2)
        # The summary shows 3 attempts.
        self.assertRegex(r.out, r"\n  flaky\s+succeeded\s+3\s")
        # `ferry show` lists each attempt of a task that had several.
        text = p.ok("show", run).out
        self.assertRegex(text, r"\n    attempt 1: retrying \(exit 1\) ")
        self.assertRegex(text, r"\n    attempt 3: succeeded \(exit 0\) ")

    def test_a_retry_starts_with_empty_output_and_model_folders(self):
        p = self.project(pipelines={"leftovers": """
            steps:
              t:
                command: sh steps/leftovers.sh
                retries: 1
                retry_backoff: 100ms
            """}, files={"steps/leftovers.sh": """
            echo "$FERRY_ATTEMPT" > "$SM_OUTPUT_DATA_DIR/left.$FERRY_ATTEMPT"
            echo "$FERRY_ATTEMPT" > "$SM_MODEL_DIR/model.$FERRY_ATTEMPT"
            ls "$SM_OUTPUT_DATA_DIR" "$SM_MODEL_DIR" > "$FERRY_PROJECT_DIR/marks/seen.$FERRY_ATTEMPT"
            [ "$FERRY_ATTEMPT" -ge 2 ]
            """})
        run, _ = p.run("leftovers")
        self.assertEqual(p.read("marks/seen.2").split(),
                         [p.task_dir("leftovers", run, "t") + "/model:", "model.2",
                          p.task_dir("leftovers", run, "t") + "/output/data:", "left.2"])
        with open(p.task_dir("leftovers", run, "t") + "/manifest.json") as f:
            manifest = json.load(f)
        self.assertEqual([f["path"] for f in manifest["files"]],
                         ["model/model.2", "output/data/left.2"])
        self.assertEqual(manifest["attempt"], 2)

    def test_a_task_that_succeeded_on_a_retry_shows_no_failure_message(self):
        p = self.project(pipelines={"retry": RETRY})
        p.write("marks/fail.flaky", "1")
        run, _ = p.run("retry")
        self.assertEqual(p.tasks(run)["flaky"]["message"], "")


class FailureTest(FerryTestCase):
    def test_a_failing_step_fails_the_run_and_its_downstream(self):
        p = self.project(pipelines={"failing": FAILING})
        p.write("marks/fail.bad", "99")
        run, r = p.run("failing", expect=EXIT_RUN_FAILED)
        show = p.show(run)
        self.assertEqual(show["state"], "failed")
        tasks = {t["task"]: t for t in show["tasks"]}
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {"ok": "succeeded", "bad": "failed", "child": "upstream_failed",
                          "grandchild": "upstream_failed", "sibling": "succeeded"})
        bad = tasks["bad"]
        self.assertEqual(bad["message"], "exited with code 1: attempt 2 of bad failed on purpose")
        self.assertEqual(bad["exit_code"], 1)
        self.assertEqual([a["outcome"] for a in bad["attempts"]], ["retrying", "failed"])
        self.assertEqual(bad["output"], "")
        self.assertEqual(tasks["child"]["attempts"], [])
        self.assertEqual(show["message"], "bad failed, child upstream_failed, "
                                          "grandchild upstream_failed")
        self.assertEqual(p.starts(), {"ok": [1], "bad": [1, 2], "sibling": [1]})
        events = p.ok("show", run, "--events").out
        self.assertRegex(events,
                         r"/child\s+pending -> upstream_failed\s+upstream task 'bad' failed")
        # `ferry show` prints the message.
        text = p.ok("show", run).out
        self.assertRegex(text, r"\nbad\s+failed\s+2 .* 1  exited with code 1: attempt 2 of bad "
                               r"failed on purpose\n")
        self.assertIn("\nstate     failed\n", text)

        # `ferry logs RUN TASK`: the step's stdout, attempt by attempt.
        logs = p.ok("logs", run, "bad").out
        self.assertEqual(logs, "".join(
            "==> bad attempt {a} ({o}) <==\ntask bad attempt {a} of run {r}\n"
            "attempt {a} of bad failed on purpose\n".format(a=a, o=o, r=run)
            for a, o in [(1, "retrying"), (2, "failed")]))
        logs = p.ok("logs", run, "bad", "--attempt", "2").out
        self.assertTrue(logs.startswith("==> bad attempt 2 (failed) <==\n"), logs)
        self.assertNotIn("attempt 1", logs)
        everything = p.ok("logs", run).out
        self.assertEqual(re.findall(r"^==> (\S+) attempt (\d) ", everything, re.M),
                         [("ok", "1"), ("bad", "1"), ("bad", "2"), ("sibling", "1")])
        r = p.ferry("logs", run, "nope")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        self.assertIn("run {} has no task 'nope'".format(run), r.err)
        r = p.ferry("logs", "r20000101-000000-000000")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)

    def test_a_program_that_cannot_start(self):
        p = self.project(pipelines={"nostart": """
            steps:
              a:
                command: no-such-program-e2e --flag
            """})
        run, _ = p.run("nostart", expect=EXIT_RUN_FAILED)
        a = p.tasks(run)["a"]
        self.assertEqual(a["state"], "failed")
        self.assertEqual(a["exit_code"], 127)
        self.assertIn("cannot start 'no-such-program-e2e'", a["message"])
        self.assertIn("is it installed and on PATH?", a["message"])


class TimeoutTest(FerryTestCase):
    def test_a_step_over_its_timeout_is_stopped(self):
        p = self.project(ferry_yaml="executor: { kill_grace: 1s }\n", pipelines={"slow": """
            steps:
              sleepy:
                command: sleep 30
                timeout: 1s
              stubborn:
                command: sh steps/stubborn.sh
                timeout: 1s
              after:
                needs: [sleepy]
                command: sh steps/step.sh
            """}, files={"steps/stubborn.sh": """
            trap 'echo TERM >> "$FERRY_PROJECT_DIR/marks/stubborn.term"' TERM
            echo $$ > "$FERRY_PROJECT_DIR/marks/pid.stubborn"
            i=0
            while [ $i -lt 600 ]; do i=$((i + 1)); sleep 0.05; done
            """})
        run, r = p.run("slow", expect=EXIT_RUN_FAILED, timeout=25)
        # 1 s timeout + 1 s grace, far from the 30 s of sleep and the 30 s of the loop.
        self.assertLess(r.elapsed, 15, r)
        tasks = p.tasks(run)
        self.assertEqual(tasks["sleepy"]["state"], "failed")
        self.assertEqual(tasks["sleepy"]["message"], "timed out after 1.0s")
        self.assertEqual(tasks["sleepy"]["exit_code"], 143)  # SIGTERM
        self.assertEqual(tasks["stubborn"]["state"], "failed")
        self.assertEqual(tasks["stubborn"]["message"], "timed out after 1.0s")
        self.assertEqual(tasks["stubborn"]["exit_code"], 137)  # SIGKILL after the grace period
        self.assertTrue(p.marked("stubborn.term"))  # it got the SIGTERM first
        self.assertEqual(tasks["after"]["state"], "upstream_failed")
        self.assertEqual(p.ledger(), [])


# Each of the 4 independent steps: creates marks/running.<task> and marks/started.<task>, then,
# while marks/hold.<task> exists (bounded: 60 s), keeps checking that no more than marks/maxp
# steps are running (failing at once otherwise) and records each count it saw in marks/seen.
PAR_SH = r"""
m="$FERRY_PROJECT_DIR/marks"
maxp=$(cat "$m/maxp")
echo $$ >> "$m/pids"
: > "$m/running.$FERRY_TASK"
: > "$m/started.$FERRY_TASK"
i=0
while :; do
  set -- "$m"/running.*
  echo $# >> "$m/seen"
  if [ $# -gt "$maxp" ]; then
    echo "$# tasks running, more than $maxp" > "$SM_OUTPUT_DIR/failure"
    rm "$m/running.$FERRY_TASK"
    exit 1
  fi
  [ -e "$m/hold.$FERRY_TASK" ] || break
  i=$((i + 1))
  if [ $i -gt 1200 ]; then rm "$m/running.$FERRY_TASK"; exit 3; fi
  sleep 0.05
done
rm "$m/running.$FERRY_TASK"
"""

TASKS = ["p0", "p1", "p2", "p3"]
FOUR = "steps:\n" + "".join("  {}:\n    command: sh steps/par.sh\n".format(t) for t in TASKS)


class ParallelismTest(FerryTestCase):
    """Every step is held until the test lets it go, so what runs together is decided by ferry
    alone; the steps check the limit themselves at every poll."""

    def start_four(self, ferry_yaml, pipeline, maxp):
        p = self.project(ferry_yaml=ferry_yaml, pipelines={"four": pipeline},
                         files={"steps/par.sh": PAR_SH})
        p.write("marks/maxp", str(maxp))
        for t in TASKS:
            p.mark("hold." + t)
        bg = p.start("run", "pipelines/four.yaml")
        return p, bg, bg.run_id()

    def started(self, p):
        return {t for t in TASKS if p.marked("started." + t)}

    def running(self, p, run):
        return {t for t, s in p.states(run).items() if s == "running"}

    def finish(self, p, bg, run):
        r = bg.wait()
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(set(p.states(run).values()), {"succeeded"})
        with open(p.path("marks", "seen")) as f:
            return max(int(x) for x in f.read().split())

    def test_max_parallel_2_never_runs_more_than_2(self):
        # The pipeline's max_parallel wins over ferry.yaml's.
        p, bg, run = self.start_four("executor: { max_parallel: 4 }\n",
                                     "max_parallel: 2\n" + FOUR, maxp=2)
        released = set()
        while len(released) < 4:
            # Wait until 2 held steps run (fewer once fewer than 2 are left).
            want = min(2, 4 - len(released))
            live = self.wait_running(p, bg, run, released, want, 2)
            self.assertEqual(len(live), want)
            queued = {t for t, s in p.states(run).items() if s == "queued"}
            self.assertEqual(queued, set(TASKS) - released - live)
            # Let one go; ferry may then start one more, never two.
            t = sorted(live)[0]
            p.unmark("hold." + t)
            released.add(t)
        self.assertEqual(self.finish(p, bg, run), 2)

    def wait_running(self, p, bg, run, released, want, maxp):
        def check():
            if bg.proc.poll() is not None:
                raise AssertionError("ferry ended early:\n" + bg.stdout())
            states = p.states(run)
            running = {t for t, s in states.items() if s == "running"}
            failed = {t for t, s in states.items() if s == "failed"}
            self.assertLessEqual(len(running), maxp, states)
            self.assertEqual(failed, set(), p.ferry("logs", run).out)
            live = {t for t in self.started(p) - released if p.marked("running." + t)}
            # The store agrees once ferry has seen the released steps exit.
            return live if len(live) >= want and running == live else None
        return wait_until(check, "{} steps running".format(want))

    def test_max_parallel_4_runs_all_4_at_once(self):
        p, bg, run = self.start_four("executor: { max_parallel: 4 }\n", FOUR, maxp=4)
        live = self.wait_running(p, bg, run, set(), 4, 4)
        self.assertEqual(live, set(TASKS))
        for t in TASKS:
            p.unmark("hold." + t)
        self.assertEqual(self.finish(p, bg, run), 4)


if __name__ == "__main__":
    unittest.main()
