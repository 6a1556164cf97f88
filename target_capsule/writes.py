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

WRITE_ATTEMPTS = 4  # tries of one write; each failed try is followed by one check
CLOCK_MARGIN = 5  # seconds: a `since` check starts this long before the write

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


def since_mark(session: CapsuleSession) -> t.Callable[[], str]:
    """Capsule's time just before a write, as a `since` value for a check after it.

    Read on Capsule's clock (the `Date` of its answers), `CLOCK_MARGIN` early because that clock
    ticks in seconds. Before any answer was seen, the check starts from the failure's own `Date`
    (or the local clock) less the request timeout: too early costs a few records, too late would
    miss the write and send it twice.
    """
    before = session.pacer.server_now()

    def mark() -> str:
        start = before
        if start is None:
            start = (session.pacer.server_now() or time.time()) - session.timeout
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - CLOCK_MARGIN))

    return mark


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
