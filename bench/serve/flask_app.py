"""The article's serving stack for bench/serve.sh: Flask + scikit-learn's LogisticRegression,
run by gunicorn with 2 sync workers. It answers what `ferry serve` answers for the bench:

  GET  /ping          -> 200 "ok"
  POST /invocations   {"instances": [{"f0": 0.1, ..., "f19": -0.3}, ...]}
                      -> 200 {"predictions": [{"y": P(y=1)}, ...], "model": {...}}
                      -> 400 {"error": "..."} when a row is not an object of the 20 numbers

Two commands:
  python3 flask_app.py train --csv data.csv --out model.pkl   # the setup step: fit, pickle
  FLASK_MODEL=model.pkl gunicorn -w 2 --bind 127.0.0.1:PORT flask_app:app
Every gunicorn worker loads the pickle once at import. The CSV has the columns f0..f19 and y
(bench/serve.sh writes it with the same seed as the rows ferry trains on).
"""

import argparse
import csv
import os
import pickle
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

FEATURES = [f"f{j}" for j in range(20)]


def train(csv_path, out_path):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in FEATURES] for r in rows])
    y = np.array([int(r["y"]) for r in rows])
    model = LogisticRegression(solver="lbfgs", C=1.0, max_iter=100).fit(x, y)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(model, f)
    os.replace(tmp, out_path)
    print(f"flask_app.py: fitted LogisticRegression on {len(rows)} rows -> {out_path}")


def create_app(model_path):
    from flask import Flask, jsonify, request

    with open(model_path, "rb") as f:
        model = pickle.load(f)
    app = Flask(__name__)

    @app.get("/ping")
    def ping():
        return "ok"

    @app.post("/invocations")
    def invocations():
        body = request.get_json(silent=True)
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            return jsonify(error='expected a JSON object {"instances": [{"f0": ..., ...}]}'), 400
        try:
            x = np.array([[float(row[c]) for c in FEATURES] for row in instances])
        except (KeyError, TypeError, ValueError) as e:
            return jsonify(error=f"each instance needs the numbers {FEATURES[0]}..{FEATURES[-1]}: {e!r}"), 400
        p = model.predict_proba(x)[:, 1]
        return jsonify(predictions=[{"y": float(v)} for v in p],
                       model={"name": "bench", "version": 1, "variant": "flask"})

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit on a CSV and pickle the model")
    t.add_argument("--csv", required=True)
    t.add_argument("--out", required=True)
    args = parser.parse_args()
    sys.exit(train(args.csv, args.out))
elif os.environ.get("FLASK_MODEL"):
    app = create_app(os.environ["FLASK_MODEL"])
