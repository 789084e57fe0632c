"""Reading dataset folders, hyperparameters and channels, in process."""
import json
import os
import sys
import tempfile
import unittest
from unittest import mock

import support

sys.path.insert(0, support.PYTHON_DIR)

import ferry_model  # noqa: E402
from ferry_model import data as data_module  # noqa: E402
from ferry_model.runner import UsageError, channel_env_name  # noqa: E402


class ReadDatasetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.root = self.tmp.name

    def test_unsplit_dataset_is_read_as_train_with_typed_values(self):
        support.write_dataset(self.root, {"data": support.ROWS})
        ds = ferry_model.read_dataset(self.root)
        self.assertEqual(ds.part, "data")
        self.assertEqual(ds.columns, ["x", "y", "label", "flag", "when"])
        self.assertEqual(ds.manifest["version"], "0123456789abcdef")
        self.assertEqual(ds.path, os.path.join(self.root, "data.csv.zst"))
        self.assertEqual(ds.rows[0], {"x": 1, "y": 2.0, "label": 1, "flag": True,
                                      "when": "2026-11-27T00:00:00Z"})
        self.assertEqual(ds.rows[2], {"x": None, "y": 6.0, "label": 0, "flag": True,
                                      "when": None})
        self.assertIs(ds.rows[3]["flag"], None)
        self.assertIs(type(ds.rows[0]["x"]), int)
        self.assertIs(type(ds.rows[0]["y"]), float)
        self.assertEqual(len(ds.rows), 4)

    def test_split_dataset_reads_the_requested_part(self):
        support.write_dataset(self.root, {"train": support.ROWS[:3], "test": support.ROWS[3:]})
        train = ferry_model.read_dataset(self.root)
        test = ferry_model.read_dataset(self.root, part="test")
        self.assertEqual((train.part, len(train.rows)), ("train", 3))
        self.assertEqual((test.part, [r["x"] for r in test.rows]), ("test", [4]))

    def test_missing_part_names_the_parts(self):
        support.write_dataset(self.root, {"data": support.ROWS})
        with self.assertRaisesRegex(FileNotFoundError, r"no part 'test' \(parts: data\)"):
            ferry_model.read_dataset(self.root, part="test")
        support.write_dataset(self.root, {"test": support.ROWS})
        with self.assertRaisesRegex(FileNotFoundError,
                                    r"no part 'train' or 'data' \(parts: test\)"):
            ferry_model.read_dataset(self.root)

    def test_zstd_program_is_used_without_the_zstandard_module(self):
        support.write_dataset(self.root, {"data": support.ROWS})
        with mock.patch.dict(sys.modules, {"zstandard": None}):  # import zstandard fails
            ds = ferry_model.read_dataset(self.root)
        self.assertEqual([r["y"] for r in ds.rows], [2.0, 4.0, 6.0, 8.0])

    def test_folder_without_manifest_falls_back_to_plain_csv(self):
        with open(os.path.join(self.root, "data.csv"), "w") as f:
            f.write("a,b\n1,x\n")
        ds = ferry_model.read_dataset(self.root)
        self.assertIsNone(ds.manifest)
        self.assertEqual((ds.part, ds.rows), ("data.csv", [{"a": "1", "b": "x"}]))

    def test_empty_folder_is_an_error_naming_it(self):
        with self.assertRaisesRegex(FileNotFoundError, "not a dataset folder"):
            ferry_model.read_dataset(self.root)

    def test_value_of_the_wrong_type_names_line_and_column(self):
        support.write_dataset(self.root, {"data": [dict(support.ROWS[0], x="oops")]})
        with self.assertRaisesRegex(ValueError, r"data.csv.zst:2: column 'x': cannot read 'oops' "
                                    r"as int64"):
            ferry_model.read_dataset(self.root)

    def test_short_row_names_its_line(self):
        path = os.path.join(self.root, "data.csv")
        with open(path, "w") as f:
            f.write("a,b\n1,2\n3\n")
        with self.assertRaisesRegex(ValueError, r"data.csv:3: 1 fields, the header has 2"):
            data_module.read_csv(path)


class HyperparametersTest(unittest.TestCase):
    def test_strings_and_typed_values(self):
        hps = ferry_model.Hyperparameters({"epochs": "3", "lr": "0.05", "full": "true"},
                                          {"epochs": 3, "lr": 0.05, "full": True})
        self.assertEqual(dict(hps), {"epochs": "3", "lr": "0.05", "full": "true"})
        self.assertEqual(hps.int("epochs"), 3)
        self.assertEqual(hps.float("lr"), 0.05)
        self.assertIs(hps.bool("full"), True)
        self.assertEqual(hps.typed["epochs"], 3)

    def test_strings_alone_are_parsed_and_defaults_apply(self):
        hps = ferry_model.Hyperparameters({"epochs": "7", "full": "no"})
        self.assertEqual(hps.int("epochs"), 7)
        self.assertEqual(hps.float("epochs"), 7.0)
        self.assertIs(hps.bool("full"), False)
        self.assertEqual(hps.int("missing", 10), 10)
        self.assertEqual(hps.str("missing", "d"), "d")
        self.assertEqual(hps.typed, {})

    def test_int_param_read_as_float_is_a_float(self):
        hps = ferry_model.Hyperparameters({"lr": "1"}, {"lr": 1})
        self.assertIs(type(hps.float("lr")), float)

    def test_unparsable_value_names_the_parameter(self):
        hps = ferry_model.Hyperparameters({"epochs": "many"})
        with self.assertRaisesRegex(ValueError, "hyperparameter 'epochs': 'many' is not a int"):
            hps.int("epochs")

    def test_read_from_the_environment(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "hyperparameters.json"), "w") as f:
                json.dump({"epochs": "5"}, f)
            with open(os.path.join(tmp, "params.json"), "w") as f:
                json.dump({"epochs": 5, "rate": 0.5}, f)
            from_file = ferry_model.read_hyperparameters({"SM_INPUT_CONFIG_DIR": tmp})
            self.assertEqual(dict(from_file), {"epochs": "5"})
            self.assertEqual(from_file.typed, {"epochs": 5, "rate": 0.5})
            # SM_HPS wins over the file; non-string values become their JSON text.
            from_env = ferry_model.read_hyperparameters(
                {"SM_INPUT_CONFIG_DIR": tmp, "SM_HPS": '{"epochs": 9, "full": true}'})
            self.assertEqual(dict(from_env), {"epochs": "9", "full": "true"})
        self.assertEqual(dict(ferry_model.read_hyperparameters({})), {})


class ChannelsTest(unittest.TestCase):
    def test_channel_variable_names(self):
        self.assertEqual(channel_env_name("train"), "SM_CHANNEL_TRAIN")
        self.assertEqual(channel_env_name("raw-data.v2"), "SM_CHANNEL_RAW_DATA_V2")

    def test_channels_from_sm_channels(self):
        env = {"SM_CHANNELS": '["raw-data", "test"]', "SM_CHANNEL_RAW_DATA": "/a",
               "SM_INPUT_DIR": "/task/input", "SM_CHANNEL_OTHER": "/ignored"}
        self.assertEqual(ferry_model.read_channels(env),
                         {"raw-data": "/a", "test": "/task/input/data/test"})

    def test_channels_without_sm_channels(self):
        self.assertEqual(ferry_model.read_channels({"SM_CHANNEL_TRAIN": "/t"}), {"train": "/t"})

    def test_bad_sm_channels(self):
        with self.assertRaisesRegex(UsageError, "SM_CHANNELS is not a JSON list"):
            ferry_model.read_channels({"SM_CHANNELS": "train"})


class LoadDataTest(unittest.TestCase):
    def test_channel_choice(self):
        with tempfile.TemporaryDirectory() as tmp:
            support.write_dataset(tmp, {"data": support.ROWS})
            model = ferry_model.Model()
            self.assertEqual(len(model.load_data({"features": tmp}).rows), 4)
            self.assertEqual(len(model.load_data({"train": tmp, "other": "/x"}).rows), 4)
            with self.assertRaisesRegex(ValueError, r"several input channels \(a, b\)"):
                model.load_data({"a": tmp, "b": tmp})
            with self.assertRaisesRegex(ValueError, "no input channel"):
                model.load_data({})
            model.channel = "b"
            self.assertEqual(model.load_data({"a": "/x", "b": tmp}).part, "data")


if __name__ == "__main__":
    unittest.main()
