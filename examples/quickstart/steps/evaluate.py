"""Scores both models on the test split; the gate fails the run if the best is not good enough."""
import json
import math
import os

from common import channel, fail, output, params, read_csv

p = params()
rows = read_csv(os.path.join(channel("features"), "test.csv.zst"))


def predict(model, r):
    if model["type"] == "baseline":
        return model["p"]
    z = model["bias"] + sum(w * float(r[c]) for c, w in model["weights"].items())
    return 1 / (1 + math.exp(-z))


metrics = {}
for name in ("train_logistic", "train_baseline"):
    with open(os.path.join(channel(name), "model.json")) as f:
        model = json.load(f)
    probs = [predict(model, r) for r in rows]
    labels = [int(r["churned"]) for r in rows]
    acc = sum(int(pr >= 0.5) == l for pr, l in zip(probs, labels)) / len(rows)
    eps = 1e-9
    logloss = -sum(l * math.log(pr + eps) + (1 - l) * math.log(1 - pr + eps)
                   for pr, l in zip(probs, labels)) / len(rows)
    metrics[name] = {"accuracy": round(acc, 4), "log_loss": round(logloss, 4)}
best = max(metrics, key=lambda k: metrics[k]["accuracy"])
result = {"models": metrics, "best": best, "gate": {"min_accuracy": p["min_accuracy"]}}
with open(output("metrics.json"), "w") as f:
    json.dump(result, f, indent=2)
print(json.dumps(result))
if metrics[best]["accuracy"] < float(p["min_accuracy"]):
    fail(f"best accuracy {metrics[best]['accuracy']} < min_accuracy {p['min_accuracy']}")
