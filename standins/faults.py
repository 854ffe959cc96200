"""Fault injection shared by the X and Graph stand-ins: scripted failures, random failures, delays."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Faults:
    """Knobs a test turns to make a stand-in misbehave the way the real platform does.

    ``at_request``: {request number (1-based): fault} for scripted failures, e.g. ``{3: "429"}``.
    ``rate`` with ``choices``: fail that fraction of requests at random (seeded), picking a fault.
    ``delay_seconds``: sleep before answering (to kill a worker mid-run).
    A fault is a string the stand-in understands: ``"429"``, ``"500"``, ``"503"``, ``"drop"`` (close
    the connection), or a Graph error code like ``"4"``, ``"2"``, ``"190"``.
    """

    at_request: dict[int, str] = field(default_factory=dict)
    rate: float = 0.0
    choices: list[str] = field(default_factory=lambda: ["500"])
    seed: int = 0
    delay_seconds: float = 0.0
    requests: int = 0
    injected: list[tuple[int, str]] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def reseed(self, seed: int) -> None:
        """Restart the random sequence."""
        with self._lock:
            self.seed = seed
            self._rng.seed(seed)

    def next_request(self) -> str | None:
        """Count one request and return the fault to inject for it, if any."""
        with self._lock:
            self.requests += 1
            number = self.requests
            fault = self.at_request.pop(number, None)
            if fault is None and self.rate > 0 and self._rng.random() < self.rate:
                fault = self._rng.choice(self.choices)
            if fault is not None:
                self.injected.append((number, fault))
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return fault
