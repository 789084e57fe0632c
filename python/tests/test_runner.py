"""`python3 -m ferry_model train` and `python3 models/toy.py train`, run as a ferry task would
run them: a process in the project folder with the contract's environment."""
import json
import os
import platform
import re
import tempfile
import unittest

import support

PARAMS = {"epochs": 3, "scale": 2, "target": "y", "full": True}


class TrainTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.project, self.env = support.make_task(self.tmp.name, PARAMS)
        self.model_dir = self.env["SM_MODEL_DIR"]

    def train(self, *args, env=None):
        return support.run_python(args, env or self.env, self.project)

    def saved(self):
        with open(os.path.join(self.model_dir, "mean.json")) as f:
            return json.load(f)

    def metadata(self):
        with open(os.path.join(self.model_dir, "ferry_model.json")) as f:
            return json.load(f)

    def test_train_saves_the_model_and_its_metadata(self):
        done = self.train("-m", "ferry_model", "train", "models/toy.py:Mean")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("ferry_model: trained Mean on 4 rows", done.stdout)
        saved = self.saved()
        self.assertEqual(saved["mean"], 5.0)
        self.assertEqual(saved["scale"], 2.0)
        self.assertEqual(saved["info"], {
            "columns": ["x", "y", "label", "flag", "when"], "part": "data",
            "version": "0123456789abcdef", "rows": 4, "epochs": 3, "raw_epochs": "3",
            "first": {"x": 1, "y": 2.0, "label": 1, "flag": True,
                      "when": "2026-11-27T00:00:00Z"}})
        meta = self.metadata()
        self.assertEqual(sorted(meta), ["class", "module", "python", "trained_at"])
        self.assertEqual((meta["module"], meta["class"]), ("models/toy.py", "Mean"))
        self.assertEqual(meta["python"], platform.python_version())
        self.assertRegex(meta["trained_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertFalse(os.path.exists(os.path.join(self.env["SM_OUTPUT_DIR"], "failure")))

    def test_script_with_main_trains_by_default_under_sm_model_dir(self):
        done = self.train("models/toy.py")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.saved()["mean"], 5.0)
        self.assertEqual((self.metadata()["module"], self.metadata()["class"]),
                         ("models/toy.py", "Mean"))

    def test_module_without_subcommand_trains_under_sm_model_dir(self):
        done = self.train("-m", "ferry_model", "models/toy.py:Majority")
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(self.model_dir, "p.json")) as f:
            self.assertEqual(json.load(f), {"0": 0.25, "1": 0.75})

    def test_no_subcommand_without_sm_model_dir_is_a_usage_error(self):
        env = dict(self.env)
        del env["SM_MODEL_DIR"]
        done = self.train("models/toy.py", env=env)
        self.assertEqual(done.returncode, 2)
        self.assertIn("say train, serve or predict", done.stderr)

    def test_hyperparameters_file_when_sm_hps_is_absent(self):
        env = dict(self.env)
        del env["SM_HPS"]
        with open(os.path.join(env["SM_INPUT_CONFIG_DIR"], "hyperparameters.json"), "w") as f:
            json.dump({"scale": "3", "epochs": "3"}, f)
        os.remove(env["FERRY_PARAMS"])
        done = self.train("models/toy.py", "train", env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.saved()["scale"], 3.0)

    def test_channel_flag_and_model_dir_flag(self):
        env = {k: v for k, v in self.env.items() if not k.startswith("SM_")}
        other = os.path.join(self.tmp.name, "elsewhere")
        channel = os.path.join(self.tmp.name, "task", "input", "data", "train")
        done = self.train("-m", "ferry_model", "train", "models/toy.py:Mean", "--model-dir",
                          other, "--channel", f"features={channel}", env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(other, "mean.json")) as f:
            self.assertEqual(json.load(f)["mean"], 5.0)

    def test_exception_writes_the_failure_file_and_exits_1(self):
        env = dict(self.env, SM_HPS=json.dumps({"explode": "true"}))
        done = self.train("-m", "ferry_model", "train", "models/toy.py:Mean", env=env)
        self.assertEqual(done.returncode, 1)
        self.assertIn("Traceback (most recent call last)", done.stderr)
        with open(os.path.join(self.env["SM_OUTPUT_DIR"], "failure")) as f:
            self.assertEqual(f.read(), "ValueError: exploded on purpose\n")
        self.assertFalse(os.path.exists(os.path.join(self.model_dir, "ferry_model.json")))

    def test_ambiguous_module_names_its_classes(self):
        done = self.train("-m", "ferry_model", "train", "models/toy.py")
        self.assertEqual(done.returncode, 1)
        with open(os.path.join(self.env["SM_OUTPUT_DIR"], "failure")) as f:
            self.assertEqual(f.read(), "models/toy.py: expected exactly one ferry_model.Model "
                             "subclass, found Echo, Majority, Mean; name it as "
                             "models/toy.py:ClassName\n")

    def test_missing_file_and_class(self):
        done = self.train("-m", "ferry_model", "train", "models/nope.py")
        self.assertEqual(done.returncode, 1)
        self.assertRegex(done.stderr, re.escape("no such file: models/nope.py"))
        done = self.train("-m", "ferry_model", "train", "models/toy.py:Nope")
        self.assertEqual(done.returncode, 1)
        self.assertIn("no ferry_model.Model subclass named 'Nope'", done.stderr)

    def test_missing_channel_fails_with_a_reason(self):
        env = dict(self.env, SM_CHANNELS="[]")
        del env["SM_CHANNEL_TRAIN"]
        done = self.train("models/toy.py", "train", env=env)
        self.assertEqual(done.returncode, 1)
        with open(os.path.join(self.env["SM_OUTPUT_DIR"], "failure")) as f:
            self.assertEqual(f.read(), "ValueError: no input channel: the step needs an "
                             "upstream data step (`needs:`)\n")


if __name__ == "__main__":
    unittest.main()
