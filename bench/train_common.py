"""What the Python sides of bench/train.sh share: read the CSV with pandas, split it, fit the
model a script gives, predict the test rows, score them, print one JSON line.

The test rows are those whose --test-column (default "is_test", an integer 0/1 column the bench
writes into the CSV so that ferry and Python score the same rows) is non-zero; that column is
dropped before fitting. A file without it is split by train_test_split(test_size=0.2,
random_state=7) instead. The JSON line has the keys of `train_bench`
(src/ferry/model/train_bench.cc) plus import_seconds and the script's extras:
  {"model": ..., "rows": ..., "read_seconds": ..., "fit_seconds": ..., "predict_seconds": ...,
   "total_seconds": ..., "auc": ..., "log_loss": ...}
Seconds by time.perf_counter; total from `t0`, the start of the calling script (imports
included).
"""

import argparse
import json
import os
import sys
import time

import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import train_test_split


def run(name, fit, t0, extras=None):
    """`fit(x_train, y_train)` returns a fitted model with predict_proba; `extras(model)` adds
    keys to the JSON line. Returns the exit status."""
    script = os.path.basename(sys.argv[0])
    parser = argparse.ArgumentParser(description=f"{name}: fit and score a CSV (bench/train.sh)")
    parser.add_argument("csv")
    parser.add_argument("--target", default="y")
    parser.add_argument("--test-column", default="is_test")
    args = parser.parse_args()

    t1 = time.perf_counter()
    df = pd.read_csv(args.csv)
    t2 = time.perf_counter()
    if args.target not in df.columns:
        print(f"{script}: {args.csv} has no target column '{args.target}'", file=sys.stderr)
        return 2
    if args.test_column in df.columns:
        is_test = df.pop(args.test_column).to_numpy() != 0
        train, test = df[~is_test], df[is_test]
    else:
        train, test = train_test_split(df, test_size=0.2, random_state=7)
    x_train, y_train = train.drop(columns=[args.target]), train[args.target]
    x_test, y_test = test.drop(columns=[args.target]), test[args.target]
    t3 = time.perf_counter()
    model = fit(x_train, y_train)
    t4 = time.perf_counter()
    p = model.predict_proba(x_test)[:, 1]
    t5 = time.perf_counter()
    auc, loss = roc_auc_score(y_test, p), log_loss(y_test, p)
    t6 = time.perf_counter()
    line = {
        "model": name,
        "rows": len(df),
        "train_rows": len(train),
        "test_rows": len(test),
        "import_seconds": t1 - t0,
        "read_seconds": t2 - t1,
        "split_seconds": t3 - t2,
        "fit_seconds": t4 - t3,
        "predict_seconds": t5 - t4,
        "metrics_seconds": t6 - t5,
        "total_seconds": t6 - t0,
        "auc": float(auc),
        "log_loss": float(loss),
    }
    line.update(extras(model) if extras else {})
    print(json.dumps(line))
    return 0
