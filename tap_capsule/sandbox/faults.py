"""Fault injection on demand: the failures a Capsule client must survive.

429s, 5xx answers, dropped connections, slow answers and cut-off JSON bodies.

Faults are counted per /api/v2 request (admin and OAuth calls never count), so a test can say
"every 3rd request answers 503" and know exactly which ones will.
"""

from __future__ import annotations

import dataclasses
import threading

FIELDS = (
    "error_every",
    "error_status",
    "slow_every",
    "slow_seconds",
    "drop_every",
    "malformed_every",
    "throttle_next",
    "throttle_reset_seconds",
    "fault_after_write",
)


@dataclasses.dataclass
class FaultConfig:
    """Which requests fail and how; zero turns a fault off."""

    error_every: int = 0  # every k-th request answers `error_status`
    error_status: int = 503
    slow_every: int = 0  # every k-th request waits `slow_seconds` before answering
    slow_seconds: float = 0.0
    drop_every: int = 0  # every k-th request: connection closed without any response
    malformed_every: int = 0  # every k-th request: 200 with a truncated JSON body
    throttle_next: int = 0  # the next n requests get 429
    throttle_reset_seconds: float = 2.0  # X-RateLimit-Reset that far ahead on those 429s
    fault_after_write: bool = False  # error/drop a write only after applying it (lost response)

    @classmethod
    def from_dict(cls, values: dict | None) -> FaultConfig:
        """Settings from the admin API or the CLI; a bad one is a ValueError naming it."""
        values = dict(values or {})
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        config = cls(**values)
        for name in ("error_every", "slow_every", "drop_every", "malformed_every", "throttle_next"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not 100 <= int(config.error_status) <= 599:
            raise ValueError(f"error_status must be an HTTP status, got {config.error_status!r}")
        if float(config.slow_seconds) < 0 or float(config.throttle_reset_seconds) < 0:
            raise ValueError("slow_seconds and throttle_reset_seconds must be >= 0")
        return config


@dataclasses.dataclass
class Decision:
    """What to do to one request."""

    throttle: bool = False
    error: bool = False
    drop: bool = False
    malformed: bool = False
    slow: float = 0.0


class FaultInjector:
    """Counts API requests and decides, per request, which fault applies."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        """No fault unless `config` asks for one."""
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self.count = 0

    def replace(self, config: FaultConfig) -> None:
        """New settings; the request counter restarts so `every k` counts from the next request."""
        with self._lock:
            self.config = config
            self.count = 0

    def decide(self) -> Decision:
        """The faults of the next request (throttled ones do not advance the counter)."""
        with self._lock:
            c = self.config
            if c.throttle_next > 0:
                c.throttle_next -= 1
                return Decision(throttle=True)
            self.count += 1
            n = self.count

            def hit(every: int) -> bool:
                return every > 0 and n % every == 0

            return Decision(
                error=hit(c.error_every),
                drop=hit(c.drop_every),
                malformed=hit(c.malformed_every),
                slow=float(c.slow_seconds) if hit(c.slow_every) else 0.0,
            )
