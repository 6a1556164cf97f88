"""The seed's shared helpers.

Reproducible timestamps, picking stubs, tags and custom values, generic rows for catalogue entries
without a hand-written seeder, and the deleted feeds.

Timestamps are laid out from a constant epoch (2025-01-01), never from the wall clock, and several
records share an exact `updatedAt` second so that same-second bookmark bugs show up.
"""

from __future__ import annotations

import random
import typing as t

from tap_capsule.sandbox.clock import at, day
from tap_capsule.sandbox.models import REF_TARGETS

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.catalogue import CapsuleObject
    from tap_capsule.sandbox.store import Store

YEAR = 365 * 86400


class SeedBase:
    """Builds one sandbox's data into a Store; each `seed_<stream>` fills one stream."""

    def __init__(self, store: Store, scale: int, seed: int) -> None:
        """Seeds about `scale` parties (and proportionally other records) from `seed`."""
        self.store = store
        self.scale = max(0, int(scale))
        self.rng = random.Random(seed)
        self._keys: dict[str, list] = {}

    # helpers ---------------------------------------------------------------------------------

    def times(self, count: int, start: int = 0, span: int = 300 * 86400) -> list[tuple[str, str]]:
        """(createdAt, updatedAt) pairs, inside the seed year.

        Created ascending with the id; every 4th updatedAt equals its predecessor's (records
        changed in the same second).
        """
        rng, out = self.rng, []
        step = max(1, span // max(1, count))
        prev_updated = None
        for i in range(count):
            created = start + i * step + rng.randrange(step)
            updated = min(YEAR - 1, created + rng.randrange(0, 60 * 86400))
            if i % 4 == 1 and prev_updated is not None and prev_updated >= created:
                updated = prev_updated
            prev_updated = updated
            out.append((at(created), at(updated)))
        return out

    def pick(self, stream: str) -> dict | None:
        """A random stored record of `stream` (None when the table is empty)."""
        rows = self.store.rows.get(stream) or {}
        if not rows:
            return None
        keys = self._keys.get(stream)
        if keys is None or len(keys) != len(rows):  # tables only grow while seeding
            keys = self._keys[stream] = list(rows)
        return rows[self.rng.choice(keys)]

    def stub(self, stream: str) -> dict | None:
        """The nested reference to a random record of `stream`."""
        rec = self.pick(stream)
        return self.store.stub(stream, rec) if rec else None

    def add(self, stream: str, rec: dict) -> dict:
        """Store a seeded record, numbered if needed (a stream the catalogue lacks is skipped)."""
        if stream not in self.store.rows:
            return rec
        rec = {"id": rec.get("id") or self.store.new_id(stream), **rec}
        return self.store.add(stream, rec)

    def tags_for(self, stream: str, k: int = 2) -> list[dict]:
        """Up to `k` of the entity's tag definitions, as a record carries them."""
        defs = list((self.store.rows.get(stream) or {}).values())
        chosen = self.rng.sample(defs, self.rng.randint(0, min(k, len(defs)))) if defs else []
        return [
            {
                "id": d["id"],
                "name": d["name"],
                "dataTag": d.get("dataTag"),
            }
            for d in sorted(chosen, key=lambda d: d["id"])
        ]

    def fields_for(self, stream: str, capture: str | None = None) -> list[dict]:
        """Custom-field values for about 70% of the definitions (a party's by capture rule)."""
        out = []
        for d in (self.store.rows.get(stream) or {}).values():
            if capture and d.get("captureRule") not in (None, capture):
                continue
            if self.rng.random() < 0.3:
                continue
            value = self.custom_value(d)
            item = {
                "id": self.store.new_id(stream + ":values"),
                "definition": {"id": d["id"], "name": d["name"]},
                "value": value,
            }
            if d.get("tag"):
                item["tagId"] = d["tag"]["id"]
            out.append(item)
        return out

    def custom_value(self, definition: dict) -> str | bool:
        """A value of the definition's type, as Capsule returns it (numbers as strings)."""
        kind, rng = definition["type"], self.rng
        if kind == "text":
            return f"Note {rng.randint(1, 999)}"
        if kind == "date":
            return day(rng.randint(-3000, 700))
        if kind == "list":
            return str(rng.choice(definition.get("options") or ["x"]))
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "number":
            return str(rng.choice([rng.randint(1, 5000), round(rng.uniform(1, 99), 2)]))
        if kind == "link":
            return f"https://example.com/{rng.randint(1, 999)}"
        raise ValueError(f"unknown custom field type {kind!r}")

    def finish(self, stream: str, rec: dict) -> dict:
        """Store a core record once its `missingImportantFields` is computed."""
        self.store.refresh_missing(self.store.objects[stream], rec)
        return self.add(stream, rec)

    # deletions -------------------------------------------------------------------------------

    def seed_deletions(self) -> None:
        """Some deleted and restricted records of each deleted feed, at seed times (not the clock).

        They are made as fresh records that never reach the main list, so nothing else points
        at them; deletedAt values repeat in pairs to exercise same-second `since`.
        """
        for stream in self.store.deleted:
            count = max(1, self.scale // 30) if self.scale else 0
            stamps = self.times(count * 2, start=200 * 86400, span=100 * 86400)
            for i in range(count):
                rid = self.store.new_id(stream)
                when = stamps[i - (i % 2)][1]
                self.store.deleted[stream].append({"id": rid, "deletedAt": when})
            for i in range(count):
                rid = self.store.new_id(stream)
                if stream == "parties":
                    person = i % 2 == 0
                    stub = {
                        "id": rid,
                        "type": "person" if person else "organisation",
                        **(
                            {"firstName": None, "lastName": "Private"}
                            if person
                            else {"name": "Private"}
                        ),
                        "pictureURL": "https://capsulecrm.com/theme/default/images/private_70.png",
                        "isRestricted": True,
                    }
                else:
                    stub = {"id": rid, "name": "Private", "isRestricted": True}
                self.store.restricted[stream].append(
                    {**stub, "_restrictedAt": stamps[count + i][1]}
                )

    # generic ---------------------------------------------------------------------------------

    def generic(self, o: CapsuleObject) -> None:
        """Plausible rows for a catalogue entry that has no hand-written seeder."""
        if o.is_link:
            parents = sorted(self.store.rows.get(o.parent or "") or {})[:3]
            targets = sorted(self.store.rows.get("parties") or {})
            for pid in parents:
                if targets:
                    self.store.links[o.stream][pid] = [self.rng.choice(targets)]
            return
        hosts: list[int | None] = [None]
        if o.parent and o.parent_key:
            hosts = sorted(self.store.rows.get(o.parent) or {})[:3]
        count = 2 if o.parent else min(20, max(3, self.scale // 10))
        stamps = self.times(count * len(hosts))
        n = 0
        for host in hosts:
            for _ in range(count):
                rec = {
                    k: self.value(k, spec, n)
                    for k, spec in o.schema.items()
                    if k not in ("_sdc_deleted_at", "custom_fields")
                }
                if "id" in rec:
                    rec["id"] = self.store.new_id(o.stream)
                else:
                    rec["id"] = self.store.new_id(o.stream)
                if "createdAt" in rec:
                    rec["createdAt"], rec["updatedAt"] = stamps[n]
                if host is not None:
                    rec[o.parent_key] = host
                self.store.add(o.stream, rec)
                n += 1

    def value(self, key: str, spec: dict, n: int) -> t.Any:  # noqa: ANN401 - any JSON value
        """A plausible value for one JSON-schema property of an unknown object."""
        types = spec.get("type") or []
        types = [types] if isinstance(types, str) else types
        rng = self.rng
        if "object" in types:
            target = REF_TARGETS.get(key)
            if target and self.store.rows.get(target):
                return self.stub(target)
            return {
                k: self.value(k, v, n)
                for k, v in (spec.get("properties") or {}).items()
                if "object" not in (v.get("type") or [])
            }
        if "array" in types:
            return []
        if "boolean" in types:
            return rng.random() < 0.5
        if "integer" in types:
            return rng.randint(1, 100)
        if "number" in types:
            return round(rng.uniform(1, 1000), 2)
        if spec.get("format") == "date-time":
            return at(rng.randrange(YEAR))
        if spec.get("format") == "date":
            return day(rng.randrange(365))
        if "string" in types:
            return f"{key[:1].upper()}{key[1:]} {n + 1}"
        return None
