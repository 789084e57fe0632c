"""Model steps end to end: `train` (built-in and Python models), `evaluate` with each kind of gate
failing for a real reason, `register` into the registry (versions, states, aliases, the bundle
copied to models/<name>/<version>/), experiments recorded per training run, and the quick start
training a logistic regression and an XGBoost model and registering the better one as champion."""

import json
import math
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from ferry_e2e import EXIT_RUN_FAILED, EXIT_USAGE, FERRY, FerryTestCase

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.abspath(os.path.join(_HERE, "..", ".."))

FERRY_YAML = """
name: e2e
connections:
  crm: sqlite://source/crm.db
"""

SQL = "SELECT plan, tenure, charges, churned FROM customers ORDER BY id\n"

# {train} / {evaluate} / {extra} are filled per test.
PIPELINE = """
params:
  C: 1.0
  min_auc: 0.6
steps:
  extract:
    sql: sql/customers.sql
    connection: crm
  features:
    transform: extract
    ops:
      - impute: {{ tenure: median }}
      - one_hot: [plan]
      - standardize: [tenure, charges]
      - split: {{ test: 0.3, seed: 5, stratify: churned }}
  train:
    train: features
    model: {model}
    seed: 3
    experiment: churn
  evaluate:
    evaluate: train
    on: features.test
    gates: {gates}
  register:
    register: evaluate
    model: churn
    alias: champion
{extra}"""

LOGISTIC = "{ type: logistic_regression, target: churned, hyperparameters: { C: \"{{ params.C }}\" } }"


def make_source(path, rows=400, flip=False, seed=1):
    """Customers whose churn depends on tenure and charges (flip=True reverses the signs)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, plan TEXT, tenure INTEGER, "
               "charges REAL, churned INTEGER)")
    sign = -1 if flip else 1
    for i in range(rows):
        plan = rng.choice(["basic", "plus", "pro"])
        tenure = None if i % 23 == 0 else rng.randint(0, 72)
        charges = round(rng.uniform(20, 120), 2)
        z = sign * (1.5 - 0.06 * (tenure if tenure is not None else 36) + 0.025 * charges)
        churned = 1 if rng.random() < 1 / (1 + math.exp(-z)) else 0
        db.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                   (i + 1, plan, tenure, charges, churned))
    db.commit()
    db.close()


class ModelStepsTest(FerryTestCase):
    def make(self, model=LOGISTIC, gates='{ auc: ">= {{ params.min_auc }}" }', extra="",
             files=None, **source):
        p = self.project(
            ferry_yaml=FERRY_YAML,
            pipelines={"train": PIPELINE.format(model=model, gates=gates, extra=extra)},
            files=dict({"sql/customers.sql": SQL}, **(files or {})))
        make_source(p.path("source", "crm.db"), **source)
        return p

    def registry(self, p):
        """(versions, aliases) of model churn, read from the state store."""
        db = sqlite3.connect(p.path(".ferry", "state.db"))
        try:
            versions = db.execute("SELECT version, state, artifact_uri FROM model_versions "
                                  "WHERE model = 'churn' ORDER BY version").fetchall()
            aliases = dict(db.execute("SELECT alias, version FROM model_aliases "
                                      "WHERE model = 'churn'").fetchall())
        finally:
            db.close()
        return versions, aliases

    def test_train_evaluate_register_builds_the_bundle_the_registry_and_an_experiment(self):
        p = self.make(gates='{ auc: ">= {{ params.min_auc }}", reproducible: true, '
                            'serving_parity: true, weight_shift: "<= 0.5", '
                            'logloss: "<= champion * 1.05" }')
        run_id, r = p.run("train")
        self.assertSubstring("registered churn:1 (validated) from evaluate, alias champion -> 1",
                             p.ferry("logs", run_id, "register").out)
        versions, aliases = self.registry(p)
        self.assertEqual([(v, s) for v, s, _ in versions], [(1, "validated")])
        self.assertEqual(aliases, {"champion": 1})
        bundle = os.path.join(p.lake, "models", "churn", "1")
        self.assertEqual(versions[0][2], "file://" + bundle)
        for f in ("model.json", "metrics.json", "profile.json", "model/model.json",
                  "manifest.json"):
            self.assertTrue(os.path.exists(os.path.join(bundle, f)), f)
        with open(os.path.join(bundle, "model.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["type"], "logistic_regression")
        self.assertEqual(meta["target"], "churned")
        self.assertEqual(meta["hyperparameters"], {"C": 1.0})
        self.assertEqual(meta["seed"], 3)
        self.assertEqual(meta["dataset"]["label"], "features@1")
        self.assertEqual(meta["dataset"]["part"], "train")
        self.assertEqual([c["name"] for c in meta["input_schema"]], ["plan", "tenure", "charges"])
        self.assertEqual(meta["transform"]["ops"][0]["impute"]["tenure"]["strategy"], "median")
        self.assertEqual(meta["weights"]["kind"], "coefficients")
        self.assertEqual(meta["experiment"], {"id": 1, "name": "churn"})
        with open(os.path.join(bundle, "metrics.json")) as f:
            metrics = json.load(f)
        gates = {g["name"]: g for g in metrics["gates"]["gates"]}
        self.assertTrue(metrics["gates"]["passed"])
        self.assertEqual(gates["reproducible"]["value"], 0.0)
        self.assertEqual(gates["serving_parity"]["value"], 0.0)
        self.assertEqual(gates["logloss"]["detail"], "no champion yet: nothing to compare with")
        self.assertEqual(metrics["evaluated_on"]["rows"], 120)
        self.assertGreater(metrics["metrics"]["roc_auc"], 0.6)

        # A second run with another C: a new version, compared with the champion (itself before).
        run2, _ = p.run("train", "-p", "C=0.5")
        versions, aliases = self.registry(p)
        self.assertEqual([(v, s) for v, s, _ in versions], [(1, "validated"), (2, "validated")])
        self.assertEqual(aliases, {"champion": 2})
        with open(os.path.join(p.lake, "models", "churn", "2", "metrics.json")) as f:
            gates = {g["name"]: g for g in json.load(f)["gates"]["gates"]}
        self.assertEqual(gates["logloss"]["detail"].split(" logloss ")[0],
                         "champion churn:1 on the same rows")
        self.assertIn("vs churn:1", gates["weight_shift"]["detail"])
        self.assertGreater(gates["weight_shift"]["value"], 0.0)

        # Unchanged third run: every model step is a cache hit, nothing is registered again.
        p.run("train", "-p", "C=0.5")
        versions, _ = self.registry(p)
        self.assertEqual(len(versions), 2)

    def test_a_failing_threshold_stops_the_run_before_register(self):
        p = self.make(gates='{ auc: ">= 0.999" }')
        run_id, _ = p.run("train", expect=EXIT_RUN_FAILED)
        states = p.states(run_id)
        self.assertEqual(states["evaluate"], "failed")
        self.assertNotEqual(states["register"], "succeeded")
        log = p.ferry("logs", run_id, "evaluate").out
        self.assertRegex(log, r"FAIL auc 0\.\d+ \(gate: >= 0\.999; threshold 0\.999\)")
        report = p.read(os.path.join(".ferry", "lake", "runs", "train", run_id, "evaluate",
                                     "output", "data", "report.txt"))
        self.assertRegex(report, r"FAIL auc")
        self.assertEqual(self.registry(p), ([], {}))

    def test_a_worse_model_than_the_champion_fails_its_champion_gate(self):
        p = self.make(gates='{ logloss: "<= champion * 1.01" }')
        p.run("train")
        # Almost no regularisation budget: a much worse log loss on the same rows.
        run_id, _ = p.run("train", "-p", "C=0.0001", expect=EXIT_RUN_FAILED)
        log = p.ferry("logs", run_id, "evaluate").out
        self.assertRegex(log, r"FAIL logloss 0\.6\d+ \(gate: <= champion \* 1\.01; threshold "
                              r"0\.\d+\): champion churn:1 on the same rows logloss 0\.\d+")
        versions, aliases = self.registry(p)
        self.assertEqual(len(versions), 1)
        self.assertEqual(aliases, {"champion": 1})

    def test_weights_that_moved_too_far_fail_the_weight_shift_gate(self):
        p = self.make(gates='{ weight_shift: "<= 0.3" }')
        p.run("train")
        make_source(p.path("source", "crm.db"), flip=True)  # the signs of the relation reverse
        run_id, _ = p.run("train", expect=EXIT_RUN_FAILED)
        log = p.ferry("logs", run_id, "evaluate").out
        self.assertRegex(log, r"FAIL weight_shift (1\.\d+|0\.[4-9]\d*) \(gate: <= 0\.3; "
                              r"threshold 0\.3\): vs churn:1")

    def test_evaluating_on_rows_prepared_differently_fails_serving_parity(self):
        # The model is trained on `features` but evaluated on `features2`, whose scaling differs:
        # what an endpoint computes from raw rows is not what was evaluated.
        extra = """  features2:
    transform: extract
    ops:
      - impute: { tenure: median }
      - one_hot: [plan]
      - min_max: [tenure, charges]
      - split: { test: 0.3, seed: 5, stratify: churned }
"""
        p = self.make(gates="{ serving_parity: true }", extra=extra)
        pipeline = p.read("pipelines/train.yaml").replace("on: features.test", "on: features2.test")
        p.write("pipelines/train.yaml", pipeline)
        run_id, _ = p.run("train", expect=EXIT_RUN_FAILED)
        log = p.ferry("logs", run_id, "evaluate").out
        self.assertRegex(log, r"FAIL serving_parity 0\.\d+ \(largest difference; tolerance 1e-09\)")

    def test_an_unseeded_python_model_fails_the_reproducible_gate(self):
        model = """import random
import ferry_model


class Noisy(ferry_model.Model):
    def train(self, data, hyperparameters):
        rows = data.rows
        self.rate = sum(int(r["churned"]) for r in rows) / len(rows)
        self.noise = random.SystemRandom().random() * 0.1  # not seeded: differs every fit

    def save(self, model_dir):
        with open(model_dir + "/noisy.txt", "w") as f:
            f.write(f"{self.rate} {self.noise}")

    def load(self, model_dir):
        with open(model_dir + "/noisy.txt") as f:
            self.rate, self.noise = (float(x) for x in f.read().split())

    def predict(self, rows):
        p = min(1.0, self.rate + self.noise)
        return [{"0": 1 - p, "1": p} for _ in rows]


if __name__ == "__main__":
    ferry_model.main(Noisy)
"""
        python = "PYTHONPATH={} /usr/bin/python3 models/noisy.py".format(
            os.path.join(_ROOT, "python"))
        p = self.make(model='{{ command: "{}", target: churned }}'.format(python),
                      gates="{ reproducible: true }", files={"models/noisy.py": model})
        run_id, _ = p.run("train", expect=EXIT_RUN_FAILED)
        log = p.ferry("logs", run_id, "evaluate").out
        m = re.search(r"FAIL reproducible (\S+) \(largest difference; tolerance 1e-09\): "
                      r"retrained on features@1 with seed 3", log)
        self.assertIsNotNone(m, log)
        self.assertGreater(float(m.group(1)), 1e-9)  # two unseeded fits: different noise

    def test_config_errors_of_model_steps_name_the_field(self):
        p = self.make(model="{ type: logistic_regresion, target: churned }",
                      gates='{ aucc: ">= 0.7", logloss: "0.5" }')
        r = p.ferry("validate")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertSubstring("unknown model type 'logistic_regresion'", r.err)
        self.assertSubstring("gates.aucc: unknown gate", r.err)
        self.assertSubstring("gates.logloss: '0.5' has no comparison operator", r.err)
        self.assertRegex(r.err, r"pipelines/train\.yaml:\d+:\d+: ")


class QuickstartTest(FerryTestCase):
    def test_quickstart_trains_two_models_and_registers_the_better_as_champion(self):
        root = os.path.realpath(tempfile.mkdtemp(prefix="ferry-e2e-qs-"))
        self.addCleanup(shutil.rmtree, root, True)
        qs = os.path.join(root, "quickstart")
        shutil.copytree(os.path.join(_ROOT, "examples", "quickstart"), qs,
                        ignore=shutil.ignore_patterns(".ferry", "__pycache__"))
        r = subprocess.run([FERRY, "run", "pipelines/train.yaml"], cwd=qs,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(qs, ".ferry", "lake", "models", "churn", "1", "model.json")) as f:
            champion = json.load(f)
        aucs = {}
        for t in ("eval_logistic", "eval_xgboost"):
            run_dir = os.path.join(qs, ".ferry", "lake", "runs", "train")
            (run_id,) = os.listdir(run_dir)
            with open(os.path.join(run_dir, run_id, t, "output", "data", "metrics.json")) as f:
                m = json.load(f)
            self.assertTrue(m["gates"]["passed"], m["gates"])
            aucs[t] = m["metrics"]["roc_auc"]
        best = max(aucs, key=aucs.get)
        self.assertEqual(champion["type"],
                         "logistic_regression" if best == "eval_logistic" else "xgboost")
        db = sqlite3.connect(os.path.join(qs, ".ferry", "state.db"))
        try:
            self.assertEqual(db.execute("SELECT version FROM model_aliases WHERE model='churn' "
                                        "AND alias='champion'").fetchall(), [(1,)])
            self.assertEqual(db.execute("SELECT count(*) FROM experiments").fetchone(), (2,))
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()
