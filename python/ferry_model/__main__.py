"""`python3 -m ferry_model train|serve|predict MODULE[:CLASS] ...` (see runner.py)."""
import sys

from .runner import run

sys.exit(run())
