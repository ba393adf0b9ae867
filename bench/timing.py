"""The one timer of the benchmarks: the best of several calls (this machine is shared, and the
least disturbed call is the one that measures the code)."""
from __future__ import annotations

import time
from typing import Callable


def best_seconds(function: Callable[[], object], repeats: int = 3, *,
                 clock: Callable[[], float] = time.perf_counter, warm: bool = True) -> float:
    """The shortest of ``repeats`` timed calls of ``function()`` by ``clock`` (wall time by
    default; ``time.process_time`` for CPU time), after one untimed call when ``warm`` (Numba
    code loaded, pages touched)."""
    if warm:
        function()
    return best_interleaved({"function": function}, repeats, clock=clock)["function"]


def best_interleaved(functions: dict[str, Callable[[], object]], repeats: int = 3, *,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, float]:
    """The shortest of ``repeats`` timed calls of each function, called in turn round by round
    (no warm-up): a burst of load on the shared machine then hits every path, not one, so the
    ratios between them hold better than with one path's calls after another's."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = clock()
            function()
            times[name].append(clock() - start)
    return {name: min(values) for name, values in times.items()}
