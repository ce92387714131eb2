"""How well do the two estimates of PCA's saturation dimension find a known crossing?

    .venv/bin/python bench/bench_saturation.py [--curves 4000] [--noise 1.0] [--seed 0]

The dim-reduction claim's second statistic is log2 of the dimension where a task's score
first reaches 95 % of its full-dimension score (`claims.saturation_log2`). Synthetic
saturating curves, score = A (1 - exp(-d / s)), with the true crossing spread uniformly in
log2 over 2-512, are scored at every power of two from 1 to 1,024 (the quick profile's PCA
levels) with Gaussian noise on each score, and both estimates, the first scored dimension
reaching 95 % and the straight-segment crossing, are compared with the truth: bias and root
mean square error in log2 units. The rule that reads this is in BENCHMARKS.md ("A continuous
estimate of PCA's saturation dimension").
"""

from __future__ import annotations

import argparse
import datetime
import platform

import numpy as np
from scipy.optimize import brentq
from transferlab.claims import saturation_log2
from transferlab.compute import cpu_model

DIMS = 2 ** np.arange(11)  # 1 .. 1024


def _scale_for(crossing: float, top: float = 1024.0) -> float:
    """The s of A (1 - exp(-d / s)) whose score reaches 95 % of its score at `top` at
    `crossing`."""
    def gap(log_s: float) -> float:
        s = np.exp(log_s)
        return (1 - np.exp(-crossing / s)) - 0.95 * (1 - np.exp(-top / s))
    return float(np.exp(brentq(gap, np.log(1e-3), np.log(1e6))))


def curves(n: int, noise: float, rng: np.random.Generator, amplitude: float = 60.0
           ) -> tuple[np.ndarray, np.ndarray]:
    """(scores: n x len(DIMS), true log2 crossings: n)."""
    truth = rng.uniform(1.0, 9.0, n)
    scales = np.array([_scale_for(2.0 ** t) for t in truth])
    clean = amplitude * (1 - np.exp(-DIMS[None, :] / scales[:, None]))
    return clean + rng.normal(0.0, noise, clean.shape), truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--curves", type=int, default=4000)
    ap.add_argument("--noise", type=float, default=1.0, help="score noise SD, points")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    scores, truth = curves(args.curves, args.noise, np.random.default_rng(args.seed))
    print(f"{datetime.date.today()}, {cpu_model()}, Python {platform.python_version()}; "
          f"{args.curves} curves, noise {args.noise} points, seed {args.seed}")
    print("| estimate | bias (log2) | RMSE (log2) | missing |\n|---|---|---|---|")
    for name, interpolate in (("first power of two reaching 95 %", False),
                              ("straight-segment crossing", True)):
        est = saturation_log2(scores, DIMS, scores[:, -1], interpolate=interpolate)
        err = est - truth
        ok = np.isfinite(err)
        print(f"| {name} | {err[ok].mean():+.3f} | {np.sqrt((err[ok] ** 2).mean()):.3f} "
              f"| {int((~ok).sum())} |")


if __name__ == "__main__":
    main()
