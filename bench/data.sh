#!/usr/bin/env bash
# CSV read + profile: ferry's reader and profiler against pandas on the same numeric CSV.
#
#   bench/data.sh                       # ROWS=1000000 rows x 20 columns, REPEAT=3 runs of each
#   ROWS=200000 REPEAT=5 bench/data.sh  # smaller / more runs
#
# The CSV is generated with a fixed seed (python3 stdlib): 20 float columns with 1 to 4 decimals.
# ferry: `data_bench <csv>` reads it into a Table and computes the profile (20-bin histograms,
# quantiles, mean/std/min/max per column). pandas: pd.read_csv + df.describe() with the same
# quantiles + a 20-bin numpy.histogram of every column. Timing is wall clock of the whole process
# (start-up included), by hyperfine. Prints a table and writes bench/results/data.json (schema:
# bench/README.md). Exits 0 when the target is missed (it is reported), non-zero when a tool fails
# or is missing.
set -euo pipefail

ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-3}
COLUMNS=20

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
DATA_BENCH=${DATA_BENCH:-$root/build/src/ferry/data/data_bench}
OUT=${OUT:-$here/results/data.json}

die() { echo "bench/data.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge 1 ]] || die "ROWS must be a positive integer (got '$ROWS')"
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 ]] || die "REPEAT must be an integer >= 1 (got '$REPEAT')"
[[ -x "$DATA_BENCH" ]] || die "no data_bench at $DATA_BENCH; run \`ninja -C build data_bench\` (or set DATA_BENCH=...)"
DATA_BENCH=$(cd "$(dirname "$DATA_BENCH")" && pwd)/$(basename "$DATA_BENCH")
command -v hyperfine >/dev/null || die "hyperfine is not installed; run \`scripts/install-deps.sh --bench\`"
# pandas and numpy come from the system packages (python3-pandas): use an interpreter that has them.
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import pandas, numpy' 2>/dev/null; then
      PYTHON=$(command -v "$p")
      break
    fi
  done
fi
[[ -n "$PYTHON" ]] || die "no python3 with pandas and numpy; install python3-pandas (or set PYTHON=...)"

build_type=unknown
cache=$(dirname "$DATA_BENCH")/../../../CMakeCache.txt
if [[ -f "$cache" ]]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")
  build_type=${build_type:-none}
fi
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) say "warning: data_bench build type is '$build_type', not Release/RelWithDebInfo: do not commit these figures" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-data.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/timings" "$work/logs" "$work/bin"
# A private copy of the binary: a rebuild during the bench cannot mix two versions in one table.
cp "$DATA_BENCH" "$work/bin/data_bench"
bench_src=$(realpath --relative-to="$root" "$DATA_BENCH")  # no machine paths in the results
bench_built=$(date -u -r "$bench_src" +%Y-%m-%dT%H:%M:%SZ)
ferry_commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# --- The data and the pandas program ---------------------------------------------------------
say "generating $ROWS rows x $COLUMNS columns (seed 20261127)"
"$PYTHON" - "$work/data.csv" "$ROWS" "$COLUMNS" <<'PY'
import random, sys
out, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20261127)
with open(out, "w") as f:
    f.write(",".join(f"c{j}" for j in range(cols)) + "\n")
    buf = []
    for _ in range(rows):
        # column j: a normal sample scaled by 10^(j % 4), written with 1 + j % 4 decimals
        buf.append(",".join(f"{rng.gauss(0, 1) * 10 ** (j % 4):.{1 + j % 4}f}" for j in range(cols)))
        if len(buf) == 10000:
            f.write("\n".join(buf) + "\n")
            buf = []
    if buf:
        f.write("\n".join(buf) + "\n")
PY

cat >"$work/pandas_profile.py" <<'PY'
import sys
import numpy as np
import pandas as pd

df = pd.read_csv(sys.argv[1])
desc = df.describe(percentiles=[0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
hist = {c: np.histogram(df[c].dropna().to_numpy(), bins=20) for c in df.columns}
print(f"rows={len(df)} columns={len(df.columns)} described={desc.shape[1]} histograms={len(hist)}")
PY

# --- Timing ----------------------------------------------------------------------------------
# measure KEY CMD: REPEAT timed runs of CMD (one untimed warm-up, so the CSV is in the page cache
# for both tools).
measure() {
  local key=$1 cmd=$2
  say "  $key: $REPEAT run(s) of \`$cmd\`"
  if ! hyperfine -N --style basic --warmup 1 --runs "$REPEAT" \
         --output "$work/logs/$key.out" --export-json "$work/timings/$key.json" "$cmd" \
         >"$work/logs/$key.hyperfine" 2>&1; then
    cat "$work/logs/$key.hyperfine" >&2
    [[ -f "$work/logs/$key.out" ]] && tail -n 30 "$work/logs/$key.out" >&2
    die "$key failed (output above)"
  fi
}

# Both must agree on the shape of what they read.
ferry_line=$("$work/bin/data_bench" "$work/data.csv") || die "data_bench failed"
pandas_line=$("$PYTHON" "$work/pandas_profile.py" "$work/data.csv") || die "the pandas script failed"
[[ "$ferry_line" == "rows=$ROWS columns=$COLUMNS "* ]] || die "data_bench read something else: $ferry_line"
[[ "$pandas_line" == "rows=$ROWS columns=$COLUMNS "* ]] || die "pandas read something else: $pandas_line"

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
say "timing (load average $load_before)"
measure ferry "$work/bin/data_bench $work/data.csv"
measure pandas "$PYTHON $work/pandas_profile.py $work/data.csv"
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

"$PYTHON" - "$work" "$ROWS" "$COLUMNS" "$REPEAT" "$OUT" "$build_type" "$work/bin/data_bench" "$root" \
  "$load_before" "$load_after" "$bench_src" "$bench_built" "$ferry_commit" "$ferry_line" \
  "$(stat -c %s "$work/data.csv")" <<'PY'
import datetime, hashlib, json, os, platform, statistics, subprocess, sys

work, rows, cols, repeat, out, build_type, binary, root, load_before, load_after, bench_src, \
    bench_built, ferry_commit, ferry_line, csv_bytes = sys.argv[1:16]
rows, cols, repeat, csv_bytes = int(rows), int(cols), int(repeat), int(csv_bytes)

def times(key):
    with open(f"{work}/timings/{key}.json") as f:
        return json.load(f)["results"][0]["times"]

def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=root).stdout.strip().splitlines()[0]
    except Exception:
        return "unknown"

runs = {t: times(t) for t in ("ferry", "pandas")}

def cpu_time(key):
    # hyperfine's mean user + system time: CPU consumed, less sensitive to other work than wall
    with open(f"{work}/timings/{key}.json") as f:
        r = json.load(f)["results"][0]
    return r["user"] + r["system"]

cpu_s = {t: cpu_time(t) for t in ("ferry", "pandas")}
wall = {t: statistics.median(v) for t, v in runs.items()}
speedup = wall["pandas"] / wall["ferry"]
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
import pandas, numpy
result = {
    "bench": "data",
    "rows": rows,
    "columns": cols,
    "csv_bytes": csv_bytes,
    "repeat": repeat,
    "statistic": "median",
    "wall_s": wall,
    "speedup": {"vs_pandas": speedup},
    "cpu_s": cpu_s,
    "target": "speedup >= 4",
    "target_met": speedup >= 4,
    "runs_s": runs,
    "ferry_phases_s": {k: float(v) for k, v in (kv.split("=") for kv in ferry_line.split())
                       if k.endswith("_s")},
    "ferry_build_type": build_type,
    "ferry_binary": {
        "path": bench_src,
        "sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest()[:16],
        "built": bench_built,
    },
    "versions": {
        "ferry_commit": ferry_commit,
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "hyperfine": first_line(["hyperfine", "--version"]),
    },
    "machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_before": load_before, "loadavg_after": load_after},
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)

print(f"\nCSV read + profile: {rows} rows x {cols} float columns ({csv_bytes / 1e6:.0f} MB), "
      f"median of {repeat} run(s); data_bench {build_type}, {os.cpu_count()} cores\n")
print(f"  {'tool':<34} {'wall s':>8}  {'speedup':>8}")
print(f"  {'ferry (data_bench)':<34} {wall['ferry']:>8.3f}")
print(f"  {'pandas read_csv+describe+histogram':<34} {wall['pandas']:>8.3f}  {speedup:>7.2f}x  "
      f"target ferry >= 4x faster: {'met' if speedup >= 4 else 'MISSED'}")
print(f"  CPU time (user + system, mean): ferry {cpu_s['ferry']:.3f} s, pandas {cpu_s['pandas']:.3f} s")
print(f"  ferry phases of one run: {ferry_line}")
try:
    busy = float(load_before.split()[0]) > 0.5 * os.cpu_count()
except ValueError:
    busy = False
if busy:
    print(f"  warning: load average was {load_before} before the bench ({os.cpu_count()} cores): "
          "other work competed for the CPUs, the figures are noisy")
print(f"\nwrote {os.path.relpath(out, root) if out.startswith(root) else out}")
PY
