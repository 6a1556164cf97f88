"""Fault injection on demand: the failures a Capsule client must survive.

429s, 5xx answers, dropped connections, slow answers and cut-off JSON bodies. Three faults act on
writes only, counted among write requests: a lost answer (the write is applied, the answer is a
502, as a proxy in front of Capsule gives when the answer never reaches it), a held answer (the
write is applied and its answer held back until a test releases it, so the test can kill the client
while it waits: a crash at that exact write) and a throttled write (one 429, nothing applied).

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
    "lost_answer_every",
    "hold_write",
    "hold_before_write",
    "throttle_write",
    "refuse_unknown_embed",
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
    lost_answer_every: int = 0  # every k-th write that succeeds: answered 502 (answer lost)
    hold_write: int = 0  # the n-th write from now: applied, its answer held until released
    # the n-th write from now: held before it is applied; once released it is dropped unapplied
    # (a client killed before its request reached Capsule)
    hold_before_write: int = 0
    throttle_write: int = 0  # the n-th write from now: answered 429 once, not applied
    # The other reading of Capsule's docs, which don't say what an unknown `embed` value does:
    # answer 400 instead of ignoring it (`meta` included, which only Capsule's own client sends).
    refuse_unknown_embed: bool = False

    @classmethod
    def from_dict(cls, values: dict | None) -> FaultConfig:
        """Settings from the admin API or the CLI; a bad one is a ValueError naming it."""
        values = dict(values or {})
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        config = cls(**values)
        for name in (
            "error_every",
            "slow_every",
            "drop_every",
            "malformed_every",
            "throttle_next",
            "lost_answer_every",
            "hold_write",
            "hold_before_write",
            "throttle_write",
        ):
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
    lost: bool = False  # a write: apply it, then answer 502
    hold: bool = False  # a write: apply it, then hold the answer until released
    hold_before: bool = False  # a write: hold it unapplied until released, then drop it


class FaultInjector:
    """Counts API requests and decides, per request, which fault applies."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        """No fault unless `config` asks for one."""
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self.count = 0
        self.writes = 0
        self.held = 0  # answers held back now
        self._release = threading.Event()

    def replace(self, config: FaultConfig) -> None:
        """New settings; the request counter restarts so `every k` counts from the next request."""
        with self._lock:
            self.config = config
            self.count = 0
            self.writes = 0

    def decide(self, is_write: bool = False) -> Decision:
        """The faults of the next request (throttled ones do not advance the counter)."""
        with self._lock:
            c = self.config
            if c.throttle_next > 0:
                c.throttle_next -= 1
                return Decision(throttle=True)
            if is_write and c.throttle_write > 0 and self.writes + 1 == c.throttle_write:
                c.throttle_write = 0  # once: its retry is the same write, answered normally
                return Decision(throttle=True)
            self.count += 1
            n = self.count

            def hit(every: int) -> bool:
                return every > 0 and n % every == 0

            lost = hold = hold_before = False
            if is_write:
                self.writes += 1
                lost = c.lost_answer_every > 0 and self.writes % c.lost_answer_every == 0
                hold = c.hold_write > 0 and self.writes == c.hold_write
                hold_before = c.hold_before_write > 0 and self.writes == c.hold_before_write
            return Decision(
                error=hit(c.error_every),
                drop=hit(c.drop_every),
                malformed=hit(c.malformed_every),
                slow=float(c.slow_seconds) if hit(c.slow_every) else 0.0,
                lost=lost,
                hold=hold,
                hold_before=hold_before,
            )

    def hold(self, timeout: float = 300.0) -> None:
        """Hold one answer (on its server thread) until `release()` or `timeout` seconds."""
        with self._lock:
            self.held += 1
            release = self._release
        release.wait(timeout)
        with self._lock:
            self.held -= 1

    def release(self) -> int:
        """Let every held answer go; how many there were."""
        with self._lock:
            count, release = self.held, self._release
            self._release = threading.Event()
        release.set()
        return count
