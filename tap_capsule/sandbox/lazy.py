"""Tables whose records are computed from the seed on demand, with the changes kept in an overlay.

A large account (100,000 parties, 300,000 entries) does not fit in memory as dicts, and a test or a
benchmark never needs all of it at once. A `GeneratedTable` holds no record: record `i` of a table
is a pure function of (seed, table, i), built when a request asks for it. Only what changed lives in
memory: records created or edited (the overlay) and the indices of deleted ones.

The generated records are laid out so that every list stays cheap to serve:
- ids, `createdAt`, `updatedAt` and (for entries) `entryAt` grow with `i`, so the newest-first
  order of a list is the index order reversed, and `since` selects a suffix of the indices
  (found by bisection; generated records were all changed before the seed's epoch);
- a record's parent (an opportunity's party, an entry's case...) is arithmetic on `i` that can be
  inverted (`Spread`), so a parent's child list is computed, not searched.

`Ids` is one list's ids in Capsule's order: the generated indices that qualify, minus those the
overlay replaced or deleted, merged with the overlay records that qualify. Pages cut from it cost
O(page · log n); nothing of length n is ever built.
"""

from __future__ import annotations

import bisect
import collections.abc
import typing as t

Key = t.Any  # a sort key: an id, or (entryAt, id) for entries


class Spread:
    """Children of one kind spread over `parents` parents by arithmetic, invertible.

    Child `i` belongs to this kind when `i % modulus` is one of `residues`; its slot numbers the
    children of the kind, and its parent is `(slot + offset) % parents`.
    """

    def __init__(
        self, parents: int, modulus: int = 1, residues: t.Sequence[int] = (0,), offset: int = 0
    ) -> None:
        """A spread over `parents` parents (none when 0)."""
        self.parents, self.modulus, self.residues = parents, modulus, tuple(residues)
        self.offset = offset

    def parent(self, i: int) -> int | None:
        """The parent index of child `i`, or None when `i` is not of this kind."""
        q, r = divmod(i, self.modulus)
        if r not in self.residues or self.parents <= 0:
            return None
        slot = q * len(self.residues) + self.residues.index(r)
        return (slot + self.offset) % self.parents

    def children(self, parent: int, count: int) -> list[int]:
        """The child indices (< `count`) of parent index `parent`, ascending."""
        if self.parents <= 0:
            return []
        width, out = len(self.residues), list[int]()
        slot = (parent - self.offset) % self.parents
        while True:
            q, k = divmod(slot, width)
            i = q * self.modulus + self.residues[k]
            if i >= count:
                return out
            out.append(i)
            slot += self.parents


class Ref(t.NamedTuple):
    """A reference key of generated records: the parent's first id and the arithmetic behind it."""

    parent_first_id: int
    parent_of: t.Callable[[int], int | None]
    children_of: t.Callable[[int], list[int]]


class GeneratedTable(collections.abc.MutableMapping):
    """A mapping id → record whose records are built on demand; writes go to an overlay."""

    def __init__(
        self,
        count: int,
        first_id: int,
        build: t.Callable[[int], dict],
        updated: t.Callable[[int], str],
        key: t.Callable[[int], Key] | None = None,
        sort_key: t.Callable[[dict], Key] | None = None,
        light: t.Mapping[str, tuple[t.Callable[[int], t.Any], frozenset]] | None = None,
    ) -> None:
        """`count` records with ids `first_id`…; `build(i)` makes record i.

        `updated(i)` is record i's `updatedAt` (non-decreasing in i), `key(i)` its sort key
        (increasing in i; its id by default) and `sort_key(rec)` the same key of a stored record.
        `light` gives, per field that a list filters on (a task's status), a cheap accessor and the
        values it can take.
        """
        self.count, self.first_id = count, first_id
        self.build, self.updated = build, updated
        self.key = key or (lambda i: first_id + i)
        self.sort_key = sort_key or (lambda rec: rec["id"])
        self.light = dict(light or {})
        self.refs: dict[str, Ref] = {}
        self.overlay: dict[int, dict] = {}  # records created or changed, by id
        self.gone: set[int] = set()  # indices of deleted generated records
        self.built = 0  # how many records were built (tests watch it)

    # --- the mapping --------------------------------------------------------------------------

    def index(self, rid: t.Any) -> int | None:  # noqa: ANN401 - any key a caller looks up
        """The generated index of id `rid`, or None when the id is not a generated one."""
        if isinstance(rid, bool) or not isinstance(rid, int):
            return None
        i = rid - self.first_id
        return i if 0 <= i < self.count else None

    def touched(self, i: int) -> bool:
        """Whether generated record `i` was changed or deleted (so the overlay speaks for it)."""
        return i in self.gone or (self.first_id + i) in self.overlay

    def __getitem__(self, rid: int) -> dict:
        """The record of id `rid` (built if it was never changed); KeyError if there is none."""
        rec = self.overlay.get(rid)
        if rec is not None:
            return rec
        i = self.index(rid)
        if i is None or i in self.gone:
            raise KeyError(rid)
        self.built += 1
        return self.build(i)

    def __contains__(self, rid: object) -> bool:
        """Whether id `rid` exists, without building it."""
        if rid in self.overlay:
            return True
        i = self.index(rid)
        return i is not None and i not in self.gone

    def __setitem__(self, rid: int, rec: dict) -> None:
        """Store a created or changed record in the overlay."""
        self.overlay[rid] = rec
        i = self.index(rid)
        if i is not None:
            self.gone.discard(i)

    def __delitem__(self, rid: int) -> None:
        """Delete a record: drop it from the overlay and mark a generated one gone."""
        i = self.index(rid)
        had = self.overlay.pop(rid, None) is not None
        if i is not None and i not in self.gone:
            self.gone.add(i)
            had = True
        if not had:
            raise KeyError(rid)

    def __iter__(self) -> t.Iterator[int]:
        """Every id, ascending (a full scan: slow paths only, such as search)."""
        for i in range(self.count):
            if not self.touched(i) or (self.first_id + i) in self.overlay:
                yield self.first_id + i
        yield from sorted(r for r in self.overlay if self.index(r) is None)

    def __len__(self) -> int:
        """How many records exist now."""
        created = sum(1 for r in self.overlay if self.index(r) is None)
        return self.count - len(self.gone) + created

    # --- lists --------------------------------------------------------------------------------

    def first_after(self, since: str) -> int:
        """The lowest index whose generated `updatedAt` is after `since` (count if none)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.updated(mid) > since:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def select(
        self, since: str | None = None, field: str | None = None, wanted: t.Container | None = None
    ) -> t.Sequence[int]:
        """The ids in list order (newest first), changed after `since`, with `field` in `wanted`."""
        lo = 0 if since is None else self.first_after(since)
        extras = [
            (self.sort_key(rec), rid)
            for rid, rec in self.overlay.items()
            if (since is None or (rec.get("updatedAt") or "") > since)
            and (field is None or wanted is None or rec.get(field) in wanted)
        ]
        ids = Ids(self, lo, extras)
        if field is None or wanted is None:
            return ids
        value, values = self.light[field]
        if all(v in wanted for v in values):  # every generated record qualifies
            return ids
        return [
            rid
            for rid in ids
            if rid in self.overlay  # an overlay record is in the list only when it qualified
            or value(rid - self.first_id) in wanted
        ]

    def children(self, key: str, parent_id: int) -> list[int]:
        """Ids of the records whose reference `key` points at `parent_id`, in list order."""
        ref = self.refs.get(key)
        out: list[tuple[Key, int]] = []
        if ref is not None:
            parent_index = parent_id - ref.parent_first_id
            indices = ref.children_of(parent_index) if parent_index >= 0 else []
            out.extend((self.key(i), self.first_id + i) for i in indices if not self.touched(i))
        for rid, rec in self.overlay.items():
            value = rec.get(key)
            if isinstance(value, dict) and value.get("id") == parent_id:
                out.append((self.sort_key(rec), rid))
        out.sort(reverse=True)
        return [rid for _, rid in out]


class Ids(collections.abc.Sequence):
    """One list's ids, newest first, without a list: generated indices merged with the overlay."""

    def __init__(self, table: GeneratedTable, lo: int, extras: list[tuple[Key, int]]) -> None:
        """Generated indices in [lo, count) not touched by the overlay, and `extras` (key, id)."""
        self.t, self.lo, self.hi = table, lo, table.count
        self.skip = sorted(
            i
            for i in {*table.gone, *(table.index(r) for r in table.overlay)}
            if i is not None and lo <= i < self.hi
        )
        extras = sorted(extras, reverse=True)
        self.extra_ids = [rid for _, rid in extras]
        # The position of each extra among all ids: its rank plus the generated ids above it.
        self.extra_pos = [j + self._members_above(key) for j, (key, _) in enumerate(extras)]

    def _members_from(self, i: int) -> int:
        """How many generated members have an index >= i."""
        i = max(i, self.lo)
        if i >= self.hi:
            return 0
        return (self.hi - i) - (len(self.skip) - bisect.bisect_left(self.skip, i))

    def _members_above(self, key: Key) -> int:
        """How many generated members sort above `key`."""
        lo, hi = self.lo, self.hi
        while lo < hi:
            mid = (lo + hi) // 2
            if self.t.key(mid) > key:
                hi = mid
            else:
                lo = mid + 1
        return self._members_from(lo)

    def __len__(self) -> int:
        """How many ids the list has."""
        return self._members_from(self.lo) + len(self.extra_ids)

    def _at(self, p: int) -> int:
        k = bisect.bisect_left(self.extra_pos, p)
        if k < len(self.extra_pos) and self.extra_pos[k] == p:
            return self.extra_ids[k]
        want = p - k + 1  # the generated member that has `want` members at or above it
        lo, hi = self.lo, self.hi - 1
        while lo < hi:  # the largest index with _members_from(index) >= want
            mid = (lo + hi + 1) // 2
            if self._members_from(mid) >= want:
                lo = mid
            else:
                hi = mid - 1
        return self.t.first_id + lo

    @t.overload
    def __getitem__(self, x: int) -> int: ...
    @t.overload
    def __getitem__(self, x: slice) -> list[int]: ...
    def __getitem__(self, x: int | slice) -> int | list[int]:
        """One id by position, or a slice of them as a list (a page)."""
        n = len(self)
        if isinstance(x, slice):
            return [self._at(p) for p in range(*x.indices(n))]
        p = x + n if x < 0 else x
        if not 0 <= p < n:
            raise IndexError(x)
        return self._at(p)

    def __iter__(self) -> t.Iterator[int]:
        """Every id in order, by one merged walk (O(n), for the slow paths)."""
        skip = set(self.skip)
        extras = list(zip(self.extra_pos, self.extra_ids, strict=True))
        pos, e = 0, 0
        for i in range(self.hi - 1, self.lo - 1, -1):
            if i in skip:
                continue
            while e < len(extras) and extras[e][0] == pos:
                yield extras[e][1]
                pos, e = pos + 1, e + 1
            yield self.t.first_id + i
            pos += 1
        for _, rid in extras[e:]:
            yield rid
