#!/usr/bin/env bash
# Training end to end: ferry's built-in logistic_regression and xgboost against scikit-learn's
# LogisticRegression and Python's xgboost.XGBClassifier, on the same CSV and the same test rows.
#
#   bench/train.sh                       # ROWS=1000000 rows x 20 features, REPEAT=3 runs of each
#   ROWS=200000 REPEAT=5 bench/train.sh  # smaller / more runs
#
# The data (fixed seed, numpy): 20 standard-normal features, x15..x19 partly linear mixtures of
# x0..x4; the label is drawn from the sigmoid of a linear function of x0..x9 plus a few
# non-linear terms (x0*x1, x2^2, sin 2*x3, |x4|), so logistic regression reaches an AUC of about
# 0.96 and boosted trees a little more. Features are written with 4 decimals; then the label y
# (0/1) and is_test (0/1, a fixed-seed 20% of the rows).
#
# The split: every program splits the rows by the is_test column (ferry: train_bench
# --test-column is_test; Python: a boolean mask) and drops it before fitting. So the four
# programs score exactly the same test rows and their AUCs can be compared to the 4th decimal —
# reproducing ferry's shuffle (transform.h's split op) in Python would be possible but would
# make the comparison depend on two implementations of one algorithm.
#
# What is timed, each program as a whole process (start-up and imports included) by hyperfine:
#   ferry_logreg    train_bench --model logistic_regression    (read CSV, split, fit, predict, AUC)
#   sklearn_logreg  bench/train_sklearn.py: pandas.read_csv, LogisticRegression(lbfgs, C=1,
#                   max_iter=100), roc_auc_score/log_loss
#   ferry_xgboost   train_bench --model xgboost --hyperparameters '{"n_estimators":100,
#                   "max_depth":6,"tree_method":"hist"}'       (learning_rate 0.3, its default)
#   python_xgboost  bench/train_xgboost.py: XGBClassifier(n_estimators=100, max_depth=6,
#                   tree_method="hist", learning_rate=0.3)
# Both xgboost sides use every core (XGBoost's default) and the same libxgboost (Debian's).
# Prints a table and writes bench/results/train.json (schema: bench/README.md). Exits 0 when a
# target is missed (it is reported), non-zero when a tool fails or is missing.
set -euo pipefail

ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-3}
FEATURES=20

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
TRAIN_BENCH=${TRAIN_BENCH:-$root/build/src/ferry/model/train_bench}
OUT=${OUT:-$here/results/train.json}

die() { echo "bench/train.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge 100 ]] || die "ROWS must be an integer >= 100 (got '$ROWS')"
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 ]] || die "REPEAT must be an integer >= 1 (got '$REPEAT')"
[[ -x "$TRAIN_BENCH" ]] || die "no train_bench at $TRAIN_BENCH; run \`ninja -C build train_bench\` (or set TRAIN_BENCH=...)"
TRAIN_BENCH=$(cd "$(dirname "$TRAIN_BENCH")" && pwd)/$(basename "$TRAIN_BENCH")
command -v hyperfine >/dev/null || die "hyperfine is not installed; run \`scripts/install-deps.sh --bench\`"
# numpy, pandas, scikit-learn and xgboost come from the system packages (python3-sklearn,
# python3-xgboost): use an interpreter that has them all.
PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
  for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import numpy, pandas, sklearn, xgboost' 2>/dev/null; then
      PYTHON=$(command -v "$p")
      break
    fi
  done
fi
[[ -n "$PYTHON" ]] || die "no python3 with numpy, pandas, scikit-learn and xgboost; install python3-sklearn and python3-xgboost (or set PYTHON=...)"
"$PYTHON" -c 'import numpy, pandas, sklearn, xgboost' 2>/dev/null ||
  die "PYTHON=$PYTHON cannot import numpy, pandas, sklearn and xgboost; install python3-sklearn and python3-xgboost"

build_type=unknown
cache=$(dirname "$TRAIN_BENCH")/../../../CMakeCache.txt
if [[ -f "$cache" ]]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")
  build_type=${build_type:-none}
fi
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) say "warning: train_bench build type is '$build_type', not Release/RelWithDebInfo: do not commit these figures" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-train.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/timings" "$work/logs" "$work/bin"
# Private copies: a rebuild or an edit during the bench cannot mix two versions in one table.
cp "$TRAIN_BENCH" "$work/bin/train_bench"
cp "$here/train_common.py" "$here/train_sklearn.py" "$here/train_xgboost.py" "$work/bin/"
bench_src=$TRAIN_BENCH
bench_built=$(date -u -r "$bench_src" +%Y-%m-%dT%H:%M:%SZ)
ferry_commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

# --- The data ----------------------------------------------------------------------------------
say "generating $ROWS rows x $FEATURES features + y + is_test (seed 7)"
"$PYTHON" - "$work/data.csv" "$ROWS" "$FEATURES" <<'PY'
import sys
import numpy as np

out, rows, features = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(7)
x = rng.standard_normal((rows, features))
# x15..x19: half a linear mixture of x0..x4, half their own noise (correlated, uninformative
# beyond x0..x4), as make_classification's redundant features.
x[:, 15:20] = 0.5 * (x[:, 0:5] @ rng.standard_normal((5, 5))) + 0.5 * x[:, 15:20]
w = np.array([1.0, -0.8, 0.7, 0.6, -0.5, 0.5, 0.4, -0.4, 0.3, 0.3])
nonlinear = (0.8 * x[:, 0] * x[:, 1] + 0.6 * (x[:, 2] ** 2 - 1) + 0.8 * np.sin(2 * x[:, 3])
             + 0.5 * np.abs(x[:, 4]) - 0.4)
z = 3.4 * (x[:, :10] @ w + 0.4 * nonlinear)
y = (rng.random(rows) < 1 / (1 + np.exp(-z))).astype(np.int64)
is_test = (rng.random(rows) < 0.2).astype(np.int64)
with open(out, "w") as f:
    f.write(",".join([f"x{j}" for j in range(features)] + ["y", "is_test"]) + "\n")
    fmt = ",".join(["%.4f"] * features + ["%d", "%d"])
    for begin in range(0, rows, 100000):
        end = min(rows, begin + 100000)
        block = np.column_stack([x[begin:end], y[begin:end], is_test[begin:end]])
        f.write("\n".join(fmt % tuple(r) for r in block.tolist()) + "\n")
PY
csv_bytes=$(stat -c %s "$work/data.csv")

# --- Timing ------------------------------------------------------------------------------------
xgb_hyper='{"n_estimators":100,"max_depth":6,"tree_method":"hist"}'
declare -A cmds=(
  [ferry_logreg]="$work/bin/train_bench --model logistic_regression --target y --test-column is_test --seed 7 $work/data.csv"
  [sklearn_logreg]="$PYTHON $work/bin/train_sklearn.py --target y --test-column is_test $work/data.csv"
  [ferry_xgboost]="$work/bin/train_bench --model xgboost --target y --test-column is_test --seed 7 --hyperparameters '$xgb_hyper' $work/data.csv"
  [python_xgboost]="$PYTHON $work/bin/train_xgboost.py --target y --test-column is_test $work/data.csv"
)
keys=(ferry_logreg sklearn_logreg ferry_xgboost python_xgboost)

# measure KEY: REPEAT timed runs of the KEY's command; the last run's JSON line is kept in
# logs/KEY.out. The CSV is read once first so that it is in the page cache for every program.
measure() {
  local key=$1 cmd=${cmds[$1]}
  say "  $key: $REPEAT run(s) of \`$cmd\`"
  cat "$work/data.csv" >/dev/null
  if ! hyperfine -N --style basic --runs "$REPEAT" \
         --output "$work/logs/$key.out" --export-json "$work/timings/$key.json" "$cmd" \
         >"$work/logs/$key.hyperfine" 2>&1; then
    cat "$work/logs/$key.hyperfine" >&2
    [[ -f "$work/logs/$key.out" ]] && tail -n 30 "$work/logs/$key.out" >&2
    # hyperfine hides the program's stderr: run it once more to show why it failed.
    bash -c "$cmd" >/dev/null || true
    die "$key failed (output above)"
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
say "timing (load average $load_before)"
for key in "${keys[@]}"; do measure "$key"; done
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

"$PYTHON" - "$work" "$ROWS" "$FEATURES" "$REPEAT" "$OUT" "$build_type" "$work/bin/train_bench" \
  "$root" "$load_before" "$load_after" "$bench_src" "$bench_built" "$ferry_commit" "$csv_bytes" \
  "$xgb_hyper" <<'PY'
import datetime, hashlib, json, os, platform, statistics, subprocess, sys

work, rows, features, repeat, out, build_type, binary, root, load_before, load_after, bench_src, \
    bench_built, ferry_commit, csv_bytes, xgb_hyper = sys.argv[1:16]
rows, features, repeat, csv_bytes = int(rows), int(features), int(repeat), int(csv_bytes)
keys = ["ferry_logreg", "sklearn_logreg", "ferry_xgboost", "python_xgboost"]

def die(msg):
    print(f"bench/train.sh: {msg}", file=sys.stderr)
    sys.exit(2)

def hyperfine_result(key):
    with open(f"{work}/timings/{key}.json") as f:
        return json.load(f)["results"][0]

def last_line(key):
    with open(f"{work}/logs/{key}.out") as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    if not lines:
        die(f"{key} printed no JSON line (logs/{key}.out)")
    return json.loads(lines[-1])

def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=root).stdout.strip().splitlines()[0]
    except Exception:
        return "unknown"

lines = {k: last_line(k) for k in keys}
# The four programs must have read the same rows and scored the same test rows.
for k in keys:
    if lines[k]["rows"] != rows:
        die(f"{k} read {lines[k]['rows']} rows, not {rows}")
    for part in ("train_rows", "test_rows"):
        if lines[k][part] != lines["ferry_logreg"][part]:
            die(f"{k} has {lines[k][part]} {part}, ferry_logreg {lines['ferry_logreg'][part]}")

runs = {k: hyperfine_result(k)["times"] for k in keys}
wall = {k: statistics.median(v) for k, v in runs.items()}
cpu_s = {k: hyperfine_result(k)["user"] + hyperfine_result(k)["system"] for k in keys}
auc = {k: lines[k]["auc"] for k in keys}
log_loss = {k: lines[k]["log_loss"] for k in keys}
speedup = {"vs_sklearn_logreg": wall["sklearn_logreg"] / wall["ferry_logreg"],
           "vs_python_xgboost": wall["python_xgboost"] / wall["ferry_xgboost"]}
auc_diff = {"logreg": abs(auc["ferry_logreg"] - auc["sklearn_logreg"]),
            "xgboost": abs(auc["ferry_xgboost"] - auc["python_xgboost"])}
targets = {"vs_sklearn_logreg": 2.0, "vs_python_xgboost": 1.3,
           "auc_diff_logreg": 0.002, "auc_diff_xgboost": 0.00005}
met = {"vs_sklearn_logreg": speedup["vs_sklearn_logreg"] >= targets["vs_sklearn_logreg"],
       "vs_python_xgboost": speedup["vs_python_xgboost"] >= targets["vs_python_xgboost"],
       "auc_diff_logreg": auc_diff["logreg"] <= targets["auc_diff_logreg"],
       "auc_diff_xgboost": auc_diff["xgboost"] <= targets["auc_diff_xgboost"]}
phases = {k: {p: v for p, v in lines[k].items() if p.endswith("_seconds")} for k in keys}

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
import numpy, pandas, sklearn, xgboost
result = {
    "bench": "train",
    "rows": rows,
    "features": features,
    "train_rows": lines["ferry_logreg"]["train_rows"],
    "test_rows": lines["ferry_logreg"]["test_rows"],
    "csv_bytes": csv_bytes,
    "repeat": repeat,
    "statistic": "median",
    "xgboost_hyperparameters": json.loads(xgb_hyper) | {"learning_rate": 0.3},
    "wall_s": wall,
    "speedup": speedup,
    "auc": auc,
    "auc_diff": auc_diff,
    "log_loss": log_loss,
    "targets": targets,
    "targets_met": met,
    "cpu_s": cpu_s,
    "runs_s": runs,
    "phases_s": phases,
    "ferry_build_type": build_type,
    "ferry_binary": {
        # relative to the repository when inside it: the result file names no machine's folders
        "path": os.path.relpath(bench_src, root) if bench_src.startswith(root + "/") else bench_src,
        "sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest()[:16],
        "built": bench_built,
    },
    "versions": {
        "ferry_commit": ferry_commit,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "sklearn": sklearn.__version__,
        "xgboost_python": xgboost.__version__,
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

names = {"ferry_logreg": "ferry logistic_regression", "sklearn_logreg": "sklearn LogisticRegression",
         "ferry_xgboost": "ferry xgboost", "python_xgboost": "Python XGBClassifier"}
print(f"\nTraining end to end: {rows} rows x {features} features ({csv_bytes / 1e6:.0f} MB CSV), "
      f"{result['train_rows']} train / {result['test_rows']} test rows, median of {repeat} run(s); "
      f"train_bench {build_type}, {os.cpu_count()} cores\n")
print(f"  {'program':<28} {'wall s':>8} {'cpu s':>8} {'read':>7} {'fit':>7} {'predict':>7} "
      f"{'AUC':>8} {'log loss':>9}")
for k in keys:
    ph = phases[k]
    print(f"  {names[k]:<28} {wall[k]:>8.3f} {cpu_s[k]:>8.3f} {ph['read_seconds']:>7.3f} "
          f"{ph['fit_seconds']:>7.3f} {ph['predict_seconds']:>7.3f} {auc[k]:>8.4f} {log_loss[k]:>9.4f}")
print()
def verdict(ok):
    return "met" if ok else "MISSED"
print(f"  logistic regression: ferry {speedup['vs_sklearn_logreg']:.2f}x faster "
      f"(target >= 2x: {verdict(met['vs_sklearn_logreg'])}), AUC differs by {auc_diff['logreg']:.5f} "
      f"(target <= 0.002: {verdict(met['auc_diff_logreg'])})")
print(f"  xgboost:             ferry {speedup['vs_python_xgboost']:.2f}x faster "
      f"(target >= 1.3x: {verdict(met['vs_python_xgboost'])}), AUC differs by {auc_diff['xgboost']:.6f} "
      f"(target <= 0.00005: {verdict(met['auc_diff_xgboost'])})")
print("  read/fit/predict: each program's own clock, last timed run; the Python scripts' imports "
      "take " + ", ".join(f"{phases[k]['import_seconds']:.2f} s ({k})" for k in keys
                          if "import_seconds" in phases[k]))
try:
    busy = float(load_before.split()[0]) > 0.5 * os.cpu_count()
except ValueError:
    busy = False
if busy:
    print(f"  warning: load average was {load_before} before the bench ({os.cpu_count()} cores): "
          "other work competed for the CPUs, the figures are noisy")
print(f"\nwrote {os.path.relpath(out, root) if out.startswith(root) else out}")
PY
