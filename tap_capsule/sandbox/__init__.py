"""A local emulator of the Capsule CRM API v2.

It is the stand-in for Capsule in tests, the demo and the benchmarks, so it follows Capsule's
documentation and the responses real clients recorded, never what our tap or target does.

Stdlib only; from the project it imports nothing but `tap_capsule.catalogue`.
"""

from tap_capsule.sandbox.harness import Sandbox, SandboxClient, SandboxError

__all__ = ["Sandbox", "SandboxClient", "SandboxError"]
