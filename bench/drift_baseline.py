#!/usr/bin/env python3
"""The scipy/numpy side of bench/drift.sh: KS (scipy.stats.ks_2samp) and PSI of every column.

    drift_baseline.py <reference.f64> <current.f64> <columns>

Same input and same definitions as drift_bench (src/ferry/data/drift_bench.cc): raw float64,
column-major; PSI over 10 bins at the reference's deciles (numpy.quantile, method "linear",
q = k/10 for k = 1..9), a value v in bin #{edges <= v} (searchsorted side="right"), proportions
floored at 1e-4 (ferry's kPsiEpsilon) and not renormalised. Prints {"columns": [{"ks",
"ks_pvalue", "psi"}...]}.
"""
import json
import sys

import numpy as np
from scipy import stats

PSI_EPSILON = 1e-4


def psi(ref, cur, edges):
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10) / len(ref)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=10) / len(cur)
    r, c = np.maximum(r, PSI_EPSILON), np.maximum(c, PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def main():
    ref_path, cur_path, columns = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ref = np.fromfile(ref_path, dtype="<f8").reshape(columns, -1)
    cur = np.fromfile(cur_path, dtype="<f8").reshape(columns, -1)
    out = []
    for j in range(columns):
        ks = stats.ks_2samp(ref[j], cur[j])
        edges = np.quantile(ref[j], np.arange(1, 10) / 10)
        out.append({"ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
                    "psi": psi(ref[j], cur[j], edges)})
    print(json.dumps({"columns": out}))


if __name__ == "__main__":
    main()
