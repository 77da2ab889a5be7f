"""Opt-in wall time per phase of a run (train, teacher, features, herding, NME,
evaluation, checkpoint...), for benchmarks/bench_protocol.py and anyone asking
where a run's time goes.

The run marks its phases with ``with phase("name"):``; that costs one global
lookup while no profile is active. Inside ``with profile() as p:`` every marked
phase accumulates its wall time in ``p.seconds`` (and its count in
``p.calls``). Time is exclusive: a phase nested in another (the teacher's
forward inside the training loop) is counted once, under the inner name.

    from aidge_incremental.profiling import profile
    with profile() as p:
        run_experiment(config)
    print(p.table())

The ground floor of the package: imports nothing of ours.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from typing import Dict, Iterator, List, Optional

__all__ = ["PhaseProfile", "phase", "profile"]


class PhaseProfile:
    """Accumulated exclusive wall time (seconds) and entries of each phase."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        self._stack: List[list] = []  # [name, start, time spent in nested phases]
        self._thread = threading.get_ident()

    def enter(self, name: str) -> None:
        self._stack.append([name, time.perf_counter(), 0.0])

    def leave(self) -> None:
        name, start, nested = self._stack.pop()
        elapsed = time.perf_counter() - start
        self.seconds[name] += elapsed - nested
        self.calls[name] += 1
        if self._stack:
            self._stack[-1][2] += elapsed

    @property
    def total(self) -> float:
        return float(sum(self.seconds.values()))

    def table(self, total: Optional[float] = None) -> str:
        """One line per phase, longest first, with its share of ``total``
        (default: the sum of the phases)."""
        total = total or self.total or 1.0
        lines = [f"{'phase':<14} {'seconds':>9} {'share':>7} {'calls':>7}"]
        for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            lines.append(f"{name:<14} {seconds:9.3f} {100 * seconds / total:6.1f}% {self.calls[name]:7d}")
        return "\n".join(lines)


_active: Optional[PhaseProfile] = None


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Marks a phase of the run (timed only inside :func:`profile`, and only on
    the thread that started the profile)."""
    current = _active
    if current is None or current._thread != threading.get_ident():
        yield
        return
    current.enter(name)
    try:
        yield
    finally:
        current.leave()


@contextlib.contextmanager
def profile() -> Iterator[PhaseProfile]:
    """Times every :func:`phase` entered inside the block; yields the profile.
    Time outside any phase is not counted (compare ``p.total`` with the wall time)."""
    global _active
    if _active is not None:
        raise RuntimeError("a phase profile is already active")
    _active = PhaseProfile()
    try:
        yield _active
    finally:
        _active = None
