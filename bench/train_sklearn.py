"""The scikit-learn side of bench/train.sh: logistic regression, end to end in one process.

    python3 bench/train_sklearn.py data.csv [--target y] [--test-column is_test]

LogisticRegression(solver="lbfgs", C=1.0, max_iter=100); reading, splitting, scoring and the
JSON line are bench/train_common.py's.
"""

import time

T0 = time.perf_counter()

import sys  # noqa: E402

from sklearn.linear_model import LogisticRegression  # noqa: E402

from train_common import run  # noqa: E402


def fit(x, y):
    return LogisticRegression(solver="lbfgs", C=1.0, max_iter=100).fit(x, y)


if __name__ == "__main__":
    sys.exit(run("sklearn_logistic_regression", fit, T0,
                 extras=lambda m: {"iterations": int(m.n_iter_[0])}))
