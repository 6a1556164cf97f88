"""Deterministic seed data: the same (scale, seed) always gives byte-identical state.

Hand-written seeders cover the core objects; any catalogue entry without one gets plausible rows
from its JSON schema (`SeedBase.generic`), so a new catalogue entry is served without touching the
sandbox.
"""

from __future__ import annotations

import typing as t

from tap_capsule.sandbox.seed.records import RecordsSeeder
from tap_capsule.sandbox.seed.settings import SettingsSeeder

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.store import Store


class Seeder(SettingsSeeder, RecordsSeeder):
    """Every hand-written seeder."""


ORDER = [
    "countries",
    "currencies",
    "custom_titles",
    "users",
    "teams",
    "categories",
    "activity_types",
    "lost_reasons",
    "pipelines",
    "milestones",
    "boards",
    "stages",
    "track_definitions",
    "party_tags",
    "opportunity_tags",
    "case_tags",
    "party_custom_fields",
    "opportunity_custom_fields",
    "case_custom_fields",
    "parties",
    "opportunities",
    "cases",
    "opportunity_parties",
    "case_parties",
    "opportunity_tracks",
    "case_tracks",
    "tasks",
    "entries",
    "resthooks",
]


def seed_store(store: Store, scale: int, random_seed: int) -> None:
    """Fill `store` for (scale, random_seed): hand-written seeders first, then generic ones."""
    seeder = Seeder(store, scale, random_seed)
    done = set()
    for stream in ORDER:
        if stream in store.objects:
            getattr(seeder, f"seed_{stream}")()
            done.add(stream)
    for o in store.objects.values():
        if o.stream not in done:
            seeder.generic(o)
    seeder.seed_deletions()
    store.site = {
        "url": "https://sandbox.capsulecrm.com",
        "subdomain": "sandbox",
        "name": "Capsule Sandbox",
    }
    store.changed()
