"""Seeders of the core records.

Parties, opportunities, cases, their links and tracks, tasks, entries and REST hooks.
"""

from __future__ import annotations

import typing as t
import unicodedata

from tap_capsule.sandbox.clock import at, day
from tap_capsule.sandbox.documented import OAUTH_CLIENT_ID
from tap_capsule.sandbox.seed.base import YEAR, SeedBase
from tap_capsule.sandbox.seed.names import ADJ, CITIES, COUNTRIES, FIRST, JOBS, LAST, NOUN, SUFFIX

DEAL_WORDS = ["Deal", "Upgrade", "Renewal", "Pilot"]
# A seeded task's keys in Capsule's order, with the values of a plain open task.
TASK_BLANK: dict[str, t.Any] = {
    "description": "Task",
    "detail": None,
    "category": None,
    "dueOn": None,
    "dueTime": None,
    "status": "OPEN",
    "party": None,
    "opportunity": None,
    "kase": None,
    "owner": None,
    "completedBy": None,
    "completedAt": None,
    "daysAfter": None,
    "taskDelayRule": None,
    "taskDayDelayRule": None,
    "nextTask": None,
    "hasTrack": False,
    "active": True,
    "repeat": None,
    "createdAt": None,
    "updatedAt": None,
}
CASE_WORDS = ["Onboarding", "Support", "Migration", "Audit"]


class RecordsSeeder(SeedBase):
    """The account's records, seeded after the settings they reference."""

    def seed_parties(self) -> None:
        """About `scale` parties, 40% organisations; people work at some of them."""
        rng, n = self.rng, self.scale
        orgs = max(1, round(n * 0.4)) if n else 0
        pool = ["organisation"] * (orgs - 1) + ["person"] * (n - orgs)
        kinds = ["organisation", *rng.sample(pool, max(0, n - 1))] if n else []
        titles = [r["title"] for r in (self.store.rows.get("custom_titles") or {}).values()]
        countries = [c[0] for c in COUNTRIES]
        names: set[str] = set()
        org_stubs: list[dict] = []
        for (created, updated), kind in zip(self.times(len(kinds)), kinds, strict=True):
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
        users = self.store.rows.get("users", {}).values()
        for user, person in zip(users, people, strict=False):  # fewer people than users is fine
            user["party"] = self.store.stub("parties", person)

    def seed_opportunities(self) -> None:
        """Half as many opportunities as parties, most in the Sales pipeline."""
        rng, count = self.rng, self.scale // 2
        milestones = list((self.store.rows.get("milestones") or {}).values())
        archived = {p["id"] for p in self.store.rows["pipelines"].values() if p.get("deleted")}
        by_pipeline: dict[int, list[dict]] = {}
        for m in milestones:
            by_pipeline.setdefault(m["pipelineId"], []).append(m)
        pipelines = sorted(p for p in by_pipeline if p not in archived)
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
                "name": f"{rng.choice(DEAL_WORDS)} {rng.randint(1, 9999)}",
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
        self._in_archived_pipeline([by_pipeline[p] for p in sorted(archived) if p in by_pipeline])

    def _in_archived_pipeline(self, plans: list[list[dict]]) -> None:
        """The newest opportunity still sits at an open milestone of an archived pipeline."""
        opportunities = self.store.rows["opportunities"]
        if not plans or not opportunities:
            return
        milestone = next((m for m in plans[0] if not m["complete"]), plans[0][0])
        stub = {"id": milestone["id"], "name": milestone["name"]}
        opportunities[max(opportunities)].update(
            milestone=stub,
            probability=milestone["probability"],
            lostReason=None,
            closedOn=None,
            lastOpenMilestone=stub,
        )

    def seed_cases(self) -> None:
        """A quarter as many cases as parties; some closed, some on a board stage."""
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
                "name": f"{rng.choice(CASE_WORDS)} {rng.randint(1, 9999)}",
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
                picked = set(self.rng.sample(parties, min(2, len(parties))))
                # Capsule refuses the record's main party as an additional one ("already related")
                main = (self.store.rows[o.parent or ""][pid].get("party") or {}).get("id")
                self.store.links[stream][pid] = sorted(picked - {main})

    def seed_opportunity_parties(self) -> None:
        """Additional parties on some opportunities."""
        self._links("opportunity_parties")

    def seed_case_parties(self) -> None:
        """Additional parties on some cases."""
        self._links("case_parties")

    def _tracks(self, stream: str) -> None:
        o = self.store.objects[stream]
        parent_stream = o.parent or ""  # a track stream always names its parent
        parent = self.store.objects[parent_stream]
        defs = [
            d
            for d in (self.store.rows.get("track_definitions") or {}).values()
            if d["captureRule"] == o.capture_rule
        ]
        rows = list((self.store.rows.get(parent_stream) or {}).values())
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
            }
            for spec in definition["taskDefinitions"]:
                task = self._task(
                    host["createdAt"],
                    host["updatedAt"],
                    status="OPEN",
                    hasTrack=True,
                    **{parent.item_key: self.store.stub(parent.stream, host)},
                    description=spec["description"],
                    daysAfter=spec["daysAfter"],
                )
                rec["tasks"].append({"id": task["id"], "description": task["description"]})
            self.add(stream, rec)

    def seed_opportunity_tracks(self) -> None:
        """Tracks (with their tasks) on some opportunities."""
        self._tracks("opportunity_tracks")

    def seed_case_tracks(self) -> None:
        """Tracks (with their tasks) on some cases."""
        self._tracks("case_tracks")

    def _task(self, created: str, updated: str, **values: t.Any) -> dict:  # noqa: ANN401 - any task field
        rec = {"id": self.store.new_id("tasks"), **TASK_BLANK}
        rec.update(
            dueOn=day(self.rng.randint(0, 400)),
            owner=self.stub("users"),
            createdAt=created,
            updatedAt=updated,
        )
        rec.update(values)
        if rec["hasTrack"]:
            rec.update(taskDelayRule="TRACK_START", taskDayDelayRule="TRACK_DAYS")
        return self.add("tasks", rec)

    def seed_tasks(self) -> None:
        """As many tasks as parties, open, completed or pending, most linked to a record."""
        rng = self.rng
        for created, updated in self.times(self.scale, start=3 * 86400):
            status = rng.choices(["OPEN", "COMPLETED", "PENDING"], [50, 35, 15])[0]
            link = rng.choices(["party", "opportunity", "kase", ""], [40, 25, 15, 20])[0]
            target = {"party": "parties", "opportunity": "opportunities", "kase": "cases"}.get(link)
            values: dict[str, t.Any] = {"status": status}
            if link and target and self.store.rows.get(target):
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
        """Twice as many entries as parties: notes, emails and completed tasks."""
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
        """Two REST hooks of the sandbox's OAuth application."""
        for i, event in enumerate(("party/created", "opportunity/closed")):
            self.add(
                "resthooks",
                {
                    "event": event,
                    "targetUrl": f"https://hooks.example.com/{i}",
                    "description": f"Hook for {event}",
                    "embed": None,
                    "batched": False,
                    "clientId": OAUTH_CLIENT_ID,
                    "user": self.stub("users"),
                    "createdAt": at(i * 500),
                    "updatedAt": at(i * 500 + 5),
                },
            )
