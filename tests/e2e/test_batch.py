"""`ferry batch`, `ferry batch-jobs`, `ferry batch-job` and the `batch` pipeline step end to end:
the real binary on the project of tests/fixtures/serve (churn:1, a logistic regression trained by
its pipeline), scoring CSV, JSONL and .zst files from the lake and from disk; kill -9 in the middle
of a job and the same command again (it skips the committed files and every output is whole);
the same rows through `ferry serve` and `ferry batch` give the same numbers; bad rows go to the
quarantine file; a `batch` step runs a job.

Every wait is a bounded poll; every process a test starts is killed at its cleanup."""

import csv
import glob
import io
import json
import os
import re
import unittest

import zstandard

from test_models_cli import expected_probability
from test_serve import Client, fixture_project
from ferry_e2e import (EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE,
                       FerryTestCase, wait_until)

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
INPUT_COLUMNS = ["customer_id", "plan", "charges", "tenure"]
PLANS = ["basic", "pro", "team"]


def make_rows(n, start=0):
    """`n` customers; charges with many digits, so that numbers must round-trip exactly."""
    return [{"customer_id": start + i + 1,
             "plan": PLANS[(start + i) % 3],
             "charges": round(20 + ((start + i) * 13.37) % 50 + 1 / 3, 10),
             "tenure": (start + i) * 7 % 36 + 1} for i in range(n)]


def csv_text(rows):
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=INPUT_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def jsonl_text(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = text.encode()
    if path.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    with open(path, "wb") as f:
        f.write(data)


def read_file(path):
    """The rows of a scored file (CSV or JSONL, optionally .zst) as dicts of text values (CSV)
    or JSON values (JSONL)."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    text = data.decode()
    if ".jsonl" in path:
        return [json.loads(line) for line in text.splitlines() if line]
    return list(csv.DictReader(io.StringIO(text)))


class BatchTest(FerryTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = fixture_project(cls, ("train",))  # churn:1
        with open(os.path.join(p.lake, "models", "churn", "1", "model.json")) as f:
            cls.meta = json.load(f)
        cls.p = p

    # --- helpers ------------------------------------------------------------------------------

    def batch(self, *args, expect=EXIT_OK, timeout=120):
        r = self.p.ferry("batch", *args, timeout=timeout)
        self.assertEqual(r.rc, expect, r)
        return r

    def job(self, job_id):
        return json.loads(self.p.ok("batch-job", "show", job_id, "--json").out)

    def check_scored(self, rows_in, rows_out, numeric_text):
        """The output rows are the input rows unchanged plus the prediction, the probabilities,
        a UUIDv7 transaction id and the model version."""
        self.assertEqual(len(rows_out), len(rows_in))
        for a, b in zip(rows_in, rows_out):
            self.assertEqual(list(b.keys())[:len(INPUT_COLUMNS)], INPUT_COLUMNS, b)
            self.assertEqual(list(b.keys())[len(INPUT_COLUMNS):],
                             ["prediction", "probability_0", "probability_1", "transaction_id",
                              "model"], b)
            for c in INPUT_COLUMNS:
                self.assertEqual(b[c], str(a[c]) if numeric_text else a[c], (c, a, b))
            p1 = float(b["probability_1"])
            self.assertAlmostEqual(p1, expected_probability(self.meta, a), places=12)
            self.assertEqual(float(b["probability_0"]) + p1, 1.0)
            self.assertEqual(str(b["prediction"]), "1" if p1 >= 0.5 else "0", b)
            self.assertRegex(b["transaction_id"], UUID7)
            self.assertEqual(b["model"], "churn:1")

    # --- scoring ------------------------------------------------------------------------------

    def test_scores_csv_jsonl_and_zst_from_the_lake_and_from_disk(self):
        files = {
            self.p.path("data", "a.csv"): make_rows(50),
            self.p.path("data", "b.jsonl"): make_rows(30, 100),
            os.path.join(self.p.lake, "incoming", "2026-11-01.csv.zst"): make_rows(40, 200),
            os.path.join(self.p.lake, "incoming", "2026-11-02.jsonl.zst"): make_rows(20, 300),
        }
        for path, rows in files.items():
            write_file(path, jsonl_text(rows) if ".jsonl" in path else csv_text(rows))
        r = self.batch("churn:1", "--input", "data/*.csv", "--input", "data/b.jsonl",
                       "--input", "lake://incoming/2026-11-*", "--output", "scored", "--wait",
                       "--json")
        doc = json.loads(r.out)
        self.assertEqual(doc["state"], "completed", r)
        self.assertEqual(doc["model"], "churn:1")
        res = doc["result"]
        self.assertEqual((res["rows"], res["scored"], res["bad"]), (140, 140, 0))
        self.assertEqual(len(res["files"]), 4)
        outputs = {os.path.basename(f["output"]): f for f in res["files"]}
        self.assertEqual(sorted(outputs), ["2026-11-01.csv.zst", "2026-11-02.jsonl.zst", "a.csv",
                                           "b.jsonl"])
        txids = set()
        for path, rows in files.items():
            name = os.path.basename(path)
            out = self.p.path("scored", name)
            self.assertEqual(os.path.realpath(outputs[name]["output"]), out)
            self.assertEqual((outputs[name]["rows"], outputs[name]["scored"],
                              outputs[name]["bad"], outputs[name]["skipped"]),
                             (len(rows), len(rows), 0, False))
            got = read_file(out)
            self.check_scored(rows, got, numeric_text=".jsonl" not in name)
            txids |= {g["transaction_id"] for g in got}
        self.assertEqual(len(txids), 140)  # one per row, never reused

        # The listing and the job's document.
        jobs = json.loads(self.p.ok("batch-jobs", "--json").out)
        listed = {j["id"]: j for j in jobs}
        self.assertIn(doc["id"], listed)
        self.assertEqual(listed[doc["id"]]["state"], "completed")
        self.assertEqual(listed[doc["id"]]["result"]["rows"], 140)
        text = self.p.ok("batch-jobs").out
        self.assertRegex(text, r"(?m)^{}\s+completed\s+churn:1\s".format(doc["id"]))
        shown = self.job(doc["id"])
        self.assertEqual(shown["spec"]["model_ref"], "churn:1")
        self.assertEqual(shown["spec"]["model_version"], 1)
        self.assertEqual(len(shown["spec"]["inputs"]), 3)
        self.assertTrue(all(os.path.isabs(i) or i.startswith("lake://")
                            for i in shown["spec"]["inputs"]), shown["spec"])
        self.assertEqual([(e["from"], e["to"]) for e in shown["events"]],
                         [("", "queued"), ("queued", "running"), ("running", "completed")])
        self.assertEqual(shown["result"]["rows"], 140)

        # The same command again: the same job, already completed; nothing is scored twice.
        first_txid = read_file(self.p.path("scored", "a.csv"))[0]["transaction_id"]
        again = self.batch("churn:1", "--input", "data/*.csv", "--input", "data/b.jsonl",
                           "--input", "lake://incoming/2026-11-*", "--output", "scored",
                           "--wait", "--json")
        self.assertEqual(json.loads(again.out)["id"], doc["id"])
        self.assertEqual(read_file(self.p.path("scored", "a.csv"))[0]["transaction_id"],
                         first_txid)

    def test_default_output_is_the_jobs_lake_folder_and_runs_in_the_background(self):
        rows = make_rows(25, 1000)
        write_file(self.p.path("bg", "x.csv"), csv_text(rows))
        r = self.p.ok("batch", "churn:1", "--input", "bg/x.csv", "--json")
        doc = json.loads(r.out)
        job_id = doc["id"]
        self.assertRegex(job_id, r"^b[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
        self.assertTrue(doc["log"].endswith(os.path.join(".ferry", "batch", job_id + ".log")))
        done = wait_until(lambda: self.job(job_id)["state"] in ("completed", "failed") and
                          self.job(job_id), "the background job to end", timeout=60)
        self.assertEqual(done["state"], "completed", done)
        out = os.path.join(self.p.lake, "batch", job_id, "output", "x.csv")
        self.check_scored(rows, read_file(out), numeric_text=True)
        self.assertEqual(self.job(job_id)["result"]["files"][0]["output"].endswith("x.csv"), True)

    def test_exit_codes(self):
        write_file(self.p.path("codes", "x.csv"), csv_text(make_rows(3)))
        r = self.batch("nosuch:1", "--input", "codes/x.csv", "--wait", expect=EXIT_NOT_FOUND)
        self.assertIn("nosuch", r.err)
        r = self.batch("churn:1", "--input", "codes/none-*.csv", "--wait", expect=EXIT_NOT_FOUND)
        self.assertIn("none-*.csv", r.err)
        self.batch("churn:1", "--wait", expect=EXIT_USAGE)  # no --input
        self.batch("churn:1", "--input", "codes/x.csv", "--max-bad-fraction", "2",
                   expect=EXIT_USAGE)
        r = self.p.ferry("batch-job", "show", "b20260101-000000-abcdef")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        done = json.loads(self.batch("churn:1", "--input", "codes/x.csv", "--output", "codes/out",
                                     "--wait", "--json").out)
        r = self.p.ferry("batch-job", "stop", done["id"])
        self.assertEqual(r.rc, EXIT_CONFLICT, r)
        self.assertIn("completed", r.err)

    # --- resume -------------------------------------------------------------------------------

    def test_resume_after_kill9_skips_committed_files_and_every_output_is_whole(self):
        n_files, n_rows = 12, 100_000
        names = ["part-{:02d}.csv".format(i) for i in range(n_files)]
        for i, name in enumerate(names):
            write_file(self.p.path("big", name), csv_text(make_rows(n_rows, i * n_rows)))
        args = ["batch", "churn:1", "--input", "big/part-*.csv", "--output", "resumed",
                "--threads", "1", "--wait", "--json"]
        bg = self.p.start(*args)

        def committed():
            return [n for n in names if os.path.exists(self.p.path("resumed", n))]
        wait_until(lambda: committed() or bg.proc.poll() is not None, "a first committed output",
                   timeout=120)
        bg.kill9()
        before = len(committed())
        self.assertGreaterEqual(before, 1, bg.stderr())
        self.assertLess(before, n_files, "the job finished before the kill: make it bigger")

        r = self.p.ferry(*args, timeout=240)
        self.assertEqual(r.rc, EXIT_OK, r)
        m = re.search(r"resuming batch job (\S+): (\d+) of (\d+) files already committed", r.err)
        self.assertIsNotNone(m, r)
        self.assertEqual(int(m.group(3)), n_files)
        self.assertGreaterEqual(int(m.group(2)), before)
        doc = json.loads(r.out)
        self.assertEqual(doc["id"], m.group(1))
        self.assertEqual(doc["state"], "completed")
        skipped = [f for f in doc["result"]["files"] if f["skipped"]]
        self.assertEqual(len(skipped), int(m.group(2)))
        self.assertEqual(len(doc["result"]["files"]), n_files)
        self.assertEqual(sorted(os.listdir(self.p.path("resumed"))), names)  # no temp files left
        events = [(e["from"], e["to"]) for e in self.job(doc["id"])["events"]]
        self.assertIn(("running", "failed"), events)  # the dead owner's job, then resumed
        self.assertEqual(events[-1], ("running", "completed"))

        clean = self.p.ferry("batch", "churn:1", "--input", "big/part-*.csv", "--output", "clean",
                             "--wait", "--json", timeout=240)
        self.assertEqual(clean.rc, EXIT_OK, clean)
        self.assertNotEqual(json.loads(clean.out)["id"], doc["id"])
        for name in names:
            a = read_file(self.p.path("resumed", name))
            b = read_file(self.p.path("clean", name))
            self.assertEqual(len(a), n_rows, name)  # whole: every row, none twice
            self.assertEqual(len(b), n_rows, name)
            for x, y in zip(a, b):
                self.assertEqual([x[c] for c in INPUT_COLUMNS], [y[c] for c in INPUT_COLUMNS])
                self.assertEqual((x["prediction"], x["probability_0"], x["probability_1"]),
                                 (y["prediction"], y["probability_0"], y["probability_1"]))
                self.assertNotEqual(x["transaction_id"], y["transaction_id"])

    # --- parity with serving ------------------------------------------------------------------

    def test_batch_and_http_give_identical_predictions(self):
        rows = make_rows(200, 5000)
        write_file(self.p.path("parity", "rows.jsonl"), jsonl_text(rows))
        r = self.p.ferry("deploy", "parity", "--model", "churn:1", "--wait", timeout=120)
        self.assertEqual(r.rc, EXIT_OK, r)
        bg = self.p.start("serve", "--endpoint", "parity", "--port", "0", "--no-log")

        def port():
            m = re.search(r"^serving endpoint \S+ on http://127\.0\.0\.1:(\d+)$", bg.stdout(),
                          re.M)
            if m:
                return int(m.group(1))
            if bg.proc.poll() is not None:
                raise AssertionError("ferry serve exited:\n" + bg.stderr())
            return None
        c = Client(wait_until(port, "ferry serve to listen"))
        self.addCleanup(c.close)
        status, _, doc, text = c.invoke(rows)
        self.assertEqual(status, 200, text)
        online = doc["predictions"]

        self.batch("churn:1", "--input", "parity/rows.jsonl", "--output", "parity/out", "--wait")
        offline = read_file(self.p.path("parity", "out", "rows.jsonl"))
        self.assertEqual(len(offline), len(online))
        for http_row, batch_row in zip(online, offline):
            self.assertEqual(str(batch_row["prediction"]), http_row["label"])
            # Exact equality of the parsed doubles: the same code path, printed round-trip.
            self.assertEqual(float(batch_row["probability_0"]), http_row["probabilities"]["0"])
            self.assertEqual(float(batch_row["probability_1"]), http_row["probabilities"]["1"])

    # --- quarantine ---------------------------------------------------------------------------

    def test_bad_rows_go_to_quarantine_with_line_numbers(self):
        good = make_rows(10, 9000)
        lines = csv_text(good).splitlines()
        # Line 1 is the header; bad rows at lines 4, 8 and 11 of the file.
        lines.insert(3, "9901,pro,abc,5")          # a malformed number
        lines.insert(7, "9902,pro,12.5")           # a wrong field count
        lines.insert(10, "9903,basic,30.5,")       # an empty required field
        write_file(self.p.path("bad", "mixed.csv"), "\n".join(lines) + "\n")

        r = self.batch("churn:1", "--input", "bad/mixed.csv", "--output", "bad/ok",
                       "--max-bad-rows", "5", "--max-bad-fraction", "0.5", "--wait", "--json")
        f = json.loads(r.out)["result"]["files"][0]
        self.assertEqual((f["rows"], f["scored"], f["bad"]), (13, 10, 3))
        self.check_scored(good, read_file(self.p.path("bad", "ok", "mixed.csv")),
                          numeric_text=True)
        self.assertTrue(f["quarantine"], f)
        with open(f["quarantine"]) as q:
            quarantine = q.read()
        for line in (4, 8, 11):
            self.assertRegex(quarantine, r"\b{}\b".format(line), quarantine)
        self.assertNotRegex(quarantine, r"\b(2|3|5)\b.*\n.*9001", quarantine)
        self.assertRegex(quarantine.lower(), r"abc|number|parse", quarantine)
        self.assertRegex(quarantine.lower(), r"field|column", quarantine)

        r = self.batch("churn:1", "--input", "bad/mixed.csv", "--output", "bad/strict",
                       "--max-bad-rows", "0", "--wait", expect=EXIT_RUN_FAILED)
        self.assertIn("mixed.csv", r.err)
        self.assertRegex(r.err, r"\b4\b", r.err)  # the first bad line
        self.assertFalse(os.path.exists(self.p.path("bad", "strict", "mixed.csv")),
                         os.listdir(self.p.path("bad", "strict"))
                         if os.path.isdir(self.p.path("bad", "strict")) else None)
        failed = json.loads(self.p.ok("batch-jobs", "--json").out)[0]
        self.assertEqual(failed["state"], "failed")
        self.assertIn("mixed.csv", failed["message"])

    # --- the pipeline step --------------------------------------------------------------------

    def test_a_batch_step_runs_a_job_and_its_output_names_it(self):
        rows = make_rows(15, 7000)
        write_file(self.p.path("step", "in.csv"), csv_text(rows))
        self.p.write("pipelines/score.yaml", (
            "steps:\n"
            "  score:\n"
            "    batch:\n"
            "      model: \"churn:1\"\n"
            "      input: step/in.csv\n"
            "      output: step/out\n"
            "      threads: 2\n"
            "      max_bad_rows: 0\n"))
        run_id, _ = self.p.run("score")
        out = json.loads(self.p.output("score", run_id, "score", "batch.json"))
        self.assertRegex(out["job"], r"^b[0-9]{8}-")
        self.assertEqual(out["state"], "completed")
        self.assertEqual(out["result"]["rows"], 15)
        self.assertEqual(self.job(out["job"])["state"], "completed")
        self.check_scored(rows, read_file(self.p.path("step", "out", "in.csv")), numeric_text=True)

    def test_a_batch_step_with_bad_keys_is_reported_where_they_are(self):
        self.p.write("pipelines/badscore.yaml", (
            "steps:\n"
            "  score:\n"
            "    batch:\n"
            "      model: \"churn:1\"\n"
            "      inptu: step/in.csv\n"
            "      threads: many\n"))
        r = self.p.ferry("validate", "pipelines/badscore.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        text = r.out + r.err
        self.assertRegex(text, r"badscore\.yaml:5:\d+: error: .*unknown key 'inptu'.*input")
        self.assertRegex(text, r"badscore\.yaml:6:\d+: error: .*threads")
        # The mapping that lacks the key: it starts on line 4.
        self.assertRegex(text, r"badscore\.yaml:4:\d+: error: .*needs input")


if __name__ == "__main__":
    unittest.main()
