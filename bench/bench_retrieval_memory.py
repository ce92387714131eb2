"""Peak memory and time of one spatial-search retrieval score, on patch stacks of a real split's shape.

    .venv/bin/python bench/bench_retrieval_memory.py [--dims 1024 2048] [--pca 512]

The heaviest score units of a study are retrieval scores with spatial search: every image
is 30 sub-patch features, whitening is fitted on the training split's patches, and the
score needs the test distances and the two-fold validation score (Table 6 chooses by it).
Each measurement runs in a fresh process on random patch stacks of the quick profile's
object-instances split sizes (memory follows the shapes, not the values): the arrays are
made, the process's peak is reset (Linux: /proc/self/clear_refs), then the distances and
the validation score are computed as `scoring` does. Reported: the peak above the arrays.
Linux only (it reads VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date

from transferlab.cache import peak_mib, restart_peak
from transferlab.compute import cpu_model

# The quick profile's object-instances split sizes (train: pairs of views; database; queries).
SPLITS = {"train": 1200, "database": 240, "query": 240}
PATCHES = 30


def child(dim: int, pca: int) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np
    from transferlab import retrieval, scoring
    from transferlab.tasks import RetrievalTruth

    rng = np.random.default_rng(0)
    x = {s: rng.standard_normal((n, PATCHES, dim), dtype=np.float32) for s, n in SPLITS.items()}
    n_db, n_q = SPLITS["database"], SPLITS["query"]
    test = RetrievalTruth(tuple(rng.choice(n_db, 3, replace=False) for _ in range(n_q)),
                          tuple(np.zeros(0, np.int64) for _ in range(n_q)), -np.ones(n_q, np.int64))
    pairs = SPLITS["train"] // 2  # the train split as pairs of views of other instances
    validation = RetrievalTruth(tuple(np.array([2 * i + 1]) for i in range(pairs)),
                                tuple(np.zeros(0, np.int64) for _ in range(pairs)),
                                np.arange(pairs) * 2)
    config = retrieval.RetrievalConfig(pca_dim=pca, spatial=True)
    restart_peak()
    arrays = peak_mib()  # just restarted: what the process holds now
    start = time.perf_counter()
    dist = retrieval.retrieval_distances(x["train"], x["database"], x["query"], config)
    retrieval.evaluate_retrieval("retrieval_map", dist, test)
    scoring.validation_score(x["train"], validation, config)
    return {"seconds": time.perf_counter() - start, "arrays_mib": arrays,
            "peak_mib": peak_mib()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(child(int(argv[1]), int(argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[1024, 2048],
                        help="feature dimensions (medium fc6: 1024, large fc6: 2048)")
    parser.add_argument("--pca", type=int, default=512, help="whitening dimension")
    args = parser.parse_args(argv)
    rows = []
    for dim in args.dims:
        done = subprocess.run([sys.executable, __file__, "--child", str(dim), str(args.pca)],
                              capture_output=True, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        r = json.loads(done.stdout.splitlines()[-1])
        rows.append(f"| {dim} | {args.pca} | {r['arrays_mib']:.0f} | {r['peak_mib']:.0f} "
                    f"| {r['peak_mib'] - r['arrays_mib']:.0f} | {r['seconds']:.1f} |")
    print(f"Spatial-search retrieval score, splits {SPLITS} x {PATCHES} patches, one thread. "
          f"{cpu_model()}, Python {platform.python_version()}, {date.today().isoformat()}.\n")
    print("| dim | pca | process with the arrays (MiB) | peak (MiB) | above the arrays (MiB) "
          "| s |\n|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
