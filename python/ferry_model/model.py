"""The model class a data scientist writes, and the hyperparameters it receives.

Subclass `Model` and implement `train`, `save`, `load` and `predict` (override `load_data` when
the default — the train part of one upstream dataset — is not what the model needs). The runner
(`python3 -m ferry_model train|serve|predict`, or `ferry_model.main(MyModel)`) calls them:

    train:  m = MyModel(); data = m.load_data(channels); m.train(data, hps); m.save(model_dir)
    serve:  m = MyModel(); m.load(model_dir); then m.predict(rows) for every request
    predict: m = MyModel(); m.load(model_dir); m.predict(rows) once, for all the input's rows

Thread-safety: the server calls `predict` from several threads. Unless the class sets
`thread_safe = True`, the server holds a lock around each call, so `predict` never runs twice
at once on one instance.

Example:
    import json, os
    import ferry_model

    class Mean(ferry_model.Model):
        def train(self, data, hyperparameters):
            ys = [r["y"] for r in data.rows]
            self.mean = sum(ys) / len(ys)
        def save(self, model_dir):
            with open(os.path.join(model_dir, "mean.json"), "w") as f:
                json.dump({"mean": self.mean}, f)
        def load(self, model_dir):
            with open(os.path.join(model_dir, "mean.json")) as f:
                self.mean = json.load(f)["mean"]
        def predict(self, rows):
            return [self.mean for _ in rows]

    if __name__ == "__main__":
        ferry_model.main(Mean)
"""
from .data import read_dataset

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class Hyperparameters(dict):
    """The run's parameters: a dict of name -> str, as SageMaker passes them.

    The dict itself holds the string values (from SM_HPS, else hyperparameters.json), so code
    written for SageMaker keeps working. `typed` holds the same parameters with their JSON types
    (from params.json, which ferry writes beside hyperparameters.json; {} when absent), and the
    getters below return a typed value: the params.json value when it has the requested type,
    else the string value parsed.

    Example:
        epochs = hps.int("epochs", 10)     # 10 when the run has no parameter "epochs"
        lr = hps.float("lr", 0.1)
        hps["epochs"]                      # "10": the SageMaker-style string
    """

    def __init__(self, strings=None, typed=None):
        super().__init__(strings or {})
        self.typed = dict(typed or {})

    def _get(self, name, default, kind, parse):
        if name in self.typed and _is(self.typed[name], kind):
            return kind(self.typed[name])
        if name in self:
            try:
                return parse(self[name])
            except ValueError:
                raise ValueError(
                    f"hyperparameter {name!r}: {self[name]!r} is not a {kind.__name__}") from None
        if name in self.typed:
            return parse(str(self.typed[name]))
        return default

    def int(self, name, default=None):
        return self._get(name, default, int, int)

    def float(self, name, default=None):
        return self._get(name, default, float, float)

    def bool(self, name, default=None):
        def parse(s):
            if s.lower() in _TRUE:
                return True
            if s.lower() in _FALSE:
                return False
            raise ValueError(s)

        return self._get(name, default, bool, parse)

    def str(self, name, default=None):
        if name in self:
            return self[name]
        return default


def _is(value, kind):
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


class Model:
    """Base class of a model trained and served by the ferry_model runner.

    The runner constructs the class with no arguments, so `__init__` must take none (or only
    optional ones). Attributes a subclass may set:
      channel: the input channel the default `load_data` reads (None: "train" when there is
        such a channel, else the only one).
      part: the dataset part the default `load_data` reads ("train").
      thread_safe: True when `predict` may run concurrently (default False: the server
        serializes calls).
    """

    channel = None
    part = "train"
    thread_safe = False

    def load_data(self, channels):
        """Returns the training data, given the input channels (name -> folder).

        Default: a `ferry_model.Dataset` holding the `part` ("train") of the dataset in channel
        `channel` — its rows as a list of typed dicts (`.rows`), its manifest (`.manifest`) and
        column names (`.columns`). A dataset that was not split gives its single part, "data".
        Override it to read several channels or other files; whatever it returns is passed to
        `train` unchanged.
        """
        if not channels:
            raise ValueError("no input channel: the step needs an upstream data step (`needs:`)")
        name = self.channel
        if name is None:
            if "train" in channels:
                name = "train"
            elif len(channels) == 1:
                name = next(iter(channels))
            else:
                raise ValueError(
                    f"several input channels ({', '.join(sorted(channels))}): set the class "
                    "attribute `channel`, or override load_data")
        if name not in channels:
            raise ValueError(
                f"no input channel {name!r} (channels: {', '.join(sorted(channels)) or 'none'})")
        return read_dataset(channels[name], self.part)

    def train(self, data, hyperparameters):
        """Fits the model on `data` (what load_data returned), given a `Hyperparameters`."""
        raise NotImplementedError(f"{type(self).__name__}.train is not implemented")

    def save(self, model_dir):
        """Writes the fitted model's files into `model_dir` (an existing, empty folder)."""
        raise NotImplementedError(f"{type(self).__name__}.save is not implemented")

    def load(self, model_dir):
        """Reads the files `save` wrote into `model_dir`, on a freshly constructed instance."""
        raise NotImplementedError(f"{type(self).__name__}.load is not implemented")

    def predict(self, rows):
        """Returns one prediction per row (a dict of feature -> value): a number, or a dict of
        class -> probability. Values must be JSON-serializable (numpy scalars and arrays are
        converted)."""
        raise NotImplementedError(f"{type(self).__name__}.predict is not implemented")
