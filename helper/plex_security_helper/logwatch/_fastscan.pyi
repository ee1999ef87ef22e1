"""Types of the compiled scan (_fastscan.c); scan.py wires the callbacks."""

from collections.abc import Buffer, Callable
from typing import Any

class Scanner:
    def __init__(
        self,
        *,
        facts: Callable[[str], tuple[str, str, str, bool] | None],
        classify: Callable[[str], int],
        sanitise: Callable[[str], str],
        epoch: Callable[[str, str, str, str], float | None],
        parse: Callable[[bytes], tuple[Any, ...] | None],
        alert: Callable[..., None],
        window: float,
        threshold: float,
        probe_threshold: int,
        scan_paths: int,
        scan_window: float,
        flood: float,
        trust: float,
        factor: float,
        max_sources: int,
        capacity: int,
        seed: int,
        trace: Callable[[str, tuple[Any, ...]], None] | None = None,
    ) -> None: ...
    def feed(self, data: Buffer, final: bool = False, /) -> int: ...
    def result(self) -> tuple[int, int, list[tuple[str, int, int, int]]]: ...
