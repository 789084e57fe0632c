"""Writes the data of bench/batch.sh (fixed seed, numpy): 20 standard-normal features x0..x19
with 4 decimals and a 0/1 label y drawn from the sigmoid of a linear function of x0..x9.

    python3 bench/batch_data.py ROWS TRAIN_ROWS score.csv train.csv

score.csv holds ROWS rows of the features only (what a batch job scores); train.csv holds
TRAIN_ROWS other rows with the label (what both sides train on, untimed).
"""
import sys

import numpy as np
import pandas as pd

rows, train_rows, score_path, train_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(20261127)
n = rows + train_rows
x = rng.standard_normal((n, 20))
w = np.array([1.2, -0.8, 0.6, 0.5, -0.4, 0.3, 0.3, -0.2, 0.2, 0.1])
p = 1 / (1 + np.exp(-(x[:, :10] @ w - 0.2)))
y = (rng.random(n) < p).astype(np.int64)
cols = [f"x{i}" for i in range(20)]
df = pd.DataFrame(np.round(x, 4), columns=cols)
df.iloc[:rows].to_csv(score_path, index=False, float_format="%.4f")
train = df.iloc[rows:].copy()
train["y"] = y[rows:]
train.to_csv(train_path, index=False, float_format="%.4f")
