"""Link a party to an opportunity or case unless it is linked already: one helper for every writer.

Capsule has no idempotency key, and re-adding a party that is already linked is a 422 ("party is
already a contact for this opportunity", or "already related" for the record's main party). So
the parent's links are read first (one short list, cached for the run), the POST goes through the
one write path (after a lost answer, the links are read again before any retry), and a 422 that
says the link exists counts as the link being there.
"""

from __future__ import annotations

import contextlib
import typing as t

from tap_capsule import catalogue as cat
from tap_capsule.api_client import CapsuleAPIError
from target_capsule.writes import Check, write

if t.TYPE_CHECKING:
    from tap_capsule.api_client import CapsuleSession
    from target_capsule.lookups import Lookups

LINKED, UNCHANGED = "linked", "unchanged"
# In the change log's copy of a deleted organisation: the ids of its people. Capsule clears their
# `organisation` when it deletes it, so an undo that recreates it links them to the new one.
PEOPLE_KEY = "_people"


class ParentMissing(Exception):  # noqa: N818 - an outcome the caller reports
    """The opportunity or case to link to does not exist."""


def already_linked(exc: CapsuleAPIError) -> bool:
    """Capsule's 422 for a link that exists already."""
    return exc.status == 422 and "already" in str(exc.capsule_message).casefold()


def link_unless_linked(
    session: CapsuleSession,
    lookups: Lookups,
    obj: cat.CapsuleObject,
    parent: int,
    child: int,
    *,
    what: str,
    dry_run: bool = False,
    around: t.Callable[[], t.ContextManager[t.Callable[[], None]]] | None = None,
) -> str:
    """`LINKED` after a POST (or, with `dry_run`, when one would be sent), else `UNCHANGED`.

    `around` wraps the POST (a change log's write-ahead line): it yields what to call once
    Capsule holds the link. Raises `ParentMissing` when the parent does not exist; other
    refusals (`CapsuleAPIError`) and `Unresolved` pass through.
    """
    parent_key, child_key = obj.parent_key or "", obj.child_key or ""
    linked = lookups.linked_ids(obj, parent)
    if linked is None:
        raise ParentMissing(f"{parent_key} {parent} does not exist in Capsule")
    if str(child) in linked:
        return UNCHANGED
    if dry_run:
        return LINKED

    def check() -> Check:
        """Re-read the parent's links (one short list): applied when the link is there."""
        return Check(applied=str(child) in (lookups.linked_ids(obj, parent, True) or ()))

    path = cat.fill_path(obj.post_path, {parent_key: parent, child_key: child})
    wrapper = around() if around is not None else contextlib.nullcontext(lambda: None)
    with wrapper as applied:
        try:
            write(session, "POST", path, check=check, what=what)
        except CapsuleAPIError as exc:
            if not already_linked(exc):
                raise
            lookups.link_changed(obj, parent, child, linked=True)
            return UNCHANGED
        applied()
    lookups.link_changed(obj, parent, child, linked=True)
    return LINKED
