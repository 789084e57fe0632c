"""Churn: scikit-learn's LogisticRegression as a ferry_model.Model.

    python3 models/churn.py train                       # as the pipeline's `train` step runs it
    python3 models/churn.py serve --model-dir DIR       # GET /ping, POST /invocations on :8080

The model takes raw customer rows — {"tenure": 12, "plan": "basic", "charges": 70.5,
"tickets": 2} — and does its own preprocessing (one-hot `plan`, impute, standardize), so a
request needs no separate transform. It predicts {"0": p, "1": p} per row: the probability of
each class of `churned`. scikit-learn is imported lazily, so the module imports without it.
"""
import json
import os
import pickle

import ferry_model

NUMERIC = ["tenure", "charges", "tickets"]
CATEGORICAL = "plan"
TARGET = "churned"


class Churn(ferry_model.Model):
    def load_data(self, channels):
        # The `features` step splits the data: fit on its train part, score on its test part.
        folder = channels["features"]
        return {"train": ferry_model.read_dataset(folder, "train"),
                "test": ferry_model.read_dataset(folder, "test")}

    def _matrix(self, rows):
        import numpy as np

        x = np.full((len(rows), len(NUMERIC) + len(self.plans)), np.nan)
        for i, r in enumerate(rows):
            for j, name in enumerate(NUMERIC):
                value = r.get(name)
                x[i, j] = np.nan if value is None or value == "" else float(value)
            for j, plan in enumerate(self.plans):  # an unknown plan is all zeros
                x[i, len(NUMERIC) + j] = 1.0 if r.get(CATEGORICAL) == plan else 0.0
        return x

    def train(self, data, hyperparameters):
        import numpy as np
        import sklearn
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        train, test = data["train"].rows, data["test"].rows
        self.plans = sorted({r[CATEGORICAL] for r in train if r[CATEGORICAL] is not None})
        self.pipeline = make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(),
            LogisticRegression(C=hyperparameters.float("C", 1.0),
                               max_iter=hyperparameters.int("max_iter", 200)))
        self.pipeline.fit(self._matrix(train), np.array([r[TARGET] for r in train]))
        self.sklearn_version = sklearn.__version__

        probs = self.pipeline.predict_proba(self._matrix(test))[:, 1]
        labels = np.array([r[TARGET] for r in test])
        eps = 1e-12
        self.metrics = {
            "accuracy": round(float(np.mean((probs >= 0.5) == (labels == 1))), 4),
            "log_loss": round(float(-np.mean(labels * np.log(probs + eps)
                                             + (1 - labels) * np.log(1 - probs + eps))), 4),
            "train_rows": len(train), "test_rows": len(test)}
        print(f"churn: {json.dumps(self.metrics)}", flush=True)
        minimum = hyperparameters.float("min_accuracy", 0.0)
        if self.metrics["accuracy"] < minimum:
            raise ValueError(f"test accuracy {self.metrics['accuracy']} < min_accuracy {minimum}")

    def save(self, model_dir):
        with open(os.path.join(model_dir, "pipeline.pkl"), "wb") as f:
            pickle.dump(self.pipeline, f)
        with open(os.path.join(model_dir, "churn.json"), "w") as f:
            json.dump({"plans": self.plans, "numeric": NUMERIC, "sklearn": self.sklearn_version,
                       "metrics": self.metrics}, f, indent=2)
        # A downstream step sees output/data/, not model/: pass the scores on.
        if os.environ.get("SM_OUTPUT_DATA_DIR"):
            with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
                json.dump(self.metrics, f, indent=2)

    def load(self, model_dir):
        import sklearn

        with open(os.path.join(model_dir, "churn.json")) as f:
            meta = json.load(f)
        if meta["sklearn"] != sklearn.__version__:
            print(f"churn: warning: trained with scikit-learn {meta['sklearn']}, loading with "
                  f"{sklearn.__version__}", flush=True)
        self.plans = meta["plans"]
        with open(os.path.join(model_dir, "pipeline.pkl"), "rb") as f:
            self.pipeline = pickle.load(f)  # our own artifact: never unpickle untrusted files

    def predict(self, rows):
        probs = self.pipeline.predict_proba(self._matrix(rows))
        classes = [str(c) for c in self.pipeline.classes_]
        return [{c: round(float(p), 6) for c, p in zip(classes, row)} for row in probs]


if __name__ == "__main__":
    ferry_model.main(Churn)
