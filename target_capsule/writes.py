"""The target's one write path: send, and after an ambiguous failure check once before a retry.

Capsule has no idempotency key, so a POST or PUT that failed after it may have reached Capsule (a
5xx, a dropped connection, a malformed answer) cannot simply be sent again: a retried POST can
create a second record. Every write therefore goes through `write`: it sends the request; on an
ambiguous failure it asks the caller's `check` (one cheap read: a GET by id, a short `since` list,
the parent's links) whether Capsule holds the write; only when it does not is the write sent again,
after the shared HTTP layer's backoff. What stays undecided after `WRITE_ATTEMPTS` tries is
`Unresolved`, and the run ends non-zero so nobody mistakes it for done.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import typing as t

from tap_capsule.api_client import (
    AmbiguousWriteError,
    CapsuleRetryError,
    raise_for_capsule_status,
    response_json,
    retry_delays,
)

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession
    from tap_capsule.catalogue import CapsuleObject

WRITE_ATTEMPTS = 4  # tries of one write; each failed try is followed by one check
# Seconds: a look for what a write created starts this long before Capsule's clock showed when the
# write was about to be sent (that clock ticks in whole seconds, and ours follows it from the
# `Date` of its answers). One margin for the target, the undo and the restore.
CLOCK_MARGIN = 5
DELETED, GONE, GONE_AFTER_LOST_ANSWER = "deleted", "gone", "gone_after_lost_answer"

logger = logging.getLogger("target_capsule.writes")

SAME = object()  # `Check.body` default: send the same body again


@dataclasses.dataclass
class Check:
    """What a check after an ambiguous failure found."""

    applied: bool  # Capsule holds the write: no retry
    found: t.Any = None  # what Capsule holds (the created record, the re-read copy, ...)
    body: t.Any = SAME  # when not applied: the body to send next (e.g. a PUT's new diff)


@dataclasses.dataclass
class Written:
    """A write that Capsule holds: its answer, or what the check found after an ambiguous try."""

    answer: t.Any = None  # Capsule's parsed answer to the successful request
    found: t.Any = None  # set when a check, not an answer, showed the write applied
    attempts: int = 1


class Unresolved(Exception):  # noqa: N818 - an outcome, not an error of the code
    """Whether Capsule applied the write is still unknown after every try."""

    def __init__(self, message: str, status: int | None = None, *, checked: bool = True) -> None:
        """Keep Capsule's last status and whether a rerun can tell (`checked`)."""
        super().__init__(message)
        self.status = status
        self.checked = checked


def capsule_time(session: CapsuleSession) -> float:
    """Capsule's clock now, as its answers' `Date` shows it (before any answer: ours)."""
    now = session.pacer.server_now()
    return time.time() if now is None else now


def parse_time(value: object) -> float | None:
    """An ISO 8601 date-time (a `createdAt`, a change log's `capsule_at`) as epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def find_created(
    session: CapsuleSession,
    obj: CapsuleObject,
    path: str,
    since: float | None,
    matches: t.Callable[[dict], bool],
    taken: t.Collection[object] = (),
) -> list[dict]:
    """The records of list `path` that a create sent at `since` (Capsule's clock) may have made.

    The one look after a create whose answer was lost, in the target, the undo and the restore,
    and for a `pending` change-log line a kill left. Objects with `since` are read from
    `CLOCK_MARGIN` before the write (one short read); others (settings, a parent's child list)
    whole. A record created before that moment is never the one. `matches` decides on the upsert
    key or on fields Capsule stores as sent, never on values Capsule sets itself; ids in `taken`
    (already paired with something else) are left out.
    """
    params = dict(obj.list_query)
    start = None if since is None else since - CLOCK_MARGIN
    if obj.since and path == obj.path and start is not None:
        params["since"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    taken_ids = {str(i) for i in taken}
    found = []
    for record in session.paginate(path, obj.list_key, params):
        if str(record.get("id")) in taken_ids:
            continue
        created = parse_time(record.get("createdAt"))
        if start is not None and created is not None and created < start:
            continue
        if matches(record):
            found.append(record)
    return found


def check_created(
    session: CapsuleSession,
    obj: CapsuleObject,
    path: str,
    since: float | None,
    matches: t.Callable[[dict], bool],
    taken: t.Collection[object] = (),
) -> Check:
    """The check after an ambiguous create: `find_created`, and more than one match unresolved."""
    found = find_created(session, obj, path, since, matches, taken)
    if len(found) > 1:
        raise Unresolved(
            f"{obj.stream} INSERT: after an ambiguous failure {len(found)} records match it "
            f"(ids {', '.join(str(r.get('id')) for r in found)}); check Capsule."
        )
    return Check(applied=bool(found), found=found[0] if found else None)


def delete(session: CapsuleSession, path: str) -> str:
    """DELETE `path`; a 404 means the record is gone. `CapsuleAPIError` for other refusals.

    Returns DELETED, GONE (it was gone before this request) or GONE_AFTER_LOST_ANSWER: a try of
    this DELETE lost its answer (a 5xx, a dropped connection, a malformed body: it may have
    reached Capsule) and the retry found the record gone, so this run deleted it (the caller
    counts and logs it as applied). The verdict follows what happened, not how many requests
    went out: a 429 or a refresh of the token before the 404 changed nothing in Capsule.
    """
    lost = session.unanswered
    response = session.call("DELETE", path)
    if response.status_code == 404:
        return GONE_AFTER_LOST_ANSWER if session.unanswered > lost else GONE
    raise_for_capsule_status(response)
    return DELETED


def write(
    session: CapsuleSession,
    method: str,
    path: str,
    body: object = None,
    *,
    check: t.Callable[[], Check] | None,
    what: str,
    attempts: int = WRITE_ATTEMPTS,
) -> Written:
    """Send one write until Capsule holds it; `CapsuleAPIError` (a 4xx) passes through.

    `check` is None when nothing can tell whether an ambiguous write happened (then it is never
    retried: `Unresolved` with `checked=False`).
    """
    waits = retry_delays()
    last: AmbiguousWriteError | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = session.call(method, path, json_body=body)
            raise_for_capsule_status(response)
        except AmbiguousWriteError as exc:
            last = exc
            if check is None:
                done = "created" if method == "POST" else "changed"
                raise Unresolved(
                    f"{what}: {exc} The record may have been {done}; check Capsule before "
                    "re-running (the target cannot tell, so it did not retry).",
                    exc.status,
                    checked=False,
                ) from None
            logger.warning("%s; checking whether Capsule holds it before any retry", exc)
            try:
                verdict = check()
            except (AmbiguousWriteError, CapsuleRetryError) as check_exc:
                raise Unresolved(
                    f"{what}: {exc} The check that follows failed too ({check_exc}).",
                    exc.status,
                ) from None
            if verdict.applied:
                return Written(found=verdict.found, attempts=attempt)
            if verdict.body is not SAME:
                body = verdict.body
            if attempt < attempts:
                session.pause(next(waits))
            continue
        return Written(answer=response_json(response), attempts=attempt)
    raise Unresolved(
        f"{what}: Capsule failed it {attempts} times ({last}); each time a check showed it was "
        "not applied.",
        last.status if last else None,
    )
