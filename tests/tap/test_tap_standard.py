"""The Singer SDK's standard tap test suite, against a sandbox started for this module."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_capsule.sandbox import Sandbox
from tap_capsule.tap import TapCapsule

_SANDBOX = Sandbox(token="standard-suite-token", scale=20, seed=5).start()
atexit.register(_SANDBOX.stop)

TestTapCapsule = get_tap_test_class(
    tap_class=TapCapsule,
    config={"access_token": "standard-suite-token", "api_url": _SANDBOX.url},
)
