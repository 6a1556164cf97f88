"""Seeders of the account's settings and reference data.

Users, teams, pipelines, boards, tags, custom-field definitions and the lookup lists.
"""

from __future__ import annotations

from tap_capsule.sandbox.clock import at
from tap_capsule.sandbox.seed.base import YEAR, SeedBase
from tap_capsule.sandbox.seed.names import COUNTRIES, CURRENCIES


class SettingsSeeder(SeedBase):
    """Reference data, seeded before any record that points at it."""

    def seed_countries(self) -> None:
        """Countries, keyed by position (they have no id)."""
        for i, (name, a2, a3, num) in enumerate(COUNTRIES):
            self.store.rows["countries"][i] = {
                "name": name,
                "alpha2Code": a2,
                "alpha3Code": a3,
                "numericCode": int(num),  # an integer, as in the documented example
            }

    def seed_currencies(self) -> None:
        """Currencies, keyed by position (they have no id)."""
        for i, (code, symbol, name, plural) in enumerate(CURRENCIES):
            self.store.rows["currencies"][i] = {
                "code": code,
                "symbol": symbol,
                "name": name,
                "pluralName": plural,
            }

    def seed_custom_titles(self) -> None:
        """The usual person titles."""
        for title in ("Mr", "Mrs", "Ms", "Miss", "Dr", "Prof"):
            self.add("custom_titles", {"title": title})

    def seed_users(self) -> None:
        """Four users; the first is the token's user."""
        people = [
            ("ada", "Ada Admin"),
            ("ben", "Ben Seller"),
            ("cat", "Cat Support"),
            ("dan", "Dan Manager"),
        ]
        for i, (username, name) in enumerate(people):
            initials = "".join(word[0] for word in name.split())
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
                    "taskReminder": i % 2 == 0,
                    "party": None,
                    "deleted": False,
                    "loggedIn": i == 0,
                    "pictureURL": f"https://facehub.appspot.com/default/person?text={initials}",
                },
            )
        self.store.token_user_id = min(self.store.rows["users"], default=None)

    def seed_teams(self) -> None:
        """Two teams with alternating members."""
        users = list(self.store.rows.get("users", {}).values())
        for i, name in enumerate(("Sales", "Support")):
            members = [
                {"user": self.store.stub("users", u)}
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
        """Four task categories."""
        for name, colour in (
            ("Call", "#1f77b4"),
            ("Email", "#ff7f0e"),
            ("Follow-up", "#2ca02c"),
            ("Meeting", "#d62728"),
        ):
            self.add("categories", {"name": name, "colour": colour})

    def seed_activity_types(self) -> None:
        """Capsule's system activity types (negative ids) and two custom ones."""
        system = [
            (-4, "Task completed", "TASK", "task"),
            (-3, "Call", "PHONE", "phone"),
            (-2, "Meeting", "MEETING", "meeting"),
            (-1, "Note", "NOTE", "note"),
        ]
        # Icon ids are names (`"NOTE"`), not numbers.
        for i, (rid, name, icon_id, icon) in enumerate(system):
            self.add(
                "activity_types",
                {
                    "id": rid,
                    "name": name,
                    "icon": {
                        "id": icon_id,
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
                        "id": "STAR",
                        "order": 10 + i,
                        "displayName": name,
                        "iconName": "star",
                        "isSystem": False,
                    },
                    "updateLastContacted": True,
                },
            )

    def seed_lost_reasons(self) -> None:
        """Four lost reasons."""
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
        """Two active pipelines and an archived one, created before them.

        Sales is the oldest *active* pipeline: the one the legacy /milestones lists. The archived
        pipeline is older still, so a client that ignores `deleted` picks the wrong one, and one
        opportunity still sits in it (a plain /pipelines hides it: `includeDeleted=true` shows it).
        """
        plan = (
            ("Sales", "New business", False, 0),
            ("Renewals", "Existing customers", False, 86400),
            ("Old deals", "Archived pipeline", True, -86400),
        )
        for name, desc, deleted, created in plan:
            self.add(
                "pipelines",
                {
                    "name": name,
                    "description": desc,
                    "deleted": deleted,
                    "createdAt": at(created),
                    "updatedAt": at(created + 7200),
                },
            )

    def seed_milestones(self) -> None:
        """The milestones of every pipeline, in display order."""
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
            [("Old lead", 10, False), ("Old win", 100, True)],
        ]
        pipelines = self.store.rows.get("pipelines", {}).values()
        for pipeline, plan in zip(
            pipelines, plans, strict=False
        ):  # a custom catalogue may lack some
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
        """Three boards, one of them deleted."""
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
        """The stages of every board; one archived."""
        boards = list(self.store.rows.get("boards", {}).values())
        plan = [
            [("Kickoff", False), ("Setup", False), ("Live", False), ("Legacy step", True)],
            [("Triage", False), ("In progress", False), ("Done", False)],
            [("Old stage", False)],
        ]
        for board, stages in zip(boards, plan, strict=False):
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
        """Two track definitions for opportunities and two for cases."""
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
                    "trackTaskAssignee": {"assigneeType": "ENTITY_OWNER"},
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
        """Party tag definitions, one a DataTag."""
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
        """Opportunity tag definitions (ids restart: they are per entity)."""
        self._tag_defs("opportunity_tags", [("Hot", False), ("Renewal", False), ("Upsell", False)])

    def seed_case_tags(self) -> None:
        """Case tag definitions (ids restart: they are per entity)."""
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
        """Party custom fields of every type; some by capture rule."""
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
        """Opportunity custom fields of every type."""
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
        """Case custom fields of every type."""
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
