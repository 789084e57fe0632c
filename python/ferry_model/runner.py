"""The runner: trains a Model under the runner contract, serves it over HTTP, or predicts a
batch offline.

    python3 -m ferry_model train MODULE[:CLASS] [--model-dir DIR] [--channel NAME=DIR ...]
    python3 -m ferry_model serve [MODULE[:CLASS]] [--model-dir DIR] [--host H] [--port P]
    python3 -m ferry_model predict [MODULE[:CLASS]] --model-dir DIR --input PATH [--part P]
                                   --output FILE.json
    python3 models/churn.py train|serve|predict ...  # a script ending with main(Churn)

MODULE is a file (`models/churn.py`) or an importable dotted name (`mypkg.churn`). Without
CLASS, the module must define exactly one subclass of ferry_model.Model. With no subcommand,
`train` is run when SM_MODEL_DIR is set (as in a ferry task), else it is a usage error.

Train reads the contract's environment (docs/contract.md): SM_CHANNELS and SM_CHANNEL_<NAME>,
SM_HPS or input/config/hyperparameters.json, FERRY_PARAMS, SM_MODEL_DIR, SM_OUTPUT_DIR. On an
exception it prints the traceback, writes its last line to $SM_OUTPUT_DIR/failure and exits 1.

Predict loads the model as serve does, reads rows from a dataset folder, a CSV file or a JSON
file of {"instances": [...]}, and writes the document POST /invocations would answer for them
(server.invoke) to the output file, atomically. On an error it exits 1 with a one-line message
(last on stderr, and in $SM_OUTPUT_DIR/failure when that is set).

Example:
    if __name__ == "__main__":
        ferry_model.main(Churn)
"""
import argparse
import datetime
import importlib
import importlib.util
import inspect
import json
import os
import platform
import re
import sys
import tempfile
import time
import traceback

from .data import read_dataset, read_text
from .model import Hyperparameters, Model

METADATA_FILE = "ferry_model.json"


class UsageError(Exception):
    """A problem with the command line or the environment, reported without a traceback."""


class PredictError(Exception):
    """A failure of `predict` (unreadable rows, a model that fails), reported in one line."""


# ---------------------------------------------------------------------------------------------
# Finding the model class


def _module_label(module):
    """What ferry_model.json records as "module": a file path relative to the working folder
    (the project folder under ferry) when the module is a file there, else the module's name."""
    path = getattr(module, "__file__", None)
    if module.__name__ == "__main__" or getattr(module, "_ferry_model_from_file", False):
        if path:
            path = os.path.abspath(path)
            rel = os.path.relpath(path)
            return rel if not rel.startswith("..") else path
    return module.__name__


def load_class(spec):
    """Returns (class, module label) for "path/to/module.py[:Class]" or "dotted.name[:Class]".

    Raises UsageError when the file or class does not exist or the class is ambiguous.
    """
    target, _, class_name = spec.partition(":")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise UsageError(f"no such file: {target} (relative to {os.getcwd()})")
        name = os.path.splitext(os.path.basename(path))[0]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"{target}: the file name must be a Python identifier")
        # As `python3 path/to/module.py` would: the module's folder comes first on sys.path, so
        # it imports its siblings, and it is registered under its name, so pickle finds it.
        folder = os.path.dirname(path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        module._ferry_model_from_file = True
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as e:
            raise UsageError(f"cannot import {target!r}: {e}") from None
    if class_name:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, Model)):
            raise UsageError(f"{target}: no ferry_model.Model subclass named {class_name!r}")
        return cls, _module_label(module)
    found = [c for c in vars(module).values()
             if inspect.isclass(c) and issubclass(c, Model) and c is not Model
             and c.__module__ == module.__name__]
    if len(found) != 1:
        names = ", ".join(sorted(c.__name__ for c in found)) or "none"
        raise UsageError(f"{target}: expected exactly one ferry_model.Model subclass, found "
                         f"{names}; name it as {target}:ClassName")
    return found[0], _module_label(module)


# ---------------------------------------------------------------------------------------------
# The contract's environment


def channel_env_name(channel):
    """SM_CHANNEL_ + the name upper-cased, every character but a letter or digit made `_`."""
    return "SM_CHANNEL_" + re.sub(r"[^A-Z0-9]", "_", channel.upper())


def read_channels(environ=None):
    """Returns {channel name: folder} from SM_CHANNELS and SM_CHANNEL_<NAME>.

    Without SM_CHANNELS, every SM_CHANNEL_<NAME> variable is a channel named <name> in lower
    case. A channel listed in SM_CHANNELS without its variable is $SM_INPUT_DIR/data/<name>.
    """
    env = os.environ if environ is None else environ
    channels = {}
    if "SM_CHANNELS" in env:
        try:
            names = json.loads(env["SM_CHANNELS"])
        except ValueError:
            raise UsageError(f"SM_CHANNELS is not a JSON list: {env['SM_CHANNELS']!r}") from None
        if not isinstance(names, list):
            raise UsageError(f"SM_CHANNELS is not a JSON list: {env['SM_CHANNELS']!r}")
        for name in names:
            var = channel_env_name(str(name))
            if var in env:
                channels[str(name)] = env[var]
            elif "SM_INPUT_DIR" in env:
                channels[str(name)] = os.path.join(env["SM_INPUT_DIR"], "data", str(name))
            else:
                raise UsageError(f"channel {name!r} is in SM_CHANNELS but {var} is not set")
    else:
        for var, value in env.items():
            if var.startswith("SM_CHANNEL_") and var != "SM_CHANNELS":
                channels[var[len("SM_CHANNEL_"):].lower()] = value
    return channels


def _config_dir(env):
    if env.get("SM_INPUT_CONFIG_DIR"):
        return env["SM_INPUT_CONFIG_DIR"]
    if env.get("SM_INPUT_DIR"):
        return os.path.join(env["SM_INPUT_DIR"], "config")
    if env.get("FERRY_WORKDIR"):
        return os.path.join(env["FERRY_WORKDIR"], "input", "config")
    return None


def _as_string(value):
    if isinstance(value, str):
        return value
    return json.dumps(value)  # true -> "true", 3 -> "3", as ferry writes hyperparameters.json


def read_hyperparameters(environ=None):
    """Returns the run's Hyperparameters.

    Strings: SM_HPS (a JSON object) when set, else <config>/hyperparameters.json, else none;
    non-string values are turned into their JSON text. Typed values: the file FERRY_PARAMS
    names, else <config>/params.json, else none. <config> is SM_INPUT_CONFIG_DIR, else
    $SM_INPUT_DIR/config, else $FERRY_WORKDIR/input/config.
    """
    env = os.environ if environ is None else environ
    config = _config_dir(env)
    strings = {}
    if env.get("SM_HPS"):
        try:
            strings = json.loads(env["SM_HPS"])
        except ValueError:
            raise UsageError(f"SM_HPS is not a JSON object: {env['SM_HPS'][:200]!r}") from None
    elif config and os.path.isfile(os.path.join(config, "hyperparameters.json")):
        with open(os.path.join(config, "hyperparameters.json"), encoding="utf-8") as f:
            strings = json.load(f)
    if not isinstance(strings, dict):
        raise UsageError("the hyperparameters are not a JSON object")
    typed = {}
    params_path = env.get("FERRY_PARAMS") or (config and os.path.join(config, "params.json"))
    if params_path and os.path.isfile(params_path):
        with open(params_path, encoding="utf-8") as f:
            typed = json.load(f)
        if not isinstance(typed, dict):
            raise UsageError(f"{params_path} is not a JSON object")
    return Hyperparameters({str(k): _as_string(v) for k, v in strings.items()}, typed)


def write_failure(message, environ=None):
    """Writes `message` to $SM_OUTPUT_DIR/failure (the contract's reason for a failure); does
    nothing when SM_OUTPUT_DIR is not set."""
    env = os.environ if environ is None else environ
    out = env.get("SM_OUTPUT_DIR")
    if not out:
        return
    try:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "failure"), "w", encoding="utf-8") as f:
            f.write(message.strip() + "\n")
    except OSError as e:
        print(f"ferry_model: cannot write {out}/failure: {e}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# train


def train(cls, module_label, model_dir=None, extra_channels=None):
    """Runs load_data, train and save for `cls`, then writes ferry_model.json.

    Exceptions propagate; `run` turns them into the failure file and exit code 1.
    """
    model_dir = model_dir or os.environ.get("SM_MODEL_DIR")
    if not model_dir:
        raise UsageError("no model folder: SM_MODEL_DIR is not set (run under ferry, or pass "
                         "--model-dir DIR)")
    os.makedirs(model_dir, exist_ok=True)
    channels = read_channels()
    channels.update(extra_channels or {})
    hps = read_hyperparameters()
    start = time.monotonic()
    model = cls()
    data = model.load_data(channels)
    model.train(data, hps)
    model.save(model_dir)
    meta = {
        "module": module_label,
        "class": cls.__qualname__,
        "python": platform.python_version(),
        "trained_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(model_dir, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    rows = getattr(data, "rows", None)
    what = f" on {len(rows)} rows" if isinstance(rows, list) else ""
    print(f"ferry_model: trained {cls.__name__}{what} in {time.monotonic() - start:.2f}s; "
          f"model in {model_dir}", flush=True)


def _parse_channel(text):
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, folder


def _parser(with_module):
    p = argparse.ArgumentParser(
        prog="python3 -m ferry_model" if with_module else os.path.basename(sys.argv[0]),
        description="Train, serve or batch-predict a ferry_model.Model "
                    "(docs/python-models.md).")
    sub = p.add_subparsers(dest="command", metavar="{train,serve,predict}")
    t = sub.add_parser("train", help="load_data, train and save, under the runner contract")
    if with_module:
        t.add_argument("module", metavar="MODULE[:CLASS]", help="models/churn.py or pkg.mod")
    t.add_argument("--model-dir", help="where to save (default: $SM_MODEL_DIR)")
    t.add_argument("--channel", action="append", type=_parse_channel, default=[],
                   metavar="NAME=DIR", help="an input channel (adds to SM_CHANNEL_*)")
    s = sub.add_parser("serve", help="serve GET /ping and POST /invocations over HTTP")
    if with_module:
        s.add_argument("module", nargs="?", metavar="MODULE[:CLASS]",
                       help="default: the module and class recorded in MODEL_DIR/ferry_model.json")
    s.add_argument("--model-dir", help="the trained model (default: $SM_MODEL_DIR)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=None,
                   help="port (default: $PORT, else 8080; 0 picks a free one)")
    s.add_argument("--max-body-bytes", type=int, default=6 * 1024 * 1024,
                   help="larger request bodies get 413 (default: 6 MiB)")
    b = sub.add_parser("predict", help="predict a batch of rows offline; writes the document "
                       "POST /invocations would answer")
    if with_module:
        b.add_argument("module", nargs="?", metavar="MODULE[:CLASS]",
                       help="default: the module and class recorded in MODEL_DIR/ferry_model.json")
    b.add_argument("--model-dir", help="the trained model (default: $SM_MODEL_DIR)")
    b.add_argument("--input", required=True, metavar="PATH",
                   help="a dataset folder, a .csv or .csv.zst file, or a .json file holding "
                        "{\"instances\": [...]}")
    b.add_argument("--part", default=None,
                   help="the dataset folder's part to read (default: test, else the only part)")
    b.add_argument("--output", required=True, metavar="FILE.json",
                   help="where to write {\"predictions\": [...]} (replaced atomically)")
    return p


def run(argv=None, cls=None):
    """Runs the command line `argv` (default sys.argv[1:]); returns the exit code.

    With `cls` (ferry_model.main), the model class is given and no MODULE argument is taken.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("train", "serve", "predict", "-h", "--help"):
        if os.environ.get("SM_MODEL_DIR"):
            argv.insert(0, "train")
        else:
            _parser(cls is None).print_usage(sys.stderr)
            print("error: say train, serve or predict (train is the default only when "
                  "SM_MODEL_DIR is set)", file=sys.stderr)
            return 2
    args = _parser(cls is None).parse_args(argv)
    if args.command == "serve":
        return _serve(args, cls)
    if args.command == "predict":
        return _predict(args, cls)
    try:
        if cls is None:
            cls, label = load_class(args.module)
        else:
            label = _module_label(sys.modules[cls.__module__])
        train(cls, label, args.model_dir, dict(args.channel))
        return 0
    except UsageError as e:
        print(f"ferry_model: {e}", file=sys.stderr)
        write_failure(str(e))
        return 1
    except Exception as e:  # a user's model: report any failure under the contract
        traceback.print_exc()
        sys.stderr.flush()
        write_failure(traceback.format_exception_only(type(e), e)[-1])
        return 1


def _trained_model(args, cls):
    """Returns (model folder, model class) for serve and predict: --model-dir, else
    $SM_MODEL_DIR; the class given, else MODULE, else the one MODEL_DIR/ferry_model.json names.
    Raises UsageError."""
    model_dir = args.model_dir or os.environ.get("SM_MODEL_DIR")
    if not model_dir:
        raise UsageError("no model folder: pass --model-dir DIR (or set SM_MODEL_DIR)")
    if not os.path.isdir(model_dir):
        raise UsageError(f"no such model folder: {model_dir}")
    if cls is None:
        spec = getattr(args, "module", None)
        if not spec:
            meta_path = os.path.join(model_dir, METADATA_FILE)
            if not os.path.isfile(meta_path):
                raise UsageError(f"no MODULE given and no {meta_path}: name the model's "
                                 "module (models/churn.py:Churn)")
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
            spec = f"{meta['module']}:{meta['class']}"
        cls, _ = load_class(spec)
    return model_dir, cls


def _serve(args, cls):
    from . import server

    try:
        model_dir, cls = _trained_model(args, cls)
        port = args.port
        if port is None:
            port = int(os.environ.get("PORT") or 8080)
    except UsageError as e:
        print(f"ferry_model: {e}", file=sys.stderr)
        return 1
    return server.serve(cls, model_dir, host=args.host, port=port,
                        max_body_bytes=args.max_body_bytes)


# ---------------------------------------------------------------------------------------------
# predict

_CSV_SUFFIXES = (".csv.zst", ".csv")  # in order of preference for one part


def _folder_parts(folder):
    """Returns ({part: file path}, manifest path or None) for a dataset folder: the manifest's
    parts, or, without manifest.json, its <part>.csv.zst / <part>.csv files."""
    manifest_path = os.path.join(folder, "manifest.json")
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError) as e:
            raise PredictError(f"cannot read {manifest_path}: {e}") from None
        parts = manifest.get("parts") if isinstance(manifest, dict) else None
        if not isinstance(parts, dict):
            raise PredictError(f"{manifest_path}: no \"parts\" object")
        return {name: os.path.join(folder, str((p or {}).get("file", "")))
                for name, p in parts.items()}, manifest_path
    parts = {}
    for suffix in _CSV_SUFFIXES:
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(suffix) and len(name) > len(suffix) and os.path.isfile(path):
                parts.setdefault(name[:-len(suffix)], path)
    return parts, None


def _csv_instances(path, text):
    from . import server

    try:
        return server.parse_instances(text.encode("utf-8"), "text/csv")
    except server.RequestError as e:
        raise PredictError(f"{path}: {e.message}") from None


def read_instances(path, part=None):
    """Returns (rows, source): the rows to predict, a non-empty list of dicts, read from `path`,
    and a description of what was read, for messages.

    `path` is one of:
      a dataset folder: the part `part`; when `part` is None, "test", else the folder's only
        part. With manifest.json the values are typed by its columns, as read_dataset types
        them; without one the part is the file <part>.csv.zst or <part>.csv.
      a .csv or .csv.zst file.
      a .json file: {"instances": [...]} or a list of row objects, as POST /invocations takes.
    CSV values without a manifest are typed as a text/csv body of POST /invocations is: empty
    -> None, an integer -> int, a number -> float, true/false (any case) -> bool, else the text.
    Raises PredictError naming the file and what is wrong.
    """
    from . import server

    if not os.path.exists(path):
        raise PredictError(f"no such input: {path} (expected a dataset folder, a .csv or "
                           ".csv.zst file, or a .json file)")
    try:
        if os.path.isdir(path):
            parts, manifest_path = _folder_parts(path)
            if not parts:
                raise PredictError(f"{path}: not a dataset folder (no manifest.json, and no "
                                   ".csv or .csv.zst file)")
            wanted = part or "test"
            if wanted in parts:
                chosen = wanted
            elif part is None and len(parts) == 1:
                chosen = next(iter(parts))
            else:
                raise PredictError(f"{manifest_path or path}: no part {wanted!r} (parts: "
                                   f"{', '.join(sorted(parts))}); pass --part with one of them")
            source = f"part {chosen!r} of {path}"
            if manifest_path:  # typed by the manifest's columns
                rows = read_dataset(path, chosen).rows
            else:
                rows = _csv_instances(parts[chosen], read_text(parts[chosen]))
            if not rows:
                raise PredictError(f"{parts[chosen]}: no rows to predict")
            return rows, source
        if part is not None:
            raise PredictError(f"--part {part} applies to a dataset folder, and {path} is a "
                               "file: drop --part")
        if path.endswith(_CSV_SUFFIXES):
            return _csv_instances(path, read_text(path)), path
        if path.endswith(".json"):
            with open(path, "rb") as f:
                body = f.read()
            try:
                return server.parse_instances(body, "application/json"), path
            except server.RequestError as e:
                raise PredictError(f"{path}: {e.message}") from None
        raise PredictError(f"{path}: expected a dataset folder, a .csv or .csv.zst file, or a "
                           ".json file of {\"instances\": [...]}")
    except (OSError, ValueError, RuntimeError) as e:
        # An unreadable file, a value that does not convert, no zstd: the messages name the file.
        raise PredictError(str(e)) from None


def write_atomically(path, data):
    """Writes the bytes `data` to `path` through a temporary file in its folder and a rename,
    so that a reader sees the old file or the whole new one. Creates the folder. Raises
    PredictError."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except OSError as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        raise PredictError(f"cannot write {path}: {e.strerror or e}") from None


def _rows(count):
    return f"{count} row" if count == 1 else f"{count} rows"


def predict(cls, model_dir, input_path, output_path, part=None):
    """Loads `cls` from `model_dir` (cls(), then load), predicts the rows of `input_path` (see
    read_instances) in one call of predict, and writes the document POST /invocations answers
    for those rows, {"predictions": [...]}, to `output_path` (atomically). Returns the row
    count. Raises PredictError; the output file is not written then.
    """
    from . import server

    rows, source = read_instances(input_path, part)
    try:
        model = server.load_model(cls, model_dir)
    except Exception as e:  # the user's __init__ or load
        traceback.print_exc()
        raise PredictError(f"cannot load {cls.__name__} from {model_dir}: "
                           f"{traceback.format_exception_only(type(e), e)[-1].strip()}") from None
    try:
        body = server.invoke(model, rows)
    except server.RequestError as e:
        raise PredictError(f"{cls.__name__}.predict on {_rows(len(rows))} of {source}: "
                           f"{e.message}") from None
    write_atomically(output_path, body)
    return len(rows)


def _predict(args, cls):
    try:
        model_dir, cls = _trained_model(args, cls)
        start = time.monotonic()
        count = predict(cls, model_dir, args.input, args.output, args.part)
    except (UsageError, PredictError) as e:
        sys.stderr.flush()
        print(f"ferry_model: {e}", file=sys.stderr, flush=True)
        write_failure(str(e))
        return 1
    except Exception as e:  # anything else, e.g. importing the user's module
        traceback.print_exc()
        line = traceback.format_exception_only(type(e), e)[-1].strip()
        print(f"ferry_model: {line}", file=sys.stderr, flush=True)
        write_failure(line)
        return 1
    print(f"ferry_model: predicted {_rows(count)} with {cls.__name__} in "
          f"{time.monotonic() - start:.2f}s; wrote {args.output}", flush=True)
    return 0


def main(model_class=None, argv=None):
    """Entry point of a model script: `if __name__ == "__main__": ferry_model.main(Churn)`.

    Runs `train`, `serve` or `predict` for `model_class` per the command line, then exits the
    process with the command's exit code. Without `model_class` (`python3 -m ferry_model`) the
    first argument after the subcommand names the module.
    """
    if model_class is not None and not (inspect.isclass(model_class)
                                        and issubclass(model_class, Model)):
        raise TypeError("ferry_model.main expects a subclass of ferry_model.Model")
    sys.exit(run(argv, model_class))
