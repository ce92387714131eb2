"""How far a long computation has got, told to whoever runs it.

A long step (SGD over a network or a fine-tune, feature extraction by batch) calls
`report(fraction)` as it goes. The code that runs it may install a sink with
`reporting_to(sink)`; without one, `report` costs a context-variable read. `part(i, n)` maps
what is reported inside it onto the i-th of n equal parts, for work that runs several such
steps in a row (a fine-tune at each of the profile's learning rates); `span(start, stop)`
onto any share (a task's splits, by their images); `quiet()` silences a block.

On a Dask worker, `parallel` installs a sink that forwards the fractions to the client, so
the plan's progress bar moves while a unit runs instead of jumping when it is done.
The notebooks, run in one process, show their own bars and install no sink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Sink = Callable[[float], None]

_SINK: ContextVar[Sink | None] = ContextVar("transferlab_progress_sink", default=None)


def report(fraction: float) -> None:
    """Tell the installed sink (if any) that `fraction` (clipped to [0, 1]) is done."""
    sink = _SINK.get()
    if sink is not None:
        sink(min(max(float(fraction), 0.0), 1.0))


@contextmanager
def reporting_to(sink: Sink) -> Iterator[None]:
    """Send what is reported inside the block (in this thread or context) to `sink`."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


@contextmanager
def quiet() -> Iterator[None]:
    """Report nothing of the block: for work whose inner steps would each report the whole
    (a search's many extractions), so that the bar does not run to its end at the first."""
    token = _SINK.set(None)
    try:
        yield
    finally:
        _SINK.reset(token)


@contextmanager
def part(i: int, n: int) -> Iterator[None]:
    """Report the block's fractions as the i-th (0-based) of `n` equal parts of the whole."""
    if not (isinstance(i, int) and isinstance(n, int) and 0 <= i < n):
        raise ValueError(f"part(i={i!r}, n={n!r}) needs integers with 0 <= i < n")
    with span(i / n, (i + 1) / n):
        yield


@contextmanager
def span(start: float, stop: float) -> Iterator[None]:
    """Report the block's fractions onto [start, stop] of the whole (0 <= start <= stop <= 1)."""
    if not 0.0 <= start <= stop <= 1.0:
        raise ValueError(f"span(start={start!r}, stop={stop!r}) needs 0 <= start <= stop <= 1")
    outer = _SINK.get()
    if outer is None:
        yield
        return
    with reporting_to(lambda fraction: outer(start + fraction * (stop - start))):
        yield
