"""Capsule's fixed-window rate limit (4,000 requests per hour per user) and its headers.

Reset times are real epoch seconds (not the sandbox clock): clients sleep until them.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """One fixed window of `limit` requests per `window` seconds."""

    def __init__(self, limit: int = 4000, window: float = 3600) -> None:
        """A full window, starting now."""
        self._lock = threading.Lock()
        self.configure(limit, window)

    def configure(self, limit: int, window: float) -> None:
        """A new limit and window, starting now with nothing used."""
        if int(limit) < 0 or float(window) <= 0:
            raise ValueError("rate limit must be >= 0 and the window > 0 seconds")
        with self._lock:
            self.limit, self.window = int(limit), float(window)
            self.window_end = time.time() + self.window
            self.used = 0

    def _roll(self) -> None:
        now = time.time()
        if now >= self.window_end:
            self.window_end = now + self.window
            self.used = 0

    def consume(self) -> tuple[bool, dict]:
        """Count one request; (allowed, headers)."""
        with self._lock:
            self._roll()
            allowed = self.used < self.limit
            if allowed:
                self.used += 1
            return allowed, self._headers()

    def peek(self) -> dict:
        """The headers now, without counting a request (for 401 answers)."""
        with self._lock:
            self._roll()
            return self._headers()

    def _headers(self) -> dict:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
            "X-RateLimit-Reset": str(int(self.window_end)),
        }

    def throttled_headers(self, seconds: float) -> dict:
        """Headers for an injected 429: nothing left, reset `seconds` ahead."""
        with self._lock:
            return {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(time.time() + seconds + 0.999)),
            }
