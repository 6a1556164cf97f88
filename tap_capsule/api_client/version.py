"""Which release is talking: the version both plugins report and send in their User-Agent.

Capsule's support and any proxy in between see the User-Agent, so it names the release that sent
each request. One distribution ships both packages (`tap_capsule` and `target_capsule`), so there is
one version, read from the installed metadata rather than written into the code where it would
go stale with the next release.
"""

from __future__ import annotations

import functools
import re
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "tap-capsule"  # both packages, tap_capsule and target_capsule, ship in this one
UNKNOWN_VERSION = "0+unknown"  # a valid version that sorts below every release

_PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@functools.cache
def package_version() -> str:
    """The installed distribution's version, from its metadata (what `--about` reports).

    A source tree run without installing it (`PYTHONPATH=.`) has no metadata: its
    `pyproject.toml` says which version it is; failing that, `0+unknown`.
    """
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _source_tree_version() or UNKNOWN_VERSION


def _source_tree_version() -> str | None:
    try:
        text = _PYPROJECT.read_text(encoding="utf-8")
    except OSError:
        return None
    if not re.search(rf'^name\s*=\s*"{DISTRIBUTION}"', text, re.MULTILINE):
        return None  # some other project's file
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return found.group(1) if found else None


def user_agent(program: str) -> str:
    """`program/<version>`: what each command sends as its User-Agent."""
    return f"{program}/{package_version()}"


USER_AGENT = user_agent(DISTRIBUTION)
