"""Process-wide tuning for the long-running server processes (``orch-serv orchestrator`` and
``orch-serv service``), applied once they have started.

CPython's cyclic garbage collector runs a young-generation pass every 700 net container
allocations and, every so often, a pass over everything the process holds. A server that
advances hundreds of runs at once allocates a few hundred short-lived containers per step
(envelopes, events, futures) and very little of it is cyclic garbage, so under load those
passes cost it 20 to 25 % of its CPU (measured, docs/performance.md "Issue 16: the hot path,
second round"). :func:`tune_gc` moves what start-up created (modules, definitions,
connections) out of the collector's sight (:func:`gc.freeze`) and runs the young pass every
``gen0`` allocations instead. Reference counting frees everything else as before; only
cycles wait a little longer. Libraries never call this: the CLI does.
"""

from __future__ import annotations

import gc

#: Net container allocations between two young-generation collections (CPython: 700).
GEN0_THRESHOLD = 20_000


def tune_gc(gen0: int = GEN0_THRESHOLD) -> None:
    """Freeze what exists now and collect the young generation every ``gen0`` allocations
    (the older generations' ratios are left as they are)."""
    if gen0 < 1:
        raise ValueError(f"gen0 must be at least 1, not {gen0}")
    gc.collect()  # what start-up left as garbage goes now, not frozen for good
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0, gen1, gen2)


__all__ = ["GEN0_THRESHOLD", "tune_gc"]
