"""The scikit-learn side of bench/train.sh: logistic regression, end to end in one process.

    python3 bench/train_sklearn.py data.csv [--target y] [--test-column is_test]

Reads the CSV with pandas.read_csv, splits it into train and test rows, fits
LogisticRegression(solver="lbfgs", C=1.0, max_iter=100), predicts the test rows and scores
them with roc_auc_score and log_loss. The test rows are those whose --test-column (default
"is_test", an integer 0/1 column the bench writes into the CSV so that ferry and this script score
the same rows) is non-zero; that column is dropped before fitting. A file without it is split by
train_test_split(test_size=0.2, random_state=7) instead. Prints one JSON line, the keys of
`train_bench` (src/ferry/model/train_bench.cc) plus import_seconds:
  {"model": "sklearn_logistic_regression", "rows": ..., "read_seconds": ..., "fit_seconds": ...,
   "predict_seconds": ..., "total_seconds": ..., "auc": ..., "log_loss": ...}
Seconds by time.perf_counter; total from the start of this script, imports included.
"""

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import pandas as pd  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--target", default="y")
    parser.add_argument("--test-column", default="is_test")
    args = parser.parse_args()

    t1 = time.perf_counter()
    df = pd.read_csv(args.csv)
    t2 = time.perf_counter()
    if args.target not in df.columns:
        print(f"train_sklearn.py: {args.csv} has no target column '{args.target}'", file=sys.stderr)
        return 2
    if args.test_column in df.columns:
        is_test = df.pop(args.test_column).to_numpy() != 0
        train, test = df[~is_test], df[is_test]
    else:
        train, test = train_test_split(df, test_size=0.2, random_state=7)
    x_train, y_train = train.drop(columns=[args.target]), train[args.target]
    x_test, y_test = test.drop(columns=[args.target]), test[args.target]
    t3 = time.perf_counter()
    model = LogisticRegression(solver="lbfgs", C=1.0, max_iter=100).fit(x_train, y_train)
    t4 = time.perf_counter()
    p = model.predict_proba(x_test)[:, 1]
    t5 = time.perf_counter()
    auc, loss = roc_auc_score(y_test, p), log_loss(y_test, p)
    t6 = time.perf_counter()
    print(json.dumps({
        "model": "sklearn_logistic_regression",
        "rows": len(df),
        "train_rows": len(train),
        "test_rows": len(test),
        "import_seconds": t1 - T0,
        "read_seconds": t2 - t1,
        "split_seconds": t3 - t2,
        "fit_seconds": t4 - t3,
        "predict_seconds": t5 - t4,
        "metrics_seconds": t6 - t5,
        "total_seconds": t6 - T0,
        "auc": float(auc),
        "log_loss": float(loss),
        "iterations": int(model.n_iter_[0]),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
