"""Deterministic seed data: the same (scale, seed) always gives byte-identical state.

Timestamps are laid out from a constant epoch (2025-01-01), never from the wall clock, and several
records share an exact `updatedAt` second so that same-second bookmark bugs show up. Hand-written
seeders cover the core objects; any catalogue entry without one gets plausible rows from its JSON
schema (`generic_rows`), so a new catalogue entry is served without touching the sandbox.
"""

from __future__ import annotations

import random
import typing as t
import unicodedata

from tap_capsule.catalogue import CapsuleObject
from tap_capsule.sandbox.clock import at, day
from tap_capsule.sandbox.store import REF_TARGETS, Store

YEAR = 365 * 86400
COUNTRIES = [
    ("United Kingdom", "GB", "GBR", "826"),
    ("United States", "US", "USA", "840"),
    ("Germany", "DE", "DEU", "276"),
    ("France", "FR", "FRA", "250"),
    ("Spain", "ES", "ESP", "724"),
    ("Italy", "IT", "ITA", "380"),
    ("Netherlands", "NL", "NLD", "528"),
    ("Ireland", "IE", "IRL", "372"),
    ("Canada", "CA", "CAN", "124"),
    ("Australia", "AU", "AUS", "036"),
    ("New Zealand", "NZ", "NZL", "554"),
    ("Japan", "JP", "JPN", "392"),
    ("India", "IN", "IND", "356"),
    ("Brazil", "BR", "BRA", "076"),
    ("Mexico", "MX", "MEX", "484"),
    ("Sweden", "SE", "SWE", "752"),
    ("Norway", "NO", "NOR", "578"),
    ("Denmark", "DK", "DNK", "208"),
    ("Switzerland", "CH", "CHE", "756"),
    ("Poland", "PL", "POL", "616"),
    ("Portugal", "PT", "PRT", "620"),
    ("South Africa", "ZA", "ZAF", "710"),
    ("Singapore", "SG", "SGP", "702"),
    ("Côte d'Ivoire", "CI", "CIV", "384"),
]
CURRENCIES = [
    ("GBP", "£", "British Pound", "British pounds"),
    ("USD", "$", "US Dollar", "US dollars"),
    ("EUR", "€", "Euro", "euros"),
    ("JPY", "¥", "Japanese Yen", "Japanese yen"),
    ("AUD", "A$", "Australian Dollar", "Australian dollars"),
    ("CAD", "CA$", "Canadian Dollar", "Canadian dollars"),
    ("CHF", "CHF", "Swiss Franc", "Swiss francs"),
    ("SEK", "kr", "Swedish Krona", "Swedish kronor"),
]
FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "Dev",
    "Eve",
    "Finn",
    "Grace",
    "Hugo",
    "Ines",
    "Jack",
    "Kemi",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tomás",
    "Uma",
    "Victor",
    "Wen",
    "Zoë",
]
LAST = [
    "Adams",
    "Brown",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Hughes",
    "Ito",
    "Jones",
    "Khan",
    "López",
    "Murphy",
    "Nowak",
    "O'Brien",
    "Patel",
    "Rossi",
    "Smith",
    "Tanaka",
    "Weber",
]
ADJ = [
    "Acme",
    "Blue",
    "Bright",
    "Cedar",
    "Delta",
    "Eagle",
    "Fusion",
    "Global",
    "Harbor",
    "Iron",
    "Juniper",
    "Kite",
    "Lumen",
    "Maple",
    "North",
    "Orbit",
    "Pioneer",
    "Quartz",
    "River",
    "Summit",
]
NOUN = [
    "Analytics",
    "Bakery",
    "Consulting",
    "Dynamics",
    "Engineering",
    "Foods",
    "Graphics",
    "Holdings",
    "Industries",
    "Labs",
    "Logistics",
    "Media",
    "Partners",
    "Robotics",
    "Systems",
]
SUFFIX = ["Ltd", "Inc", "GmbH", "LLC", "plc", "SA", "BV"]
JOBS = ["CEO", "CTO", "Head of Sales", "Buyer", "Office Manager", "Engineer", "Accountant"]
CITIES = ["London", "Leeds", "Berlin", "Paris", "Madrid", "Dublin", "Toronto", "Sydney", "Tokyo"]


class Seeder:
    """Builds one sandbox's data into a Store; each `seed_<stream>` fills one stream."""

    def __init__(self, store: Store, scale: int, seed: int) -> None:
        self.store = store
        self.scale = max(0, int(scale))
        self.rng = random.Random(seed)
        self._keys: dict[str, list] = {}

    # helpers ---------------------------------------------------------------------------------

    def times(self, count: int, start: int = 0, span: int = 300 * 86400) -> list[tuple[str, str]]:
        """(createdAt, updatedAt) pairs: created ascending with the id, every 4th updatedAt equal
        to its predecessor's (same-second records), all inside the seed year."""
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
        rows = self.store.rows.get(stream) or {}
        if not rows:
            return None
        keys = self._keys.get(stream)
        if keys is None or len(keys) != len(rows):  # tables only grow while seeding
            keys = self._keys[stream] = list(rows)
        return rows[self.rng.choice(keys)]

    def stub(self, stream: str) -> dict | None:
        rec = self.pick(stream)
        return self.store.stub(stream, rec) if rec else None

    def add(self, stream: str, rec: dict) -> dict:
        if stream not in self.store.rows:
            return rec
        rec = {"id": rec.get("id") or self.store.new_id(stream), **rec}
        return self.store.add(stream, rec)

    def tags_for(self, stream: str, k: int = 2) -> list[dict]:
        defs = list((self.store.rows.get(stream) or {}).values())
        chosen = self.rng.sample(defs, self.rng.randint(0, min(k, len(defs)))) if defs else []
        return [
            {
                "id": d["id"],
                "name": d["name"],
                "description": d.get("description"),
                "dataTag": d.get("dataTag"),
            }
            for d in sorted(chosen, key=lambda d: d["id"])
        ]

    def fields_for(self, stream: str, capture: str | None = None) -> list[dict]:
        out = []
        for d in (self.store.rows.get(stream) or {}).values():
            if capture and d.get("captureRule") not in (None, capture):
                continue
            if self.rng.random() < 0.3:
                continue
            kind, rng = d["type"], self.rng
            value: t.Any = {
                "text": lambda: f"Note {rng.randint(1, 999)}",
                "date": lambda: day(rng.randint(-3000, 700)),
                "list": lambda: rng.choice(d.get("options") or ["x"]),
                "boolean": lambda: rng.random() < 0.5,
                "number": lambda: str(
                    rng.choice([rng.randint(1, 5000), round(rng.uniform(1, 99), 2)])
                ),
                "link": lambda: f"https://example.com/{rng.randint(1, 999)}",
            }[kind]()
            item = {
                "id": self.store.new_id(stream + ":values"),
                "definition": {"id": d["id"], "name": d["name"]},
                "value": value,
            }
            if d.get("tag"):
                item["tagId"] = d["tag"]["id"]
            out.append(item)
        return out

    def finish(self, stream: str, rec: dict) -> dict:
        self.store._refresh_missing(self.store.objects[stream], rec)
        return self.add(stream, rec)

    # reference data --------------------------------------------------------------------------

    def seed_countries(self) -> None:
        for i, (name, a2, a3, num) in enumerate(COUNTRIES):
            self.store.rows["countries"][i] = {
                "name": name,
                "alpha2Code": a2,
                "alpha3Code": a3,
                "numericCode": num,
            }

    def seed_currencies(self) -> None:
        for i, (code, symbol, name, plural) in enumerate(CURRENCIES):
            self.store.rows["currencies"][i] = {
                "code": code,
                "symbol": symbol,
                "name": name,
                "pluralName": plural,
            }

    def seed_custom_titles(self) -> None:
        for title in ("Mr", "Mrs", "Ms", "Miss", "Dr", "Prof"):
            self.add("custom_titles", {"title": title})

    def seed_users(self) -> None:
        people = [
            ("ada", "Ada Admin"),
            ("ben", "Ben Seller"),
            ("cat", "Cat Support"),
            ("dan", "Dan Manager"),
        ]
        for i, (username, name) in enumerate(people):
            created = at(i * 3600)
            self.add(
                "users",
                {
                    "username": username,
                    "name": name,
                    "locale": "en-GB",
                    "currency": "GBP",
                    "timezone": "Europe/London",
                    "status": "ACTIVE",
                    "lastLoginAt": at(YEAR - 86400 * (i + 1)),
                    "taskReminder": {"timeOfDay": "09:00", "daysBefore": 1},
                    "party": None,
                    "createdAt": created,
                    "updatedAt": created,
                },
            )
        self.store.token_user_id = min(self.store.rows["users"], default=None)

    def seed_teams(self) -> None:
        users = list(self.store.rows.get("users", {}).values())
        for i, name in enumerate(("Sales", "Support")):
            members = [
                {"id": 100 * (i + 1) + j, "user": self.store.stub("users", u)}
                for j, u in enumerate(users)
                if (j + i) % 2 == 0
            ]
            self.add(
                "teams",
                {
                    "name": name,
                    "memberships": members,
                    "createdAt": at(86400 + i),
                    "updatedAt": at(86400 * 30 + i),
                },
            )

    def seed_categories(self) -> None:
        for name, colour in (
            ("Call", "#1f77b4"),
            ("Email", "#ff7f0e"),
            ("Follow-up", "#2ca02c"),
            ("Meeting", "#d62728"),
        ):
            self.add("categories", {"name": name, "colour": colour})

    def seed_activity_types(self) -> None:
        system = [
            (-4, "Task completed", "task"),
            (-3, "Call", "phone"),
            (-2, "Meeting", "people"),
            (-1, "Note", "note"),
        ]
        for i, (rid, name, icon) in enumerate(system):
            self.add(
                "activity_types",
                {
                    "id": rid,
                    "name": name,
                    "icon": {
                        "id": rid,
                        "order": i,
                        "displayName": name,
                        "iconName": icon,
                        "isSystem": True,
                    },
                    "updateLastContacted": rid != -1,
                },
            )
        for i, name in enumerate(("Demo", "Lunch")):
            self.add(
                "activity_types",
                {
                    "id": i + 1,
                    "name": name,
                    "icon": {
                        "id": i + 1,
                        "order": 10 + i,
                        "displayName": name,
                        "iconName": "star",
                        "isSystem": False,
                    },
                    "updateLastContacted": True,
                },
            )

    def seed_lost_reasons(self) -> None:
        for i, name in enumerate(("Price", "Timing", "Competitor", "No budget")):
            self.add(
                "lost_reasons",
                {
                    "name": name,
                    "includedForConversion": i % 2 == 0,
                    "createdAt": at(3600 * i),
                    "updatedAt": at(3600 * i + 60),
                },
            )

    def seed_pipelines(self) -> None:
        for i, (name, desc) in enumerate(
            (("Sales", "New business"), ("Renewals", "Existing customers"))
        ):
            # Sales is created first: it is the "oldest pipeline" the legacy /milestones lists.
            self.add(
                "pipelines",
                {
                    "name": name,
                    "description": desc,
                    "deleted": False,
                    "createdAt": at(i * 86400),
                    "updatedAt": at(i * 86400 + 7200),
                },
            )

    def seed_milestones(self) -> None:
        plans = [
            [
                ("New", 10, False),
                ("Qualified", 30, False),
                ("Proposal", 60, False),
                ("Negotiation", 80, False),
                ("Won", 100, True),
                ("Lost", 0, True),
            ],
            [
                ("Upcoming", 20, False),
                ("In talks", 50, False),
                ("Renewed", 100, True),
                ("Churned", 0, True),
            ],
        ]
        for pipeline, plan in zip(self.store.rows.get("pipelines", {}).values(), plans):
            for order, (name, probability, complete) in enumerate(plan):
                self.add(
                    "milestones",
                    {
                        "name": name,
                        "description": f"{name} ({pipeline['name']})",
                        "complete": complete,
                        "probability": probability,
                        "daysUntilStale": 30,
                        "displayOrder": order,
                        "pipeline": {"id": pipeline["id"], "name": pipeline["name"]},
                        "pipelineId": pipeline["id"],
                        "createdAt": pipeline["createdAt"],
                        "updatedAt": at(pipeline["id"] * 60 + order),
                    },
                )

    def seed_boards(self) -> None:
        for i, (name, deleted) in enumerate(
            (("Onboarding", False), ("Support", False), ("Old projects", True))
        ):
            self.add(
                "boards",
                {
                    "name": name,
                    "description": f"{name} board",
                    "deleted": deleted,
                    "createdAt": at(i * 86400),
                    "updatedAt": at(i * 86400 + 300),
                },
            )

    def seed_stages(self) -> None:
        boards = list(self.store.rows.get("boards", {}).values())
        plan = [
            [("Kickoff", False), ("Setup", False), ("Live", False), ("Legacy step", True)],
            [("Triage", False), ("In progress", False), ("Done", False)],
            [("Old stage", False)],
        ]
        for board, stages in zip(boards, plan):
            for order, (name, archived) in enumerate(stages):
                self.add(
                    "stages",
                    {
                        "name": name,
                        "description": None,
                        "board": {"id": board["id"], "name": board["name"]},
                        "displayOrder": order,
                        "archived": archived,
                        "createdAt": board["createdAt"],
                        "updatedAt": at(86400 * 10 + board["id"] * 60 + order),
                    },
                )

    def seed_track_definitions(self) -> None:
        plan = [
            ("New customer onboarding", "OPPORTUNITY", "onboarding"),
            ("Proposal follow-up", "OPPORTUNITY", ""),
            ("Project kickoff", "CASEFILE", "kickoff"),
            ("Support escalation", "CASEFILE", ""),
        ]
        for i, (desc, rule, tag) in enumerate(plan):
            tasks = [
                {
                    "id": 10 * (i + 1) + j,
                    "description": f"{desc}: step {j + 1}",
                    "daysAfterRule": "TRACK_START",
                    "daysAfter": 2 * j,
                    "displayOrder": j,
                    "dayDelayRule": "TRACK_DAYS",
                    "category": None,
                    "trackTaskAssignee": {"assigneeType": "ENTITY_OWNER", "owner": None},
                }
                for j in range(2)
            ]
            self.add(
                "track_definitions",
                {
                    "description": desc,
                    "tag": tag,
                    "captureRule": rule,
                    "direction": "START_DATE",
                    "taskDefinitions": tasks,
                    "createdAt": at(i * 1000),
                    "updatedAt": at(i * 1000 + 10),
                },
            )

    def _tag_defs(self, stream: str, names: list[tuple[str, bool]]) -> None:
        for name, data_tag in names:  # ids restart at 1 per entity: reused across entities
            self.add(stream, {"name": name, "description": f"{name} records", "dataTag": data_tag})

    def seed_party_tags(self) -> None:
        self._tag_defs(
            "party_tags",
            [
                ("VIP", False),
                ("Customer", False),
                ("Prospect", False),
                ("Supplier", False),
                ("Partner", True),
            ],
        )

    def seed_opportunity_tags(self) -> None:
        self._tag_defs("opportunity_tags", [("Hot", False), ("Renewal", False), ("Upsell", False)])

    def seed_case_tags(self) -> None:
        self._tag_defs("case_tags", [("Urgent", False), ("Billing", False), ("Onboarding", False)])

    def _field_defs(self, stream: str, tags: str, plan: list[tuple]) -> None:
        tag_rows = self.store.rows.get(tags) or {}
        data_tag = next((d for d in tag_rows.values() if d.get("dataTag")), None)
        for order, (name, kind, options, capture, important, on_tag) in enumerate(plan):
            self.add(
                stream,
                {
                    "name": name,
                    "type": kind,
                    "description": f"{name} ({kind})",
                    "displayOrder": order,
                    "important": important,
                    "captureRule": capture,
                    "options": options,
                    "tag": (
                        {"id": data_tag["id"], "name": data_tag["name"], "dataTag": True}
                        if on_tag and data_tag
                        else None
                    ),
                },
            )

    def seed_party_custom_fields(self) -> None:
        self._field_defs(
            "party_custom_fields",
            "party_tags",
            [
                (
                    "Industry",
                    "list",
                    ["Retail", "Tech", "Finance", "Health"],
                    "organisation",
                    True,
                    False,
                ),
                ("Founded", "date", None, "organisation", False, False),
                ("Employees", "number", None, "organisation", False, False),
                ("Newsletter", "boolean", None, "person", False, False),
                ("Notes", "text", None, None, False, False),
                ("LinkedIn", "link", None, "person", False, False),
                ("Partner level", "list", ["Gold", "Silver"], None, False, True),
            ],
        )

    def seed_opportunity_custom_fields(self) -> None:
        self._field_defs(
            "opportunity_custom_fields",
            "opportunity_tags",
            [
                ("Source", "list", ["Web", "Referral", "Event"], None, True, False),
                ("Contract start", "date", None, None, False, False),
                ("Seats", "number", None, None, False, False),
                ("Renewal", "boolean", None, None, False, False),
                ("Competitor", "text", None, None, False, False),
                ("Proposal", "link", None, None, False, False),
            ],
        )

    def seed_case_custom_fields(self) -> None:
        self._field_defs(
            "case_custom_fields",
            "case_tags",
            [
                ("Priority", "list", ["Low", "Normal", "High"], None, True, False),
                ("Go-live", "date", None, None, False, False),
                ("Hours", "number", None, None, False, False),
                ("Billable", "boolean", None, None, False, False),
                ("Summary", "text", None, None, False, False),
                ("Ticket", "link", None, None, False, False),
            ],
        )

    # core records ----------------------------------------------------------------------------

    def seed_parties(self) -> None:
        rng, n = self.rng, self.scale
        orgs = max(1, round(n * 0.4)) if n else 0
        kinds = (
            ["organisation"]
            + rng.sample(["organisation"] * (orgs - 1) + ["person"] * (n - orgs), max(0, n - 1))
            if n
            else []
        )
        titles = [r["title"] for r in (self.store.rows.get("custom_titles") or {}).values()]
        countries = [c[0] for c in COUNTRIES]
        names: set[str] = set()
        org_stubs: list[dict] = []
        for i, ((created, updated), kind) in enumerate(zip(self.times(len(kinds)), kinds)):
            rec: dict[str, t.Any] = {"id": self.store.new_id("parties"), "type": kind}
            if kind == "person":
                first, last = rng.choice(FIRST), rng.choice(LAST)
                rec.update(
                    firstName=first,
                    lastName=last,
                    title=rng.choice(titles) if titles and rng.random() < 0.5 else None,
                    jobTitle=rng.choice(JOBS),
                    organisation=rng.choice(org_stubs)
                    if org_stubs and rng.random() < 0.7
                    else None,
                )
                local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore")
                email = f"{local.decode().lower().replace(chr(39), '')}.{rec['id']}@example.com"
            else:
                name = f"{rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(SUFFIX)}"
                while name in names:
                    name = f"{name} {rng.randint(2, 99)}"
                names.add(name)
                rec["name"] = name
                email = f"info.{rec['id']}@example.org"
            row = lambda: self.store.new_id("contact-rows")  # noqa: E731
            rec.update(
                {
                    "about": rng.choice([None, "Met at a trade fair.", "Referred by a customer."]),
                    "lastContactedAt": at(YEAR - rng.randrange(200 * 86400))
                    if rng.random() < 0.6
                    else None,
                    "pictureURL": f"https://capsulecrm.com/theme/default/images/{kind}_avatar_70.png",
                    "emailAddresses": [
                        {"id": row(), "type": rng.choice(["Work", "Home", None]), "address": email}
                    ],
                    "phoneNumbers": [
                        {
                            "id": row(),
                            "type": rng.choice(["Work", "Mobile", None]),
                            "number": f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                        }
                        for _ in range(rng.randint(0, 2))
                    ],
                    "addresses": [
                        {
                            "id": row(),
                            "type": rng.choice(["Office", "Billing", None]),
                            "street": f"{rng.randint(1, 200)} High Street",
                            "city": rng.choice(CITIES),
                            "state": None,
                            "country": rng.choice(countries),
                            "zip": f"{rng.randint(10000, 99999)}",
                        }
                        for _ in range(rng.randint(0, 1))
                    ],
                    "websites": [
                        {
                            "id": row(),
                            "type": None,
                            "service": "URL",
                            "address": f"https://www.example.com/{rec['id']}",
                            "url": f"https://www.example.com/{rec['id']}",
                        }
                    ]
                    if rng.random() < 0.4
                    else [],
                    "owner": self.stub("users"),
                    "team": self.stub("teams") if rng.random() < 0.3 else None,
                    "createdAt": created,
                    "updatedAt": updated,
                    "tags": self.tags_for("party_tags"),
                    "fields": self.fields_for("party_custom_fields", kind),
                    "missingImportantFields": False,
                }
            )
            self.finish("parties", rec)
            if kind == "organisation":
                org_stubs.append(self.store.stub("parties", rec))
        # Users are people in the account: link each to a person party.
        people = [p for p in self.store.rows["parties"].values() if p["type"] == "person"]
        for user, person in zip(self.store.rows.get("users", {}).values(), people):
            user["party"] = self.store.stub("parties", person)

    def seed_opportunities(self) -> None:
        rng, count = self.rng, self.scale // 2
        milestones = list((self.store.rows.get("milestones") or {}).values())
        by_pipeline: dict[int, list[dict]] = {}
        for m in milestones:
            by_pipeline.setdefault(m["pipelineId"], []).append(m)
        pipelines = sorted(by_pipeline)
        if not self.store.rows["parties"] or not pipelines:
            return
        for created, updated in self.times(count, start=86400):
            pipeline = pipelines[0] if rng.random() < 0.7 or len(pipelines) == 1 else pipelines[1]
            milestone = rng.choice(by_pipeline[pipeline])
            open_ms = [m for m in by_pipeline[pipeline] if not m["complete"]]
            lost = milestone["complete"] and milestone["probability"] == 0
            basis = rng.choice(["FIXED", "MONTH", "YEAR"])
            rec = {
                "id": self.store.new_id("opportunities"),
                "name": f"{rng.choice(['Deal', 'Upgrade', 'Renewal', 'Pilot'])} {rng.randint(1, 9999)}",
                "description": rng.choice([None, "Follow up after demo."]),
                "party": self.stub("parties"),
                "milestone": {"id": milestone["id"], "name": milestone["name"]},
                "lostReason": self.stub("lost_reasons") if lost else None,
                "value": {
                    "amount": rng.randint(1, 500) * 100,
                    "currency": rng.choice(["GBP", "USD", "EUR"]),
                },
                "expectedCloseOn": day(rng.randint(30, 500)),
                "probability": milestone["probability"],
                "durationBasis": basis,
                "duration": None if basis == "FIXED" else rng.randint(1, 24),
                "closedOn": day(rng.randint(30, 360)) if milestone["complete"] else None,
                "lastContactedAt": None,
                "lastStageChangedAt": updated,
                "lastOpenMilestone": (
                    {"id": open_ms[-1]["id"], "name": open_ms[-1]["name"]} if open_ms else None
                ),
                "owner": self.stub("users"),
                "team": self.stub("teams") if rng.random() < 0.3 else None,
                "tags": self.tags_for("opportunity_tags"),
                "fields": self.fields_for("opportunity_custom_fields"),
                "missingImportantFields": False,
                "createdAt": created,
                "updatedAt": updated,
            }
            self.finish("opportunities", rec)

    def seed_cases(self) -> None:
        rng, count = self.rng, self.scale // 4
        stages = [s for s in (self.store.rows.get("stages") or {}).values() if not s["archived"]]
        opps = list((self.store.rows.get("opportunities") or {}).values())
        if not self.store.rows["parties"]:
            return
        for created, updated in self.times(count, start=2 * 86400):
            closed = rng.random() < 0.3
            owner = self.stub("users") if rng.random() < 0.8 else None
            stage = rng.choice(stages) if stages and rng.random() < 0.6 else None
            opp = rng.choice(opps) if opps and rng.random() < 0.3 else None
            rec = {
                "id": self.store.new_id("cases"),
                "name": f"{rng.choice(['Onboarding', 'Support', 'Migration', 'Audit'])} {rng.randint(1, 9999)}",
                "description": rng.choice([None, "Customer project."]),
                "status": "CLOSED" if closed else "OPEN",
                "party": self.stub("parties"),
                "opportunity": {"id": opp["id"], "name": opp["name"]} if opp else None,
                "stage": {"id": stage["id"], "name": stage["name"]} if stage else None,
                "startOn": day(rng.randint(0, 300)),
                "expectedCloseOn": day(rng.randint(100, 500)),
                "closedOn": day(rng.randint(100, 360)) if closed else None,
                "lastContactedAt": None,
                "owner": owner,
                "team": self.stub("teams") if owner is None or rng.random() < 0.2 else None,
                "tags": self.tags_for("case_tags"),
                "fields": self.fields_for("case_custom_fields"),
                "missingImportantFields": False,
                "createdAt": created,
                "updatedAt": updated,
            }
            self.finish("cases", rec)

    def _links(self, stream: str) -> None:
        o = self.store.objects[stream]
        parents = list(self.store.rows.get(o.parent or "") or {})
        parties = list(self.store.rows["parties"])
        if not parents or not parties:
            return
        for i, pid in enumerate(parents):
            if i == 0 or self.rng.random() < 0.2:  # at least one link whenever there are parents
                self.store.links[stream][pid] = sorted(
                    set(self.rng.sample(parties, min(2, len(parties))))
                )

    def seed_opportunity_parties(self) -> None:
        self._links("opportunity_parties")

    def seed_case_parties(self) -> None:
        self._links("case_parties")

    def _tracks(self, stream: str) -> None:
        o = self.store.objects[stream]
        parent = self.store.objects[o.parent]
        defs = [
            d
            for d in (self.store.rows.get("track_definitions") or {}).values()
            if d["captureRule"] == o.capture_rule
        ]
        rows = list((self.store.rows.get(o.parent) or {}).values())
        if not defs or not rows:
            return
        chosen = [r for i, r in enumerate(rows) if i == 0 or self.rng.random() < 0.15]
        for host in chosen:
            definition = self.rng.choice(defs)
            rec = {
                "id": self.store.new_id(stream),
                o.parent_key: host["id"],
                "description": definition["description"],
                "trackDateOn": host["createdAt"][:10],
                "direction": definition["direction"],
                "definition": {"id": definition["id"], "name": definition["description"]},
                "tasks": [],
                "createdAt": host["createdAt"],
                "updatedAt": host["updatedAt"],
            }
            for spec in definition["taskDefinitions"]:
                task = self._task(
                    rec["createdAt"],
                    rec["updatedAt"],
                    status="OPEN",
                    hasTrack=True,
                    **{parent.item_key: self.store.stub(parent.stream, host)},
                    description=spec["description"],
                    daysAfter=spec["daysAfter"],
                )
                rec["tasks"].append({"id": task["id"], "description": task["description"]})
            self.add(stream, rec)

    def seed_opportunity_tracks(self) -> None:
        self._tracks("opportunity_tracks")

    def seed_case_tracks(self) -> None:
        self._tracks("case_tracks")

    def _task(self, created: str, updated: str, **values: t.Any) -> dict:
        rec = {
            "id": self.store.new_id("tasks"),
            "description": "Task",
            "detail": None,
            "category": None,
            "dueOn": day(self.rng.randint(0, 400)),
            "dueTime": None,
            "status": "OPEN",
            "party": None,
            "opportunity": None,
            "kase": None,
            "owner": self.stub("users"),
            "completedBy": None,
            "completedAt": None,
            "daysAfter": None,
            "taskDelayRule": None,
            "taskDayDelayRule": None,
            "nextTask": None,
            "hasTrack": False,
            "repeat": None,
            "createdAt": created,
            "updatedAt": updated,
        }
        rec.update(values)
        if rec["hasTrack"]:
            rec.update(taskDelayRule="TRACK_START", taskDayDelayRule="TRACK_DAYS")
        return self.add("tasks", rec)

    def seed_tasks(self) -> None:
        rng = self.rng
        for created, updated in self.times(self.scale, start=3 * 86400):
            status = rng.choices(["OPEN", "COMPLETED", "PENDING"], [50, 35, 15])[0]
            link = rng.choices(["party", "opportunity", "kase", None], [40, 25, 15, 20])[0]
            target = {"party": "parties", "opportunity": "opportunities", "kase": "cases"}.get(link)
            values: dict[str, t.Any] = {"status": status}
            if target and self.store.rows.get(target):
                values[link] = self.stub(target)
            owner = self.stub("users")
            values.update(
                description=rng.choice(
                    ["Call back", "Send proposal", "Book meeting", "Chase invoice"]
                ),
                detail=rng.choice([None, "See notes."]),
                category=self.stub("categories") if rng.random() < 0.6 else None,
                dueTime=rng.choice([None, "09:30:00", "14:00:00"]),
                owner=owner,
                repeat={"frequency": "WEEKLY", "interval": 1, "on": "MON"}
                if rng.random() < 0.05
                else None,
            )
            if status == "COMPLETED":
                values.update(completedAt=updated, completedBy=(owner or {}).get("username"))
            self._task(created, updated, **values)

    def seed_entries(self) -> None:
        rng = self.rng
        links = [
            (k, s)
            for k, s in (("party", "parties"), ("opportunity", "opportunities"), ("kase", "cases"))
            if self.store.rows.get(s)
        ]
        if not links:
            return
        activity = {r["id"]: r for r in (self.store.rows.get("activity_types") or {}).values()}
        for created, updated in self.times(2 * self.scale, start=86400):
            kind = rng.choices(["note", "email", "task"], [60, 25, 15])[0]
            key, stream = rng.choices(links, [60, 25, 15][: len(links)])[0]
            act = (
                -4
                if kind == "task"
                else rng.choice([-1, -1, -2, -3, 1])
                if kind == "note"
                else None
            )
            party = self.stub("parties") if kind == "email" else None
            rec = {
                "id": self.store.new_id("entries"),
                "type": kind,
                "entryAt": at(rng.randrange(YEAR)),
                "subject": f"Re: quote {rng.randint(1, 999)}" if kind == "email" else None,
                "content": rng.choice(
                    ["Spoke about pricing.", "Sent the deck.", "Agreed next steps."]
                ),
                "attachments": [],
                "creator": self.stub("users"),
                "activityType": (
                    {"id": act, "name": activity[act]["name"]}
                    if act is not None and act in activity
                    else None
                ),
                "party": None,
                "kase": None,
                "opportunity": None,
                "parties": [party] if party else [],
                "participants": (
                    [
                        {
                            "id": self.store.new_id("participants"),
                            "address": "someone@example.com",
                            "name": "Someone",
                            "role": "FROM",
                        },
                        {
                            "id": self.store.new_id("participants"),
                            "address": "ada@sandbox.example",
                            "name": "Ada Admin",
                            "role": "TO",
                        },
                    ]
                    if kind == "email"
                    else []
                ),
                "createdAt": created,
                "updatedAt": updated,
            }
            rec[key] = self.stub(stream)
            self.add("entries", rec)

    def seed_resthooks(self) -> None:
        for i, event in enumerate(("party/created", "opportunity/closed")):
            self.add(
                "resthooks",
                {
                    "event": event,
                    "targetUrl": f"https://hooks.example.com/{i}",
                    "description": f"Hook for {event}",
                    "embed": None,
                    "batched": False,
                    "clientId": "sandbox-client",
                    "user": self.stub("users"),
                    "createdAt": at(i * 500),
                    "updatedAt": at(i * 500 + 5),
                },
            )

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

    def value(self, key: str, spec: dict, n: int) -> t.Any:
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


def seed(store: Store, scale: int, seed: int) -> None:
    """Fill `store` for (scale, seed): hand-written seeders first, then generic ones."""
    seeder = Seeder(store, scale, seed)
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
