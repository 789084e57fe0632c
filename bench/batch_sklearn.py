"""The baseline of bench/batch.sh: pandas + scikit-learn batch scoring.

    python3 bench/batch_sklearn.py train TRAIN.csv MODEL.pkl     (untimed)
    python3 bench/batch_sklearn.py score MODEL.pkl INPUT.csv OUTPUT.csv

score: pd.read_csv, LogisticRegression.predict_proba, the predicted label and one probability
column per class added to the frame, DataFrame.to_csv: what ferry's batch output holds, but the
transaction ids.
"""
import pickle
import sys

import pandas as pd
from sklearn.linear_model import LogisticRegression

if sys.argv[1] == "train":
    df = pd.read_csv(sys.argv[2])
    model = LogisticRegression(C=1.0, max_iter=200).fit(df.drop(columns=["y"]), df["y"])
    with open(sys.argv[3], "wb") as f:
        pickle.dump(model, f)
elif sys.argv[1] == "score":
    with open(sys.argv[2], "rb") as f:
        model = pickle.load(f)
    df = pd.read_csv(sys.argv[3])
    proba = model.predict_proba(df[model.feature_names_in_])
    df["prediction"] = model.classes_[proba.argmax(axis=1)]
    for i, c in enumerate(model.classes_):
        df[f"probability_{c}"] = proba[:, i]
    df["model"] = "bench:1"
    df.to_csv(sys.argv[4], index=False)
else:
    sys.exit("usage: batch_sklearn.py train TRAIN.csv MODEL.pkl | score MODEL.pkl IN.csv OUT.csv")
