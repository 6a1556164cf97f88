"""One sink class for every catalogue object: operation, rules, upsert, diff, write, outcome.

Every record ends as exactly one outcome in the summary: applied, unchanged, already_gone or
rejected (planned in a dry run). Nothing is written twice: POSTs that fail ambiguously are followed
by a look-up before any retry, PUTs by a re-read, and DELETEs are idempotent.
"""

from __future__ import annotations

import typing as t

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks import RecordSink

from tap_capsule import catalogue as cat
from tap_capsule.api_client import (
    AmbiguousWriteError,
    CapsuleAPIError,
    CapsuleNotFound,
    raise_for_capsule_status,
    response_json,
)
from target_capsule import natural_keys as nk
from target_capsule import payload, rules
from target_capsule.payload import PayloadError, blank, ref_id

if t.TYPE_CHECKING:
    from target_capsule.target import TargetCapsule, WriteRun

INSERT, UPDATE, DELETE = cat.INSERT, cat.UPDATE, cat.DELETE
WRITE_ATTEMPTS = 3  # a write that stays ambiguous after a look-up and this many tries is rejected


class Rejected(Exception):
    def __init__(self, operation: str, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.operation = operation
        self.reason = reason
        self.http_status = http_status


class CapsuleSink(RecordSink):
    """Writes one stream's records to Capsule, as the catalogue entry of that stream says."""

    # Capsule wants the strings it sends; the SDK would parse date-times into Python objects.
    def __init__(
        self,
        target: TargetCapsule,
        stream_name: str,
        schema: dict,
        key_properties: t.Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.obj = cat.get(stream_name)
        self.run: WriteRun = target.run
        self._schema_error: str | None = None
        self._ignored_warned: set[str] = set()

    @property
    def include_sdc_metadata_properties(self) -> bool:
        return True  # keeps `_sdc_deleted_at`, which decides DELETE; `_sdc_*` is never sent

    def _parse_timestamps_in_record(self, record: dict, schema: dict, treatment: t.Any) -> None:
        return None

    def _singer_validate_message(self, record: dict) -> None:
        return None  # an INSERT has no id; key properties of other taps mean nothing here

    def _validate_and_parse(self, record: dict) -> dict:
        self._schema_error = None
        if self._validator is not None:
            try:
                self._validator.validate(record)
            except InvalidRecord as exc:
                self._schema_error = str(exc.args[0] if exc.args else exc)
        return record

    # --- one record -----------------------------------------------------------------------

    def process_record(self, record: dict, context: dict) -> None:
        operation = self.operation_of(record)
        try:
            if self._schema_error:
                raise Rejected(
                    operation,
                    f"{self.stream_name} {operation}: the record does not "
                    f"match its stream's SCHEMA message: {self._schema_error}",
                )
            outcome, operation = self.apply(operation, record)
        except Rejected as rejection:
            self.run.reject(
                self.stream_name,
                rejection.operation,
                rejection.reason,
                record,
                rejection.http_status,
            )
            return
        except CapsuleAPIError as exc:  # a read for matching or diffing was refused
            self.run.reject(
                self.stream_name,
                operation,
                f"{self.stream_name} {operation}: {exc}",
                record,
                exc.status,
            )
            return
        self.run.summary.add(self.stream_name, operation, outcome)

    def operation_of(self, record: t.Mapping[str, t.Any]) -> str:
        if not blank(record.get("_sdc_deleted_at")):
            return DELETE
        if not blank(record.get("id")):
            return UPDATE
        return INSERT

    def apply(self, operation: str, record: dict) -> tuple[str, str]:
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
        values = dict(view)
        parent_ref = payload.parent_ref_key(self.obj)
        if self.obj.parent_key and blank(values.get(self.obj.parent_key)) and parent_ref:
            values[self.obj.parent_key] = ref_id(view.get(parent_ref))
        return self.run.lookups.list_path(self.obj, values)

    # --- INSERT (or UPDATE of the record it matches) --------------------------------------

    def insert(self, record: dict, body: dict, view: dict) -> tuple[str, str]:
        # A record without id must be insertable as it stands, even if it then matches one:
        # so a rule violation is found before any request, read or write.
        self._check(INSERT, view)
        if self.obj.capture_rule:
            wanted = record.get("definition")
            definition = self.run.lookups.track_definition(wanted)
            reason = rules.check_capture_rule(self.obj, definition, wanted)
            if reason:
                raise Rejected(INSERT, reason)
            body["definition"] = {"id": definition["id"]}
        keys = nk.keys_for(self.obj, self.run.upsert_keys)
        path = self.path_of(view)
        if keys is not None and path is not None:
            matched = self.match(body, keys, path, content=True)
            if len(matched) > 1:
                raise Rejected(
                    INSERT,
                    f"{self.stream_name} INSERT: {nk.describe(body, keys)} "
                    f"matches {len(matched)} existing records (ids "
                    f"{', '.join(map(str, matched))}) (rule: an upsert key must match "
                    "at most one record)",
                )
            if matched:
                rule = rules.operation_allowed(self.obj, UPDATE)
                if rule:
                    raise Rejected(UPDATE, rule)
                self._check(UPDATE, view)
                index = self.run.lookups.index(self.obj, path, keys)
                return self.update(record, body, matched[0], path, index.by_id[matched[0]]), UPDATE
        try:
            full = payload.insert_body(body)
            full.update(self.extras(record, None))
        except PayloadError as exc:
            raise Rejected(INSERT, f"{self.stream_name} INSERT: {exc}") from None
        if self.run.dry_run:
            if keys is not None and path is not None:
                self.run.lookups.index(self.obj, path, keys or ()).add(
                    {"id": f"planned:{id(record)}", **full}
                )
            self.run.changes.write(
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
        index = self.run.lookups.index(self.obj, path, keys, refresh=refresh)
        ids = index.match_key(body)
        if ids is None:
            if not content:
                return []
            parent_ref = (
                payload.parent_ref_key(self.obj) if cat.path_fields(self.obj.path) else None
            )
            wanted = {k: v for k, v in body.items() if k != parent_ref}
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
        target_path = cat.fill_path(self.obj.post_path, record)
        new_tags = self.new_tags(full)
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                response = self.run.session.call(
                    "POST", target_path, json_body={self.obj.item_key: full}
                )
                raise_for_capsule_status(response)
            except CapsuleAPIError as exc:
                raise Rejected(
                    INSERT,
                    f"{self.stream_name} INSERT: Capsule refused it: {exc.capsule_message}",
                    exc.status,
                ) from None
            except AmbiguousWriteError as exc:
                if keys is None or path is None:
                    raise Rejected(
                        INSERT,
                        f"{self.stream_name} INSERT: {exc} The record may have been created; "
                        f"check Capsule before re-running (upsert is off for {self.stream_name}, "
                        "so the target cannot tell).",
                        exc.status,
                    ) from None
                self.logger.warning("%s; looking it up before any retry", exc)
                matched = self.match(body, keys, path, content=True, refresh=True)
                if len(matched) > 1:
                    raise Rejected(
                        INSERT,
                        f"{self.stream_name} INSERT: {exc} Afterwards "
                        f"{len(matched)} records match it (ids "
                        f"{', '.join(map(str, matched))}); check Capsule.",
                        exc.status,
                    ) from None
                if matched:
                    # Our POST created it after all: that is the change to log.
                    self.run.changes.write(
                        self.stream_name, INSERT, matched[0], full, created_tags=new_tags
                    )
                    index = self.run.lookups.index(self.obj, path, keys)
                    self.update(record, body, matched[0], path, index.by_id[matched[0]])
                    return "applied", INSERT
                continue  # Capsule does not hold it: the POST did not happen, so send it again
            created = (response_json(response) or {}).get(self.obj.item_key)
            if isinstance(created, dict):
                self.run.lookups.remember(self.obj, path, created)
            rid = created.get("id") if isinstance(created, dict) else None
            self.run.changes.write(self.stream_name, INSERT, rid, full, created_tags=new_tags)
            return "applied", INSERT
        raise Rejected(
            INSERT,
            f"{self.stream_name} INSERT: Capsule kept failing the POST "
            f"{WRITE_ATTEMPTS} times without creating the record; run again later",
        )

    def extras(self, record: t.Mapping[str, t.Any], current: t.Mapping[str, t.Any] | None) -> dict:
        """Tags and custom values Capsule does not hold yet."""
        out: dict[str, t.Any] = {}
        if self.obj.tags and record.get("tags"):
            names = payload.tag_names(
                record, lambda: self.run.lookups.definitions(self.obj.tags), self.stream_name
            )
            tags = payload.tags_body(names, current)
            if tags:
                out["tags"] = tags
        if self.obj.custom_fields and (record.get("fields") or record.get("custom_fields")):
            definitions = self.run.lookups.field_definitions(self.obj)
            fields = definitions.body(definitions.desired(record), current)
            if fields:
                out["fields"] = fields
        return out

    # --- UPDATE ---------------------------------------------------------------------------

    def update(
        self, record: dict, body: dict, rid: t.Any, path: str | None, current: dict | None = None
    ) -> str:
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()
        lookups = self.run.lookups
        if current is None:
            current = self.current_or_reject(rid, path)
        single = cat.fill_path(self.obj.single_path, {"id": rid})
        first: tuple[dict, dict] | None = None  # the diff and before-values of the first try
        new_tags: list[str] | None = None
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                diff = payload.update_body(self.obj, body, current)
                diff.update(self.extras(record, current))
            except PayloadError as exc:
                raise Rejected(UPDATE, f"{self.stream_name} UPDATE: {exc}") from None
            if not diff:
                if _attempt == 0:
                    return "unchanged"
                if first is not None:  # an ambiguous PUT that Capsule had applied
                    self.run.changes.write(
                        self.stream_name, UPDATE, rid, *first, created_tags=new_tags
                    )
                return "applied"
            if first is None:
                first = (diff, {k: current.get(k) for k in diff})
                new_tags = self.new_tags(diff)
            if self.run.dry_run:
                self.run.changes.write(self.stream_name, UPDATE, rid, *first, created_tags=new_tags)
                return "applied"
            try:
                response = self.run.session.call("PUT", single, json_body={self.obj.item_key: diff})
                raise_for_capsule_status(response)
            except CapsuleNotFound:
                lookups.forget(self.obj, rid)
                raise Rejected(
                    UPDATE,
                    f"{self.stream_name} UPDATE: record {rid} does not exist "
                    "in Capsule (it may have been deleted)",
                    404,
                ) from None
            except CapsuleAPIError as exc:
                raise Rejected(
                    UPDATE,
                    f"{self.stream_name} UPDATE: Capsule refused it: {exc.capsule_message}",
                    exc.status,
                ) from None
            except AmbiguousWriteError as exc:
                self.logger.warning("%s; re-reading record %s before any retry", exc, rid)
                current = lookups.current(self.obj, rid, path, keys, fresh=True)
                if current is None:
                    raise Rejected(
                        UPDATE, f"{self.stream_name} UPDATE: record {rid} is gone", 404
                    ) from None
                continue
            updated = (response_json(response) or {}).get(self.obj.item_key)
            if isinstance(updated, dict):
                lookups.remember(self.obj, path, updated)
            self.run.changes.write(
                self.stream_name,
                UPDATE,
                rid,
                diff,
                {k: current.get(k) for k in diff},
                created_tags=new_tags,
            )
            return "applied"
        raise Rejected(
            UPDATE,
            f"{self.stream_name} UPDATE: Capsule kept failing the PUT "
            f"{WRITE_ATTEMPTS} times; what it holds now is partly updated at most; "
            "run again later (only what is missing will be sent)",
        )

    def current_or_reject(self, rid: t.Any, path: str | None) -> dict:
        keys = nk.keys_for(self.obj, self.run.upsert_keys) or ()
        current = self.run.lookups.current(self.obj, rid, path, keys)
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
        if self.run.dry_run:
            self.log_delete(record, content)
            return "applied"
        response = self.run.session.call("DELETE", single)
        if response.status_code == 404:
            outcome = "already_gone"
        else:
            try:
                raise_for_capsule_status(response)
            except CapsuleAPIError as exc:
                raise Rejected(
                    DELETE,
                    f"{self.stream_name} DELETE: Capsule refused it: {exc.capsule_message}",
                    exc.status,
                ) from None
            outcome = "applied"  # 200, 202 (a job) or 204
            self.log_delete(record, content)
        if self.obj.is_link:
            self.run.lookups.link_changed(
                self.obj, record[self.obj.parent_key], record[self.obj.child_key], linked=False
            )
        else:
            self.run.lookups.forget(self.obj, record["id"])
        return outcome

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
        return self.run.lookups.current(self.obj, record["id"], self.path_of(record), keys)

    def log_delete(self, record: dict, content: dict | None) -> None:
        if self.obj.is_link:
            link = {k: record[k] for k in (self.obj.parent_key, self.obj.child_key) if k}
            self.run.changes.write(self.stream_name, DELETE, None, None, keys=link)
        else:
            self.run.changes.write(self.stream_name, DELETE, record["id"], None, record=content)

    # --- links (additional parties) -------------------------------------------------------

    def link(self, record: dict) -> str:
        self._check(INSERT, record)
        parent_key, child_key = self.obj.parent_key, self.obj.child_key
        assert parent_key and child_key
        parent_id, child_id = record[parent_key], record[child_key]
        lookups = self.run.lookups
        linked = lookups.linked_ids(self.obj, parent_id)
        if linked is None:
            raise Rejected(
                INSERT,
                f"{self.stream_name} INSERT: {parent_key} {parent_id} does not exist in Capsule",
                404,
            )
        if str(child_id) in linked:
            return "unchanged"
        link = {parent_key: parent_id, child_key: child_id}
        if self.run.dry_run:
            self.run.changes.write(self.stream_name, INSERT, None, None, keys=link)
            return "applied"
        path = cat.fill_path(self.obj.post_path, record)
        for _attempt in range(WRITE_ATTEMPTS):
            try:
                response = self.run.session.call("POST", path)
                raise_for_capsule_status(response)
            except CapsuleAPIError as exc:
                raise Rejected(
                    INSERT,
                    f"{self.stream_name} INSERT: Capsule refused it: {exc.capsule_message}",
                    exc.status,
                ) from None
            except AmbiguousWriteError as exc:
                self.logger.warning("%s; checking the link before any retry", exc)
                linked = lookups.linked_ids(self.obj, parent_id, refresh=True) or set()
                if str(child_id) in linked:
                    self.run.changes.write(self.stream_name, INSERT, None, None, keys=link)
                    return "applied"
                continue
            lookups.link_changed(self.obj, parent_id, child_id, linked=True)
            self.run.changes.write(self.stream_name, INSERT, None, None, keys=link)
            return "applied"
        raise Rejected(
            INSERT,
            f"{self.stream_name} INSERT: Capsule kept failing the POST "
            f"{WRITE_ATTEMPTS} times without creating the link; run again later",
        )
