"""`capsule restore`: write a backup folder back into Capsule, in dependency order.

Modes: `same` (the account the backup came from) recreates only what no longer exists; `copy`
(another account) recreates everything. Order: users, teams, pipelines, boards, stages and track
definitions are matched by username, name or description and never created; tags, custom-field
definitions, categories, activity types, lost reasons, titles and milestones are matched by name
and created when missing; then organisations before people, opportunities, cases, additional
parties, tracks, notes and tasks. Every reference is translated through the id map, which is
journalled before the run goes on (a file next to the backup, named for the destination account)
and emitted in the STATE. A killed restore resumes from it without duplicates: a create whose
answer was lost is looked for before anything is sent again. A complete run repeated writes
nothing. What cannot be matched or created is a rejection with a reason in the rejects file.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import typing as t
from pathlib import Path

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleAPIError,
    CapsuleError,
    CapsuleNotFound,
    CapsuleSession,
    raise_for_capsule_status,
    response_json,
)
from tap_capsule.setting_names import account_config_problem
from target_capsule import natural_keys as nk
from target_capsule import settle
from target_capsule.account import files
from target_capsule.account.backup import (
    MAX_RECORD_CHARS,
    BackupError,
    read_backup,
    read_manifest,
)
from target_capsule.account.cli import Parser, error, version
from target_capsule.account.progress import Progress
from target_capsule.account.refs import REASSIGNED, REFERENCE_STREAMS, IdMap, positive_id
from target_capsule.account.restore_plan import LINK, MATCH, ORDER, SETTING
from target_capsule.account.revert import creation_body
from target_capsule.account.verify import VerifyError, limit_of
from target_capsule.changelog import APPLIED, ChangeLog
from target_capsule.links import UNCHANGED, ParentMissing, link_unless_linked
from target_capsule.lock import Lock, LockError, account_key
from target_capsule.lookups import Lookups
from target_capsule.payload import PayloadError, blank, same, wrapped
from target_capsule.rejects import Rejects, secrets_of
from target_capsule.site import AccountMismatch, account_of, check_account, read_site
from target_capsule.writes import (
    GONE,
    Check,
    Unresolved,
    capsule_time,
    check_created,
    delete,
    find_created,
    write,
)

if t.TYPE_CHECKING:
    import argparse

logger = logging.getLogger("capsule-restore")

SAME, COPY = "same", "copy"
STATE_KEY = "capsule_restore"
TRACK_TASKS = "tasks_created_by_tracks"  # id-map section: written once more after their track

# References a restore may leave out when their target has no counterpart: an owner becomes the
# default owner (explicitly: never left to Capsule), a team none. Any other unmatched reference
# rejects the record.
OPTIONAL_REFERENCES = frozenset({"owner", "team"})
# Records Capsule refuses without an owner or a team ("owner or team is required" for cases); a
# restore sends the default owner when the backup's record (translated) has neither.
NEEDS_OWNER = frozenset({"cases", "opportunities"})
# Fields a task created by its track gets from the track definition; the backup's values are
# written afterwards with one PUT where they differ.
TRACK_TASK_FIELDS = (
    "description",
    "detail",
    "dueOn",
    "dueTime",
    "status",
    "completedAt",
    "owner",
    "category",
)
# A track's tasks are embedded data: `task` in the docs, `tasks` in Capsule's own client. Capsule
# ignores embed values it doesn't know, so both are asked for.
TRACK_EMBED = {"embed": "task,tasks"}


@dataclasses.dataclass
class Owners:
    """Who owns a record whose owner has no counterpart in the destination.

    `default_owner` is a username of the destination (default: the token's user);
    `owner_map` pairs usernames of the backup's account with the destination's.
    """

    default_owner: str | None = None
    owner_map: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        config: t.Mapping[str, t.Any],
        default_owner: str | None,
        pairs: t.Sequence[str] = (),
    ) -> Owners:
        """From the config's `default_owner` and `owner_map`; the flags override and add."""
        owner = default_owner or config.get("default_owner")
        mapping = config.get("owner_map") or {}
        if pairs and isinstance(mapping, dict):
            mapping = dict(mapping)
            for pair in pairs:
                old, sep, new = pair.partition("=")
                if not sep or not old.strip() or not new.strip():
                    raise RestoreError(f"--owner-map takes OLD=NEW usernames, got {pair!r}")
                mapping[old.strip()] = new.strip()
        if owner is not None and (not isinstance(owner, str) or not owner.strip()):
            raise RestoreError("default_owner must be a username (text)")
        if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in mapping.items()
        ):
            raise RestoreError(
                'owner_map must map usernames to usernames, e.g. {"ann": "ann.smith"}'
            )
        return cls(
            owner.strip() if owner else None,
            {k.strip().casefold(): v.strip() for k, v in mapping.items()},
        )


# Settings of capsule-restore on top of target-capsule's (its config is the target's).
RESTORE_SETTINGS = ("default_owner", "owner_map")


class RestoreError(Exception):
    """Unusable input or setting; one line, exit 1."""


@dataclasses.dataclass
class Counts:
    """Per stream: what the restore did with each backed-up record."""

    created: int = 0
    matched: int = 0
    existing: int = 0
    updated: int = 0
    rejected: int = 0
    reassigned: int = 0  # users with no counterpart: their records go to the default owner


def _value(record: t.Mapping[str, t.Any], path: str) -> str:
    value: t.Any = record
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value).strip().casefold()


def definitions_of(stream: str) -> str | None:
    """The tag stream a custom-field definition's `tag` (a DataTag) belongs to."""
    return next((o.tags for o in cat.OBJECTS if o.custom_fields == stream), None)


class Restore:
    """One restore run of one backup into one account."""

    def __init__(
        self,
        session: CapsuleSession,
        backup: dict[str, list[dict]],
        mode: str,
        ids: IdMap,
        rejects: Rejects,
        emit_state: t.Callable[[dict], None],
        owners: Owners | None = None,
        folder: Path | None = None,
        progress: Progress | None = None,
        changes: ChangeLog | None = None,
    ) -> None:
        """`ids` is loaded (journal included) and receives every mapping as it is made.

        `folder` is the backup folder (its attachment files); `progress` reports long runs;
        `changes` (the config's `change_log_path`) gets every write ahead, as the target's does,
        so `capsule undo` can revert a restore.
        """
        self.changes = changes or ChangeLog(None)
        self.owners = owners or Owners()
        self.folder = folder
        self.attachments = (read_manifest(folder).get("attachments") or {}) if folder else {}
        self.progress = progress or Progress("capsule-restore", session, quiet=True)
        self._default_owner: int | None = None
        self.session = session
        self.lookups = Lookups(session)
        self.backup = backup
        self.mode = mode
        self.ids = ids
        self.rejects = rejects
        self.emit_state = emit_state
        self.counts: dict[str, Counts] = {}
        self.writes = 0
        self._lists: dict[str, list[dict]] = {}

    # --- reads ----------------------------------------------------------------------------

    def destination(self, obj: cat.CapsuleObject, path: str | None = None) -> list[dict]:
        """A list of the destination, read once per run (and kept up to date by our writes)."""
        path = path or obj.path
        if path not in self._lists:
            try:
                self._lists[path] = self.lookups.read_list(obj, path)
            except CapsuleNotFound:
                self._lists[path] = []
        return self._lists[path]

    # --- the run --------------------------------------------------------------------------

    def run(self) -> dict[str, Counts]:
        """Every stream in dependency order; the STATE after each."""
        if self.owners.default_owner:
            self.default_owner()  # a username the destination lacks stops the run before writes
        for stream, kind, names in ORDER:
            records = self.backup.get(stream) or []
            if not records:
                continue
            counts = self.counts.setdefault(stream, Counts())
            obj = cat.get(stream)
            self.progress.start_stream(stream, len(records))
            if stream == "parties":
                records = sorted(records, key=lambda r: r.get("type") != "organisation")
            if kind in (MATCH, SETTING):
                self.match_all(obj, kind, names, records, counts)
            elif kind == LINK:
                for record in records:
                    self.link(obj, record, counts)
                    self.progress.advance()
            else:
                self.resolve_pending(obj)
                for record in records:
                    self.content(obj, record, counts)
                    self.progress.advance()
            self.ids.save()
            self.emit_state(self.state())
            self.progress.stream_done(stream, counts_line(counts))
        return self.counts

    def state(self) -> dict:
        """What the STATE carries: the mode and the id map."""
        return {STATE_KEY: {"mode": self.mode, "id_map": self.ids.as_dict()}}

    def reject(
        self, obj: cat.CapsuleObject, record: dict, reason: str, status: int | None = None
    ) -> None:
        """A record that cannot be restored, with the reason."""
        self.rejects.write(obj.stream, cat.INSERT, f"{obj.stream}: {reason}", record, status)
        self.counts.setdefault(obj.stream, Counts()).rejected += 1

    def put(
        self, obj: cat.CapsuleObject, record: dict, rid: object, body: dict, current: dict
    ) -> dict | bool | None:
        """PUT `body` on record `rid`: Capsule's updated copy (or True), None when rejected.

        Through the one write path: after a lost answer the record is read again and the PUT
        sent again only when Capsule does not hold it. What stays unknown after every try is a
        rejection that says to run the restore again: the next run sends what is still missing.
        """
        before = {k: current.get(k) for k in body}
        try:
            with self.changes.writing(obj.stream, cat.UPDATE, rid, body, before) as entry:
                written = settle.put(
                    self.session,
                    self.lookups,
                    obj,
                    rid,
                    body,
                    f"{obj.stream} restore of record {rid}",
                )
                self.changes.settle(entry, APPLIED)
        except CapsuleAPIError as exc:
            self.reject(obj, record, f"Capsule refused it: {exc.capsule_message}", exc.status)
            return None
        except Unresolved as exc:
            self.reject(obj, record, f"{exc} Run the restore again.")
            return None
        self.writes += 1
        updated = written.found or (written.answer or {}).get(obj.item_key)
        return updated if isinstance(updated, dict) else True

    def post(
        self,
        obj: cat.CapsuleObject,
        record: dict,
        path: str,
        body: dict,
        sent: dict,
        list_path: str | None,
        check: t.Callable[[], Check] | None,
    ) -> dict | None:
        """POST through the one write path, written ahead: the created record, or None.

        None (and the record rejected) when it didn't land. After an ambiguous failure `write`
        asks `check` before any retry, so a rerun of the restore, which looks for the record
        first, never creates it twice.
        """
        what = f"{obj.stream} restore of record {record.get('id')}"
        created: dict = {}
        try:
            with self.changes.writing(obj.stream, cat.INSERT, None, body, list_path=list_path) as e:
                written = write(
                    self.session, "POST", path, wrapped(obj, sent), check=check, what=what
                )
                created = written.found or (written.answer or {}).get(obj.item_key) or {}
                if positive_id(created.get("id")) is not None:
                    self.changes.settle(e, APPLIED, int(created["id"]))
        except CapsuleAPIError as exc:
            self.reject(obj, record, f"Capsule refused it: {exc.capsule_message}", exc.status)
            return None
        except Unresolved as exc:
            self.reject(obj, record, f"{exc} Run the restore again: it looks for the record first")
            return None
        self.writes += 1
        return created

    # --- matched by name ------------------------------------------------------------------

    def match_all(
        self,
        obj: cat.CapsuleObject,
        kind: str,
        names: tuple[str, ...],
        records: list[dict],
        counts: Counts,
    ) -> None:
        """Settings and lookups: pair by name; create missing settings, reject missing lookups."""
        for record in records:
            old = record.get("id")
            if self.ids.get(obj.stream, old) is not None:
                counts.existing += 1
                continue
            translated, problem = (record, None) if kind == MATCH else self.translate(obj, record)
            if problem:
                self.reject(obj, record, problem)
                continue
            path = None
            if obj.parent_key:
                parent = translated.get(payload_parent(obj))
                parent_id = positive_id(parent.get("id") if isinstance(parent, dict) else None)
                if parent_id is None:
                    self.reject(obj, record, f"{payload_parent(obj)} names no positive id")
                    continue
                path = cat.fill_path(obj.path, {obj.parent_key: parent_id})
            wanted = tuple(_value(translated, n) for n in names)
            if obj.stream == "users":
                wanted = tuple(self.owners.owner_map.get(w, w).casefold() for w in wanted)
            found = [
                d
                for d in self.destination(obj, path)
                if tuple(_value(d, n) for n in names) == wanted
            ]
            if found and positive_id(found[0].get("id")) is not None:
                self.ids.put(obj.stream, old, int(found[0]["id"]), durable=False)
                counts.matched += 1
                continue
            if found:  # built-in rows with negative ids (activity types) exist in every account
                counts.matched += 1
                continue
            if obj.stream == "users":
                self.reassign(old, counts)
                continue
            if kind == MATCH or cat.INSERT not in obj.operations:
                self.reject(
                    obj,
                    record,
                    f"no {obj.stream} record named {' / '.join(wanted)!r} in the destination; "
                    f"{obj.stream} are matched, never created: create it in Capsule first",
                )
                continue
            self.create(obj, record, translated, counts, path)

    # --- records --------------------------------------------------------------------------

    def content(self, obj: cat.CapsuleObject, record: dict, counts: Counts) -> None:
        """One record: already restored, still existing (same account), or created."""
        old = positive_id(record.get("id"))
        if old is None:
            self.reject(obj, record, "the backed-up record has no positive integer id")
            return
        limit = limit_of(obj.stream, record)
        new = self.ids.get(obj.stream, old)
        if new is not None and not limit:
            if obj.stream == "tasks" and self.ids.get(TRACK_TASKS, old) is not None:
                self.sync_track_task(obj, record, new, counts)
            else:
                counts.existing += 1
            return
        # Same account: a record that still exists (an email, a task entry...) is "existing",
        # whatever the API could do with it; only a lost one meets the limits below.
        current = self.still_exists(obj, record, old) if self.mode == SAME else None
        if current is not None:
            self.ids.put(obj.stream, old, old, durable=False)
            if limit:
                counts.existing += 1
            else:
                self.repair_references(obj, record, current, counts)
            return
        if limit:
            self.reject(obj, record, f"cannot be restored: {limit}")
            return
        translated, problem = self.translate(obj, record)
        if problem:
            self.reject(obj, record, problem)
            return
        path = None
        if obj.capture_rule:
            definition = self.track_definition(obj, record)
            if definition is None:
                self.reject(
                    obj,
                    record,
                    f"no track definition described {record.get('description')!r} with capture "
                    f"rule {obj.capture_rule} in the destination (Capsule never returns a "
                    "track's definition, so it is found by the track's description)",
                )
                return
            translated["definition"] = {"id": definition}
            parent = positive_id(translated.get(obj.parent_key or ""))
            if parent is None:
                self.reject(obj, record, f"{obj.parent_key} names no positive id")
                return
            path = cat.fill_path(obj.path, {obj.parent_key or "": parent})
            if self.applied_already(obj, record, path, counts):
                return
        self.create(obj, record, translated, counts, path)

    def still_exists(self, obj: cat.CapsuleObject, record: dict, old: int) -> dict | None:
        """Same account: Capsule's copy if it still holds the record (one list read each)."""
        path = obj.path
        if cat.path_fields(obj.path):
            ids = {n: positive_id(record.get(n)) for n in cat.path_fields(obj.path)}
            if any(v is None for v in ids.values()):
                return None
            path = cat.fill_path(obj.path, ids)
        return next((d for d in self.destination(obj, path) if str(d.get("id")) == str(old)), None)

    def repair_references(
        self, obj: cat.CapsuleObject, record: dict, current: dict, counts: Counts
    ) -> None:
        """A record that survived, pointing at one that was recreated: point it at the new one.

        Capsule clears such references when it deletes their target (a person's organisation).
        """
        translated, _problem = self.translate(obj, record)
        body = {
            key: {"id": translated[key]["id"]}
            for key, value in record.items()
            if isinstance(value, dict)
            and key in REFERENCE_STREAMS
            and key != obj.link_item_key
            and key not in obj.all_read_only
            and translated.get(key) != value
            and isinstance(translated.get(key), dict)
            and not same({"id": translated[key]["id"]}, current.get(key))
        }
        if obj.updatable is not None:
            body = {k: v for k, v in body.items() if k in obj.updatable}
        if not body or cat.UPDATE not in obj.operations:
            counts.existing += 1
            return
        updated = self.put(obj, record, current["id"], body, current)
        if updated is None:
            return
        if isinstance(updated, dict):
            current.update(updated)
        counts.updated += 1

    def track_definition(self, obj: cat.CapsuleObject, record: dict) -> int | None:
        """The destination's definition a backed-up track came from, by its description."""
        wanted = _value(record, "description")
        for d in self.destination(cat.get("track_definitions")):
            if _value(d, "description") == wanted and d.get("captureRule") == obj.capture_rule:
                return positive_id(d.get("id"))
        return None

    # --- owners -----------------------------------------------------------------------------

    def default_owner(self) -> int:
        """The destination's user that takes records whose owner has no counterpart."""
        if self._default_owner is None:
            name = self.owners.default_owner
            if name is None:
                response = self.session.call("GET", "/users/current")
                raise_for_capsule_status(response)
                user = (response_json(response) or {}).get("user") or {}
            else:
                users = self.destination(cat.get("users"))
                user = next((u for u in users if _value(u, "username") == name.casefold()), {})
                if not user:
                    known = ", ".join(sorted(str(u.get("username")) for u in users))
                    raise RestoreError(
                        f"default_owner {name!r} is not a user of the destination "
                        f"(its users: {known})"
                    )
            found = positive_id(user.get("id"))
            if found is None:
                raise RestoreError("the destination named no user to own records")
            self._default_owner = found
        return self._default_owner

    def reassign(self, old: t.Any, counts: Counts) -> None:  # noqa: ANN401 - an id as JSON gives it
        """A user with no counterpart: the records they owned go to the default owner."""
        owner = self.default_owner()
        self.ids.put("users", old, owner, durable=False)
        self.ids.put(REASSIGNED, old, owner, durable=False)
        counts.reassigned += 1

    def translate(self, obj: cat.CapsuleObject, record: dict) -> tuple[dict, str | None]:
        """The record with every reference pointing into the destination, or the problem."""
        out = dict(record)
        for key, value in record.items():
            stream = REFERENCE_STREAMS.get(key)
            if key == "tag" and obj.definitions_of:
                stream = definitions_of(obj.stream)
            if stream is None or blank(value) or key == obj.link_item_key:
                continue
            rid = value.get("id") if isinstance(value, dict) else value
            if rid is None or (isinstance(rid, int) and rid < 0):
                continue  # named only, or a built-in row (activity type "Note" is -1)
            new = self.ids.get(stream, rid)
            if new is not None:
                out[key] = {**value, "id": new} if isinstance(value, dict) else new
            elif self.mode == SAME:
                continue  # the same account: the referenced record keeps its id
            elif key == "owner":
                out[key] = {"id": self.default_owner()}
                self.ids.put(REASSIGNED, rid, out[key]["id"], durable=False)
            elif key in OPTIONAL_REFERENCES:
                out[key] = None  # no team
            else:
                return out, f"{key} {rid} has no counterpart in the destination (not restored)"
        if (
            self.mode == COPY
            and obj.stream in NEEDS_OWNER
            and blank(out.get("owner"))
            and blank(out.get("team"))
        ):
            out["owner"] = {"id": self.default_owner()}  # never sent with neither
        if obj.custom_fields and record.get("fields"):
            fields = []
            for item in record["fields"]:
                definition = (item or {}).get("definition") or {}
                new = self.ids.get(obj.custom_fields, definition.get("id"))
                if new is None:
                    if self.mode == COPY:
                        return out, (
                            f"custom field {definition.get('name')!r} has no definition in the "
                            "destination"
                        )
                    new = definition.get("id")
                fields.append({**item, "definition": {**definition, "id": new}})
            out["fields"] = fields
        return out, None

    def create(
        self,
        obj: cat.CapsuleObject,
        record: dict,
        translated: dict,
        counts: Counts,
        path: str | None,
    ) -> None:
        """POST the record; the new id is journalled before anything else happens."""
        old = record.get("id")
        try:
            body = creation_body(obj, translated)
        except PayloadError as exc:
            self.reject(obj, record, f"cannot be restored: {exc}")
            return
        if obj.capture_rule and translated.get("definition"):
            body["definition"] = translated["definition"]
        list_path = path or self.list_path_of(obj, translated)
        if list_path is not None:
            existing = self.already_there(obj, body, list_path)
            if existing is not None:  # created by an earlier run whose id map is not here
                self.ids.put(obj.stream, old, int(existing["id"]))
                counts.matched += 1
                if obj.capture_rule:
                    self.map_track_tasks(record, existing)
                return
        since = capsule_time(self.session)
        self.ids.mark_pending(obj.stream, old, body, since, list_path)
        sent = body
        if obj.stream == "entries" and record.get("attachments"):
            # Files go up only now (after the look for an earlier run's note): their tokens are
            # sent, never compared (a note lists its attachments, not their tokens).
            tokens = self.upload_attachments(obj, record)
            if tokens is None:
                return
            if tokens:
                sent = {**body, "attachments": [{"token": token} for token in tokens]}
        post_path = cat.fill_path(obj.post_path, translated)
        if obj.capture_rule:  # the answer lists the tasks the track created
            post_path += "?" + "&".join(f"{k}={v}" for k, v in TRACK_EMBED.items())
        created = self.post(
            obj,
            record,
            post_path,
            body,
            sent,
            list_path,
            functools.partial(
                check_created,
                self.session,
                obj,
                list_path,
                since,
                nk.made_from(obj, obj.natural_keys, body),
                self.taken(obj),
            )
            if list_path
            else None,
        )
        if created is None:
            return
        new = positive_id(created.get("id"))
        if new is None:
            self.reject(obj, record, "Capsule's answer carries no id")
            return
        self.ids.put(obj.stream, old, new)
        self.destination(obj, list_path).append(created)
        counts.created += 1
        if obj.capture_rule:
            self.map_track_tasks(record, created)

    def list_path_of(self, obj: cat.CapsuleObject, record: t.Mapping[str, t.Any]) -> str | None:
        """The destination list a record belongs to (a child's under its parent), or None."""
        names = cat.path_fields(obj.path)
        if not names:
            return obj.path
        ids = {n: positive_id(record.get(n)) for n in names}
        if any(v is None for v in ids.values()):
            return None
        return cat.fill_path(obj.path, ids)

    def taken(self, obj: cat.CapsuleObject) -> set[str]:
        """Destination ids that belong to other backed-up records: never the match of a create."""
        ids = {str(i) for i in self.ids.new_ids(obj.stream)}
        if self.mode == SAME:  # the backup's own records keep their ids in their own account
            ids |= {str(r.get("id")) for r in self.backup.get(obj.stream) or ()}
        return ids

    def matching(self, obj: cat.CapsuleObject, body: dict, records: t.Iterable[dict]) -> list[dict]:
        """Records that `body` describes (upsert key, else what Capsule stores as sent)."""
        matches = nk.made_from(obj, obj.natural_keys, body)
        taken = self.taken(obj)
        return [
            d
            for d in records
            if str(d.get("id")) not in taken and positive_id(d.get("id")) and matches(d)
        ]

    def already_there(self, obj: cat.CapsuleObject, body: dict, path: str) -> dict | None:
        """The one destination record an earlier restore made from `body`, if any.

        A restore run again from a fresh copy of the backup folder has no id map: what it
        created before is found by key or content instead of being created twice.
        """
        found = self.matching(obj, body, self.destination(obj, path))
        return found[0] if len(found) == 1 else None

    def resolve_pending(self, obj: cat.CapsuleObject) -> None:
        """Creates a killed run sent without seeing the answer: find them before sending again.

        Each is looked for in its own list (a track under its opportunity or case) among the
        records created since it was sent.
        """
        records = {str(r.get("id")): r for r in self.backup.get(obj.stream) or ()}
        for (stream, old), body in list(self.ids.pending.items()):
            if stream != obj.stream:
                continue
            path = self.ids.where.get((stream, old)) or self.list_path_of(obj, body)
            if path is None:
                continue
            try:
                found = find_created(
                    self.session,
                    obj,
                    path,
                    self.ids.since.get((stream, old)),
                    nk.made_from(obj, obj.natural_keys, body),
                    self.taken(obj),
                )
            except CapsuleNotFound:
                continue  # the parent is gone: nothing was created under it
            if len(found) == 1 and positive_id(found[0].get("id")) is not None:
                self.ids.put(stream, old, int(found[0]["id"]))
                if obj.capture_rule and old in records:
                    self.map_track_tasks(records[old], found[0])
                logger.info("%s %s: found the record a killed run created", stream, old)

    # --- tracks and their tasks -----------------------------------------------------------

    def track_tasks(self, track: dict) -> list[dict]:
        """A destination track's tasks: from the record when embedded, else one GET with them."""
        tasks = track.get("tasks")
        if tasks is None:
            rid = positive_id(track.get("id"))
            if rid is None:
                return []
            obj = cat.get("case_tracks")
            response = self.session.call(
                "GET", cat.fill_path(obj.single_path, {"id": rid}), params=TRACK_EMBED
            )
            raise_for_capsule_status(response)
            tasks = ((response_json(response) or {}).get("track") or {}).get("tasks")
        return [x for x in tasks or () if isinstance(x, dict)]

    def applied_already(
        self, obj: cat.CapsuleObject, record: dict, path: str, counts: Counts
    ) -> bool:
        """A track an automation applied when the record was recreated: take it, don't add one.

        Capsule's board and milestone automations can apply a track on their own; a second
        POST would give the record two tracks and two sets of tasks.
        """
        taken = self.ids.new_ids(obj.stream)
        for track in self.destination(obj, path):
            rid = positive_id(track.get("id"))
            if (
                rid is None
                or rid in taken
                or not same(_value(record, "description"), _value(track, "description"))
            ):
                continue
            self.ids.put(obj.stream, record.get("id"), rid)
            self.map_track_tasks(record, track)
            counts.matched += 1
            return True
        return False

    def map_track_tasks(self, record: dict, created: dict) -> None:
        """Pair the backed-up track's tasks with the ones Capsule created for the new track.

        Tasks the track created that the backup's track no longer had are deleted, so the
        destination holds exactly the backup's tasks (a backup without the track's tasks pairs
        nothing and deletes nothing).
        """
        if not isinstance(record.get("tasks"), list):
            return
        mine = [t_ for t_ in record["tasks"] if isinstance(t_, dict)]
        theirs = self.track_tasks(created)
        for task in mine:
            match = next(
                (x for x in theirs if same(task.get("description"), x.get("description"))), None
            )
            if match is not None and positive_id(match.get("id")) is not None:
                theirs.remove(match)
                self.ids.put("tasks", task.get("id"), int(match["id"]))
                self.ids.put(TRACK_TASKS, task.get("id"), int(match["id"]))
        for extra in theirs:
            rid = positive_id(extra.get("id"))
            if rid is None:
                continue
            tasks = cat.get("tasks")
            with self.changes.writing(tasks.stream, cat.DELETE, rid, None, record=extra) as entry:
                if delete(self.session, cat.fill_path(tasks.single_path, {"id": rid})) != GONE:
                    self.changes.settle(entry, APPLIED)
            self.writes += 1

    # --- attachments ----------------------------------------------------------------------

    def upload_attachments(self, obj: cat.CapsuleObject, record: dict) -> list[str] | None:
        """Upload a note's files from the backup; their tokens ([] when the backup has none).

        None (and the note rejected) when a file the manifest lists cannot be read.
        """
        tokens = []
        for item in record.get("attachments") or ():
            if not isinstance(item, dict):
                continue
            kept = self.attachments.get(str(item.get("id")))
            if not isinstance(kept, dict) or not kept.get("sha256") or self.folder is None:
                continue  # a backup made without files: the note comes back without them
            try:
                content = files.load(self.folder, str(kept["sha256"]))
                if content is None:
                    self.reject(
                        obj,
                        record,
                        f"attachment {item.get('filename')!r}: its file is missing from the "
                        "backup or damaged (its sha256 differs)",
                    )
                    return None
                tokens.append(
                    files.upload(
                        self.session,
                        content,
                        str(kept.get("filename") or item.get("filename") or "attachment"),
                        str(kept.get("contentType") or item.get("contentType") or ""),
                    )
                )
            except (files.FileError, CapsuleAPIError) as exc:
                self.reject(obj, record, f"attachment {item.get('filename')!r}: {exc}")
                return None
            self.writes += 1
        return tokens

    def sync_track_task(
        self, obj: cat.CapsuleObject, record: dict, new: int, counts: Counts
    ) -> None:
        """A task its track created: write the backed-up values where they differ."""
        current = self.lookups.current(obj, new, None, ())
        translated, _problem = self.translate(obj, record)
        wanted = {k: translated.get(k) for k in TRACK_TASK_FIELDS if k in translated}
        if "owner" in wanted:
            wanted["owner"] = {"id": wanted["owner"]["id"]} if wanted["owner"] else None
        diff = {k: v for k, v in wanted.items() if current is None or not same(v, current.get(k))}
        if current is None or not diff:
            counts.existing += 1
            return
        if self.put(obj, record, new, diff, current) is None:
            return
        counts.updated += 1

    # --- links ----------------------------------------------------------------------------

    def link(self, obj: cat.CapsuleObject, record: dict, counts: Counts) -> None:
        """An additional party: linked again unless the link exists."""
        translated, problem = self.translate(obj, record)
        if problem:
            self.reject(obj, record, problem)
            return
        parent_key, child_key = obj.parent_key or "", obj.child_key or ""
        parent, child = (
            positive_id(translated.get(parent_key)),
            positive_id(translated.get(child_key)),
        )
        if parent is None or child is None:
            self.reject(obj, record, f"{parent_key} and {child_key} must be positive integers")
            return
        try:
            ids = {parent_key: parent, child_key: child}

            outcome = link_unless_linked(
                self.session,
                self.lookups,
                obj,
                parent,
                child,
                what=f"{obj.stream} restore of a link",
                around=self.changes.around_link(obj.stream, ids),
            )
        except ParentMissing:
            self.reject(
                obj, record, f"{parent_key} {parent} does not exist in the destination", 404
            )
            return
        except CapsuleAPIError as exc:
            self.reject(obj, record, f"Capsule refused it: {exc.capsule_message}", exc.status)
            return
        except Unresolved as exc:
            self.reject(obj, record, f"{exc} Run the restore again: it looks for the link first")
            return
        if outcome == UNCHANGED:
            counts.existing += 1
            return
        self.writes += 1
        counts.created += 1


def payload_parent(obj: cat.CapsuleObject) -> str:
    """The nested key naming a child's parent (`pipeline` for milestones)."""
    parent = cat.parent_of(obj)
    return parent.item_key if parent is not None else ""


COLUMNS = ("created", "matched", "existing", "updated", "reassigned", "rejected")


def counts_line(counts: Counts) -> str:
    """One stream's counts in words, the ones that are not zero (`12 created, 3 existing`)."""
    parts = [f"{getattr(counts, c)} {c}" for c in COLUMNS if getattr(counts, c)]
    return ", ".join(parts) or "nothing to do"


def table(counts: dict[str, Counts], writes: int) -> str:
    """The summary for people: a row per stream, a column per outcome."""
    lines = [f"{'stream':<26}" + "".join(f"{c:>11}" for c in COLUMNS)]
    for stream, c in counts.items():
        lines.append(f"{stream:<26}" + "".join(f"{getattr(c, k):>11}" for k in COLUMNS))
    lines.append(f"{writes} write request(s)")
    return "\n".join(lines)


DESCRIPTION = "Restore a backup folder into Capsule (the same account, or a copy)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`capsule restore`'s options."""
    parser.add_argument("--config", required=True, help="target-capsule's config JSON file")
    parser.add_argument("backup", metavar="BACKUP_DIR")
    parser.add_argument(
        "--mode",
        choices=(SAME, COPY),
        default=SAME,
        help="same: recreate only what no longer exists; copy: recreate everything",
    )
    parser.add_argument("--state", help="a STATE from an earlier run (its id map is merged)")
    parser.add_argument(
        "--default-owner",
        metavar="USERNAME",
        help="who owns records whose owner has no counterpart in the destination (default: the "
        "config's default_owner, else the token's user)",
    )
    parser.add_argument(
        "--owner-map",
        metavar="OLD=NEW",
        action="append",
        default=[],
        help="a backup username and the destination's that stands for it (repeatable; added to "
        "the config's owner_map)",
    )


def main(argv: list[str] | None = None, prog: str = "capsule restore") -> int:
    """Entry point of `capsule restore`."""
    parser = Parser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    lock: Lock | None = None
    changes = ChangeLog(None)
    try:
        config = json.loads(Path(args.config).read_text(encoding="utf-8"))
        from target_capsule.run import check_output_paths
        from target_capsule.target import TargetCapsule  # its settings name the config's keys

        if problem := account_config_problem(prog, config, TargetCapsule, *RESTORE_SETTINGS):
            raise RestoreError(problem)
        check_output_paths(config, ("change_log_path", "rejects_path"))
        changes = ChangeLog(config.get("change_log_path"))
        changes.open()  # an unwritable change log ends the run before any request
        manifest = read_manifest(Path(args.backup))
        refused: list[dict] = []
        backup = read_backup(Path(args.backup), refused)
        session = CapsuleSession(config, user_agent=f"capsule-restore/{version()}")
        site = read_site(session)
        here = account_of(site)
        if args.mode == SAME:
            origin = manifest.get("account_id") or (
                account_of(manifest["account"]) if manifest.get("account") else None
            )
            check_account(origin, here, f"backup {args.backup} (--mode same)")
        lock = Lock(account_key(session.api_url, site), f"capsule-restore of {args.backup}")
        lock.acquire()
        changes.account = here
        changes.clock = session.pacer.server_now
        name = "".join(
            c for c in str(site.get("subdomain") or "account") if c.isalnum() or c in "-_"
        )
        ids = IdMap(Path(args.backup) / f"restore-{args.mode}-{name}.ids.json", account=here)
        if args.state:
            ids.merge(_state_map(Path(args.state)))
        rejects = Rejects(config.get("rejects_path"), secrets_of(config))

        def emit(value: dict) -> None:
            sys.stdout.write(json.dumps({"type": "STATE", "value": value}) + "\n")
            sys.stdout.flush()

        owners = Owners.from_config(config, args.default_owner, args.owner_map)
        total = sum(len(backup.get(stream) or ()) for stream, _kind, _names in ORDER)
        progress = Progress(prog, session, total)
        restore = Restore(
            session,
            backup,
            args.mode,
            ids,
            rejects,
            emit,
            owners,
            Path(args.backup),
            progress,
            changes,
        )
        # A killed restore's write left pending in the change log: settled before anything else.
        settle.settle_pending(session, restore.lookups, changes, here)
        for big in refused:  # never loaded, never sent
            obj = cat.get(big["stream"]) if big["stream"] in cat.BY_STREAM else None
            if obj is not None:
                restore.reject(
                    obj,
                    {"id": big["id"]},
                    f"record {big['id']} is longer than the backup's limit of "
                    f"{MAX_RECORD_CHARS} characters; not restored",
                )
        try:
            counts = restore.run()
        finally:
            ids.close()
    except (
        BackupError,
        VerifyError,
        RestoreError,
        CapsuleError,
        AccountMismatch,
        LockError,
        OSError,
        ValueError,
    ) as exc:
        return error(prog, str(exc))
    finally:
        changes.close()
        if lock is not None:
            lock.release()
    print(table(counts, restore.writes), file=sys.stderr)
    if changes.lines:
        print(changes.describe(), file=sys.stderr)
    print(f"Id map: {ids.path}", file=sys.stderr)
    return 0


def _state_map(path: Path) -> dict:
    """The id map inside a STATE file (a Singer STATE message or its value)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and data.get("type") == "STATE":
        data = data.get("value") or {}
    found = (data or {}).get(STATE_KEY, {}).get("id_map") if isinstance(data, dict) else None
    if not isinstance(found, dict):
        raise RestoreError(f"--state {path} holds no {STATE_KEY}.id_map")
    return found


if __name__ == "__main__":
    sys.exit(main())
