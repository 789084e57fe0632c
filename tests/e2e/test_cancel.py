"""Cancellation: `ferry cancel` of a live run (SIGTERM to the tasks, SIGKILL after
executor.kill_grace for those that ignore it), Ctrl-C / SIGTERM to `ferry run`, cancel of a run
whose owner was kill -9'd, of a finished run, and resuming a cancelled run."""

import re
import signal
import unittest

from ferry_e2e import (EXIT_CANCELLED, EXIT_CONFLICT, EXIT_NOT_FOUND, FerryTestCase, pid_alive)

FERRY_YAML = "name: e2e\nexecutor: { kill_grace: 1s }\n"

# While marks/hold.<task> exists (bounded), loops; on SIGTERM records it and exits 143.
POLITE_SH = r"""
m="$FERRY_PROJECT_DIR/marks"
echo $$ > "$m/pid.$FERRY_TASK"
echo $$ >> "$m/pids"
trap 'echo TERM >> "$m/term.$FERRY_TASK"; exit 143' TERM
echo "start $FERRY_TASK $FERRY_ATTEMPT" >> "$m/ledger"
: > "$m/started.$FERRY_TASK.$FERRY_ATTEMPT"
i=0
while [ -e "$m/hold.$FERRY_TASK" ] && [ $i -lt 1200 ]; do i=$((i + 1)); sleep 0.05; done
echo "done $FERRY_TASK $FERRY_ATTEMPT" >> "$m/ledger"
"""

# Records SIGTERM but keeps going: only SIGKILL stops it.
STUBBORN_SH = r"""
m="$FERRY_PROJECT_DIR/marks"
echo $$ > "$m/pid.$FERRY_TASK"
echo $$ >> "$m/pids"
trap 'echo TERM >> "$m/term.$FERRY_TASK"' TERM
echo "start $FERRY_TASK $FERRY_ATTEMPT" >> "$m/ledger"
: > "$m/started.$FERRY_TASK.$FERRY_ATTEMPT"
i=0
while [ -e "$m/hold.$FERRY_TASK" ] && [ $i -lt 1200 ]; do i=$((i + 1)); sleep 0.05; done
echo "done $FERRY_TASK $FERRY_ATTEMPT" >> "$m/ledger"
"""

PIPELINE = """
max_parallel: 2
steps:
  polite:
    command: sh steps/polite.sh
  stubborn:
    command: sh steps/stubborn.sh
  later:
    needs: [polite]
    command: sh steps/step.sh
"""


class CancelTest(FerryTestCase):
    def start(self, holds=("polite", "stubborn")):
        p = self.project(ferry_yaml=FERRY_YAML, pipelines={"cancel": PIPELINE},
                         files={"steps/polite.sh": POLITE_SH, "steps/stubborn.sh": STUBBORN_SH})
        for t in holds:
            p.mark("hold." + t)
        bg = p.start("run", "pipelines/cancel.yaml")
        run = bg.run_id()
        for t in holds:
            p.wait_mark("started.{}.1".format(t), bg=bg)
        return p, bg, run

    def test_ferry_cancel_terminates_then_kills_after_the_grace_period(self):
        p, bg, run = self.start()
        pids = {t: p.task_pid(t) for t in ("polite", "stubborn")}
        r = p.ok("cancel", run)
        self.assertEqual(r.out, "run {} is cancelling: its owner (pid {}) is stopping its "
                                "tasks\n".format(run, bg.pid))
        done = bg.wait(timeout=30)
        self.assertEqual(done.rc, EXIT_CANCELLED, done)
        self.assertIn("\nrun {}: cancelled in ".format(run), done.out)
        show = p.show(run)
        self.assertEqual(show["state"], "cancelled")
        self.assertEqual(show["message"], "cancelled by ferry cancel")
        tasks = {t["task"]: t for t in show["tasks"]}
        self.assertEqual({k: v["state"] for k, v in tasks.items()},
                         {"polite": "cancelled", "stubborn": "cancelled", "later": "cancelled"})
        self.assertEqual(tasks["polite"]["exit_code"], 143)   # its TERM trap's exit
        self.assertEqual(tasks["stubborn"]["exit_code"], 137)  # SIGKILL after 1 s of grace
        self.assertEqual(p.read("marks/term.polite"), "TERM\n")
        self.assertTrue(p.read("marks/term.stubborn").startswith("TERM\n"))
        self.assertEqual(tasks["later"]["attempts"], [])
        for pid in pids.values():
            self.assertFalse(pid_alive(pid))
        self.assertNotIn("done", [e for e, _, _ in p.ledger()])
        events = p.ok("show", run, "--events").out
        self.assertRegex(events, r"{}\s+running -> cancelling\s+ferry cancel  \(ferry cancel pid "
                         .format(re.escape(run)))
        self.assertRegex(events, r"/stubborn\s+running -> cancelled\s+run cancelled: killed by "
                                 r"SIGKILL after the grace period")
        self.assertRegex(events, r"/polite\s+running -> cancelled\s+run cancelled: exited with "
                                 r"code 143")
        self.assertRegex(events, r"{}\s+cancelling -> cancelled".format(re.escape(run)))

        # A cancelled run can be resumed: what did not succeed runs again.
        for t in ("polite", "stubborn"):
            p.unmark("hold." + t)
        r = p.ok("run", "--resume", run)
        self.assertEqual(set(p.states(run).values()), {"succeeded"})
        self.assertEqual(p.starts(), {"polite": [1, 2], "stubborn": [1, 2], "later": [1]})

    def test_ctrl_c_and_sigterm_to_ferry_run_cancel(self):
        for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
            with self.subTest(signal=name):
                p, bg, run = self.start()
                pids = {t: p.task_pid(t) for t in ("polite", "stubborn")}
                bg.proc.send_signal(sig)
                done = bg.wait(timeout=30)
                self.assertEqual(done.rc, EXIT_CANCELLED, done)
                show = p.show(run)
                self.assertEqual(show["state"], "cancelled")
                self.assertEqual(show["message"], "cancelled by a signal")
                tasks = {t["task"]: t for t in show["tasks"]}
                self.assertEqual({k: v["state"] for k, v in tasks.items()},
                                 {"polite": "cancelled", "stubborn": "cancelled",
                                  "later": "cancelled"})
                self.assertEqual(tasks["polite"]["exit_code"], 143)
                self.assertEqual(tasks["stubborn"]["exit_code"], 137)
                self.assertEqual(p.read("marks/term.polite"), "TERM\n")
                for pid in pids.values():
                    self.assertFalse(pid_alive(pid))

    def test_cancel_during_a_retry_backoff_does_not_wait_for_it(self):
        p = self.project(ferry_yaml=FERRY_YAML, pipelines={"backoff": """
            steps:
              flaky:
                command: sh steps/step.sh
                retries: 1
                retry_backoff: 60s
            """})
        p.write("marks/fail.flaky", "1")
        bg = p.start("run", "pipelines/backoff.yaml")
        run = bg.run_id()
        p.wait_task(run, "flaky", "retrying")
        p.ok("cancel", run)
        done = bg.wait(timeout=20)
        self.assertEqual(done.rc, EXIT_CANCELLED, done)
        self.assertLess(done.elapsed, 20)
        self.assertEqual(p.states(run), {"flaky": "cancelled"})
        self.assertEqual(p.starts(), {"flaky": [1]})

    def test_cancel_of_a_run_whose_owner_was_killed(self):
        p, bg, run = self.start(holds=("polite", "stubborn"))
        pids = {t: p.task_pid(t) for t in ("polite", "stubborn")}
        for t in pids:
            p.wait_launched(run, t)
        bg.kill9()
        r = p.ok("cancel", run)
        self.assertEqual(r.out, "run {} cancelled\n".format(run))
        # At once: no owner to wait for.
        show = p.show(run)
        self.assertEqual(show["state"], "cancelled")
        self.assertEqual(p.states(run), {"polite": "cancelled", "stubborn": "cancelled",
                                         "later": "cancelled"})
        # The orphaned task processes are gone (killed with their owner, or by the cancel).
        for pid in pids.values():
            p.wait_gone(pid)
        self.assertFalse(p.marked("term.polite"))
        events = p.ok("show", run, "--events").out
        self.assertRegex(events, r"{}\s+cancelling -> cancelled\s+owner gone  \(ferry cancel"
                         .format(re.escape(run)))
        self.assertRegex(events, r"/polite\s+running -> cancelled\s+ferry cancel \(owner gone\)")

    def test_cancel_of_a_finished_or_unknown_run(self):
        p = self.project(pipelines={"one": "steps:\n  a:\n    command: sh steps/step.sh\n"})
        run, _ = p.run("one")
        r = p.ferry("cancel", run)
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertEqual(r.err, "ferry: error: run {} has already ended (succeeded); there is "
                                "nothing to cancel\n".format(run))
        self.assertEqual(p.show(run)["state"], "succeeded")
        r = p.ferry("cancel", "r20000101-000000-000000")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        r = p.ferry("cancel")
        self.assertEqual(r.rc, 2, r)


if __name__ == "__main__":
    unittest.main()
