"""A local emulator of the Capsule CRM API v2 (SPEC §6): the stand-in for Capsule in tests, the
demo and the benchmarks. Faithful to the fact sheet (`capsule-api.md`), not to our tap.

Stdlib only; from the project it imports nothing but `tap_capsule.catalogue`.
"""

from tap_capsule.sandbox.harness import Sandbox, SandboxClient, SandboxError

__all__ = ["Sandbox", "SandboxClient", "SandboxError"]
