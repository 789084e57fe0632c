#!/usr/bin/env bash
# Drift statistics: ferry's KS + PSI against scipy.stats.ks_2samp + a numpy PSI, on the same
# columns, in one run.
#
#   bench/drift.sh                         # ROWS=1000000 values per side x 20 columns, REPEAT=3
#   ROWS=200000 REPEAT=5 bench/drift.sh    # smaller / more runs
#   DRIFT_BENCH=build-release/src/ferry/data/drift_bench OUT=/tmp/d.json bench/drift.sh
#
# The data (numpy, seed 20261127), in a temp dir removed afterwards: 20 columns of ROWS reference
# and ROWS current float64 values, raw little-endian, column-major (ref.f64, cur.f64). Column j's
# reference is normal (j % 3 == 0), exponential (1) or uniform (2); its current window is the same
# distribution shifted by SHIFTS[j % 10] and, for j >= 10, scaled by 1 + 0.01 (j - 10): a mix of
# stable columns, slight drifts (p-values between 1e-2 and 1e-40) and major ones (p-value 0).
# The two programs compute, per column, the KS statistic and p-value and the PSI over 10 bins at
# the reference's deciles (numpy.quantile "linear", q = k/10; value v in bin #{edges <= v};
# proportions floored at 1e-4, not renormalised):
#   ferry  drift_bench ref.f64 cur.f64 20  (src/ferry/data/drift_bench.cc; one thread per core)
#   scipy  bench/drift_baseline.py ref.f64 cur.f64 20
# Both print their figures as JSON; the script fails unless every figure agrees within 1e-4
# (max_abs_diff over statistic, p-value and PSI of every column). Each whole command (start-up and
# reading the files included) is timed by hyperfine (one untimed warm-up, REPEAT runs, median).
# Target (issue 6): ferry >= 5x faster. A missed target is reported; the script still exits 0.
# Prints a table and writes bench/results/drift.json (schema: bench/README.md).
set -euo pipefail

ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-3}
COLUMNS=20

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
DRIFT_BENCH=${DRIFT_BENCH:-$root/build/src/ferry/data/drift_bench}
OUT=${OUT:-$here/results/drift.json}
PYTHON=${PYTHON:-/usr/bin/python3}

die() { echo "bench/drift.sh: $*" >&2; exit 2; }
say() { echo "$*" >&2; }

[[ "$ROWS" =~ ^[0-9]+$ && "$ROWS" -ge 100 ]] || die "ROWS must be an integer >= 100 (got '$ROWS')"
[[ "$REPEAT" =~ ^[0-9]+$ && "$REPEAT" -ge 1 ]] || die "REPEAT must be an integer >= 1 (got '$REPEAT')"
[[ -x "$DRIFT_BENCH" ]] || die "no drift_bench at $DRIFT_BENCH; run \`ninja -C build drift_bench\` (or set DRIFT_BENCH=...)"
DRIFT_BENCH=$(cd "$(dirname "$DRIFT_BENCH")" && pwd)/$(basename "$DRIFT_BENCH")
command -v hyperfine >/dev/null || die "hyperfine is not installed; run \`scripts/install-deps.sh --bench\`"
"$PYTHON" -c 'import numpy, scipy' 2>/dev/null ||
  die "$PYTHON cannot import numpy and scipy; install python3-numpy and python3-scipy (or set PYTHON=...)"

build_type=unknown
cache=$(dirname "$DRIFT_BENCH")/../../../CMakeCache.txt
if [[ -f "$cache" ]]; then
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$cache")
  build_type=${build_type:-none}
fi
case "$build_type" in
  Release | RelWithDebInfo) ;;
  *) say "warning: drift_bench build type is '$build_type', not Release/RelWithDebInfo: do not commit these figures" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-drift.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/timings" "$work/logs" "$work/bin"
# A private copy of the binary: a rebuild during the bench cannot mix two versions in one table.
cp "$DRIFT_BENCH" "$work/bin/drift_bench"
bench_src=$(realpath --relative-to="$root" "$DRIFT_BENCH" 2>/dev/null || basename "$DRIFT_BENCH")
bench_built=$(date -u -r "$DRIFT_BENCH" +%Y-%m-%dT%H:%M:%SZ)
ferry_commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

say "generating $COLUMNS columns x $ROWS reference and $ROWS current values (seed 20261127)"
"$PYTHON" - "$work" "$ROWS" "$COLUMNS" <<'PY'
import sys
import numpy as np
work, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
SHIFTS = [0, 0, 0, 0, 0.002, 0.004, 0.006, 0.01, 0.03, 0.3]
rng = np.random.default_rng(20261127)
with open(f"{work}/ref.f64", "wb") as ref, open(f"{work}/cur.f64", "wb") as cur:
    for j in range(cols):
        shift, scale = SHIFTS[j % 10], 1.0 if j < 10 else 1.0 + 0.01 * (j - 10)
        kind = j % 3
        if kind == 0:
            r, c = rng.normal(0, 1, rows), rng.normal(0, scale, rows) + shift
        elif kind == 1:
            r, c = rng.exponential(1, rows), rng.exponential(scale, rows) + shift
        else:
            r, c = rng.uniform(0, 1, rows), rng.uniform(0, scale, rows) + shift
        r.astype("<f8").tofile(ref)
        c.astype("<f8").tofile(cur)
PY

ferry_cmd="$work/bin/drift_bench $work/ref.f64 $work/cur.f64 $COLUMNS"
scipy_cmd="$PYTHON $here/drift_baseline.py $work/ref.f64 $work/cur.f64 $COLUMNS"

# measure KEY CMD: REPEAT timed runs of CMD after one untimed warm-up (files in the page cache).
measure() {
  local key=$1 cmd=$2
  say "  $key: $REPEAT run(s) of \`$cmd\`"
  if ! hyperfine -N --style basic --warmup 1 --runs "$REPEAT" \
         --output "$work/logs/$key.out" --export-json "$work/timings/$key.json" "$cmd" \
         >"$work/logs/$key.hyperfine" 2>&1; then
    cat "$work/logs/$key.hyperfine" >&2
    die "$key failed (output above)"
  fi
}

# The figures, once per side (untimed), compared below.
$ferry_cmd >"$work/ferry.json" || die "drift_bench failed"
$scipy_cmd >"$work/scipy.json" || die "drift_baseline.py failed"

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
say "timing (load average $load_before)"
measure ferry "$ferry_cmd"
measure scipy "$scipy_cmd"
load_after=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)

"$PYTHON" - "$work" "$ROWS" "$COLUMNS" "$REPEAT" "$OUT" "$build_type" "$work/bin/drift_bench" \
  "$load_before" "$load_after" "$bench_src" "$bench_built" "$ferry_commit" <<'PY'
import datetime, hashlib, json, os, platform, statistics, subprocess, sys

work, rows, cols, repeat, out, build_type, binary, load_before, load_after, bench_src, \
    bench_built, ferry_commit = sys.argv[1:13]
rows, cols, repeat = int(rows), int(cols), int(repeat)

ferry = json.load(open(f"{work}/ferry.json"))
scipy_out = json.load(open(f"{work}/scipy.json"))
if len(ferry["columns"]) != cols or len(scipy_out["columns"]) != cols:
    sys.exit(f"bench/drift.sh: expected {cols} columns from both sides")
diffs = {k: max(abs(f[k] - s[k]) for f, s in zip(ferry["columns"], scipy_out["columns"]))
         for k in ("ks", "ks_pvalue", "psi")}
max_abs_diff = max(diffs.values())

def hyperfine(key):
    with open(f"{work}/timings/{key}.json") as f:
        return json.load(f)["results"][0]

res = {k: hyperfine(k) for k in ("ferry", "scipy")}
wall = {k: statistics.median(r["times"]) for k, r in res.items()}
speedup = wall["scipy"] / wall["ferry"]
cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
except OSError:
    pass
import numpy, scipy
result = {
    "bench": "drift",
    "columns": cols,
    "rows": rows,
    "repeat": repeat,
    "statistic": "median",
    "ferry_s": wall["ferry"],
    "scipy_s": wall["scipy"],
    "speedup": {"vs_scipy": speedup},
    "max_abs_diff": max_abs_diff,
    "max_abs_diff_by_statistic": diffs,
    "cpu_s": {k: r["user"] + r["system"] for k, r in res.items()},
    "target": "speedup >= 5 and max_abs_diff < 1e-4",
    "target_met": speedup >= 5 and max_abs_diff < 1e-4,
    "runs_s": {k: r["times"] for k, r in res.items()},
    "ferry_phases_s": {"load_s": ferry["load_s"], "compute_s": ferry["compute_s"]},
    "statistics": {"ferry": ferry["columns"], "scipy": scipy_out["columns"]},
    "ferry_build_type": build_type,
    "ferry_binary": {"path": bench_src,
                     "sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest()[:16],
                     "built": bench_built},
    "versions": {"ferry_commit": ferry_commit, "numpy": numpy.__version__,
                 "scipy": scipy.__version__, "python": platform.python_version(),
                 "hyperfine": subprocess.run(["hyperfine", "--version"], capture_output=True,
                                             text=True).stdout.strip()},
    "machine": {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
                "loadavg_before": load_before, "loadavg_after": load_after},
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
}
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
print(f"  tool    wall s   cpu s")
for k in ("ferry", "scipy"):
    print(f"  {k:<6} {wall[k]:7.3f} {result['cpu_s'][k]:7.3f}")
print(f"  speedup vs scipy: {speedup:.2f}x (target >= 5x: {'met' if speedup >= 5 else 'MISSED'})")
print(f"  max_abs_diff: {max_abs_diff:.3g} (ks {diffs['ks']:.3g}, p-value {diffs['ks_pvalue']:.3g},"
      f" psi {diffs['psi']:.3g}; must be < 1e-4)")
print(f"  load average {load_before} -> {load_after}; written to {out}")
if max_abs_diff >= 1e-4:
    sys.exit("bench/drift.sh: ferry and scipy disagree by more than 1e-4")
PY
