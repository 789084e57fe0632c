"""Data steps end to end: a `sql` extraction from a SQLite source into a dataset version of the
lake (zstd CSV readable by pandas, manifest, profile), content addressing, a `validate` step that
passes or fails the run, a `transform` step with a seeded split and its fitted state, lineage in
`ferry dataset show`, `ferry validate-data`, and config errors of data steps."""

import hashlib
import json
import os
import sqlite3
import unittest

from ferry_e2e import EXIT_NOT_FOUND, EXIT_RUN_FAILED, EXIT_USAGE, FerryTestCase

FERRY_YAML = """
name: e2e
connections:
  crm: sqlite://source/crm.db
"""

SQL = """-- customers since :since
SELECT customer_id, plan, charges, tenure, churned FROM customers
WHERE signup >= :since ORDER BY customer_id
"""

RULES = """
rows: { min: 5 }
columns: { required: [customer_id, plan, charges, tenure, churned] }
schema:
  customer_id: { type: int64, unique: true }
  plan:        { allowed: [basic, pro] }
  charges:     { range: { min: 0 } }
  tenure:      { max_missing: 0.5 }
"""

PIPELINE = """
params:
  since: "2020-01-01"
steps:
  extract:
    sql: sql/customers.sql
    connection: crm
    params: { since: "{{ params.since }}" }
  check:
    validate: extract
    rules: checks/customers.yaml
  features:
    transform: check
    ops:
      - drop: [customer_id]
      - impute: { tenure: median }
      - one_hot: [plan]
      - split: { test: 0.25, seed: 7, stratify: churned }
"""


def make_source(path, rows=20, extra_plan=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (customer_id INTEGER, signup TEXT, plan TEXT, "
               "charges REAL, tenure INTEGER, churned INTEGER)")
    for i in range(rows):
        plan = extra_plan if (extra_plan and i == 3) else ("pro" if i % 3 == 0 else "basic")
        db.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
                   (i + 1, "2021-0{}-01".format(1 + i % 9), plan, 10.5 + i,
                    None if i % 5 == 0 else i, i % 2))
    db.commit()
    db.close()


class DataPipelineTest(FerryTestCase):
    def setUp(self):
        self.p = self.project(ferry_yaml=FERRY_YAML, pipelines={"train": PIPELINE},
                              files={"sql/customers.sql": SQL, "checks/customers.yaml": RULES})
        self.source = self.p.path("source", "crm.db")
        make_source(self.source)

    def datasets(self):
        return {d["name"]: d for d in json.loads(self.p.ok("datasets", "--json").out)}

    def manifest(self, ref):
        return json.loads(self.p.ok("dataset", "show", ref, "--json").out)

    def test_extracts_validates_and_transforms_into_dataset_versions(self):
        run_id, r = self.p.run("train")
        self.assertEqual(self.p.states(run_id),
                         {"extract": "succeeded", "check": "succeeded", "features": "succeeded"})
        ds = self.datasets()
        self.assertEqual(sorted(ds), ["customers", "features"])
        self.assertEqual(ds["customers"]["rows"], 20)
        self.assertEqual(len(ds["customers"]["versions"]), 1)

        m = self.manifest("customers@1")
        self.assertEqual([(c["name"], c["type"]) for c in m["columns"]],
                         [("customer_id", "int64"), ("plan", "string"), ("charges", "float64"),
                          ("tenure", "int64"), ("churned", "int64")])
        with open(self.p.path("sql", "customers.sql"), "rb") as f:
            self.assertEqual(m["source"]["sql_sha256"], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(m["source"]["params"], {"since": "2020-01-01"})
        self.assertEqual(m["source"]["sql_file"], "sql/customers.sql")
        self.assertEqual(m["produced_by"], {"pipeline": "train", "run_id": run_id,
                                            "task": "extract"})
        folder = os.path.join(self.p.lake, "datasets", "customers", m["version"])
        self.assertEqual(sorted(os.listdir(folder)),
                         ["data.csv.zst", "manifest.json", "profile.json"])

        # pandas reads the data as written, and the content hash is that of the CSV text.
        import pandas as pd
        df = pd.read_csv(os.path.join(folder, "data.csv.zst"))
        self.assertEqual(list(df.columns), ["customer_id", "plan", "charges", "tenure", "churned"])
        self.assertEqual(len(df), 20)
        self.assertEqual(df["charges"].tolist(), [10.5 + i for i in range(20)])
        self.assertEqual(int(df["tenure"].isna().sum()), 4)
        import zstandard
        with open(os.path.join(folder, "data.csv.zst"), "rb") as f:
            raw = zstandard.ZstdDecompressor().stream_reader(f).read()
        self.assertEqual(m["content_sha256"], hashlib.sha256(raw).hexdigest())

        with open(os.path.join(folder, "profile.json")) as fp:
            profile = json.load(fp)
        cols = {c["name"]: c for c in profile["columns"]}
        self.assertEqual(cols["tenure"]["nulls"], 4)
        self.assertEqual(cols["charges"]["min"], 10.5)
        self.assertEqual(cols["charges"]["max"], 29.5)

        # The transform: a split dataset with its fitted state, lineage back to the SQL file.
        f = self.manifest("features")
        self.assertEqual(sorted(f["parts"]), ["test", "train"])
        self.assertEqual(f["parts"]["train"]["rows"] + f["parts"]["test"]["rows"], 20)
        # Stratified: round(0.25 * 10) = 3 test rows from each of the two classes.
        self.assertEqual(f["parts"]["test"]["rows"], 6)
        self.assertEqual(f["inputs"], [{"dataset": "customers", "version": m["version"]}])
        self.assertIn("plan=pro", [c["name"] for c in f["columns"]])
        ffolder = os.path.join(self.p.lake, "datasets", "features", f["version"])
        with open(os.path.join(ffolder, "transform.json")) as fp:
            state = json.load(fp)
        self.assertIn("ops", state)
        # The raw input rows of the test part (for serving-parity checks): the input's columns,
        # one row per test row, in the test part's order (charges are unique and left as is).
        self.assertIn({"path": "test.input.csv.zst"}, f["files"])
        raw_test = pd.read_csv(os.path.join(ffolder, "test.input.csv.zst"))
        test = pd.read_csv(os.path.join(ffolder, "test.csv.zst"))
        self.assertEqual(list(raw_test.columns),
                         ["customer_id", "plan", "charges", "tenure", "churned"])
        self.assertEqual(len(raw_test), f["parts"]["test"]["rows"])
        self.assertEqual(raw_test["charges"].tolist(), test["charges"].tolist())
        self.assertEqual(raw_test["churned"].tolist(), test["churned"].tolist())
        self.assertEqual(raw_test["customer_id"].tolist(),
                         [c - 9.5 for c in test["charges"].tolist()])
        show = self.p.ok("dataset", "show", "features").out
        self.assertSubstring("lineage:", show)
        self.assertSubstring("customers@" + m["version"][:12], show)
        self.assertSubstring("sql/customers.sql", show)

        # The validation report sits beside the dataset it passed on.
        report = json.loads(self.p.output("train", run_id, "check", "report.json"))
        self.assertTrue(report["passed"])
        self.assertEqual(report["violations"], [])

    def test_same_data_is_the_same_version_and_changed_data_a_new_one(self):
        run1, _ = self.p.run("train")
        v1 = self.manifest("customers")["version"]
        run2, r = self.p.run("train")
        # A database may change under the same SQL: the extraction runs again (no task cache)...
        self.assertEqual(self.p.tasks(run2)["extract"]["state"], "succeeded")
        self.assertSubstring("unchanged, the existing version",
                             self.p.ok("logs", run2, "extract").out)
        # ...but the same content is the same version, and the steps after it are cache hits.
        self.assertEqual([v["version"] for v in self.datasets()["customers"]["versions"]], [v1])
        self.assertEqual(self.p.tasks(run2)["features"]["state"], "cached")

        make_source(self.source, rows=25)
        self.p.run("train")
        versions = self.datasets()["customers"]["versions"]
        self.assertEqual([v["rows"] for v in versions], [20, 25])
        self.assertEqual(self.manifest("customers@2")["rows"], 25)
        self.assertEqual(self.manifest("customers@1")["version"], v1)

    def test_a_failing_validation_fails_the_run_with_a_report(self):
        make_source(self.source, extra_plan="trial")
        run_id, r = self.p.run("train", expect=EXIT_RUN_FAILED)
        states = self.p.states(run_id)
        self.assertEqual(states["check"], "failed")
        self.assertNotEqual(states["features"], "succeeded")
        report = json.loads(self.p.output("train", run_id, "check", "report.json"))
        self.assertFalse(report["passed"])
        [v] = report["violations"]
        self.assertEqual((v["rule"], v["column"], v["count"], v["samples"]),
                         ("allowed", "plan", 1, ["trial"]))
        self.assertSubstring("trial", self.p.ok("logs", run_id, "check").out)

    def test_validate_data_checks_a_version_from_the_command_line(self):
        self.p.run("train")
        r = self.p.ferry("validate-data", "checks/customers.yaml", "--dataset", "customers@1")
        self.assertEqual(r.rc, 0, r)
        self.assertSubstring("PASSED", r.out)
        self.p.write("checks/strict.yaml", "schema:\n  charges: { range: [0, 20] }\n")
        r = self.p.ferry("validate-data", "checks/strict.yaml", "--dataset", "customers@1",
                         "--json")
        self.assertEqual(r.rc, EXIT_RUN_FAILED, r)
        report = json.loads(r.out)
        [v] = report["violations"]
        self.assertEqual((v["rule"], v["column"], v["count"]), ("range", "charges", 10))
        r = self.p.ferry("validate-data", "checks/customers.yaml", "--dataset", "nope@1")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        self.assertSubstring("no dataset 'nope'", r.err)
        r = self.p.ferry("validate-data", "checks/customers.yaml", "--dataset", "customers@9")
        self.assertEqual(r.rc, EXIT_NOT_FOUND, r)
        self.assertSubstring("has 1 version(s), no @9", r.err)

    def test_validate_data_reads_a_csv_file_under_a_bad_row_policy(self):
        self.p.write("checks/csv.yaml", "rows: { min: 2 }\nschema:\n  b: { type: int64 }\n")
        self.p.write("in.csv", "a,b\n1,2\n3\n4,5\n5,6,7\n6,7\n")
        r = self.p.ferry("validate-data", "checks/csv.yaml", "--file", "in.csv")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertSubstring("in.csv:3: expected 2 fields, found 1", r.err)
        r = self.p.ferry("validate-data", "checks/csv.yaml", "--file", "in.csv",
                         "--on-bad-row", "quarantine", "--max-bad-rows", "2",
                         "--quarantine", "bad.csv", "--json")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(json.loads(r.out)["rows"], 3)
        self.assertEqual(self.p.read("bad.csv"),
                         'line,reason,text\n3,"expected 2 fields, found 1",3\n'
                         '5,"expected 2 fields, found 3","5,6,7"\n')
        r = self.p.ferry("validate-data", "checks/csv.yaml", "--file", "in.csv",
                         "--on-bad-row", "skip", "--max-bad-rows", "1")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertSubstring("2 bad rows in in.csv, more than max_bad_rows (1)", r.err)

    def test_a_parameter_is_bound_never_spliced(self):
        self.p.write("sql/by_plan.sql", "SELECT * FROM customers WHERE plan = :plan")
        self.p.write("pipelines/only.yaml", """
            params:
              plan: "pro"
            steps:
              extract:
                sql: sql/by_plan.sql
                connection: crm
                params: { plan: "{{ params.plan }}" }
                dataset: customers
            """)
        self.p.run("only")
        self.assertEqual(self.manifest("customers")["rows"], 7)
        self.p.run("only", "--param", "plan='; DROP TABLE customers; --")
        self.assertEqual(self.manifest("customers")["rows"], 0)
        self.assertEqual(self.manifest("customers")["rows"], 0)
        db = sqlite3.connect(self.source)
        self.assertEqual(db.execute("SELECT count(*) FROM customers").fetchone()[0], 20)
        db.close()


class DataConfigErrorsTest(FerryTestCase):
    def test_data_steps_are_checked_before_anything_runs(self):
        p = self.project(ferry_yaml=FERRY_YAML, files={"checks/c.yaml": "rows: {min: 1}\n"},
                         pipelines={"bad": """
            steps:
              extract:
                sql: sql/missing.sql
                connection: warehouse
              check:
                validate: extrct
                rules: checks/c.yaml
              features:
                transform: check
                ops: [ {one_hot: 3} ]
            """})
        r = p.ferry("validate", "pipelines/bad.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertSubstring("pipelines/bad.yaml:4:10: error: step 'extract': sql file "
                             "'sql/missing.sql' not found", r.err)
        self.assertSubstring("pipelines/bad.yaml:5:17: error: step 'extract': unknown connection "
                             "'warehouse'; ferry.yaml defines: crm", r.err)
        self.assertSubstring("pipelines/bad.yaml:7:15: error: step 'check' needs unknown step "
                             "'extrct'; did you mean 'extract'?", r.err)
        self.assertSubstring("pipelines/bad.yaml:11:10: error: step 'features': ops[0] (one_hot)",
                             r.err)


if __name__ == "__main__":
    unittest.main()
