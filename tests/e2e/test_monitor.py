"""`ferry labels`, `ferry monitor`, `ferry monitor-runs` and the `monitor` and `inference_log`
steps end to end: the real binary on the project of tests/fixtures/serve (churn:1, a logistic
regression) deployed to endpoints, with a synthetic week of traffic in the inference log.

The week: today's rows are real traffic (`ferry serve`, one request per row, so that every row
has its own transaction id); the six days before are segments this test writes in the record
format of docs/serving.md (zstd JSON lines under inference/<endpoint>/<yyyy>/<mm>/<dd>/<hh>/).
On endpoint `churn`, `charges` drifts upwards day by day while `tenure`, `plan` and
`customer_id` keep the training distribution, and the labels make the model's accuracy fall by
exactly 2 points a day (0.95, 0.93, ... 0.83). Endpoint `clean` gets a week like the training
data with a steady accuracy.

Every wait is a bounded poll; every process a test starts is killed at its cleanup."""

import csv
import datetime
import json
import os
import random
import re
import signal
import unittest
import uuid

import zstandard

from test_models_cli import expected_probability
from test_serve import Client, fixture_project
from ferry_e2e import EXIT_OK, EXIT_RUN_FAILED, FerryTestCase, wait_until

EXIT_ALERTED = 3
ROWS_PER_DAY = 200
DAYS = 7                 # day 0 is six days ago, day 6 is today
SLOPE = -0.02            # accuracy per day on endpoint churn
FIRST_ACCURACY = 0.95


def training_row(rng):
    """A row drawn from the training source's distribution (test_models_cli.make_source)."""
    i = rng.randrange(80)
    return {"customer_id": i + 1, "plan": ["basic", "pro", "team"][i % 3],
            "charges": 20 + (i * 13) % 50 + 0.5, "tenure": (i * 7) % 36 + 1}


def write_segment(lake, endpoint, records, seq):
    """One committed segment of `records` (all of one UTC hour), named as the log names them."""
    t = datetime.datetime.strptime(records[0]["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    folder = os.path.join(lake, "inference", endpoint, t.strftime("%Y"), t.strftime("%m"),
                          t.strftime("%d"), t.strftime("%H"))
    os.makedirs(folder, exist_ok=True)
    name = "{}.{:03d}Z-e2e-{:06d}.jsonl.zst".format(t.strftime("%Y%m%dT%H%M%S"),
                                                     t.microsecond // 1000, seq)
    text = "".join(json.dumps(r) + "\n" for r in records)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(zstandard.ZstdCompressor().compress(text.encode()))


class MonitorTest(FerryTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        p = fixture_project(cls, ("train",))  # churn:1
        with open(os.path.join(p.lake, "models", "churn", "1", "model.json")) as f:
            cls.meta = json.load(f)
        cls.p = p
        cls.labels = {}      # endpoint -> [(transaction_id, churned)]
        cls.day_rows = {}    # endpoint -> rows per day index
        for endpoint in ("churn", "clean"):
            r = p.ferry("deploy", endpoint, "--model", "churn:1", "--wait", timeout=120)
            assert r.rc == EXIT_OK, r
        cls.make_week("churn", drift=True, slope=SLOPE, seed=1)
        cls.make_week("clean", drift=False, slope=0.0, seed=2)
        for endpoint in ("churn", "clean"):
            path = p.path("outcomes-{}.csv".format(endpoint))
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["transaction_id", "churned"])
                w.writerows(cls.labels[endpoint])

    @classmethod
    def predicted(cls, row):
        return "1" if expected_probability(cls.meta, row) >= 0.5 else "0"

    @classmethod
    def make_week(cls, endpoint, drift, slope, seed):
        rng = random.Random(seed)
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        labels = []
        past = []
        for day in range(DAYS):
            rows = []
            for _ in range(ROWS_PER_DAY):
                row = training_row(rng)
                if drift:
                    row["charges"] = round(row["charges"] + 12.0 * (day + 1), 2)
                rows.append(row)
            if day < DAYS - 1:
                # Noon UTC of an earlier day: inside a 7-day window that ends now.
                base = (now - datetime.timedelta(days=DAYS - 1 - day)).replace(
                    hour=12, minute=0, second=0, microsecond=0)
                recs = []
                for k, row in enumerate(rows):
                    t = base + datetime.timedelta(seconds=10 * k)
                    p1 = expected_probability(cls.meta, row)
                    recs.append({"transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
                                 "row": 0,
                                 "time": t.strftime("%Y-%m-%dT%H:%M:%S.") + "000Z",
                                 "endpoint": endpoint, "variant": "blue", "mode": "live",
                                 "model": {"name": "churn", "version": 1}, "inputs": row,
                                 "outputs": {"label": "1" if p1 >= 0.5 else "0",
                                             "probabilities": {"0": 1 - p1, "1": p1}},
                                 "latency_ms": 0.2})
                write_segment(cls.p.lake, endpoint, recs, day)
                answered = [(r["transaction_id"], r["outputs"]["label"]) for r in recs]
            else:
                answered = cls.serve_today(endpoint, rows)
            # The first round(accuracy * n) rows get the label the model predicted, the rest the
            # other one: the day's accuracy is exact.
            accuracy = FIRST_ACCURACY + slope * day
            right = round(accuracy * len(answered))
            for k, (tx, label) in enumerate(answered):
                truth = label if k < right else ("0" if label == "1" else "1")
                labels.append((tx, truth))
        cls.labels[endpoint] = labels

    @classmethod
    def serve_today(cls, endpoint, rows):
        bg = cls.p.start("serve", "--endpoint", endpoint, "--port", "0")

        def port():
            m = re.search(r"^serving endpoint \S+ on http://127\.0\.0\.1:(\d+)$", bg.stdout(),
                          re.M)
            if m:
                return int(m.group(1))
            if bg.proc.poll() is not None:
                raise AssertionError("ferry serve exited:\n" + bg.stdout() + bg.stderr())
            return None
        c = Client(wait_until(port, "ferry serve to listen"))
        answered = []
        for row in rows:
            status, _, doc, _ = c.invoke([row])
            assert status == 200, doc
            answered.append((doc["transaction_id"], doc["predictions"][0]["label"]))
        c.close()
        os.kill(bg.pid, signal.SIGTERM)  # commits the inference log
        r = bg.wait(timeout=30)
        assert r.rc == EXIT_OK, r
        return answered

    def monitor_json(self, *args, expect):
        r = self.p.ferry("monitor", *args, "--json", timeout=120)
        self.assertEqual(r.rc, expect, r)
        return json.loads(r.out)

    def ingest(self, endpoint):
        r = self.p.ferry("labels", endpoint, "--input", "outcomes-{}.csv".format(endpoint),
                         "--id-column", "transaction_id", "--label", "churned", "--json")
        self.assertEqual(r.rc, EXIT_OK, r)
        return json.loads(r.out)

    # --- labels and the monitor ---------------------------------------------------------------

    def test_a_drifting_degrading_week_alerts(self):
        doc = self.ingest("churn")
        self.assertEqual(doc["rows"], DAYS * ROWS_PER_DAY)
        self.assertEqual(doc["duplicates"], 0)
        self.assertTrue(doc["uri"].startswith("file://"), doc)

        r = self.p.ferry("monitor", "churn", "--window", "7d", timeout=120)
        self.assertEqual(r.rc, EXIT_ALERTED, r)
        self.assertRegex(r.out, r"monitor run m\d{8}-\d{6}-[0-9a-f]{6} of endpoint churn: alerted")
        self.assertRegex(r.out, r"(?m)^charges .* ALERT$")
        self.assertNotRegex(r.out, r"(?m)^tenure .* ALERT$")
        self.assertRegex(r.out, r"accuracy trend: -0\.0[12]\d\d ± ")
        json_path = re.search(r"(?m)^report\.json: (\S+)$", r.out).group(1)
        html_path = re.search(r"(?m)^report\.html: (\S+)$", r.out).group(1)
        self.assertTrue(os.path.isabs(json_path) and os.path.isfile(json_path), json_path)
        self.assertTrue(os.path.isfile(html_path), html_path)

        with open(json_path) as f:
            report = json.load(f)
        self.assertEqual(report["schema"], "ferry.monitor.report/1")
        self.assertEqual(report["status"], "alerted")
        self.assertEqual(report["rows"], DAYS * ROWS_PER_DAY)
        self.assertEqual(report["labelled_rows"], DAYS * ROWS_PER_DAY)
        alerted = {a["feature"] for a in report["alerts"]}
        self.assertIn("charges", alerted)
        self.assertNotIn("tenure", alerted)
        features = {f["name"]: f for f in report["features"]}
        self.assertGreater(features["charges"]["drift"]["psi"], 0.2)
        self.assertLess(features["tenure"]["drift"]["psi"], 0.2)
        trend = report["performance"]["trend"]
        self.assertEqual(trend["metric"], "accuracy")
        self.assertEqual(trend["days"], DAYS)
        self.assertAlmostEqual(trend["slope_per_day"], SLOPE, delta=0.002)
        self.assertLess(trend["ci95"][0], SLOPE + 0.002)
        self.assertGreater(trend["ci95"][1], SLOPE - 0.002)
        daily = [d["accuracy"] for d in report["performance"]["daily"]]
        self.assertAlmostEqual(daily[0], FIRST_ACCURACY, delta=0.006)
        self.assertAlmostEqual(daily[-1], FIRST_ACCURACY + SLOPE * (DAYS - 1), delta=0.006)

        # --json: the same run's values, and the report's paths.
        doc = self.monitor_json("churn", "--window", "7d", "--segment", "plan",
                                expect=EXIT_ALERTED)
        self.assertEqual(doc["state"], "alerted")
        self.assertTrue(doc["alerted"])
        self.assertTrue(os.path.isfile(doc["report_json"]))
        self.assertAlmostEqual(doc["report"]["performance"]["trend"]["slope_per_day"], SLOPE,
                               delta=0.002)
        segments = {s["segment"] for s in doc["report"]["performance"]["segments"]}
        self.assertEqual(segments, {"plan=basic", "plan=pro", "plan=team"})

        # A stricter rule set that the week passes: no drift rule, a floor on accuracy.
        doc = self.monitor_json("churn", "--window", "7d", "--alert", "accuracy<0.5",
                                expect=EXIT_OK)
        self.assertEqual((doc["state"], doc["report"]["alerts"]), ("passed", []))

        # monitor-runs lists them, newest first, with their states.
        runs = json.loads(self.p.ok("monitor-runs", "churn", "--json").out)
        self.assertGreaterEqual(len(runs), 3)
        self.assertEqual([x["state"] for x in runs[:3]], ["passed", "alerted", "alerted"])
        self.assertEqual(runs[0]["id"], doc["id"])
        self.assertTrue(os.path.isfile(runs[1]["report_html"]))
        out = self.p.ok("monitor-runs").out
        self.assertIn(doc["id"], out)
        shown = json.loads(self.p.ok("monitor-run", "show", doc["id"], "--json").out)
        self.assertEqual((shown["id"], shown["state"], shown["endpoint"]),
                         (doc["id"], "passed", "churn"))

    def test_a_clean_week_passes(self):
        self.ingest("clean")
        r = self.p.ferry("monitor", "clean", "--window", "7d", timeout=120)
        self.assertEqual(r.rc, EXIT_OK, r)
        self.assertIn("alerts: none", r.out)
        doc = self.monitor_json("clean", "--window", "7d", expect=EXIT_OK)
        self.assertEqual(doc["report"]["status"], "passed")
        self.assertEqual(doc["report"]["rows"], DAYS * ROWS_PER_DAY)
        for f in doc["report"]["features"]:
            if f["drift"]["psi"] is not None:
                self.assertLess(f["drift"]["psi"], 0.2, f["name"])

    def test_errors(self):
        r = self.p.ferry("monitor", "nosuch", "--window", "7d")
        self.assertEqual(r.rc, EXIT_RUN_FAILED, r)
        self.assertIn("nosuch", r.err)
        self.assertEqual(r.out, "")
        r = self.p.ferry("monitor", "churn", "--window", "soon")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--window", r.err)
        r = self.p.ferry("monitor", "churn", "--alert", "psi>>0.2")
        self.assertEqual(r.rc, 2, r)
        self.assertIn("--alert", r.err)
        r = self.p.ferry("labels", "churn", "--input", "outcomes-churn.csv", "--label", "nope")
        self.assertNotEqual(r.rc, EXIT_OK, r)
        self.assertIn("nope", r.err)
        r = self.p.ferry("monitor-run", "show", "m20200101-000000-000000")
        self.assertNotEqual(r.rc, EXIT_OK, r)

    def test_retrain_on_alert_starts_the_pipeline(self):
        self.ingest("churn")
        r = self.p.ferry("monitor", "churn", "--window", "7d", "--retrain",
                         "pipelines/train.yaml", timeout=120)
        self.assertEqual(r.rc, EXIT_ALERTED, r)
        m = re.search(r"retraining triggered: run (r\d{8}-\d{6}-[0-9a-f]{6})", r.out)
        self.assertIsNotNone(m, r.out)

        def finished():
            runs = json.loads(self.p.ok("runs", "--json").out)
            run = [x for x in runs if x["id"] == m.group(1)]
            return run and run[0]["state"] in ("succeeded", "failed") and run[0]
        run = wait_until(finished, "the retraining run to finish", timeout=120)
        self.assertEqual(run["state"], "succeeded", run)

    # --- pipeline steps -----------------------------------------------------------------------

    def test_inference_log_step_feeds_a_train_step(self):
        self.ingest("churn")
        self.p.write("pipelines/fresh.yaml", """
steps:
  fresh:
    inference_log: { endpoint: churn, window: 7d, join_labels: true, label: churned }
  features:
    transform: fresh
    ops:
      - drop: [customer_id, transaction_id, time, model]
      - one_hot: [plan]
      - split: { test: 0.25, seed: 7, stratify: churned }
  train:
    train: features
    model: { type: logistic_regression, target: churned }
    seed: 7
""")
        r = self.p.ferry("run", "pipelines/fresh.yaml", timeout=180)
        self.assertEqual(r.rc, EXIT_OK, r)
        versions = os.listdir(os.path.join(self.p.lake, "datasets", "churn_log"))
        self.assertEqual(len(versions), 1, versions)
        folder = os.path.join(self.p.lake, "datasets", "churn_log", versions[0])
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        with open(os.path.join(folder, "data.csv.zst"), "rb") as f:
            text = zstandard.ZstdDecompressor().decompressobj().decompress(f.read()).decode()
        rows = list(csv.DictReader(text.splitlines()))
        truth = dict(self.labels["churn"])
        self.assertEqual(len(rows), len(truth))
        self.assertEqual({x["transaction_id"] for x in rows}, set(truth))
        self.assertTrue(all(x["churned"] == truth[x["transaction_id"]] for x in rows))
        self.assertTrue(os.path.isfile(os.path.join(folder, "profile.json")))
        self.assertEqual(manifest.get("source", {}).get("kind", manifest.get("origin", {})
                                                         .get("kind", "inference_log")),
                         "inference_log")
        run_id = re.search(r"^run (r\S+) of pipeline", r.out, re.M).group(1)
        model_json = os.path.join(self.p.lake, "runs", "fresh", run_id, "train", "output",
                                  "data")
        self.assertTrue(os.path.isdir(os.path.join(self.p.lake, "runs", "fresh", run_id,
                                                   "train")), model_json)

    def test_monitor_step_records_its_outcome(self):
        self.ingest("churn")
        self.p.write("pipelines/watch.yaml", """
steps:
  watch:
    monitor:
      endpoint: churn
      window: 7d
      alert: { psi: "> 0.2", missing_rate: "> 0.05" }
      segment_by: [plan]
""")
        r = self.p.ferry("run", "pipelines/watch.yaml", timeout=180)
        self.assertEqual(r.rc, EXIT_OK, r)
        run_id = re.search(r"^run (r\S+) of pipeline", r.out, re.M).group(1)
        out = json.loads(self.p.output("watch", run_id, "watch", "monitor.json"))
        self.assertEqual((out["status"], out["alerted"]), ("alerted", True))
        self.assertGreater(out["alerts"], 0)
        self.assertTrue(out["report_json"].startswith("file://"), out)

        self.p.write("pipelines/strict.yaml", """
steps:
  watch:
    monitor: { endpoint: churn, window: 7d, fail_on_alert: true }
""")
        r = self.p.ferry("run", "pipelines/strict.yaml", timeout=180)
        self.assertEqual(r.rc, EXIT_RUN_FAILED, r)

        self.p.write("pipelines/bad.yaml", """
steps:
  watch:
    monitor: { endpoint: churn, window: soon, alert: { psi: 0.2 } }
""")
        r = self.p.ferry("run", "pipelines/bad.yaml")
        self.assertEqual(r.rc, 2, r)
        self.assertRegex(r.err, r"bad\.yaml:4:\d+: .*window")
        self.assertIn("psi", r.err)


if __name__ == "__main__":
    unittest.main()
