"""The garbage collector of the web server (`alecton web`, `alecton dashboard`).

Why: a caller's first overview lists thousands of objects (2000 Deployments are ~100k dicts
and lists) and CPython's collector traverses every tracked object on each full collection.
Measured in the first overview of 2000 Deployments: two full collections took 150 and 90 ms
of its answer, walking mostly what was imported at start (FastAPI, pydantic, the Kubernetes
client), which lives as long as the process. The operator keeps CPython's defaults: the same
tuning there saved no CPU in a wave of 1000 releases and added 7 MiB to its peak
(docs/benchmarks.md).

So once started, what exists is frozen (never traversed again; it is not garbage), and the
youngest generation is collected after 20k allocations instead of 700, so parsing one list
does not set off a cascade of collections. Reference cycles are still collected; only less
often. `tune()` is called once start-up is done.
"""

from __future__ import annotations

import gc

# Allocations between young collections (CPython's default is 700); the older generations
# keep their defaults (a full collection still follows heap growth of a quarter).
YOUNG_THRESHOLD = 20_000


def tune() -> None:
    """Freeze what start-up made and collect the young generation less often."""
    gc.collect()  # what start-up made and dropped goes now, not into the frozen set
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
