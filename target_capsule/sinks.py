"""One sink class for every catalogue object: operation, rules, upsert, diff, write, outcome.

Every record ends as exactly one outcome in the summary: applied, unchanged, already_gone or
rejected (planned in a dry run). Nothing is written twice: POSTs that fail ambiguously are followed
by a look-up before any retry, PUTs by a re-read, and DELETEs are idempotent.
"""

from __future__ import annotations

import functools
import typing as t

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import BatchSink
from typing_extensions import override

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    CapsuleAPIError,
    CapsuleNotFound,
    CapsulePermissionError,
)
from target_capsule import natural_keys as nk
from target_capsule import payload, rules, validation
from target_capsule.changelog import APPLIED, FAILED, UNRESOLVED
from target_capsule.links import PEOPLE_KEY, UNCHANGED, ParentMissing, link_unless_linked
from target_capsule.payload import PayloadError
from target_capsule.permissions import missing_permission
from target_capsule.run import WriteRun
from target_capsule.values import blank, ref_id
from target_capsule.writes import (
    GONE,
    Check,
    Unresolved,
    capsule_time,
    check_created,
    delete,
    write,
)

if t.TYPE_CHECKING:
    from singer_sdk import Target

    from target_capsule.changelog import Entry

INSERT, UPDATE, DELETE = cat.INSERT, cat.UPDATE, cat.DELETE


class Rejected(Exception):  # noqa: N818 - a record's outcome, not a program error
    """The record is rejected: its reason goes to the rejects file and the summary."""

    def __init__(self, operation: str, reason: str, http_status: int | None = None) -> None:
        """`operation` as counted; `http_status` when Capsule's answer decided it."""
        super().__init__(reason)
        self.operation = operation
        self.reason = reason
        self.http_status = http_status


class CapsuleSink(BatchSink):
    """Writes one stream's records to Capsule, as the catalogue entry of that stream says.

    Records are applied in small batches, in input order, so that the records to update can be
    read up to 10 per GET (`/parties/1,2,3`) instead of one by one. The target drains a stream's
    batch before a record of another stream, and before it emits a STATE.
    """

    MAX_SIZE_DEFAULT = 50

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        """Bind the stream's catalogue entry and the run the target shares with every sink."""
        super().__init__(target, stream_name, schema, key_properties)
        self.obj = self.object_of(stream_name)
        run = getattr(target, "run", None)
        if not isinstance(run, WriteRun):
            raise TypeError("CapsuleSink needs a target that holds a WriteRun as `run`")
        self.run = run
        self._schema_error: str | None = None
        self._ignored_warned: set[str] = set()
        self.replace = run.replaces(stream_name)  # nested lists mirror the record
        self.on_content = False  # the last match was made on content, not on a natural key
        self.refused: dict[str, str] = {}  # operation -> the 403 reason Capsule gave for it
        self.upcoming: list[int] = []  # ids the rest of the batch will update
        self.kept: dict[str, t.Any] = {}  # fields `fill_empty` kept in the last diff

    @staticmethod
    def object_of(stream_name: str) -> cat.CapsuleObject:
        """The catalogue entry this sink writes."""
        return cat.get(stream_name)

    @property
    @override
    def include_sdc_metadata_properties(self) -> bool:
        """Keep the SDK's `_sdc_*` fields on records (see below)."""
        return True  # keeps `_sdc_deleted_at`, which decides DELETE; `_sdc_*` is never sent

    @override
    def _singer_validate_message(self, record: dict) -> None:
        return None  # an INSERT has no id; key properties of other taps mean nothing here

    @override
    def _validate_and_parse(self, record: dict) -> dict:
        # Validates only: Capsule wants the strings it sends, and the SDK would parse date-times
        # into Python objects. A mismatch becomes a reject of this record, not a crash.
        self._schema_error = None
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                self._schema_error = str(exc.args[0] if exc.args else exc)
        return record

    # --- one record -----------------------------------------------------------------------

    @override
    def process_record(self, record: dict, context: dict) -> None:
        """Queue the record with its SCHEMA check; `process_batch` applies it."""
        context.setdefault("records", []).append((record, self._schema_error))

    @override
    def process_batch(self, context: dict) -> None:
        """Apply the batch in order, telling lookups which records will be updated next."""
        queued = context.get("records") or []
        ids = [self.update_id(record) for record, _error in queued]
        for number, (record, schema_error) in enumerate(queued):
            self.upcoming = [i for i in ids[number + 1 :] if i is not None]
            self._schema_error = schema_error
            self.apply_record(record)
        self.upcoming = []
        context["records"] = []

    def update_id(self, record: t.Mapping[str, t.Any]) -> int | None:
        """The id of a record that will be an UPDATE, when it is a usable id."""
        rid = record.get("id")
        if not blank(record.get("_sdc_deleted_at")) or isinstance(rid, bool):
            return None
        return validation.as_id(rid)

    def apply_record(self, record: dict) -> None:
        """Apply one record and count its outcome (every record ends as exactly one)."""
        operation = self.operation_of(record)
        original = record
        try:
            if self._schema_error:
                raise Rejected(
                    operation,
                    f"{self.stream_name} {operation}: the record does not "
                    f"match its stream's SCHEMA message: {self._schema_error}",
                )
            if operation in self.refused:
                raise Rejected(
                    operation, f"{self.refused[operation]} (refused earlier in this run)", 403
                )
            try:
                record = validation.prepare(self.obj, operation, record)
            except validation.ValidationError as exc:
                raise Rejected(operation, str(exc)) from None
            outcome, operation = self.apply(operation, record)
        except Unresolved as exc:
            self.run.rejects.write(self.stream_name, operation, str(exc), original, exc.status)
            self.run.summary.add(
                self.stream_name, operation, "unresolved" if exc.checked else "rejected"
            )
            return
        except Rejected as rejection:
            self.run.reject(
                self.stream_name,
                rejection.operation,
                rejection.reason,
                original,
                rejection.http_status,
            )
            return
        except CapsulePermissionError as exc:
            # A 403 belongs to this operation (a scope or an administrator is missing), not to
            # the whole token: reject, and reject the stream's later records of this operation
            # without spending a request on each.
            reason = (
                f"{self.stream_name} {operation}: Capsule refused {exc.method} {exc.path} with "
                f"HTTP 403: the token lacks {missing_permission(self.stream_name)}"
            )
            self.refused[operation] = reason
            self.run.reject(self.stream_name, operation, reason, original, 403)
            return
        except CapsuleAPIError as exc:  # a read for matching or diffing was refused
            self.run.reject(
                self.stream_name,
                operation,
                f"{self.stream_name} {operation}: {exc}",
                original,
                exc.status,
            )
            return
        self.run.summary.add(self.stream_name, operation, outcome)

    def operation_of(self, record: t.Mapping[str, t.Any]) -> str:
        """DELETE for a tombstone, UPDATE for a record with an id, else INSERT."""
        if not blank(record.get("_sdc_deleted_at")):
            return DELETE
        if not blank(record.get("id")):
            return UPDATE
        return INSERT

    def apply(self, operation: str, record: dict) -> tuple[str, str]:
        """Apply one valid record: (outcome, operation as counted; a matched INSERT is UPDATE)."""
        reason = rules.operation_allowed(self.obj, operation)
        if reason:
            raise Rejected(operation, reason)
        if operation == DELETE:
            return self.delete(record), DELETE
        if self.obj.is_link:
            return self.link(record), INSERT
        try:
            body = self.body_of(record)
        except PayloadError as exc:
            raise Rejected(operation, f"{self.stream_name} {operation}: {exc}") from None
        view = {**record, **{k: v for k, v in body.items() if blank(record.get(k))}}
        if operation == UPDATE:
            path = self.path_of(view)
            current = None
            if rules.check(self.obj, UPDATE, view):
                # A value Capsule already holds is not written, so it breaks no rule (a tap's
                # PENDING task goes back unchanged); only what would be sent is checked.
                current = self.current_or_reject(record["id"], path)
                diff = payload.update_body(self.obj, body, current)
                self._check(UPDATE, diff)
            return self.update(record, body, record["id"], path, current), UPDATE
        return self.insert(record, body, view)

    def _check(self, operation: str, view: t.Mapping[str, t.Any]) -> None:
        reasons = rules.check(self.obj, operation, view)
        if reasons:
            raise Rejected(operation, "; ".join(reasons))

    def body_of(self, record: t.Mapping[str, t.Any]) -> dict:
        """The writable fields of the record; unknown ones are warned about once per stream."""
        ignored: set[str] = set()
        body = payload.normalize(self.obj, record, ignored)
        new = ignored - self._ignored_warned
        if new:
            self._ignored_warned |= new
            self.logger.warning(
                "%s: ignoring field(s) %s: not writable Capsule fields",
                self.stream_name,
                ", ".join(sorted(new)),
            )
        return body

    def path_of(self, view: t.Mapping[str, t.Any]) -> str | None:
        """The list the record belongs to (its parent's, for children), or None."""
        values = dict(view)
        parent_ref = payload.parent_ref_key(self.obj)
        if self.obj.parent_key and blank(values.get(self.obj.parent_key)) and parent_ref:
            values[self.obj.parent_key] = ref_id(view.get(parent_ref))
        return self.run.lookups.list_path(self.obj, values)

    # --- INSERT (or UPDATE of the record it matches) --------------------------------------

    def insert(self, record: dict, body: dict, view: dict) -> tuple[str, str]:
        """An id-less record: UPDATE of the one record it matches, else a POST."""
        # A record without id must be insertable as it stands, even if it then matches one:
        # so a rule violation is found before any request, read or write.
        self._check(INSERT, view)
        if self.obj.capture_rule:
            wanted = record.get("definition")
            definition = self.run.lookups.track_definition(wanted)
            reason = rules.check_capture_rule(self.obj, definition, wanted)
            if reason or definition is None:
                raise Rejected(INSERT, reason or f"{self.stream_name} INSERT: no definition")
            body["definition"] = {"id": definition["id"]}
        keys = nk.keys_for(self.obj, self.run.upsert_keys)
        path = self.path_of(view)
        if keys is not None and path is not None:
            matched = self.match(body, keys, path, content=self.run.match_on_content)
            if len(matched) > 1:
                raise Rejected(
                    INSERT,
                    f"{self.stream_name} INSERT: {nk.describe(body, keys)} "
                    f"matches {len(matched)} existing records (ids "
                    f"{', '.join(map(str, matched))}) (rule: an upsert key must match "
                    "at most one record; Capsule has no merge, so merge them in Capsule or "
                    "give the record an id)",
                )
            if matched and self.on_content:
                self.run.summary.count(self.stream_name, "matched_on_content")
                self.logger.info(
                    "%s INSERT: matched on content existing record %s (Capsule already holds "
                    "every field it sets; set match_on_content to false to insert instead)",
                    self.stream_name,
                    matched[0],
                )
            if matched:
                rule = rules.operation_allowed(self.obj, UPDATE)
                if rule:
                    raise Rejected(UPDATE, rule)
                self._check(UPDATE, view)
                found = self.run.lookups.cached(path, matched[0])
                if self.on_content and found is not None:
                    # Matched because Capsule holds the same text up to case and spaces:
                    # its own spelling stays ("john " does not overwrite "John").
                    body = {k: v for k, v in body.items() if not nk.matches(v, found.get(k))}
                return self.update(record, body, matched[0], path, found), UPDATE
        try:
            full = payload.insert_body(body)
            full.update(self.extras(record, None))
        except PayloadError as exc:
            raise Rejected(INSERT, f"{self.stream_name} INSERT: {exc}") from None
        if self.run.dry_run:
            if keys is not None and path is not None:
                self.run.lookups.remember(self.obj, path, {"id": f"planned:{id(record)}", **full})
            self.run.changes.ahead(
                self.stream_name, INSERT, None, full, created_tags=self.new_tags(full)
            )
            return "applied", INSERT
        return self.post(record, body, full, keys, path)

    def match(
        self,
        body: dict,
        keys: t.Sequence[cat.NaturalKey],
        path: str,
        content: bool,
        refresh: bool = False,
    ) -> list:
        """Ids of the existing records `body` matches (`refresh`: re-read the whole list)."""
        lookups = self.run.lookups
        if refresh:
            index = lookups.index(self.obj, path, keys, refresh=True)
        else:
            index = lookups.candidates(self.obj, path, keys, nk.content_of(self.obj, body))
        return self.match_in(index, body, content)

    def match_in(self, index: nk.Index, body: dict, content: bool) -> list:
        """Ids in `index` that `body` matches by natural key, or else by content."""
        ids = index.match_key(body)
        self.on_content = ids is None
        if ids is None:
            if not content:
                return []
            wanted = nk.content_of(self.obj, body)
            ids = index.match_content(wanted, lambda current: nk.holds_scalars(wanted, current))
        return ids

    def post(
        self,
        record: dict,
        body: dict,
        full: dict,
        keys: t.Sequence[cat.NaturalKey] | None,
        path: str | None,
    ) -> tuple[str, str]:
        """POST a new record through the one write path, checked after an ambiguous failure."""
        target_path = cat.fill_path(self.obj.post_path, record)
        new_tags = self.new_tags(full)
        check = None
        if path is not None:
            since = capsule_time(self.run.session)  # before the write, on Capsule's clock
            check = functools.partial(
                check_created,
                self.run.session,
                self.obj,
                path,
                since,
                nk.made_from(self.obj, keys, body),
            )
        changes = self.run.changes
        with changes.writing(
            self.stream_name, INSERT, None, full, created_tags=new_tags, list_path=path
        ) as entry:
            try:
                written = write(
                    self.run.session,
                    "POST",
                    target_path,
                    payload.wrapped(self.obj, full),
                    check=check,
                    what=f"{self.stream_name} INSERT",
                )
            except CapsuleAPIError as exc:
                raise self.refusal(INSERT, exc) from None
            created = written.found or (written.answer or {}).get(self.obj.item_key)
            rid = created.get("id") if isinstance(created, dict) else None
            changes.settle(entry, APPLIED, rid)
        if isinstance(created, dict):
            self.run.lookups.remember(self.obj, path, created)
        if written.found is not None:  # created by a try whose answer was lost
            # What the found record lacks is sent, except what Capsule sets itself on a create
            # (an opportunity's probability follows its milestone): a clean run leaves it so.
            assert path is not None
            kept = {k: v for k, v in body.items() if k not in nk.SET_BY_CAPSULE}
            self.update(record, kept, written.found["id"], path, written.found)
        return "applied", INSERT

    def extras(self, record: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any] | None) -> dict:
        """Tags and custom values Capsule does not hold yet."""
        out: dict[str, t.Any] = {}
        if self.obj.tags and (record.get("tags") or (self.replace and "tags" in record)):
            names = payload.tag_names(
                record, lambda: self.run.lookups.definitions(str(self.obj.tags)), self.stream_name
            )
            tags = payload.tags_body(names, current, self.replace)
            if tags:
                out["tags"] = tags
        if self.obj.custom_fields and (
            record.get("fields")
            or record.get("custom_fields")
            or (self.replace and ("fields" in record or "custom_fields" in record))
        ):
            definitions = self.run.lookups.field_definitions(self.obj)
            fields = definitions.body(definitions.desired(record), current, self.replace)
            if fields:
                out["fields"] = fields
        return out

    def refusal(self, operation: str, exc: CapsuleAPIError) -> Rejected:
        """A permanent 4xx from Capsule: that record's rejection, with Capsule's own message."""
        return Rejected(
            operation,
            f"{self.stream_name} {operation}: Capsule refused it: {exc.capsule_message}",
            exc.status,
        )

    # --- UPDATE ---------------------------------------------------------------------------

    def update(
        self, record: dict, body: dict, rid: object, path: str | None, current: dict | None = None
    ) -> str:
        """Send what Capsule's copy of record `rid` lacks (nothing: `unchanged`)."""
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()
        lookups = self.run.lookups
        if current is None:
            current = self.current_or_reject(rid, path)
        single = cat.fill_path(self.obj.single_path, {"id": rid})
        diff = self.diff(record, body, current)
        kept = self.kept
        if kept:
            self.run.summary.count(self.stream_name, "kept_by_fill_empty", len(kept))
        if not diff:
            self.run.changes.note_kept(self.stream_name, rid, kept)
            return "unchanged"
        if self.obj.replace_on_update:
            return self.replace_record(rid, current, diff, path)
        before = {k: current.get(k) for k in diff}  # for the change log: what an undo restores
        new_tags = self.new_tags(diff)
        if self.run.dry_run:
            self.run.summary.count(self.stream_name, "rows_removed", payload.removals(diff))
            self.run.changes.ahead(
                self.stream_name, UPDATE, rid, diff, before, created_tags=new_tags, kept=kept
            )
            return "applied"

        def check() -> Check:
            """Re-read the record (one GET): applied when nothing is left to send."""
            fresh = lookups.current(self.obj, rid, path, keys, fresh=True)
            if fresh is None:
                raise Rejected(UPDATE, f"{self.stream_name} UPDATE: record {rid} is gone", 404)
            rest = self.diff(record, body, fresh)
            return Check(applied=not rest, found=fresh, body=payload.wrapped(self.obj, rest))

        changes = self.run.changes
        with changes.writing(
            self.stream_name, UPDATE, rid, diff, before, created_tags=new_tags, kept=kept
        ) as entry:
            try:
                written = write(
                    self.run.session,
                    "PUT",
                    single,
                    payload.wrapped(self.obj, diff),
                    check=check,
                    what=f"{self.stream_name} UPDATE of record {rid}",
                )
            except CapsuleNotFound:
                lookups.forget(self.obj, rid)
                raise Rejected(
                    UPDATE,
                    f"{self.stream_name} UPDATE: record {rid} does not exist "
                    "in Capsule (it may have been deleted)",
                    404,
                ) from None
            except CapsuleAPIError as exc:
                raise self.refusal(UPDATE, exc) from None
            changes.settle(entry, APPLIED)
        updated = (written.answer or {}).get(self.obj.item_key)
        if isinstance(updated, dict):
            lookups.remember(self.obj, path, updated)
        self.run.summary.count(self.stream_name, "rows_removed", payload.removals(diff))
        return "applied"

    def replace_record(self, rid: object, current: dict, diff: dict, path: str | None) -> str:
        """An UPDATE where Capsule has no PUT (custom titles): create the new, delete the old.

        Parties name titles by text, so nothing refers to the old id. The new record is created
        first: if the delete then fails, Capsule holds both, never neither.
        """
        full = payload.insert_body(
            {**{k: v for k, v in current.items() if k in self.obj.schema and k != "id"}, **diff}
        )
        changes = self.run.changes
        if self.run.dry_run:
            changes.ahead(self.stream_name, INSERT, None, full)
            changes.ahead(self.stream_name, DELETE, rid, None, record=current)
            return "applied"
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()

        def holding(refresh: bool) -> list[dict]:
            """Other records of the (small) list that already hold the new values."""
            index = self.run.lookups.index(self.obj, self.obj.path, keys, refresh=refresh)
            holds = [
                i
                for i in index.match_content(full, lambda c: nk.holds_scalars(full, c))
                if str(i) != str(rid)
            ]
            return [index.by_id[i] for i in holds]

        def check() -> Check:
            """Re-read the list: applied when a record holding the new values exists."""
            found = holding(refresh=True)
            return Check(applied=bool(found), found=found[0] if found else None)

        # Logged as what happens: a create and a delete (an undo deletes the one, recreates the
        # other). A title that already existed was not created by this run.
        try:
            existing = holding(refresh=False)  # the new title exists already: only delete
            if existing:
                created: t.Any = existing[0]
            else:
                with changes.writing(self.stream_name, INSERT, None, full) as entry:
                    written = write(
                        self.run.session,
                        "POST",
                        self.obj.post_path,
                        payload.wrapped(self.obj, full),
                        check=check,
                        what=f"{self.stream_name} UPDATE of record {rid} (create the new one)",
                    )
                    created = written.found or (written.answer or {}).get(self.obj.item_key) or {}
                    changes.settle(entry, APPLIED, created.get("id"))
            with changes.writing(self.stream_name, DELETE, rid, None, record=current) as entry:
                single = cat.fill_path(self.obj.single_path, {"id": rid})
                if delete(self.run.session, single) != GONE:
                    changes.settle(entry, APPLIED)
        except CapsuleAPIError as exc:
            raise self.refusal(UPDATE, exc) from None
        self.run.lookups.forget(self.obj, rid)
        if isinstance(created, dict) and created.get("id") is not None:
            self.run.lookups.remember(self.obj, path, created)
        self.logger.info(
            "%s UPDATE: record %s replaced by new record %s (Capsule has no update for %s)",
            self.stream_name,
            rid,
            created.get("id") if isinstance(created, dict) else None,
            self.stream_name,
        )
        return "applied"

    def diff(self, record: dict, body: dict, current: dict) -> dict:
        """What an UPDATE must send for Capsule's `current` copy to hold the record."""
        try:
            diff = payload.update_body(self.obj, body, current, self.replace)
            diff.update(self.extras(record, current))
            self.kept = self.run.fill_empty.apply(
                self.obj,
                diff,
                current,
                (lambda: self.run.lookups.field_definitions(self.obj))
                if self.obj.custom_fields
                else None,
            )
        except PayloadError as exc:
            raise Rejected(UPDATE, f"{self.stream_name} UPDATE: {exc}") from None
        return diff

    def current_or_reject(self, rid: object, path: str | None) -> dict:
        """Capsule's copy of the record to update, or a rejection when it does not exist."""
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()
        current = self.run.lookups.current(self.obj, rid, path, keys, upcoming=self.upcoming)
        if current is None:
            raise Rejected(
                UPDATE,
                f"{self.stream_name} UPDATE: record {rid} does not exist in "
                "Capsule (it may have been deleted)",
                404,
            )
        return current

    # --- DELETE ---------------------------------------------------------------------------

    def delete(self, record: dict) -> str:
        """DELETE by id (or the link's two ids); a 404 is `already_gone`."""
        self._check(DELETE, record)
        if self.obj.is_link:
            single = cat.fill_path(self.obj.single_path, record)
        else:
            if blank(record.get("id")):
                raise Rejected(
                    DELETE,
                    f"{self.stream_name} DELETE: id is required (rule: a "
                    "delete names the record by id)",
                )
            single = cat.fill_path(self.obj.single_path, {"id": record["id"]})
        content = self.deleted_content(record)
        entry = self.log_delete(record, content)  # the pending line (planned in a dry run)
        if self.run.dry_run:
            return "applied"
        changes = self.run.changes
        try:
            gone = delete(self.run.session, single)
        except CapsuleAPIError as exc:
            changes.settle(entry, FAILED, reason=str(exc))
            raise self.refusal(DELETE, exc) from None
        except BaseException as exc:
            if isinstance(exc, Exception):
                changes.settle(entry, UNRESOLVED, reason=str(exc))
            raise
        # 200, 202 (a job) or 204; or a 404 after a try whose answer was lost: this run did it.
        outcome = "already_gone" if gone == GONE else "applied"
        changes.settle(entry, APPLIED if outcome == "applied" else FAILED, reason=gone)
        if self.obj.is_link:
            self.run.lookups.link_changed(
                self.obj, record[self.obj.parent_key], record[self.obj.child_key], linked=False
            )
        else:
            self.run.lookups.forget(self.obj, record["id"])
        return outcome

    # --- the change log (change_log_path) ------------------------------------------------

    def new_tags(self, body: t.Mapping[str, t.Any]) -> list[str] | None:
        """Tag names of `body` that no tag definition has yet: Capsule will create them.

        Only asked with a change log (an undo deletes those definitions again); the definitions
        list is read once per run.
        """
        if not self.run.changes.enabled or not self.obj.tags or not body.get("tags"):
            return None
        known = self.__dict__.setdefault(
            "_known_tags",
            {
                str(d.get("name") or "").strip().casefold()
                for d in self.run.lookups.definitions(self.obj.tags)
            },
        )
        new = [
            str(tag["name"])
            for tag in body["tags"]
            if isinstance(tag, dict)
            and tag.get("name")
            and not tag.get("_delete")
            and str(tag["name"]).strip().casefold() not in known
        ]
        known.update(n.strip().casefold() for n in new)  # created once, by this write
        return new or None

    def deleted_content(self, record: dict) -> dict | None:
        """Capsule's copy of a record about to be deleted, for the change log (None without one).

        Read as a diff reads it: from a list the run already holds, else one GET.
        """
        if not self.run.changes.enabled or self.obj.is_link:
            return None
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()
        content = self.run.lookups.current(self.obj, record["id"], self.path_of(record), keys)
        if content is not None and self.obj.parent:
            content = self.run.lookups.with_parent(self.obj, content)  # what a recreate needs
        if (
            content is not None
            and self.obj.stream == "parties"
            and (content.get("type") == "organisation")
        ):
            # Capsule clears `organisation` on its people: an undo links them to the new one.
            people = self.run.session.paginate(f"/parties/{int(record['id'])}/people", "parties")
            content = {**content, PEOPLE_KEY: [p.get("id") for p in people]}
        return content

    def log_delete(self, record: dict, content: dict | None) -> Entry:
        """The DELETE's pending line: a link's two ids, or the record's whole content."""
        if self.obj.is_link:
            link = {k: record[k] for k in (self.obj.parent_key, self.obj.child_key) if k}
            return self.run.changes.ahead(self.stream_name, DELETE, None, None, keys=link)
        return self.run.changes.ahead(self.stream_name, DELETE, record["id"], None, record=content)

    # --- links (additional parties) -------------------------------------------------------

    def link(self, record: dict) -> str:
        """Link a party to an opportunity or case, unless the link exists already."""
        self._check(INSERT, record)
        parent_key, child_key = self.obj.parent_key, self.obj.child_key
        assert parent_key and child_key
        parent_id, child_id = record[parent_key], record[child_key]
        link = {parent_key: parent_id, child_key: child_id}
        changes = self.run.changes
        try:
            outcome = link_unless_linked(
                self.run.session,
                self.run.lookups,
                self.obj,
                parent_id,
                child_id,
                what=f"{self.stream_name} INSERT",
                dry_run=self.run.dry_run,
                around=changes.around_link(self.stream_name, link),
            )
        except ParentMissing as exc:
            raise Rejected(INSERT, f"{self.stream_name} INSERT: {exc}", 404) from None
        except CapsuleAPIError as exc:
            raise self.refusal(INSERT, exc) from None
        if outcome == UNCHANGED:
            return "unchanged"
        if self.run.dry_run:
            changes.ahead(self.stream_name, INSERT, None, None, keys=link)
        return "applied"
