"""Trains a model on the features: logistic regression (gradient descent) or a baseline."""
import argparse
import json
import math
import os

from common import channel, read_csv

ap = argparse.ArgumentParser()
ap.add_argument("--model", choices=["logistic", "baseline"], required=True)
ap.add_argument("--epochs", type=int, default=50)
args = ap.parse_args()

rows = read_csv(os.path.join(channel("features"), "train.csv.zst"))
features = [c for c in rows[0] if c != "churned"]
X = [[float(r[c]) for c in features] for r in rows]
y = [int(r["churned"]) for r in rows]

if args.model == "baseline":
    model = {"type": "baseline", "p": sum(y) / len(y), "features": features}
else:
    w, b, lr = [0.0] * len(features), 0.0, 0.5
    for _ in range(args.epochs):
        gw, gb = [0.0] * len(w), 0.0
        for xi, yi in zip(X, y):
            z = b + sum(wj * xj for wj, xj in zip(w, xi))
            err = 1 / (1 + math.exp(-z)) - yi
            gb += err
            for j, xj in enumerate(xi):
                gw[j] += err * xj
        b -= lr * gb / len(X)
        w = [wj - lr * g / len(X) for wj, g in zip(w, gw)]
    model = {"type": "logistic", "weights": dict(zip(features, w)), "bias": b, "features": features}

for folder in (os.environ["SM_MODEL_DIR"], os.environ["SM_OUTPUT_DATA_DIR"]):
    with open(os.path.join(folder, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
print(f"trained {args.model} on {len(rows)} rows")
