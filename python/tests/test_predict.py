"""`predict`: batch predictions of a trained toy model, written to a file, compared document for
document (byte for byte) with what POST /invocations answers for the same rows."""
import json
import os
import tempfile
import unittest

import support
from support import Server, trained_project

# The test part of SPLIT (support.ROWS[2:]) as read_dataset types it by the manifest.
TEST_ROWS = [
    {"x": None, "y": 6.0, "label": 0, "flag": True, "when": None},
    {"x": 4, "y": 8.0, "label": 1, "flag": None, "when": "2026-11-27T03:00:00Z"},
]
CSV = "x,name,flag\n1,a,true\n,b,FALSE\n2.5,c,\n"
CSV_ROWS = [{"x": 1, "name": "a", "flag": True}, {"x": None, "name": "b", "flag": False},
            {"x": 2.5, "name": "c", "flag": None}]


def last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


class PredictTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        root = cls.tmp.name
        cls.project, task_env = trained_project(root)  # Mean: 10.0 + x
        cls.model_dir = task_env["SM_MODEL_DIR"]
        cls.echo_dir = os.path.join(root, "echo-model")
        done = support.run_python(["-m", "ferry_model", "train", "models/toy.py:Echo",
                                   "--model-dir", cls.echo_dir], task_env, cls.project)
        if done.returncode != 0:
            raise AssertionError(done.stderr)
        cls.env = {k: v for k, v in task_env.items() if not k.startswith("SM_")}
        cls.output_dir = task_env["SM_OUTPUT_DIR"]
        cls.servers = {}
        for name, model_dir in (("Mean", cls.model_dir), ("Echo", cls.echo_dir)):
            server = Server(["-m", "ferry_model", "serve", f"models/toy.py:{name}",
                             "--model-dir", model_dir, "--port", "0"], cls.env, cls.project)
            cls.addClassCleanup(server.stop)
            cls.servers[name] = server
        # Dataset folders: split in train and test; one part; several parts but no test.
        cls.split = os.path.join(root, "split")
        support.write_dataset(cls.split, {"train": support.ROWS[:2], "test": support.ROWS[2:]})
        cls.whole = os.path.join(root, "whole")
        support.write_dataset(cls.whole, {"data": support.ROWS})
        cls.no_test = os.path.join(root, "no-test")
        support.write_dataset(cls.no_test, {"train": support.ROWS[:2],
                                            "validation": support.ROWS[2:]})

    def setUp(self):
        self.work = tempfile.TemporaryDirectory()
        self.addCleanup(self.work.cleanup)
        self.out = os.path.join(self.work.name, "predictions.json")

    def write(self, name, data):
        path = os.path.join(self.work.name, name)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def predict(self, model, *args, env=None, model_dir=None):
        """Runs `python3 -m ferry_model predict models/toy.py:MODEL ...` in the project."""
        if model_dir is None:
            model_dir = self.echo_dir if model == "Echo" else self.model_dir
        return support.run_python(["-m", "ferry_model", "predict", f"models/toy.py:{model}",
                                   "--model-dir", model_dir, *args], env or self.env,
                                  self.project)

    def predicted(self, model, *args):
        """Runs predict with --output self.out, expects success; returns the file's bytes."""
        done = self.predict(model, *args, "--output", self.out)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"^ferry_model: predicted \d+ rows? with " + model +
                         r" in \d+\.\d\ds; wrote " + self.out + "\n$")
        with open(self.out, "rb") as f:
            return f.read()

    def assertServerAnswers(self, model, written, body, content_type="application/json"):
        """POST /invocations with `body` answers 200 with exactly the bytes `written`."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        status, _, answer = self.servers[model].request_bytes(
            "POST", "/invocations", body, {"Content-Type": content_type})
        self.assertEqual(status, 200, answer)
        self.assertEqual(json.loads(written), json.loads(answer))
        self.assertEqual(written, answer)

    def assertFails(self, done, message):
        """Exit 1, `message` as the last line of stderr, no output file."""
        self.assertEqual(done.returncode, 1, done.stdout)
        self.assertEqual(last_line(done.stderr), "ferry_model: " + message)
        self.assertEqual(done.stdout, "")
        self.assertFalse(os.path.exists(self.out))

    # -- what is read, and parity with the server ----------------------------------------------

    def test_dataset_folder_reads_the_test_part_by_default(self):
        written = self.predicted("Mean", "--input", self.split)
        self.assertEqual(json.loads(written), {"predictions": [10.0, 14.0]})
        self.assertServerAnswers("Mean", written, {"instances": TEST_ROWS})
        # The rows reach predict typed by the manifest, as the same rows sent as JSON do.
        written = self.predicted("Echo", "--input", self.split)
        self.assertEqual(json.loads(written), {"predictions": TEST_ROWS})
        self.assertServerAnswers("Echo", written, {"instances": TEST_ROWS})

    def test_dataset_folder_with_one_part_reads_it(self):
        written = self.predicted("Mean", "--input", self.whole)
        self.assertEqual(json.loads(written), {"predictions": [11.0, 12.0, 10.0, 14.0]})
        self.assertServerAnswers("Mean", written,
                                 [{"x": 1}, {"x": 2}, {"x": None}, {"x": 4}])

    def test_part_flag_chooses_the_part(self):
        written = self.predicted("Mean", "--input", self.split, "--part", "train")
        self.assertEqual(json.loads(written), {"predictions": [11.0, 12.0]})
        written = self.predicted("Mean", "--input", self.no_test, "--part", "validation")
        self.assertEqual(json.loads(written), {"predictions": [10.0, 14.0]})

    def test_folder_without_manifest_reads_its_part_files_as_csv(self):
        folder = os.path.join(self.work.name, "plain")
        os.makedirs(folder)
        with open(os.path.join(folder, "test.csv"), "w") as f:
            f.write(CSV)
        with open(os.path.join(folder, "train.csv.zst"), "wb") as f:
            f.write(support.compress(b"x\n100\n"))
        written = self.predicted("Echo", "--input", folder)
        self.assertEqual(json.loads(written), {"predictions": CSV_ROWS})
        self.assertServerAnswers("Echo", written, CSV, "text/csv")
        written = self.predicted("Echo", "--input", folder, "--part", "train")
        self.assertEqual(json.loads(written), {"predictions": [{"x": 100}]})

    def test_csv_file_is_read_as_a_text_csv_request(self):
        for name, data in (("rows.csv", CSV), ("rows.csv.zst", support.compress(CSV.encode()))):
            with self.subTest(name):
                written = self.predicted("Echo", "--input", self.write(name, data))
                self.assertEqual(json.loads(written), {"predictions": CSV_ROWS})
                self.assertServerAnswers("Echo", written, CSV, "text/csv")
        written = self.predicted("Mean", "--input", self.write("rows.csv", CSV))
        self.assertEqual(json.loads(written), {"predictions": [11.0, 10.0, 12.5]})
        self.assertServerAnswers("Mean", written, CSV, "text/csv")

    def test_json_instances_file(self):
        body = {"instances": [{"x": 1}, {"x": 0.5}, {"x": None}]}
        written = self.predicted("Mean", "--input", self.write("in.json", json.dumps(body)))
        self.assertEqual(json.loads(written), {"predictions": [11.0, 10.5, 10.0]})
        self.assertServerAnswers("Mean", written, body)
        # A bare list, and values of every JSON type, as /invocations takes them.
        rows = [{"x": 2, "s": "é", "t": True, "n": None, "l": [1, 2.5], "o": {"k": "v"}}]
        written = self.predicted("Echo", "--input", self.write("list.json", json.dumps(rows)))
        self.assertEqual(json.loads(written), {"predictions": rows})
        self.assertServerAnswers("Echo", written, rows)

    def test_classification_predictions(self):
        majority_dir = os.path.join(self.work.name, "majority")
        done = support.run_python(["-m", "ferry_model", "train", "models/toy.py:Majority",
                                   "--model-dir", majority_dir, "--channel",
                                   "train=" + self.whole], self.env, self.project)
        self.assertEqual(done.returncode, 0, done.stderr)
        written = self.predicted("Majority", "--input", self.split, "--model-dir", majority_dir)
        p = {"0": 0.25, "1": 0.75}
        self.assertEqual(json.loads(written), {"predictions": [p, p]})

    def test_script_form_and_class_from_metadata(self):
        args = ["predict", "--model-dir", self.model_dir, "--input", self.split, "--output",
                self.out]
        for argv in (["models/toy.py", *args], ["-m", "ferry_model", *args]):
            with self.subTest(argv[0]):
                done = support.run_python(argv, self.env, self.project)
                self.assertEqual(done.returncode, 0, done.stderr)
                with open(self.out) as f:
                    self.assertEqual(json.load(f), {"predictions": [10.0, 14.0]})
                os.remove(self.out)

    def test_model_dir_defaults_to_sm_model_dir(self):
        done = support.run_python(["-m", "ferry_model", "predict", "models/toy.py:Mean",
                                   "--input", self.split, "--output", self.out],
                                  dict(self.env, SM_MODEL_DIR=self.model_dir), self.project)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(self.out) as f:
            self.assertEqual(json.load(f), {"predictions": [10.0, 14.0]})

    def test_output_is_replaced_atomically_and_its_folder_made(self):
        self.out = os.path.join(self.work.name, "a", "b", "p.json")
        self.predicted("Mean", "--input", self.whole)
        written = self.predicted("Mean", "--input", self.split)  # replaces the first
        self.assertEqual(json.loads(written), {"predictions": [10.0, 14.0]})
        self.assertEqual(os.listdir(os.path.dirname(self.out)), ["p.json"])  # no temp file left

    # -- errors ----------------------------------------------------------------------------

    def test_missing_model_dir_writes_the_failure_file(self):
        missing = os.path.join(self.work.name, "nope")
        env = dict(self.env, SM_OUTPUT_DIR=self.work.name)
        done = self.predict("Mean", "--input", self.split, "--output", self.out, env=env,
                            model_dir=missing)
        self.assertFails(done, f"no such model folder: {missing}")
        with open(os.path.join(self.work.name, "failure")) as f:
            self.assertEqual(f.read(), f"no such model folder: {missing}\n")

    def test_model_that_cannot_load(self):
        empty = os.path.join(self.work.name, "empty")
        os.makedirs(empty)
        done = self.predict("Echo", "--input", self.split, "--output", self.out,
                            model_dir=empty)
        self.assertFails(done, f"cannot load Echo from {empty}: FileNotFoundError: no file "
                         "'echo' in the model folder")
        self.assertIn("Traceback (most recent call last)", done.stderr)

    def test_unknown_part(self):
        manifest = os.path.join(self.split, "manifest.json")
        done = self.predict("Mean", "--input", self.split, "--part", "nope", "--output",
                            self.out)
        self.assertFails(done, f"{manifest}: no part 'nope' (parts: test, train); pass --part "
                         "with one of them")
        # No --part: test, else the only part; with several and no test it must be named.
        manifest = os.path.join(self.no_test, "manifest.json")
        done = self.predict("Mean", "--input", self.no_test, "--output", self.out)
        self.assertFails(done, f"{manifest}: no part 'test' (parts: train, validation); pass "
                         "--part with one of them")
        # An explicit part is never replaced by the only one.
        manifest = os.path.join(self.whole, "manifest.json")
        done = self.predict("Mean", "--input", self.whole, "--part", "test", "--output",
                            self.out)
        self.assertFails(done, f"{manifest}: no part 'test' (parts: data); pass --part with "
                         "one of them")

    def test_bad_inputs(self):
        missing = os.path.join(self.work.name, "missing.csv")
        empty = os.path.join(self.work.name, "empty")
        os.makedirs(empty)
        cases = [
            ([missing], f"no such input: {missing} (expected a dataset folder, a .csv or "
                        ".csv.zst file, or a .json file)"),
            ([self.write("rows.txt", CSV)], f"{self.work.name}/rows.txt: expected a dataset "
             "folder, a .csv or .csv.zst file, or a .json file of {\"instances\": [...]}"),
            ([self.write("p.csv", CSV), "--part", "test"], "--part test applies to a dataset "
             f"folder, and {self.work.name}/p.csv is a file: drop --part"),
            ([empty], f"{empty}: not a dataset folder (no manifest.json, and no .csv or "
                      ".csv.zst file)"),
            ([self.write("short.csv", "x,y\n1,2\n3\n")], f"{self.work.name}/short.csv: line 3: "
             "1 fields, the header has 2"),
            ([self.write("empty.json", '{"instances": []}')], f"{self.work.name}/empty.json: "
             "no instances to predict"),
            ([self.write("bad.json", '[{"x": 1}, [1]]')], f"{self.work.name}/bad.json: "
             "instance 1 is a list, expected an object of feature -> value"),
            ([self.write("rows.json", '{"rows": []}')], f"{self.work.name}/rows.json: "
             "expected {\"instances\": [...]} or a list of instances"),
        ]
        for args, message in cases:
            with self.subTest(message):
                done = self.predict("Mean", "--input", *args, "--output", self.out)
                self.assertFails(done, message)

    def test_predict_failures_match_the_servers_errors(self):
        path = self.write("in.json", "")
        messages = {}
        for rows, code in (([{"x": 1}, {"boom": True}], "prediction_failed"),
                           ([{"nan": 1}], "bad_predictions")):
            with self.subTest(code):
                self.write("in.json", json.dumps(rows))
                env = dict(self.env, SM_OUTPUT_DIR=self.work.name)
                done = self.predict("Mean", "--input", path, "--output", self.out, env=env)
                status, _, answer = self.servers["Mean"].post(rows)
                self.assertEqual((status, answer["error"]["code"]), (500, code))
                count = "2 rows" if len(rows) == 2 else "1 row"
                message = (f"Mean.predict on {count} of {path}: "
                           f"{answer['error']['message']}")
                self.assertFails(done, message)
                with open(os.path.join(self.work.name, "failure")) as f:
                    self.assertEqual(f.read(), message + "\n")
                messages[code] = message
        self.assertEqual(messages["prediction_failed"],
                         f"Mean.predict on 2 rows of {path}: RuntimeError: boom requested")
        self.assertTrue(messages["bad_predictions"].startswith(
            f"Mean.predict on 1 row of {path}: the predictions are not valid JSON: "),
            messages["bad_predictions"])

    def test_missing_arguments_are_usage_errors(self):
        done = support.run_python(["-m", "ferry_model", "predict", "models/toy.py:Mean",
                                   "--model-dir", self.model_dir, "--input", self.split],
                                  self.env, self.project)
        self.assertEqual(done.returncode, 2)
        self.assertIn("the following arguments are required: --output", done.stderr)


if __name__ == "__main__":
    unittest.main()
