"""Helpers shared by the quick-start steps: the runner contract's paths and CSV I/O (stdlib only)."""
import csv
import io
import json
import os
import subprocess


def params():
    with open(os.environ["FERRY_PARAMS"]) as f:
        return json.load(f)


def channel(name):
    """The folder holding the output of upstream step `name` (SM_CHANNEL_<NAME>)."""
    return os.environ["SM_CHANNEL_" + name.upper()]


def output(filename):
    return os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], filename)


def read_csv(path):
    """Reads a CSV file; ferry's datasets are zstd-compressed (.csv.zst)."""
    if path.endswith(".zst"):
        try:
            import zstandard  # python3-zstandard
            with open(path, "rb") as f:
                text = zstandard.ZstdDecompressor().stream_reader(f).read().decode()
        except ImportError:
            text = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True,
                                  text=True).stdout
        return list(csv.DictReader(io.StringIO(text, newline="")))
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def fail(message):
    """Leave the reason where ferry shows it (output/failure) and exit non-zero."""
    with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
        f.write(message)
    raise SystemExit(1)
