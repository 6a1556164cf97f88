"""The Singer SDK's standard tap test suite, against a sandbox started for this module."""

from __future__ import annotations

import atexit

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_capsule.sandbox import Sandbox
from tap_capsule.tap import TapCapsule

# The SDK's advisory "fields in catalog but not in records" is a warning, which this project turns
# into errors. Capsule leaves optional keys out by design (embed-only `missingImportantFields`,
# tombstones' `_sdc_deleted_at`, write-only track `definition`), so that one advisory is exempt.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Fields in transformed catalog but not in records:UserWarning"
)

_SANDBOX = Sandbox(token="standard-suite-token", scale=20, seed=5).start()
atexit.register(_SANDBOX.stop)

_CONFIG = {"access_token": "standard-suite-token", "api_url": _SANDBOX.url}


def _every_stream_selected() -> dict:
    """The discovered catalog with the opt-in streams (links, tracks) selected too."""
    catalog = TapCapsule(config=_CONFIG).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = True
    return catalog


TestTapCapsule = get_tap_test_class(
    tap_class=TapCapsule, config=_CONFIG, catalog=_every_stream_selected()
)
