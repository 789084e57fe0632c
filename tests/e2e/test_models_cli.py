"""The model registry and experiment commands end to end: `ferry models`, `ferry model show`,
`ferry model alias` (compare-and-set), `ferry experiments` (filters, sorting, compare) and
`ferry predict` (a built-in model in process, a Python model through its own command), on the
project of tests/fixtures/models_cli trained by its pipelines (train -> evaluate -> register).

The pipelines run once per class (setUpClass): logistic regressions with C=1.0 and C=0.05 (model
`churn`, versions 1 and 2, alias champion -> 2; experiments 1 and 2) and the Python model of
models/rate.py (model `rate`, version 1; experiment 3). Tests that change the registry work on a
copy of that project."""

import csv
import io
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import unittest

from ferry_e2e import (EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, FerryTestCase,
                       Project)

_HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(_HERE, "..", "fixtures", "models_cli")
# models/rate.py imports ferry_model (python/ of this repository); ferry's tasks and `ferry
# predict` inherit the environment.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [os.path.abspath(os.path.join(_HERE, "..", "..", "python")),
                os.environ.get("PYTHONPATH", "")] if p)

PLANS = ["basic", "pro", "team"]


def make_source(path):
    """80 customers whose churn depends on tenure and plan (deterministic, both classes)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (customer_id INTEGER, plan TEXT, charges REAL, "
               "tenure INTEGER, churned INTEGER)")
    for i in range(80):
        tenure = (i * 7) % 36 + 1
        plan = PLANS[i % 3]
        score = -0.12 * tenure + (1.0 if plan == "basic" else 0) + ((i * 31) % 10) / 10.0
        db.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                   (i + 1, plan, 20 + (i * 13) % 50 + 0.5, tenure, 1 if score > -1.5 else 0))
    db.commit()
    db.close()


class _ClassScope(unittest.TestCase):
    """Lets a ferry_e2e.Project live for a whole test class: its cleanup runs after the class."""

    def __init__(self, cls):
        super().__init__()
        self.addCleanup = cls.addClassCleanup


def copy_fixture(project):
    shutil.copytree(FIXTURE, project.root, dirs_exist_ok=True)
    make_source(project.path("source", "crm.db"))


ROWS_CSV = ("customer_id,plan,charges,tenure\n"
            "1001,basic,25.5,2\n"
            "1002,pro,60.0,30\n"
            "1003,team,41.25,12\n")


def expected_probability(meta, row):
    """p(churned = 1) of a logistic regression from its model.json: the one-hot features of the
    fixture's transform (`plan=<category>`) and the raw numeric columns, with its coefficients."""
    w = meta["weights"]
    z = w["intercept"]
    for f in meta["features"]:
        name = f["name"]
        if "=" in name:
            col, value = name.split("=", 1)
            x = 1.0 if row[col] == value else 0.0
        else:
            x = float(row[name])
        z += w["values"][name] * x
    return 1.0 / (1.0 + math.exp(-z))


class ModelsCliTest(FerryTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        scope = _ClassScope(cls)
        p = Project(scope, ferry_yaml=None)
        copy_fixture(p)
        r = p.ferry("validate", "pipelines/train.yaml")
        if r.rc != EXIT_OK:
            if re.search(r"unknown key '(train|evaluate|register)'", r.out + r.err):
                raise unittest.SkipTest("this build has no train/evaluate/register steps yet")
            raise AssertionError(r)
        # A git checkout, so that the model records the commit it was trained from.
        git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.com"]
        for args in (["init", "-q"], ["add", "ferry.yaml", "pipelines", "sql", "models"],
                     ["commit", "-q", "-m", "fixture"]):
            subprocess.run(git + args, cwd=p.root, check=True, timeout=60,
                           capture_output=True)
        cls.commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=p.root, check=True,
                                    timeout=60, capture_output=True, text=True).stdout.strip()
        cls.run1, _ = p.run("train")
        cls.run2, _ = p.run("train", "--param=C=0.05")
        cls.run3, _ = p.run("rate")
        cls.p = p

    # --- helpers ------------------------------------------------------------------------------

    def json_of(self, *args, project=None):
        return json.loads((project or self.p).ok(*args).out)

    def bundle_dir(self, model, version):
        return os.path.join(self.p.lake, "models", model, str(version))

    def bundle_file(self, model, version, name):
        with open(os.path.join(self.bundle_dir(model, version), name)) as f:
            return json.load(f)

    def copy_project(self):
        """A copy of the class's project (state and lake), for tests that change the registry."""
        q = self.project(ferry_yaml=None)
        shutil.copytree(self.p.root, q.root, dirs_exist_ok=True)
        return q

    def fails(self, rc, *args, project=None):
        r = (project or self.p).ferry(*args)
        self.assertEqual(r.rc, rc, r)
        self.assertEqual(r.out, "", r)
        self.assertTrue(r.err.startswith("ferry: error: "), r)
        return r

    # --- ferry models -------------------------------------------------------------------------

    def test_models_lists_versions_aliases_and_the_champions_metrics(self):
        models = self.json_of("models", "--json")
        self.assertEqual([m["name"] for m in models], ["churn", "rate"])
        churn, rate = models
        v2 = self.json_of("model", "show", "churn:2", "--json")
        m = v2["metrics"]
        self.assertEqual(
            {k: churn[k] for k in ("versions", "latest", "latest_state", "aliases", "metrics_of")},
            {"versions": 2, "latest": 2, "latest_state": "validated", "aliases": {"champion": 2},
             "metrics_of": 2})
        self.assertEqual(churn["metrics"], {"auc": m["roc_auc"], "accuracy": m["accuracy"],
                                            "log_loss": m["log_loss"]})
        self.assertEqual(
            {k: rate[k] for k in ("versions", "latest", "latest_state", "aliases", "metrics_of")},
            {"versions": 1, "latest": 1, "latest_state": "validated", "aliases": {},
             "metrics_of": 1})
        # A constant probability ranks no row above another.
        self.assertEqual(rate["metrics"]["auc"], 0.5)

        lines = self.p.ok("models").out.splitlines()
        self.assertEqual(lines[0].split(), ["MODEL", "VERSIONS", "LATEST", "STATE", "ALIASES",
                                            "METRICS"])
        headline = "auc {:.4f}  accuracy {:.4f}  log_loss {:.4f} (v2, champion)".format(
            m["roc_auc"], m["accuracy"], m["log_loss"])
        self.assertRegex(lines[1], r"^churn +2  2 +validated +champion->2 +" +
                         re.escape(headline) + "$")
        self.assertRegex(lines[2], r"^rate +1  1 +validated +- +auc 0\.5000 ")
        self.assertEqual(len(lines), 3)

    def test_models_in_a_project_without_any(self):
        q = self.project(ferry_yaml="name: empty\n")
        self.assertEqual(q.ok("models", "--json").out, "[]\n")
        self.assertSubstring("(no models yet", q.ok("models").out)

    # --- ferry model show ---------------------------------------------------------------------

    def test_model_show_json_has_the_record_and_the_bundle(self):
        j = self.json_of("model", "show", "churn:champion", "--json")
        meta = self.bundle_file("churn", 2, "model.json")
        self.assertEqual((j["model"], j["version"], j["ref"], j["state"], j["aliases"]),
                         ("churn", 2, "churn:2", "validated", ["champion"]))
        self.assertEqual(j["artifact_uri"], "file://" + self.bundle_dir("churn", 2))
        self.assertEqual((j["run_id"], j["task"]), (self.run2, "register"))
        self.assertEqual(j["model_json"], meta)
        self.assertEqual(j["metrics_json"], self.bundle_file("churn", 2, "metrics.json"))
        self.assertEqual(j["metrics"], j["metrics_json"]["metrics"])
        self.assertEqual(meta["hyperparameters"], {"C": 0.05})
        self.assertEqual((meta["seed"], meta["git_commit"], meta["dataset"]["label"]),
                         (7, self.commit, "features@1"))
        self.assertNotIn("bundle_error", j)
        # NAME alone is the newest usable version; NAME:N any version.
        self.assertEqual(self.json_of("model", "show", "churn", "--json")["version"], 2)
        one = self.json_of("model", "show", "churn:1", "--json")
        self.assertEqual((one["version"], one["aliases"], one["run_id"]), (1, [], self.run1))
        self.assertEqual(one["model_json"]["hyperparameters"], {"C": 1.0})

    def test_model_show_text_has_lineage_metrics_gates_and_top_weights(self):
        out = self.p.ok("model", "show", "churn:2").out
        meta = self.bundle_file("churn", 2, "model.json")
        metrics = self.bundle_file("churn", 2, "metrics.json")
        lines = out.splitlines()
        self.assertEqual(lines[0], "model churn:2  (validated)")
        self.assertIn("  aliases:     champion", lines)
        self.assertIn("  run:         {}  task register".format(self.run2), lines)
        self.assertIn("  artifact:    file://" + self.bundle_dir("churn", 2), lines)
        self.assertIn("  type:        logistic_regression   task: binary   target: churned", lines)
        self.assertIn('  hyperparams: {"C":0.05}   seed: 7', lines)
        self.assertIn("  dataset:     features@1 (version {}, part train)".format(
            meta["dataset"]["version"]), lines)
        self.assertIn("  git commit:  " + self.commit, lines)
        self.assertIn("  code hash:   " + meta["code_hash"], lines)
        self.assertIn("  experiment:  2 (churn)", lines)
        on = metrics["evaluated_on"]
        self.assertIn("metrics on features@1.test ({} rows):".format(on["rows"]), lines)
        self.assertIn("  roc_auc    {:.4f}".format(metrics["metrics"]["roc_auc"]), lines)
        self.assertIn("  log_loss   {:.4f}".format(metrics["metrics"]["log_loss"]), lines)
        self.assertIn("gates: passed", lines)
        gates = {g["name"]: g for g in metrics["gates"]["gates"]}
        self.assertEqual(sorted(gates), ["auc", "serving_parity"])
        auc_line = [l for l in lines if l.startswith("  PASS  auc ")]
        self.assertEqual(len(auc_line), 1, out)
        self.assertRegex(auc_line[0], r"value +{:.4f}  threshold +0\.6000  \(>= 0\.6\)".format(
            gates["auc"]["value"]))
        self.assertEqual(len([l for l in lines if l.startswith("  PASS  serving_parity ")]), 1)

        # The weights: every feature (fewer than 10) by |coefficient|, with its value.
        values = meta["weights"]["values"]
        order = sorted(values, key=lambda f: -abs(values[f]))
        start = lines.index("weights: coefficients, top {n} of {n} by |weight|, intercept "
                            "{b:.4f}".format(n=len(values), b=meta["weights"]["intercept"]))
        self.assertEqual(lines[start + 1].split(), ["FEATURE", "WEIGHT"])
        shown = [l.split() for l in lines[start + 2:start + 2 + len(values)]]
        self.assertEqual(shown, [[f, "{:.4f}".format(values[f])] for f in order])

    def test_model_show_errors(self):
        self.assertSubstring("no version 9",
                             self.fails(EXIT_NOT_FOUND, "model", "show", "churn:9").err)
        self.fails(EXIT_NOT_FOUND, "model", "show", "nope")
        self.fails(EXIT_NOT_FOUND, "model", "show", "churn:staging")
        self.fails(EXIT_USAGE, "model", "show", "churn:")
        self.fails(EXIT_USAGE, "model", "show", "churn:0")

    # --- ferry model alias --------------------------------------------------------------------

    def aliases(self, q):
        return self.json_of("models", "--json", project=q)[0]["aliases"]

    def test_alias_moves_are_compare_and_set(self):
        q = self.copy_project()
        self.assertEqual(q.ok("model", "alias", "churn:1", "champion").out,
                         "churn@champion: 2 -> 1\n")
        self.assertEqual(self.aliases(q), {"champion": 1})
        # Lost compare-and-set: nothing changes, exit 4.
        r = self.fails(EXIT_CONFLICT, "model", "alias", "churn:2", "champion",
                       "--expect-version", "2", project=q)
        self.assertSubstring("expected it to point to 2, found 1", r.err)
        self.assertEqual(self.aliases(q), {"champion": 1})
        self.assertEqual(q.ok("model", "alias", "churn:2", "champion", "--expect-version",
                              "1").out, "churn@champion: 1 -> 2\n")
        # 0: only if the alias does not exist yet.
        self.assertEqual(q.ok("model", "alias", "churn:champion", "staging", "--expect-version",
                              "0").out, "churn@staging: (none) -> 2\n")
        self.fails(EXIT_CONFLICT, "model", "alias", "churn:1", "staging", "--expect-version", "0",
                   project=q)
        self.assertEqual(q.ok("model", "alias", "churn", "staging").out,
                         "churn@staging: 2 -> 2 (unchanged)\n")
        self.assertEqual(q.ok("model", "alias", "churn:1", "staging").out,
                         "churn@staging: 2 -> 1\n")
        self.assertEqual(self.aliases(q), {"champion": 2, "staging": 1})
        self.assertEqual(self.json_of("model", "show", "churn:1", "--json",
                                      project=q)["aliases"], ["staging"])
        # What a reference resolves to follows the alias.
        self.assertEqual(self.json_of("predict", "churn:staging", "--input", "rows.csv",
                                      "--json", project=self._rows(q))["model"], "churn:1")
        # Every move is an event of the registry.
        self.assertEqual(q.ok("model", "alias", "churn", "staging", "--delete").out,
                         "churn@staging: 1 -> (deleted)\n")
        self.assertEqual(self.aliases(q), {"champion": 2})
        self.fails(EXIT_NOT_FOUND, "model", "alias", "churn", "staging", "--delete", project=q)
        # The class's project is untouched.
        self.assertEqual(self.aliases(self.p), {"champion": 2})

    def test_alias_errors(self):
        q = self.copy_project()
        self.fails(EXIT_USAGE, "model", "alias", "churn:1", "latest", project=q)
        self.fails(EXIT_USAGE, "model", "alias", "churn:1", "12", project=q)
        self.fails(EXIT_USAGE, "model", "alias", "churn:1", "champion", "--delete", project=q)
        self.fails(EXIT_USAGE, "model", "alias", "churn", "champion", "--delete",
                   "--expect-version", "2", project=q)
        self.fails(EXIT_NOT_FOUND, "model", "alias", "churn:9", "champion", project=q)
        self.fails(EXIT_NOT_FOUND, "model", "alias", "nope:1", "champion", project=q)
        self.assertEqual(self.aliases(q), {"champion": 2})

    # --- ferry experiments --------------------------------------------------------------------

    def test_experiments_lists_filters_and_sorts(self):
        exps = self.json_of("experiments", "--json")
        self.assertEqual([e["id"] for e in exps], [3, 2, 1])
        by_id = {e["id"]: e for e in exps}
        self.assertEqual([(e["name"], e["model_type"], e["model_version"], e["run_id"])
                          for e in exps],
                         [("rate", "python", "rate:1", self.run3),
                          ("churn", "logistic_regression", "churn:2", self.run2),
                          ("churn", "logistic_regression", "churn:1", self.run1)])
        self.assertEqual(by_id[1]["params"], {"hyperparameters": {"C": 1.0}, "seed": 7})
        self.assertEqual(by_id[2]["params"], {"hyperparameters": {"C": 0.05}, "seed": 7})
        self.assertEqual(by_id[1]["dataset"], "features@1")
        # The evaluate section is the registered version's metrics.
        v1 = self.json_of("model", "show", "churn:1", "--json")
        self.assertEqual(by_id[1]["metrics"]["evaluate"]["metrics"], v1["metrics"])
        self.assertIn("train", by_id[1]["metrics"])

        self.assertEqual([e["id"] for e in self.json_of("experiments", "churn", "--json")], [2, 1])
        self.assertEqual([e["id"] for e in self.json_of("experiments", "--type", "python",
                                                        "--json")], [3])
        self.assertEqual(self.json_of("experiments", "nope", "--json"), [])
        self.assertEqual([e["id"] for e in self.json_of("experiments", "--sort", "id", "--asc",
                                                        "--json")], [1, 2, 3])
        self.assertEqual([e["id"] for e in self.json_of("experiments", "-n", "1", "--json")], [3])

        def evaluated(e, key):
            return e["metrics"]["evaluate"]["metrics"][key]

        # Descending by default, ties newest first; --limit applies after sorting.
        for metric, key in (("logloss", "log_loss"), ("auc", "roc_auc")):
            want = sorted(exps, key=lambda e: (-evaluated(e, key), -e["id"]))
            got = self.json_of("experiments", "--sort", metric, "--json")
            self.assertEqual([e["id"] for e in got], [e["id"] for e in want])
            want_asc = sorted(exps, key=lambda e: (evaluated(e, key), -e["id"]))
            got = self.json_of("experiments", "--sort", metric, "--asc", "--limit", "2", "--json")
            self.assertEqual([e["id"] for e in got], [e["id"] for e in want_asc][:2])

        lines = self.p.ok("experiments", "churn").out.splitlines()
        self.assertEqual(lines[0].split(), ["ID", "NAME", "RUN", "TYPE", "DATASET", "TIME",
                                            "VERSION", "PARAMS", "METRICS"])
        m = evaluated(by_id[1], "roc_auc"), evaluated(by_id[1], "accuracy"), \
            evaluated(by_id[1], "log_loss")
        self.assertRegex(lines[2], r"^1 +churn +{} +logistic_regression +features@1 +\S+ +"
                         r"churn:1 +C=1\.0 seed=7 +auc {:.4f} accuracy {:.4f} log_loss {:.4f}$"
                         .format(self.run1, *m))
        self.assertEqual(len(lines), 3)

    def test_experiments_errors(self):
        r = self.fails(EXIT_USAGE, "experiments", "--sort", "bogus")
        self.assertSubstring("auc", r.err)
        self.fails(EXIT_USAGE, "experiments", "--limit", "-1")
        self.fails(EXIT_USAGE, "experiments", "compare", "1")
        r = self.fails(EXIT_NOT_FOUND, "experiments", "compare", "1", "42")
        self.assertSubstring("42", r.err)

    def test_experiments_compare_marks_differences_and_the_best(self):
        j = self.json_of("experiments", "compare", "1", "2", "--json")
        self.assertEqual([e["id"] for e in j["experiments"]], [1, 2])
        rows = {r["row"]: r for r in j["rows"]}
        names = [r["row"] for r in j["rows"]]
        self.assertEqual(names[:7], ["name", "run", "type", "dataset", "code hash", "C", "seed"])
        self.assertEqual(names[-2:], ["duration", "version"])
        self.assertIn("roc_auc", names)
        self.assertIn("train roc_auc", names)
        self.assertLess(names.index("log_loss"), names.index("train roc_auc"))
        self.assertEqual(rows["C"]["values"], [1.0, 0.05])
        self.assertEqual([(n, rows[n]["differs"]) for n in
                          ("name", "run", "type", "dataset", "code hash", "C", "seed", "version")],
                         [("name", False), ("run", True), ("type", False), ("dataset", False),
                          ("code hash", False), ("C", True), ("seed", False), ("version", True)])
        # Stronger regularisation changes the probabilities: log loss differs, the lower is best.
        ll = rows["log_loss"]["values"]
        self.assertNotEqual(ll[0], ll[1])
        self.assertEqual(rows["log_loss"]["best"], [0 if ll[0] < ll[1] else 1])

        lines = self.p.ok("experiments", "compare", "1", "2").out.splitlines()
        self.assertRegex(lines[0], r"^ +experiment 1 +experiment 2$")
        text = {}
        for line in lines[1:]:
            if not line.strip():
                break
            self.assertIn(line[0], "* ")
            text[line[2:].split("  ")[0].strip()] = line
        self.assertEqual(list(text), names)
        self.assertRegex(text["name"], r"^  name +churn +churn$")
        self.assertRegex(text["C"], r"^\* C +1\.0 +0\.05$")
        self.assertRegex(text["seed"], r"^  seed +7 +7$")
        self.assertRegex(text["version"], r"^\* version +churn:1 +churn:2$")
        self.assertRegex(text["run"], r"^\* run +{} +{}$".format(self.run1, self.run2))
        for name in names:
            row = rows[name]
            self.assertEqual(text[name][0], "*" if row["differs"] else " ", text[name])
            if name in ("roc_auc", "log_loss", "accuracy", "train log_loss"):
                cells = []
                for v, i in zip(row["values"], range(2)):
                    cells.append(re.escape("{:.4f}".format(v)) +
                                 (r" \(best\)" if i in row["best"] else ""))
                self.assertRegex(text[name], "^[* ] {} +{} +{}$".format(
                    re.escape(name), *cells))
        self.assertEqual(lines[-1], "* values differ; (best) marks the best value of a metric "
                         "that differs")

        # Three, one of another type.
        j = self.json_of("experiments", "compare", "1", "2", "3", "--json")
        rows = {r["row"]: r for r in j["rows"]}
        self.assertEqual(rows["type"]["values"],
                         ["logistic_regression", "logistic_regression", "python"])
        self.assertTrue(rows["type"]["differs"])
        self.assertEqual(rows["C"]["values"], [1.0, 0.05, None])
        self.assertEqual(rows["roc_auc"]["values"][2], 0.5)

    # --- ferry predict ------------------------------------------------------------------------

    def _rows(self, project):
        project.write("rows.csv", ROWS_CSV)
        return project

    def read_csv(self, text):
        return list(csv.DictReader(io.StringIO(text)))

    def test_predict_a_builtin_model_through_its_transform(self):
        self._rows(self.p)
        meta = self.bundle_file("churn", 2, "model.json")
        r = self.p.ok("predict", "churn:2", "--input", "rows.csv")
        header = r.out.splitlines()[0]
        self.assertEqual(header, "customer_id,plan,charges,tenure,prediction,p_0,p_1")
        rows = self.read_csv(r.out)
        inputs = self.read_csv(ROWS_CSV)
        self.assertEqual(len(rows), 3)
        for got, row in zip(rows, inputs):
            p1 = expected_probability(meta, row)
            self.assertAlmostEqual(float(got["p_1"]), p1, places=12)
            self.assertAlmostEqual(float(got["p_0"]), 1 - p1, places=12)
            self.assertEqual(got["prediction"], "1" if p1 > 0.5 else "0")
            self.assertEqual({k: got[k] for k in row}, row)
        self.assertEqual(r.err, "")

        j = self.json_of("predict", "churn:champion", "--input", "rows.csv", "--json")
        self.assertEqual(j["model"], "churn:2")
        self.assertEqual([p["probabilities"] for p in j["predictions"]],
                         [{"0": float(x["p_0"]), "1": float(x["p_1"])} for x in rows])
        self.assertEqual([p["label"] for p in j["predictions"]], [x["prediction"] for x in rows])

        out = self.p.path("scored.csv")
        r2 = self.p.ok("predict", "churn", "--input", "rows.csv", "--output", out)
        self.assertEqual(r2.out, "")
        self.assertEqual(r2.err, "predicted 3 row(s) with churn:2 into {}\n".format(out))
        self.assertEqual(self.p.read("scored.csv"), r.out)

        # Another version predicts otherwise.
        one = self.read_csv(self.p.ok("predict", "churn:1", "--input", "rows.csv").out)
        meta1 = self.bundle_file("churn", 1, "model.json")
        self.assertAlmostEqual(float(one[0]["p_1"]), expected_probability(meta1, inputs[0]),
                               places=12)

    def test_predict_a_python_model_runs_its_command(self):
        self._rows(self.p)
        with open(os.path.join(self.bundle_dir("rate", 1), "model", "rate.json")) as f:
            rate = json.load(f)["rate"]
        self.assertGreater(rate, 0.2)
        self.assertLess(rate, 0.8)
        r = self.p.ok("predict", "rate", "--input", "rows.csv")
        # What the model printed went to stderr, not into the CSV.
        self.assertSubstring("rate.py: predicting 3 rows", r.err)
        rows = self.read_csv(r.out)
        self.assertEqual([float(x["p_1"]) for x in rows], [rate] * 3)
        self.assertEqual([float(x["p_0"]) for x in rows], [1 - rate] * 3)
        self.assertEqual([x["prediction"] for x in rows], ["1" if rate > 0.5 else "0"] * 3)
        j = json.loads(self.p.ok("predict", "rate:1", "--input", "rows.csv", "--json").out)
        self.assertEqual(j["model"], "rate:1")
        self.assertEqual([p["probabilities"]["1"] for p in j["predictions"]], [rate] * 3)

    def test_predict_without_the_columns_the_transform_drops(self):
        """customer_id is dropped by the transform first: a file without it predicts the same."""
        self._rows(self.p)
        with_id = self.p.ok("predict", "churn", "--input", "rows.csv", "--json").out
        lines = ROWS_CSV.splitlines()
        self.p.write("no_id.csv", "\n".join(",".join(line.split(",")[1:]) for line in lines) + "\n")
        without = self.p.ok("predict", "churn", "--input", "no_id.csv", "--json").out
        self.assertEqual(json.loads(without)["predictions"], json.loads(with_id)["predictions"])

    def test_predict_errors(self):
        self._rows(self.p)
        r = self.fails(EXIT_NOT_FOUND, "predict", "churn", "--input", "missing.csv")
        self.assertSubstring("missing.csv", r.err)
        self.fails(EXIT_NOT_FOUND, "predict", "nope", "--input", "rows.csv")
        self.fails(EXIT_NOT_FOUND, "predict", "churn:7", "--input", "rows.csv")
        self.p.write("short.csv", "customer_id,plan,charges\n1,basic,3.5\n")
        r = self.fails(EXIT_USAGE, "predict", "churn", "--input", "short.csv")
        self.assertSubstring("tenure", r.err)
        self.p.write("clash.csv", "customer_id,plan,charges,tenure,prediction\n1,basic,3.5,2,x\n")
        r = self.fails(EXIT_USAGE, "predict", "churn", "--input", "clash.csv")
        self.assertSubstring("prediction", r.err)
        self.p.write("bad.csv", "customer_id,plan,charges,tenure\n1,basic,3.5,many\n")
        r = self.fails(EXIT_USAGE, "predict", "churn", "--input", "bad.csv")
        self.assertSubstring("tenure", r.err)


if __name__ == "__main__":
    unittest.main()
