"""The runner contract a task's process gets (SageMaker-style folders and SM_* / FERRY_*
variables), resource templates merged into a step, parameters (precedence, types, templating),
and `ferry render`, which shows all of it without running anything."""

import json
import os
import unittest

from ferry_e2e import EXIT_USAGE, FerryTestCase, utc_today

FERRY_YAML = """
name: e2e
params:
  b: 20          # wins over the pipeline's default
  c: 30          # loses to --param
  not_declared: 1
templates:
  default: { env: { FROM_DEFAULT: d, OVERRIDDEN: default } }
  base:    { cpu: 2, memory: 1Gi, timeout: 5m, env: { FROM_BASE: base, OVERRIDDEN: base } }
  tpl:     { extends: base, retries: 3, retry_backoff: 250ms, env: { FROM_TPL: tpl, OVERRIDDEN: tpl } }
"""

PIPELINE = """
params:
  a: 1
  b: 2
  c: 3
  ratio: 0.5
  flag: true
  label: "x-{{ run.date }}"
steps:
  up1:
    command: sh steps/step.sh
  up2:
    command: sh steps/step.sh
  dump:
    needs: [up2, up1]
    template: tpl
    cpu: 3
    env: { FROM_STEP: step, OVERRIDDEN: step, RUN: "{{ run.id }}", A: "{{ params.a }}" }
    command: sh steps/dump.sh
  templated:
    command: echo "{{ params.label }} {{ run.id }} {{ run.date }} {{ params.ratio }}" > marks/templated.txt
"""

# Dumps what the process sees, then writes a model and data.
DUMP_SH = r"""
m="$FERRY_PROJECT_DIR/marks"
env -0 > "$m/env.$FERRY_TASK"
(cd "$FERRY_WORKDIR" && find . | sort) > "$m/tree.$FERRY_TASK"
pwd > "$m/cwd.$FERRY_TASK"
cat "$SM_CHANNEL_UP1/out.txt" "$SM_CHANNEL_UP2/out.txt" > "$SM_OUTPUT_DATA_DIR/joined.txt"
echo weights > "$SM_MODEL_DIR/model.bin"
"""


def read_env(path):
    with open(path) as f:
        items = [kv for kv in f.read().split("\0") if kv]
    return dict(kv.split("=", 1) for kv in items)


class RunnerContractTest(FerryTestCase):
    def make(self):
        return self.project(ferry_yaml=FERRY_YAML, pipelines={"contract": PIPELINE},
                            files={"steps/dump.sh": DUMP_SH})

    def test_environment_folders_and_parameters(self):
        p = self.make()
        before = utc_today()
        run, _ = p.run("contract", "--param", "c=300")
        date = p.read("marks/templated.txt").split()[2]
        self.assertIn(date, {before, utc_today()})
        params = {"a": 1, "b": 20, "c": 300, "ratio": 0.5, "flag": True, "label": "x-" + date}
        hps = {"a": "1", "b": "20", "c": "300", "ratio": "0.5", "flag": "true",
               "label": "x-" + date}

        d = p.task_dir("contract", run, "dump")
        env = read_env(p.path("marks", "env.dump"))
        self.assertEqual(env["SM_MODEL_DIR"], d + "/model")
        self.assertEqual(env["SM_OUTPUT_DIR"], d + "/output")
        self.assertEqual(env["SM_OUTPUT_DATA_DIR"], d + "/output/data")
        self.assertEqual(env["SM_INPUT_DIR"], d + "/input")
        self.assertEqual(env["SM_INPUT_CONFIG_DIR"], d + "/input/config")
        self.assertEqual(env["SM_CHANNEL_UP1"], d + "/input/data/up1")
        self.assertEqual(env["SM_CHANNEL_UP2"], d + "/input/data/up2")
        self.assertEqual(json.loads(env["SM_CHANNELS"]), ["up1", "up2"])
        self.assertEqual(json.loads(env["SM_HPS"]), hps)
        self.assertEqual(env["SM_NUM_CPUS"], "3")
        self.assertEqual(env["SM_CURRENT_HOST"], "algo-1")
        self.assertEqual(env["FERRY_RUN_ID"], run)
        self.assertEqual(env["FERRY_PIPELINE"], "contract")
        self.assertEqual(env["FERRY_TASK"], "dump")
        self.assertEqual(env["FERRY_ATTEMPT"], "1")
        self.assertEqual(env["FERRY_RUN_DATE"], date)
        self.assertEqual(env["FERRY_WORKDIR"], d)
        self.assertEqual(env["FERRY_PARAMS"], d + "/input/config/params.json")
        self.assertEqual(env["FERRY_PROJECT_DIR"], p.root)
        self.assertEqual(env["FERRY_LAKE"], "file://" + p.lake)
        # Template env merged: default < base < tpl < the step's own (which may template).
        self.assertEqual(env["FROM_DEFAULT"], "d")
        self.assertEqual(env["FROM_BASE"], "base")
        self.assertEqual(env["FROM_TPL"], "tpl")
        self.assertEqual(env["FROM_STEP"], "step")
        self.assertEqual(env["OVERRIDDEN"], "step")
        self.assertEqual(env["RUN"], run)
        self.assertEqual(env["A"], "1")
        # The task runs in the project folder, which is also FERRY_PROJECT_DIR.
        self.assertEqual(p.read("marks/cwd.dump").strip(), p.root)

        # Folders: SageMaker's /opt/ml layout.
        self.assertEqual(p.read("marks/tree.dump").split(), [
            ".", "./input", "./input/config", "./input/config/hyperparameters.json",
            "./input/config/params.json", "./input/data", "./input/data/up1",
            "./input/data/up2", "./logs", "./logs/1.log", "./model", "./output", "./output/data"])
        with open(d + "/input/config/hyperparameters.json") as f:
            self.assertEqual(json.load(f), hps)
        with open(d + "/input/config/params.json") as f:
            self.assertEqual(json.load(f), params)
        # Channels are the upstream tasks' output/data.
        self.assertEqual(os.readlink(d + "/input/data/up1"),
                         p.task_dir("contract", run, "up1") + "/output/data")
        self.assertEqual(p.output("contract", run, "dump", "joined.txt"), "up1()\nup2()\n")
        with open(d + "/manifest.json") as f:
            manifest = json.load(f)
        self.assertEqual(sorted(f["path"] for f in manifest["files"]),
                         ["model/model.bin", "output/data/joined.txt"])

        # A root task has no channels.
        env1 = self.root_env(p)
        self.assertEqual(env1["SM_CHANNELS"], "[]")
        self.assertFalse([k for k in env1 if k.startswith("SM_CHANNEL_")])
        self.assertNotIn("FROM_TPL", env1)
        self.assertEqual(env1["FROM_DEFAULT"], "d")

        show = p.show(run)
        self.assertEqual(show["params"], params)
        run_dir = os.path.join(p.lake, "runs", "contract", run)
        with open(os.path.join(run_dir, "params.json")) as f:
            self.assertEqual(json.load(f), params)
        with open(os.path.join(run_dir, "hyperparameters.json")) as f:
            self.assertEqual(json.load(f), hps)
        # A task's parameter files are hard links to the run's: one copy, no new files per task.
        for name in ("params.json", "hyperparameters.json"):
            self.assertTrue(os.path.samefile(os.path.join(run_dir, name),
                                             os.path.join(d, "input", "config", name)), name)
        self.assertEqual(p.read("marks/templated.txt"),
                         "x-{} {} {} 0.5\n".format(date, run, date))

    def root_env(self, p):
        # up1 is the generic step; re-run it as a dump to see a root task's environment.
        p.write("pipelines/root.yaml", "steps:\n  solo:\n    command: sh steps/dump.sh\n")
        r = p.ferry("run", "pipelines/root.yaml")
        self.assertEqual(r.rc, 0, r)
        return read_env(p.path("marks", "env.solo"))


class ParamsTest(FerryTestCase):
    def make(self):
        return self.project(ferry_yaml=FERRY_YAML, pipelines={"contract": PIPELINE},
                            files={"steps/dump.sh": DUMP_SH})

    def test_typed_overrides(self):
        p = self.make()
        r = p.ok("render", "pipelines/contract.yaml", "-p", "flag=no", "-p", "ratio=2",
                 "-p", "a=-7", "-p", "label=plain")
        self.assertEqual(json.loads(r.out)["params"],
                         {"a": -7, "b": 20, "c": 30, "ratio": 2.0, "flag": False,
                          "label": "plain"})

    def test_unknown_param_names_the_declared_ones(self):
        p = self.make()
        r = p.ferry("run", "pipelines/contract.yaml", "--param", "nope=1")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertEqual(r.err, "ferry: error: --param nope: pipeline 'contract' has no parameter "
                                "'nope'; declared: a, b, c, ratio, flag, label\n")
        self.assertFalse(os.path.exists(os.path.join(p.lake, "runs")))
        self.assertEqual(p.ledger(), [])
        # ferry.yaml's values only apply to declared parameters.
        r = p.ferry("run", "pipelines/contract.yaml", "--param", "not_declared=2")
        self.assertEqual(r.rc, EXIT_USAGE, r)

    def test_bad_values(self):
        p = self.make()
        for kv, why in [("a=abc", "'abc' is not an integer"),
                        ("a=1.5", "'1.5' is not an integer"),
                        ("ratio=x", "'x' is not a number"),
                        ("flag=maybe", "'maybe' is not a boolean")]:
            r = p.ferry("run", "pipelines/contract.yaml", "--param", kv)
            self.assertEqual(r.rc, EXIT_USAGE, r)
            self.assertIn("--param " + kv + ": " + why, r.err)
        r = p.ferry("run", "pipelines/contract.yaml", "--param", "a")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertIn("write NAME=VALUE", r.err)
        self.assertEqual(p.ledger(), [])
        self.assertEqual(json.loads(p.ok("runs", "--json").out), [])

    def test_ferry_yaml_values_are_templated_like_defaults(self):
        pipeline = ('params: { tag: "x", day: "{{ today }}" }\n'
                    'steps:\n  a:\n    command: "true"\n')
        p = self.project(ferry_yaml='params: { tag: "v-{{ run.date }}" }\n',
                         pipelines={"tpl": pipeline})
        params = json.loads(p.ok("render", "pipelines/tpl.yaml").out)["params"]
        self.assertRegex(params["day"], r"^\d{4}-\d{2}-\d{2}$")
        self.assertEqual(params["tag"], "v-" + params["day"])

    def test_ferry_yaml_values_take_the_type_of_the_default(self):
        pipeline = ('params: { n: 5, r: 0.5, s: "x", on: false }\n'
                    'steps:\n  a:\n    command: "true"\n')
        p = self.project(ferry_yaml='params: { n: "12", r: 2, s: 3, on: "yes" }\n',
                         pipelines={"typed": pipeline})
        r = p.ok("render", "pipelines/typed.yaml")
        self.assertEqual(json.loads(r.out)["params"], {"n": 12, "r": 2.0, "s": "3", "on": True})
        self.assertIn('"r": 2.0', r.out)  # a float in params.json, as the default is
        # A later --param follows the declared type, not ferry.yaml's spelling.
        r = p.ok("render", "pipelines/typed.yaml", "-p", "n=7")
        self.assertEqual(json.loads(r.out)["params"]["n"], 7)

        p.write("ferry.yaml", "params: { n: abc }\n")
        r = p.ferry("run", "pipelines/typed.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertEqual(r.err, "ferry: error: {}: params.n (parameter of pipeline 'typed'): "
                                "'abc' is not an integer (the type of the parameter's default 5)\n"
                                .format(p.path("ferry.yaml")))
        p.write("ferry.yaml", "params: { r: true }\n")
        r = p.ferry("run", "pipelines/typed.yaml")
        self.assertEqual(r.rc, EXIT_USAGE, r)
        self.assertIn("params.r (parameter of pipeline 'typed'): true does not have the type of "
                      "the parameter's default 0.5", r.err)
        self.assertEqual(json.loads(p.ok("runs", "--json").out), [])

    def test_render_step_shows_merged_resources_env_and_argv(self):
        p = self.make()
        r = p.ok("render", "pipelines/contract.yaml", "--step", "dump", "--param", "c=7")
        j = json.loads(r.out)
        self.assertNotIn("steps", j)
        self.assertEqual(j["name"], "contract")
        self.assertEqual(j["run_id"], "RUN_ID")
        self.assertEqual(j["params"]["c"], 7)
        self.assertEqual(j["params"]["b"], 20)
        step = j["step"]
        self.assertEqual(step["name"], "dump")
        self.assertEqual(step["needs"], ["up2", "up1"])
        self.assertEqual(step["argv"], ["sh", "steps/dump.sh"])
        self.assertEqual(step["resources"], {
            "cpu": 3.0, "memory_bytes": 1 << 30, "gpu": 0, "timeout_ms": 300000, "retries": 3,
            "retry_backoff_ms": 250, "retry_backoff_max_ms": 300000, "image": "",
            "env": {"A": "1", "FROM_BASE": "base", "FROM_DEFAULT": "d", "FROM_STEP": "step",
                    "FROM_TPL": "tpl", "OVERRIDDEN": "step", "RUN": "RUN_ID"}})

        r = p.ok("render", "pipelines/contract.yaml", "-s", "templated")
        step = json.loads(r.out)["step"]
        date = json.loads(r.out)["vars"]["run.date"]
        self.assertEqual(step["argv"], ["/bin/sh", "-c", 'echo "x-{} RUN_ID {} 0.5" > '
                                        "marks/templated.txt".format(date, date)])
        self.assertEqual(step["resources"]["env"], {"FROM_DEFAULT": "d", "OVERRIDDEN": "default"})

        r = p.ferry("render", "pipelines/contract.yaml", "--step", "nope")
        self.assertEqual(r.rc, 3, r)
        self.assertIn("pipeline 'contract' has no step 'nope'", r.err)
        self.assertEqual(p.ledger(), [])  # nothing ran


if __name__ == "__main__":
    unittest.main()
