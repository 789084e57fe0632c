"""The Python xgboost side of bench/train.sh: gradient-boosted trees, end to end in one process.

    python3 bench/train_xgboost.py data.csv [--target y] [--test-column is_test]

xgboost.XGBClassifier(n_estimators=100, max_depth=6, tree_method="hist", learning_rate=0.3,
random_state=7) with every core (XGBoost's default); reading, splitting, scoring and the JSON
line are bench/train_common.py's.
"""

import time

T0 = time.perf_counter()

import sys  # noqa: E402

import xgboost  # noqa: E402

from train_common import run  # noqa: E402


def fit(x, y):
    model = xgboost.XGBClassifier(n_estimators=100, max_depth=6, tree_method="hist",
                                  learning_rate=0.3, random_state=7)
    return model.fit(x, y)


if __name__ == "__main__":
    sys.exit(run("python_xgboost", fit, T0))
