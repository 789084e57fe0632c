#!/usr/bin/env python3
"""Reference values for src/ferry/data/drift_test.cc, computed with scipy and numpy.

    /usr/bin/python3 tests/reference/drift_reference.py            # rewrites drift_reference.json
    /usr/bin/python3 tests/reference/drift_reference.py --check    # exit 1 if the file differs

Needs python3-scipy and python3-numpy (Debian packages). Every sample comes from one
numpy.random.default_rng(20261127), so the output is deterministic for a given numpy/scipy.
The JSON holds the inputs and scipy's outputs; NaN inputs are written as null. Large samples
(above scipy's exact-KS limit of 10,000) are stored as [value, repeat] runs to keep the file small.
"""
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance

PSI_EPSILON = 1e-4  # = kPsiEpsilon in drift.h
OUT = Path(__file__).with_name("drift_reference.json")


def psi(ref, cur):
    r = np.asarray(ref, float) / np.sum(ref)
    c = np.asarray(cur, float) / np.sum(cur)
    r = np.maximum(r, PSI_EPSILON)
    c = np.maximum(c, PSI_EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def chi2(ref, cur):
    ref, cur = np.asarray(ref), np.asarray(cur)
    keep = (ref + cur) > 0
    res = stats.chi2_contingency(np.array([ref[keep], cur[keep]]), correction=False)
    return {"statistic": float(res[0]), "pvalue": float(res[1]), "dof": int(res[2])}


def listed(x):
    return [None if np.isnan(v) else float(v) for v in x]


def runs(x):
    values, counts = np.unique(x, return_counts=True)
    return [[float(v), int(c)] for v, c in zip(values, counts)]


def sample_case(name, a, b, compact=False):
    ks = stats.ks_2samp(a[~np.isnan(a)], b[~np.isnan(b)])
    w = stats.wasserstein_distance(a[~np.isnan(a)], b[~np.isnan(b)])
    case = {"name": name, "ks": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(w)}
    if compact:
        case["a_runs"], case["b_runs"] = runs(a), runs(b)
    else:
        case["a"], case["b"] = listed(a), listed(b)
    return case


def binned_case(name, ref, cur):
    return {"name": name, "reference": [int(v) for v in ref], "current": [int(v) for v in cur],
            "psi": psi(ref, cur), "js": float(distance.jensenshannon(ref, cur, base=2)),
            "chi2": chi2(ref, cur)}


def numeric_profile_case(rng):
    # The C++ test profiles `reference` (ComputeProfile: numpy.histogram, 20 bins) and compares
    # `current`; the binned statistics are computed here from the same counts.
    ref = np.round(rng.normal(50, 10, 1500), 3)
    cur = np.round(rng.normal(54, 12, 900), 3)
    counts, edges = np.histogram(ref, bins=20)
    cur_counts = np.bincount(np.searchsorted(edges[1:-1], cur, side="right"), minlength=20)
    nr, nc = counts.sum(), cur_counts.sum()
    cdf_r, cdf_c = np.cumsum(counts) / nr, np.cumsum(cur_counts) / nc
    ks = float(np.max(np.abs(cdf_r - cdf_c)))
    m, n = sorted([float(nr), float(nc)], reverse=True)
    centres = (edges[:-1] + edges[1:]) / 2
    return {"reference": listed(ref), "current": listed(cur), "edges": [float(e) for e in edges],
            "reference_counts": [int(c) for c in counts],
            "current_counts": [int(c) for c in cur_counts],
            "psi": psi(counts, cur_counts),
            "js": float(distance.jensenshannon(counts, cur_counts, base=2)),
            "ks": ks, "ks_pvalue": float(stats.kstwo.sf(ks, np.round(m * n / (m + n)))),
            "wasserstein": float(stats.wasserstein_distance(centres, centres, counts, cur_counts))}


def categorical_profile_case(rng):
    # A reference with 6 values (its top-20 holds them all) and a current window with two new ones.
    ref = rng.choice(["basic", "pro", "gold", "team", "edu", "trial"], 1200,
                     p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
    cur = rng.choice(["basic", "pro", "gold", "team", "edu", "free", "partner"], 700,
                     p=[0.3, 0.25, 0.15, 0.1, 0.1, 0.07, 0.03])
    ref_counts = Counter(ref.tolist())
    top = sorted(ref_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    categories = [v for v, _ in top] + ["__other__"]
    rc = [c for _, c in top] + [len(ref) - sum(c for _, c in top)]
    cur_counts = Counter(cur.tolist())
    unseen = sorted((v for v in cur_counts if v not in ref_counts),
                    key=lambda v: (-cur_counts[v], v))  # most frequent first, as the top
    categories += unseen
    rc += [0] * len(unseen)
    cc = [cur_counts.get(v, 0) for v in categories]
    case = binned_case("categorical_profile", rc, cc)
    case.update({"reference_values": ref.tolist(), "current_values": cur.tolist(),
                 "categories": categories})
    return case


def main():
    rng = np.random.default_rng(20261127)
    samples = []
    samples.append(sample_case("equal", rng.normal(0, 1, 1500), rng.normal(0, 1, 1200)))
    samples.append(sample_case("shifted_mean_equal_sizes", rng.normal(0, 1, 1000),
                               rng.normal(0.2, 1, 1000)))
    samples.append(sample_case("scaled_variance", rng.normal(5, 1, 1800), rng.normal(5, 1.5, 1300)))
    samples.append(sample_case("small", rng.normal(0, 1, 40), rng.normal(0.5, 1, 55)))
    samples.append(sample_case("small_equal_sizes", rng.exponential(1, 60),
                               rng.exponential(1.3, 60)))
    samples.append(sample_case("tiny", rng.normal(0, 1, 8), rng.normal(1, 1, 5)))
    samples.append(sample_case("ties", rng.poisson(3, 500).astype(float),
                               rng.poisson(3.3, 700).astype(float)))
    with_nan = rng.normal(0, 1, 300)
    with_nan[::37] = np.nan
    samples.append(sample_case("nans_dropped", with_nan, rng.normal(0.1, 1, 250)))
    # Above 10,000 values scipy switches to the asymptotic p-value (kstwo of round(n_eff)).
    samples.append(sample_case("asymptotic", np.round(rng.normal(0, 1, 15000), 1),
                               np.round(rng.normal(0.03, 1, 12000), 1), compact=True))
    samples.append(sample_case("asymptotic_unbalanced", np.round(rng.normal(0, 1, 20000), 2),
                               np.round(rng.normal(0.1, 1, 300), 2), compact=True))
    samples.append(sample_case("asymptotic_small_neff", np.round(rng.normal(0, 1, 30000), 2),
                               np.round(rng.normal(0, 1.2, 100), 2), compact=True))

    # kstwo.sf over the regions where scipy changes method.
    kolmogorov = []
    for n in [1, 2, 3, 5, 10, 50, 100, 140, 141, 500, 1000, 10000, 100000, 100001, 500000]:
        for d in [0.3 / n, 0.75 / n, 1.5 / n, 0.5 / np.sqrt(n), 0.8 / np.sqrt(n), 1.0 / np.sqrt(n),
                  1.3 / np.sqrt(n), 1.8 / np.sqrt(n), 2.5 / np.sqrt(n), 5 / np.sqrt(n), 0.45,
                  0.6, 1 - 1.5 / n]:
            if 0 < d < 1:
                kolmogorov.append({"n": n, "d": float(d), "sf": float(stats.kstwo.sf(d, n))})

    binned = [
        binned_case("same", [100, 200, 300, 400], [50, 100, 150, 200]),
        binned_case("moderate", [120, 250, 330, 300], [90, 200, 380, 330]),
        binned_case("major", [500, 300, 150, 50], [100, 150, 300, 450]),
        binned_case("empty_bins", [0, 40, 60, 0, 100], [5, 0, 70, 30, 95]),
        binned_case("unseen_categories", [300, 200, 100, 0, 0], [250, 210, 90, 40, 10]),
        binned_case("one_category", [0, 10, 0], [0, 7, 0]),
    ]

    weighted = []
    for name, u, uw, v, vw in [
        ("simple", [0.0, 1.0, 3.0], [1, 2, 1], [0.5, 1.0, 4.0], [2, 1, 1]),
        ("same_support", [1.0, 2.0, 3.0, 4.0], [10, 0, 5, 5], [1.0, 2.0, 3.0, 4.0], [0, 10, 5, 5]),
    ]:
        weighted.append({"name": name, "u": u, "u_weights": uw, "v": v, "v_weights": vw,
                         "wasserstein": float(stats.wasserstein_distance(u, v, uw, vw))})

    result = {
        "generated_by": "tests/reference/drift_reference.py",
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
        "psi_epsilon": PSI_EPSILON,
        "samples": samples,
        "kolmogorov_sf": kolmogorov,
        "binned": binned,
        "wasserstein_weighted": weighted,
        "numeric_profile": numeric_profile_case(rng),
        "categorical_profile": categorical_profile_case(rng),
    }
    text = json.dumps(result, separators=(",", ":")) + "\n"
    if "--check" in sys.argv[1:]:
        if OUT.read_text() != text:
            print(f"{OUT.name} differs from what {Path(__file__).name} produces; re-run it "
                  "without --check and commit the result", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
