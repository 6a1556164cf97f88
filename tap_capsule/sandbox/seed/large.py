"""A large account whose core records are generated on demand (`capsule sandbox --large N`).

The settings are seeded as usual (users, pipelines, tags, custom fields...). Parties,
opportunities, cases, entries and tasks become `GeneratedTable`s: record `i` is built from
(seed, stream, i) when asked for, and only writes live in memory. Sizes follow a large account's
proportions: for N parties, 0.3·N opportunities, 0.1·N cases, 3·N entries and 0.2·N tasks.

Layout (all arithmetic on the index, so a child list is computed, never searched):
- every generated record was created and last changed in the ten years before the seed's epoch
  (2025-01-01), in index order, with every fourth `updatedAt` equal to its predecessor's (same-
  second bookmarks); anything written later is newer, so a `since` read costs what changed;
- parties: indices `i % 5` in {0, 1} are organisations; the people at 5k+2…5k+4 work at the
  organisation 5k for seven blocks of ten;
- an opportunity's party is `j % parties`; a case's is offset by half the parties;
- entries: `e % 10` in 0…5 hang on a party, 6…8 on an opportunity, 9 on a case (1 to 3 each);
- tasks: `t % 5` is 0 or 1 for a party, 2 an opportunity, 3 a case, 4 nothing; their status
  repeats every 10 (5 open, 3 completed, 2 pending);
- every 7th opportunity and case has a track (held in memory, without track tasks), every 5th an
  additional party.
"""

from __future__ import annotations

import random
import typing as t

from tap_capsule.sandbox.clock import at, day
from tap_capsule.sandbox.lazy import GeneratedTable, Ref, Spread
from tap_capsule.sandbox.seed.base import SeedBase
from tap_capsule.sandbox.seed.names import ADJ, CITIES, COUNTRIES, FIRST, JOBS, LAST, NOUN, SUFFIX
from tap_capsule.sandbox.seed.records import TASK_BLANK

if t.TYPE_CHECKING:  # pragma: no cover
    from tap_capsule.sandbox.store import Store

# Records per party in a large account, and the generated tables' first ids.
RATIOS = {"parties": 1.0, "opportunities": 0.3, "cases": 0.1, "entries": 3.0, "tasks": 0.2}
FIRST_IDS = {
    "parties": 10_000_000,
    "opportunities": 20_000_000,
    "cases": 30_000_000,
    "entries": 40_000_000,
    "tasks": 50_000_000,
}
SPAN = 10 * 365 * 86400  # generated records fall in the ten years before the epoch
ROW_IDS = 500_000_000  # contact rows and custom values of generated records (writes count from 1)
TASK_STATUS = [("OPEN", "COMPLETED", "PENDING")[k] for k in (0, 1, 0, 2, 0, 1, 0, 1, 0, 2)]


def sizes(parties: int) -> dict[str, int]:
    """The record counts of a large account of `parties` parties."""
    return {s: int(parties * r) for s, r in RATIOS.items()}


def _same_second(i: int) -> int:
    return i - 1 if i % 4 == 1 else i


class LargeSeeder(SeedBase):
    """Replaces the core tables of a seeded store with generated ones."""

    def __init__(self, store: Store, parties: int, seed: int) -> None:
        """A large account of `parties` parties from `seed`."""
        super().__init__(store, 600, seed)  # 600: 20 rows in each deleted feed
        self.seed = seed
        self.n = sizes(parties)
        self.spreads = self._spreads()
        self.defs: dict[str, list[dict]] = {
            s: sorted(store.rows[s].values(), key=lambda d: d["id"])
            for s in (
                "users",
                "teams",
                "party_tags",
                "opportunity_tags",
                "case_tags",
                "party_custom_fields",
                "opportunity_custom_fields",
                "case_custom_fields",
                "milestones",
                "lost_reasons",
                "categories",
                "stages",
                "track_definitions",
            )
            if s in store.rows
        }

    # --- per-record helpers -------------------------------------------------------------------

    def _rng(self, stream: str, i: int) -> random.Random:
        return random.Random(f"{self.seed}:{stream}:{i}")

    def created(self, stream: str, i: int) -> str:
        """Record i's createdAt: spread over the span, in index order."""
        return at(-SPAN + (i * SPAN) // max(1, self.n[stream]))

    def updated(self, stream: str, i: int) -> str:
        """Record i's updatedAt: after its creation, before the epoch, in index order."""
        step = (SPAN - 86400) // max(1, self.n[stream])  # the last one a day before the epoch
        return at(-SPAN + (_same_second(i) + 1) * step)

    def choose(self, rng: random.Random, stream: str, p: float = 1.0) -> dict | None:
        """The stub of one of a settings table's rows (None with probability 1 - p)."""
        rows = self.defs.get(stream) or []
        if not rows or rng.random() >= p:
            return None
        return self.store.stub(stream, rng.choice(rows))

    def ref(self, stream: str, index: int | None) -> dict | None:
        """The stub of a generated record by index (just its id when it was deleted)."""
        if index is None:
            return None
        rid = FIRST_IDS[stream] + index
        rec = self.store.rows[stream].get(rid)
        return self.store.stub(stream, rec) if rec is not None else {"id": rid}

    def tags(self, rng: random.Random, stream: str) -> list[dict]:
        """Up to two of the entity's tags."""
        defs = self.defs.get(stream) or []
        chosen = rng.sample(defs, rng.randint(0, min(2, len(defs))))
        return [
            {"id": d["id"], "name": d["name"], "dataTag": d.get("dataTag")}
            for d in sorted(chosen, key=lambda d: d["id"])
        ]

    def fields(self, rng: random.Random, stream: str, i: int, capture: str | None = None) -> list:
        """Custom values for about 70% of the definitions, with ids unique per entity."""
        out = []
        self.rng = rng  # custom_value draws from it
        for j, d in enumerate(self.defs.get(stream) or []):
            if capture and d.get("captureRule") not in (None, capture):
                continue
            if rng.random() < 0.3:
                continue
            item = {
                "id": ROW_IDS + i * 64 + j,
                "definition": {"id": d["id"], "name": d["name"]},
                "value": self.custom_value(d),
            }
            if d.get("tag"):
                item["tagId"] = d["tag"]["id"]
            out.append(item)
        return out

    # --- the records --------------------------------------------------------------------------

    @staticmethod
    def organisation_of(i: int) -> int | None:
        """The organisation index of person `i` (None for an organisation or a free person)."""
        if i % 5 < 2 or (i // 5) % 10 >= 7:
            return None
        return i - i % 5

    def people_of(self, k: int) -> list[int]:
        """The people indices of organisation `k`."""
        if k % 5 or (k // 5) % 10 >= 7:
            return []
        return [p for p in (k + 2, k + 3, k + 4) if p < self.n["parties"]]

    def party(self, i: int) -> dict:
        """Party i."""
        rng, rid = self._rng("parties", i), FIRST_IDS["parties"] + i
        kind = "organisation" if i % 5 < 2 else "person"
        rec: dict[str, t.Any] = {"id": rid, "type": kind}
        if kind == "person":
            first, last = rng.choice(FIRST), rng.choice(LAST)
            titles = [r["title"] for r in (self.store.rows.get("custom_titles") or {}).values()]
            rec.update(
                firstName=first,
                lastName=last,
                title=rng.choice(titles) if titles and rng.random() < 0.5 else None,
                jobTitle=rng.choice(JOBS),
                organisation=self.ref("parties", self.organisation_of(i)),
            )
            email = f"{first[:1].lower()}.{rid}@example.com"
        else:
            rec["name"] = f"{rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(SUFFIX)} {i}"
            email = f"info.{rid}@example.org"
        rows = ROW_IDS + i * 8
        rec.update(
            about=rng.choice([None, "Met at a trade fair.", "Referred by a customer."]),
            lastContactedAt=None,
            pictureURL=f"https://capsulecrm.com/theme/default/images/{kind}_avatar_70.png",
            emailAddresses=[{"id": rows, "type": "Work", "address": email}],
            phoneNumbers=[
                {"id": rows + 1, "type": "Work", "number": f"+44 20 {1000 + i % 9000} {i % 10000}"}
            ]
            if rng.random() < 0.6
            else [],
            addresses=[
                {
                    "id": rows + 2,
                    "type": "Office",
                    "street": f"{rng.randint(1, 200)} High Street",
                    "city": rng.choice(CITIES),
                    "state": None,
                    "country": rng.choice(COUNTRIES)[0],
                    "zip": f"{rng.randint(10000, 99999)}",
                }
            ]
            if rng.random() < 0.4
            else [],
            websites=[],
            owner=self.choose(rng, "users"),
            team=self.choose(rng, "teams", 0.3),
            createdAt=self.created("parties", i),
            updatedAt=self.updated("parties", i),
            tags=self.tags(rng, "party_tags"),
            fields=self.fields(rng, "party_custom_fields", i, kind),
            missingImportantFields=False,
        )
        self.store.refresh_missing(self.store.objects["parties"], rec)
        return rec

    def opportunity(self, j: int) -> dict:
        """Opportunity j."""
        rng = self._rng("opportunities", j)
        milestone = self.choose(rng, "milestones") or {}
        full = self.store.rows.get("milestones", {}).get(milestone.get("id")) or {}
        closed = bool(full.get("complete"))
        rec = {
            "id": FIRST_IDS["opportunities"] + j,
            "name": f"Deal {j}",
            "description": rng.choice([None, "Follow up after demo."]),
            "party": self.ref("parties", self.spreads["opportunities"]["party"].parent(j)),
            "milestone": {"id": full["id"], "name": full.get("name")} if full else None,
            "lostReason": self.choose(rng, "lost_reasons")
            if closed and full.get("probability") == 0
            else None,
            "value": {"amount": rng.randint(1, 500) * 100, "currency": "GBP"},
            "expectedCloseOn": day(rng.randint(-300, 300)),
            "probability": full.get("probability"),
            "durationBasis": "FIXED",
            "duration": None,
            "closedOn": day(-rng.randint(1, 3000)) if closed else None,
            "lastContactedAt": None,
            "lastStageChangedAt": self.updated("opportunities", j),
            "lastOpenMilestone": None,
            "owner": self.choose(rng, "users"),
            "team": self.choose(rng, "teams", 0.3),
            "tags": self.tags(rng, "opportunity_tags"),
            "fields": self.fields(rng, "opportunity_custom_fields", j),
            "missingImportantFields": False,
            "createdAt": self.created("opportunities", j),
            "updatedAt": self.updated("opportunities", j),
        }
        self.store.refresh_missing(self.store.objects["opportunities"], rec)
        return rec

    def case(self, c: int) -> dict:
        """Case c."""
        rng = self._rng("cases", c)
        closed = c % 10 < 3
        stage = self.choose(rng, "stages", 0.6)
        rec = {
            "id": FIRST_IDS["cases"] + c,
            "name": f"Case {c}",
            "description": rng.choice([None, "Customer project."]),
            "status": "CLOSED" if closed else "OPEN",
            "party": self.ref("parties", self.spreads["cases"]["party"].parent(c)),
            "opportunity": None,
            "stage": stage,
            "startOn": day(-rng.randint(1, 3000)),
            "expectedCloseOn": day(rng.randint(-300, 300)),
            "closedOn": day(-rng.randint(1, 3000)) if closed else None,
            "lastContactedAt": None,
            "owner": self.choose(rng, "users"),
            "team": None,
            "tags": self.tags(rng, "case_tags"),
            "fields": self.fields(rng, "case_custom_fields", c),
            "missingImportantFields": False,
            "createdAt": self.created("cases", c),
            "updatedAt": self.updated("cases", c),
        }
        self.store.refresh_missing(self.store.objects["cases"], rec)
        return rec

    def task(self, k: int) -> dict:
        """Task k."""
        rng = self._rng("tasks", k)
        status = TASK_STATUS[k % len(TASK_STATUS)]
        owner = self.choose(rng, "users")
        links = {
            key: self.ref(stream, self.spreads["tasks"][key].parent(k))
            for key, stream in (("party", "parties"), ("opportunity", "opportunities"))
        }
        updated = self.updated("tasks", k)
        return {
            "id": FIRST_IDS["tasks"] + k,
            **TASK_BLANK,
            "description": rng.choice(["Call back", "Send proposal", "Book meeting"]),
            "category": self.choose(rng, "categories", 0.6),
            "dueOn": day(-rng.randint(0, 3000)),
            "status": status,
            **links,
            "kase": self.ref("cases", self.spreads["tasks"]["kase"].parent(k)),
            "owner": owner,
            "completedBy": (owner or {}).get("username") if status == "COMPLETED" else None,
            "completedAt": updated if status == "COMPLETED" else None,
            "createdAt": self.created("tasks", k),
            "updatedAt": updated,
        }

    def entry(self, e: int) -> dict:
        """Entry e (entryAt is its creation time, so newest first is the index order reversed)."""
        rng = self._rng("entries", e)
        kind = rng.choices(["note", "email", "task"], [60, 25, 15])[0]
        act = -4 if kind == "task" else rng.choice([-1, -1, -2, -3]) if kind == "note" else None
        activity = self.store.rows.get("activity_types", {}).get(act)
        created = self.created("entries", e)
        spread = self.spreads["entries"]
        rec = {
            "id": FIRST_IDS["entries"] + e,
            "type": kind,
            "entryAt": created,
            "subject": f"Re: quote {e}" if kind == "email" else None,
            "content": rng.choice(["Spoke about pricing.", "Sent the deck.", "Agreed next steps."]),
            "attachments": [],
            "creator": self.choose(rng, "users"),
            "activityType": {"id": act, "name": activity["name"]} if activity else None,
            "party": self.ref("parties", spread["party"].parent(e)),
            "kase": self.ref("cases", spread["kase"].parent(e)),
            "opportunity": self.ref("opportunities", spread["opportunity"].parent(e)),
            "parties": [],
            "participants": [],
            "createdAt": created,
            "updatedAt": self.updated("entries", e),
        }
        return rec

    # --- installing ---------------------------------------------------------------------------

    def _spreads(self) -> dict[str, dict[str, Spread]]:
        """Which parent each child index belongs to, per stream and reference key."""
        n = self.n
        return {
            "opportunities": {"party": Spread(n["parties"])},
            "cases": {"party": Spread(n["parties"], offset=n["parties"] // 2)},
            "entries": {
                "party": Spread(n["parties"], 10, range(6)),
                "opportunity": Spread(n["opportunities"], 10, (6, 7, 8)),
                "kase": Spread(n["cases"], 10, (9,)),
            },
            "tasks": {
                "party": Spread(n["parties"], 5, (0, 1), offset=7),
                "opportunity": Spread(n["opportunities"], 5, (2,)),
                "kase": Spread(n["cases"], 5, (3,)),
            },
        }

    def install(self) -> None:
        """Put the generated tables in the store, then the tracks, links and deleted feeds."""
        store, spreads = self.store, self.spreads
        builders: dict[str, t.Callable[[int], dict]] = {
            "parties": self.party,
            "opportunities": self.opportunity,
            "cases": self.case,
            "entries": self.entry,
            "tasks": self.task,
        }
        for stream, build in builders.items():
            if stream not in store.rows:
                continue
            first, count = FIRST_IDS[stream], self.n[stream]
            table = GeneratedTable(
                count,
                first,
                build,
                updated=lambda i, s=stream: self.updated(s, i),  # type: ignore[misc]
            )
            if stream == "entries":
                table.key = lambda i: (self.created("entries", i), FIRST_IDS["entries"] + i)
                table.sort_key = lambda rec: (rec.get("entryAt") or "", rec["id"])
            if stream == "tasks":
                table.light["status"] = (
                    lambda k: TASK_STATUS[k % len(TASK_STATUS)],
                    frozenset(TASK_STATUS),
                )
            for key, spread in spreads.get(stream, {}).items():
                parent = {"party": "parties", "opportunity": "opportunities", "kase": "cases"}[key]
                table.refs[key] = Ref(
                    FIRST_IDS[parent],
                    spread.parent,
                    lambda p, sp=spread, c=count: sp.children(p, c),  # type: ignore[misc]
                )
            if stream == "parties":
                table.refs["organisation"] = Ref(first, self.organisation_of, self.people_of)
            store.rows[stream] = table
            store._counters[store._counter_key(stream)] = first + count - 1
        self._tracks_and_links()
        for stream in store.deleted:
            store.deleted[stream].clear()
            store.restricted[stream].clear()
        self.rng = random.Random(self.seed)
        self.seed_deletions()
        for feed in (*store.deleted.values(), *store.restricted.values()):
            for row in feed:  # a year earlier: before every generated record's epoch
                for key in ("deletedAt", "_restrictedAt"):
                    if key in row:
                        row[key] = "2024" + row[key][4:]
        store.changed()

    def _tracks_and_links(self) -> None:
        """Tracks on every 7th opportunity and case, an additional party on every 5th."""
        store = self.store
        for stream, parent, links in (
            ("opportunity_tracks", "opportunities", "opportunity_parties"),
            ("case_tracks", "cases", "case_parties"),
        ):
            o = store.objects.get(stream)
            count = self.n[parent]
            if o is not None:
                store.rows[stream].clear()
                defs = [
                    d
                    for d in self.defs.get("track_definitions") or []
                    if d["captureRule"] == o.capture_rule
                ]
                for j in range(0, count if defs else 0, 7):
                    d = defs[j % len(defs)]
                    store.add(
                        stream,
                        {
                            "id": store.new_id(stream),
                            o.parent_key: FIRST_IDS[parent] + j,
                            "description": d["description"],
                            "trackDateOn": self.created(parent, j)[:10],
                            "direction": d["direction"],
                            "definition": {"id": d["id"], "name": d["description"]},
                            "tasks": [],
                        },
                    )
            if links in store.links and self.n["parties"]:
                table = store.links[links]
                table.clear()
                main = self.spreads[parent]["party"]
                for j in range(0, count, 5):
                    other = (j * 13 + 7) % self.n["parties"]
                    if other != main.parent(j):
                        table[FIRST_IDS[parent] + j] = [FIRST_IDS["parties"] + other]


def install(store: Store, parties: int, seed: int) -> None:
    """Make `store` a large account of `parties` parties generated from `seed`."""
    LargeSeeder(store, parties, seed).install()
