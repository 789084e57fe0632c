"""Reading ferry dataset folders: manifest.json plus zstd-compressed CSV parts (stdlib only).

A dataset folder (a dataset version in the lake, or an upstream task's output/data/ seen as an
input channel) holds `manifest.json` and either `data.csv.zst` or, for a transform that splits,
`train.csv.zst` and `test.csv.zst`. The manifest's `parts` names the files and its `columns`
gives each column's type, which `read_dataset` uses to type the values.

Example:
    ds = read_dataset(os.environ["SM_CHANNEL_FEATURES"], part="train")
    print(len(ds.rows), ds.columns, ds.manifest["version"])
"""
import csv
import io
import json
import os
import subprocess
from dataclasses import dataclass, field

# Files tried, in order, when a folder has no manifest.json (a plain `command` step's output).
_FALLBACK_FILES = ("train.csv.zst", "data.csv.zst", "train.csv", "data.csv")


@dataclass
class Dataset:
    """One part of a dataset folder, read into memory.

    rows: one dict per CSV row, column name -> value. With a manifest, values are typed by its
      `columns`: int64 -> int, float64 -> float, bool -> True/False, string and timestamp -> str
      (timestamps stay ISO-8601 text); an empty field is None. Without a manifest every value is
      the CSV text (str).
    manifest: the parsed manifest.json, or None when the folder has none.
    columns: the column names, in file order.
    part: "train", "test" or "data" (the manifest's part read), or the file name read when the
      folder has no manifest.
    path: the file read.
    """

    rows: list
    manifest: dict = None
    columns: list = field(default_factory=list)
    part: str = ""
    path: str = ""


def read_text(path):
    """Returns the text of a CSV file, decompressing `.zst` files.

    Uses the `zstandard` module when it is importable, else the `zstd` program (`zstd -dc`).
    Raises FileNotFoundError, or RuntimeError when zstd cannot decompress the file.
    """
    if not path.endswith(".zst"):
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    try:
        import zstandard
    except ImportError:
        zstandard = None
    if zstandard is not None:
        with open(path, "rb") as f:
            return zstandard.ZstdDecompressor().stream_reader(f).read().decode("utf-8")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    try:
        done = subprocess.run(["zstd", "-dc", "--", path], capture_output=True, check=False)
    except FileNotFoundError:
        raise RuntimeError(
            f"cannot read {path}: neither the python module 'zstandard' nor the 'zstd' program "
            "is installed (apt-get install python3-zstandard or zstd)") from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"zstd -dc {path} failed: {reason}")
    return done.stdout.decode("utf-8")


def _converter(type_name):
    def to_bool(s):
        low = s.lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
        raise ValueError(f"not a bool: {s!r}")

    return {"int64": int, "float64": float, "bool": to_bool}.get(type_name, str)


def read_csv(path, types=None):
    """Reads a CSV file (header line required; `.zst` decompressed) into a list of dicts.

    `types` maps column names to ferry column types (int64, float64, bool, string, timestamp);
    typed columns get converted values and None for an empty field. Columns not in `types` keep
    their text. Raises ValueError naming the line and column of a value that does not convert.
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: empty file, expected a header line")
    convs = [(_converter(types[c]) if types and c in types else None) for c in header]
    rows = []
    for line_no, record in enumerate(reader, start=2):
        if not record:
            continue
        if len(record) != len(header):
            raise ValueError(
                f"{path}:{line_no}: {len(record)} fields, the header has {len(header)}")
        row = {}
        for name, conv, value in zip(header, convs, record):
            if conv is None:
                row[name] = value
            elif value == "":
                row[name] = None
            else:
                try:
                    row[name] = conv(value)
                except ValueError:
                    raise ValueError(f"{path}:{line_no}: column {name!r}: cannot read {value!r} "
                                     f"as {types[name]}") from None
        rows.append(row)
    return rows, header


def read_dataset(folder, part="train"):
    """Reads one part of a dataset folder.

    With manifest.json: reads `part` when the manifest has it, else, for part "train", the part
    "data" (a dataset that was not split); values are typed by the manifest's columns.
    Without one: the first of train.csv.zst, data.csv.zst, train.csv, data.csv that exists,
    untyped.
    Raises FileNotFoundError naming the folder when nothing readable is there.
    """
    manifest_path = os.path.join(folder, "manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
        parts = manifest.get("parts") or {}
        chosen = part if part in parts else None
        if chosen is None and part == "train" and "data" in parts:
            chosen = "data"  # a dataset that was not split trains on all of it
        if chosen is None:
            wanted = f"{part!r} or 'data'" if part == "train" else repr(part)
            have = ", ".join(sorted(parts)) or "none"
            raise FileNotFoundError(f"{manifest_path}: no part {wanted} (parts: {have})")
        path = os.path.join(folder, parts[chosen]["file"])
        types = {c["name"]: c.get("type", "string") for c in manifest.get("columns", [])}
        rows, columns = read_csv(path, types)
        return Dataset(rows=rows, manifest=manifest, columns=columns, part=chosen, path=path)
    for name in _FALLBACK_FILES:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            rows, columns = read_csv(path)
            return Dataset(rows=rows, manifest=None, columns=columns, part=name, path=path)
    raise FileNotFoundError(f"{folder}: not a dataset folder (no manifest.json, and none of "
                            f"{', '.join(_FALLBACK_FILES)})")
