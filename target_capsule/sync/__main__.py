"""`python -m target_capsule.sync`: the same as `capsule sync`."""

from target_capsule.sync.cli import entry

entry()
