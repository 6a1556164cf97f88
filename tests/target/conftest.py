"""Fixtures of the target tests (defined in target_helpers)."""

from target_helpers import capsule, run_target  # noqa: F401
