"""ferry_model: the model class of a ferry project, and its runner (standard library only).

Subclass `Model` (load_data, train, save, load, predict), then train, serve and batch-predict it
under ferry's runner contract (docs/contract.md) with `python3 -m ferry_model
train|serve|predict models/m.py` or a script ending with `ferry_model.main(MyModel)`. The user
guide is docs/python-models.md.

Example:
    import ferry_model

    class Churn(ferry_model.Model):
        ...

    if __name__ == "__main__":
        ferry_model.main(Churn)      # python3 models/churn.py train | serve | predict ...
"""
from .data import Dataset, read_csv, read_dataset
from .model import Hyperparameters, Model
from .runner import main, read_channels, read_hyperparameters

__version__ = "0.1.0"
__all__ = ["Dataset", "Hyperparameters", "Model", "main", "read_channels", "read_csv",
           "read_dataset", "read_hyperparameters"]
