#!/usr/bin/env bash
# Batch scoring end to end: ferry's batch engine against pandas + scikit-learn, on a CSV of
# ROWS rows x 20 numeric features, with a logistic regression (read -> score -> write).
#
#   bench/batch.sh                        # ROWS=1000000, REPEAT=3 runs of each, median
#   ROWS=200000 REPEAT=5 bench/batch.sh
#
# The data (bench/batch_data.py, fixed seed): 20 standard-normal features with 4 decimals; the
# label of the 100k training rows (not scored) from the sigmoid of a linear function of x0..x9.
# Both sides train their own logistic regression on the training rows (untimed): ferry through
# batch_bench prepare (FindModelType("logistic_regression")->Fit, a bundle in a lake, registered
# as bench:1 in a project whose ferry.yaml names that lake and state store); scikit-learn
# through LogisticRegression().fit, pickled.
#
# What is timed, each as a whole process by hyperfine (start-up and imports included):
#   ferry           `ferry batch bench:1 --input score.csv --output out --wait`: every row gets
#                   prediction, probability_0/1, a UUIDv7 transaction_id and the model
#   pandas_sklearn  bench/batch_sklearn.py score: pd.read_csv, predict_proba, the same new columns
#                   but the transaction ids, DataFrame.to_csv
# Writes bench/results/batch.json. Exits non-zero when a tool fails or is missing.
set -euo pipefail

ROWS=${ROWS:-1000000}
REPEAT=${REPEAT:-3}
TRAIN_ROWS=${TRAIN_ROWS:-100000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
BATCH_BENCH=${BATCH_BENCH:-$root/build/src/ferry/batch/batch_bench}
FERRY=${FERRY:-$root/build/ferry}
OUT=${OUT:-$here/results/batch.json}
PYTHON=${PYTHON:-/usr/bin/python3}

die() { echo "bench/batch.sh: $*" >&2; exit 2; }
[[ -x "$BATCH_BENCH" ]] || die "no batch_bench at $BATCH_BENCH; run \`ninja -C build batch_bench\`"
[[ -x "$FERRY" ]] || die "no ferry at $FERRY; run \`make build\`"
command -v hyperfine >/dev/null || die "hyperfine is not installed; run \`scripts/install-deps.sh --bench\`"
"$PYTHON" -c 'import numpy, pandas, sklearn' 2>/dev/null ||
  die "PYTHON=$PYTHON cannot import numpy, pandas and sklearn; install python3-pandas and python3-sklearn"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-batch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "generating $ROWS rows x 20 features (+ $TRAIN_ROWS training rows)..." >&2
"$PYTHON" "$here/batch_data.py" "$ROWS" "$TRAIN_ROWS" "$work/score.csv" "$work/train.csv"
"$BATCH_BENCH" prepare "$work/ferry" "$work/train.csv" y
printf 'state: sqlite://state.db\nlake: file://lake\n' >"$work/ferry/ferry.yaml"
cp "$work/ferry/state.db" "$work/state.db.clean"
"$PYTHON" "$here/batch_sklearn.py" train "$work/train.csv" "$work/model.pkl"

# Each ferry run starts from the registered model alone (the state store as prepared), so it is a
# new job: the same command over the same files would otherwise find the last run's job done.
hyperfine -N --style basic --runs "$REPEAT" --export-json "$work/ferry.json" \
  --prepare "sh -c 'rm -rf $work/out-ferry $work/ferry/state.db-wal $work/ferry/state.db-shm && cp $work/state.db.clean $work/ferry/state.db'" \
  "$FERRY -C $work/ferry batch bench:1 --input $work/score.csv --output $work/out-ferry --wait" >&2
hyperfine -N --style basic --runs "$REPEAT" --export-json "$work/pandas.json" \
  "$PYTHON $here/batch_sklearn.py score $work/model.pkl $work/score.csv $work/out-pandas.csv" >&2

# The two outputs agree on the predicted labels of (almost) every row: same data, same model type.
"$PYTHON" - "$work" "$ROWS" "$OUT" <<'PY'
import json, statistics, sys
import pandas as pd
work, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
f = json.load(open(f"{work}/ferry.json"))["results"][0]
p = json.load(open(f"{work}/pandas.json"))["results"][0]
ferry_s, pandas_s = statistics.median(f["times"]), statistics.median(p["times"])
a = pd.read_csv(f"{work}/out-ferry/score.csv", usecols=["prediction", "probability_1", "transaction_id"])
b = pd.read_csv(f"{work}/out-pandas.csv", usecols=["prediction", "probability_1"])
assert len(a) == rows == len(b), (len(a), len(b))
agree = float((a["prediction"] == b["prediction"]).mean())
max_dp = float((a["probability_1"] - b["probability_1"]).abs().max())
result = {"speedup": {"vs_pandas_sklearn": round(pandas_s / ferry_s, 2)},
          "ferry_s": round(ferry_s, 3), "pandas_sklearn_s": round(pandas_s, 3),
          "ferry_runs_s": [round(t, 3) for t in f["times"]],
          "pandas_sklearn_runs_s": [round(t, 3) for t in p["times"]],
          "rows": rows, "columns": 20,
          "label_agreement": round(agree, 5), "max_probability_difference": round(max_dp, 5),
          "unique_transaction_ids": int(a["transaction_id"].nunique())}
json.dump(result, open(out, "w"), indent=2)
open(out, "a").write("\n")
print(json.dumps(result, indent=2))
PY
