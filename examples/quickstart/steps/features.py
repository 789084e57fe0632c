"""Standardises numbers, one-hot encodes the plan, splits train/test (seeded)."""
import json
import os
import random

from common import channel, output, params, read_csv, write_csv

p = params()
rows = read_csv(os.path.join(channel("extract"), "customers.csv"))
numeric = ["tenure", "charges", "tickets"]
stats = {}
for c in numeric:
    xs = [float(r[c]) for r in rows]
    mean = sum(xs) / len(xs)
    std = (sum((x - mean) ** 2 for x in xs) / len(xs)) ** 0.5 or 1.0
    stats[c] = {"mean": mean, "std": std}
plans = sorted({r["plan"] for r in rows})
out = []
for r in rows:
    f = {c: round((float(r[c]) - stats[c]["mean"]) / stats[c]["std"], 6) for c in numeric}
    f.update({f"plan_{pl}": int(r["plan"] == pl) for pl in plans})
    f["churned"] = int(r["churned"])
    out.append(f)
random.Random(int(p["seed"])).shuffle(out)
n_test = int(len(out) * float(p["test_fraction"]))
columns = list(out[0])
write_csv(output("test.csv"), out[:n_test], columns)
write_csv(output("train.csv"), out[n_test:], columns)
# The fitted state of the transform, so that serving can apply exactly the same encoding.
with open(output("transform.json"), "w") as f:
    json.dump({"standardize": stats, "one_hot": {"plan": plans}}, f, indent=2)
print(f"features: {len(columns) - 1} columns, {len(out) - n_test} train / {n_test} test rows")
