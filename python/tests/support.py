"""Shared fixtures of the ferry_model tests: a toy model's source, datasets written as ferry
writes them (manifest.json + zstd CSV), a task folder laid out per the runner contract, and a
`serve` subprocess to query."""
import csv
import http.client
import io
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Three models in one module: `Mean` (regression: mean of y, plus the row's x), `Majority`
# (classification: the label frequencies) and `Echo` (each row predicted as itself, to see the
# values predict receives). Hyperparameters exercise strings and typed values.
TOY_MODEL = '''
import json
import os
import time

import ferry_model


class Mean(ferry_model.Model):
    def train(self, data, hyperparameters):
        if hyperparameters.bool("explode", False):
            raise ValueError("exploded on purpose")
        target = hyperparameters.str("target", "y")
        ys = [r[target] for r in data.rows]
        self.mean = sum(ys) / len(ys)
        self.scale = hyperparameters.float("scale", 1.0)
        self.info = {"columns": data.columns, "part": data.part,
                     "version": data.manifest["version"], "rows": len(data.rows),
                     "epochs": hyperparameters.int("epochs"),
                     "raw_epochs": hyperparameters["epochs"],
                     "first": data.rows[0]}

    def save(self, model_dir):
        with open(os.path.join(model_dir, "mean.json"), "w") as f:
            json.dump({"mean": self.mean, "scale": self.scale, "info": self.info}, f)

    def load(self, model_dir):
        with open(os.path.join(model_dir, "mean.json")) as f:
            saved = json.load(f)
        self.mean, self.scale = saved["mean"], saved["scale"]

    def predict(self, rows):
        out = []
        for r in rows:
            if r.get("boom"):
                raise RuntimeError("boom requested")
            if r.get("hold"):  # announce, then wait for the test to create the file
                open(r["hold"] + ".started", "w").close()
                deadline = time.monotonic() + 20
                while not os.path.exists(r["hold"]) and time.monotonic() < deadline:
                    time.sleep(0.01)
            if r.get("nan"):
                out.append(float("nan"))
                continue
            out.append(self.mean * self.scale + (r.get("x") or 0))
        return out


class Majority(ferry_model.Model):
    def train(self, data, hyperparameters):
        labels = [str(r["label"]) for r in data.rows]
        self.p = {c: labels.count(c) / len(labels) for c in sorted(set(labels))}

    def save(self, model_dir):
        with open(os.path.join(model_dir, "p.json"), "w") as f:
            json.dump(self.p, f)

    def load(self, model_dir):
        with open(os.path.join(model_dir, "p.json")) as f:
            self.p = json.load(f)

    def predict(self, rows):
        return [dict(self.p) for _ in rows]


class Echo(ferry_model.Model):
    """Predicts each row itself: shows the values predict was given."""

    def train(self, data, hyperparameters):
        pass

    def save(self, model_dir):
        open(os.path.join(model_dir, "echo"), "w").close()

    def load(self, model_dir):
        if not os.path.exists(os.path.join(model_dir, "echo")):
            raise FileNotFoundError("no file 'echo' in the model folder")

    def predict(self, rows):
        return [dict(r) for r in rows]


if __name__ == "__main__":
    ferry_model.main(Mean)
'''

# x, y and label, typed int64 / float64 / int64 by the manifest; one empty x (a null).
ROWS = [
    {"x": 1, "y": 2.0, "label": 1, "flag": "true", "when": "2026-11-27T00:00:00Z"},
    {"x": 2, "y": 4.0, "label": 1, "flag": "false", "when": "2026-11-27T01:00:00Z"},
    {"x": "", "y": 6.0, "label": 0, "flag": "true", "when": ""},
    {"x": 4, "y": 8.0, "label": 1, "flag": "", "when": "2026-11-27T03:00:00Z"},
]
COLUMNS = [("x", "int64"), ("y", "float64"), ("label", "int64"), ("flag", "bool"),
           ("when", "timestamp")]


def compress(data):
    """zstd-compresses bytes with the zstd program, else the zstandard module."""
    try:
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True,
                              timeout=30).stdout
    except FileNotFoundError:
        import zstandard  # only when the zstd program is missing
        return zstandard.ZstdCompressor().compress(data)


def csv_text(rows, columns):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([r[c] for c in columns])
    return buf.getvalue()


def write_dataset(folder, parts, columns=COLUMNS, version="0123456789abcdef"):
    """Writes a dataset folder: <part>.csv.zst per part and manifest.json (written last)."""
    os.makedirs(folder, exist_ok=True)
    names = [c for c, _ in columns]
    manifest_parts = {}
    for part, rows in parts.items():
        name = f"{part}.csv.zst"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(compress(csv_text(rows, names).encode()))
        manifest_parts[part] = {"file": name, "rows": len(rows)}
    manifest = {"dataset": "toy", "version": version,
                "columns": [{"name": n, "type": t} for n, t in columns],
                "parts": manifest_parts}
    with open(os.path.join(folder, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def make_task(root, params, upstream="train", parts=None):
    """Lays out `root`/project (holding toy.py) and `root`/task as ferry does for a task whose
    step needs `upstream`; returns (project folder, environment for the task's process)."""
    project = os.path.join(root, "project")
    os.makedirs(os.path.join(project, "models"))
    with open(os.path.join(project, "models", "toy.py"), "w") as f:
        f.write(TOY_MODEL)
    data = os.path.join(root, "upstream", "output", "data")
    write_dataset(data, parts or {"data": ROWS})
    task = os.path.join(root, "task")
    config = os.path.join(task, "input", "config")
    os.makedirs(config)
    os.makedirs(os.path.join(task, "input", "data"))
    os.symlink(data, os.path.join(task, "input", "data", upstream))
    for sub in ("model", "output/data"):
        os.makedirs(os.path.join(task, sub))
    with open(os.path.join(config, "params.json"), "w") as f:
        json.dump(params, f)
    strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    with open(os.path.join(config, "hyperparameters.json"), "w") as f:
        json.dump(strings, f)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SM_", "FERRY_")) and k != "PORT"}
    channel_var = "SM_CHANNEL_" + "".join(c if c.isalnum() else "_" for c in upstream.upper())
    env.update({
        "PYTHONPATH": PYTHON_DIR,
        "PYTHONDONTWRITEBYTECODE": "1",
        "SM_MODEL_DIR": os.path.join(task, "model"),
        "SM_OUTPUT_DIR": os.path.join(task, "output"),
        "SM_OUTPUT_DATA_DIR": os.path.join(task, "output", "data"),
        "SM_INPUT_DIR": os.path.join(task, "input"),
        "SM_INPUT_CONFIG_DIR": config,
        "SM_CHANNELS": json.dumps([upstream]),
        channel_var: os.path.join(task, "input", "data", upstream),
        "SM_HPS": json.dumps(strings),
        "FERRY_PARAMS": os.path.join(config, "params.json"),
        "FERRY_WORKDIR": task,
        "FERRY_PROJECT_DIR": project,
    })
    return project, env


def run_python(args, env, cwd, timeout=60):
    """Runs the test interpreter with `args`; returns the CompletedProcess (text)."""
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


START_DEADLINE_S = 30  # for a `serve` process to print its port


class Server:
    """A `serve` subprocess; `port` is read from its "listening on" line."""

    def __init__(self, args, env, cwd):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, *args], env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            line = self.wait_line("listening on 127.0.0.1:")
        except AssertionError:
            self.stop()
            raise
        self.port = int(line.strip().rsplit(":", 1)[1])

    def wait_line(self, prefix, timeout=START_DEADLINE_S):
        """Returns the next stdout line starting with `prefix`, skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line {prefix!r} within {timeout}s") from None
            if line is None:
                raise AssertionError(f"the server exited: {self.stderr_text()}")
            if line.startswith(prefix):
                return line

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None):
        """Returns (status, Content-Type, the body's JSON)."""
        status, content_type, data = self.request_bytes(method, path, body, headers)
        return status, content_type, json.loads(data)

    def request_bytes(self, method, path, body=None, headers=None):
        """Returns (status, Content-Type, the body's bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read()
        finally:
            conn.close()

    def raw(self, head):
        """Sends `head` (request line and headers) as is; returns (status, JSON body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(head.encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status_line, _, rest = data.partition(b"\r\n")
        return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])

    def post(self, body, content_type="application/json"):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        return self.request("POST", "/invocations", body, {"Content-Type": content_type})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.stderr.close()


def trained_project(root):
    """A project whose toy Mean model is trained (mean of y = 5.0, scale 2)."""
    project, env = make_task(root, {"scale": 2, "epochs": 1})
    done = run_python(["-m", "ferry_model", "train", "models/toy.py:Mean"], env, project)
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return project, env
