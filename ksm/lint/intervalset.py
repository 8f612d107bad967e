"""Sets of integers inside one range ``lo..hi``, for the conditions rules (LNT010/LNT011).

A Boolean combination (``&& || ==> !``) of comparisons of one integer field with
literals (``message.value == 0x1234 || message.value == 0x5678 || ...``) holds for
a set of field values; the condition is constant exactly when that set is empty or
the whole range.  :class:`IntSet` computes the set, operator by operator, without a
solver.

A set is stored as sorted, disjoint, non-adjacent inclusive intervals, plus a flag
saying whether the set is those intervals or everything else in the range (so
``!`` costs nothing, and ``x != a && x != b && ...`` is one growing interval list,
not its complement).  Every operation walks the *smaller* operand and binary-searches
the larger one, so folding a chain of ``n`` comparisons costs ``n`` binary searches
and list splices, not ``n`` merges of growing lists.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

Interval = tuple[int, int]
Intervals = tuple[Interval, ...]


def _hi(iv: Interval) -> int:
    return iv[1]


def _lo(iv: Interval) -> int:
    return iv[0]


def _overlapping(big: Intervals, x: int, y: int, slack: int = 0) -> tuple[int, int]:
    """Indices ``i, j``: ``big[i:j]`` are the intervals meeting ``x..y`` (or touching it, with ``slack=1``)."""
    return bisect_left(big, x - slack, key=_hi), bisect_right(big, y + slack, key=_lo)


def union(a: Intervals, b: Intervals) -> Intervals:
    if len(a) < len(b):
        a, b = b, a
    for x, y in b:
        i, j = _overlapping(a, x, y, 1)
        if i < j:
            x, y = min(x, a[i][0]), max(y, a[j - 1][1])
        a = a[:i] + ((x, y),) + a[j:]
    return a


def intersection(a: Intervals, b: Intervals) -> Intervals:
    if len(a) < len(b):
        a, b = b, a
    out: list[Interval] = []
    for x, y in b:
        i, j = _overlapping(a, x, y)
        out += [(max(x, lo), min(y, hi)) for lo, hi in a[i:j]]
    return tuple(out)


def difference(a: Intervals, b: Intervals) -> Intervals:
    """``a`` without ``b``."""
    if len(b) <= len(a):
        for x, y in b:                       # cut each (small) interval of b out of a
            i, j = _overlapping(a, x, y)
            if i == j:
                continue
            kept = []
            if a[i][0] < x:
                kept.append((a[i][0], x - 1))
            if a[j - 1][1] > y:
                kept.append((y + 1, a[j - 1][1]))
            a = a[:i] + tuple(kept) + a[j:]
        return a
    out: list[Interval] = []
    for x, y in a:                           # the gaps b leaves in each (small) interval of a
        i, j = _overlapping(b, x, y)
        start = x
        for lo, hi in b[i:j]:
            if lo > start:
                out.append((start, lo - 1))
            start = hi + 1
        if start <= y:
            out.append((start, y))
    return tuple(out)


@dataclass(frozen=True)
class IntSet:
    """The values of ``lo..hi`` in ``parts`` (``inside``) or not in them (not ``inside``)."""

    lo: int
    hi: int
    parts: Intervals
    inside: bool = True

    @classmethod
    def compare(cls, op: str, n: int, lo: int, hi: int) -> "IntSet":
        """The values ``x`` of ``lo..hi`` for which ``x OP n`` holds."""
        if op in ("==", "!="):
            return cls(lo, hi, ((n, n),) if lo <= n <= hi else (), op == "==")
        a, b = {"<": (lo, n - 1), "<=": (lo, n), ">": (n + 1, hi), ">=": (n, hi)}[op]
        a, b = max(a, lo), min(b, hi)
        return cls(lo, hi, ((a, b),) if a <= b else ())

    @classmethod
    def constant(cls, value: bool, lo: int, hi: int) -> "IntSet":
        return cls(lo, hi, (), not value)

    def __invert__(self) -> "IntSet":
        return IntSet(self.lo, self.hi, self.parts, not self.inside)

    def __or__(self, other: "IntSet") -> "IntSet":
        a, b = self, other
        if a.inside and b.inside:
            return self._with(union(a.parts, b.parts), True)
        if not a.inside and not b.inside:
            return self._with(intersection(a.parts, b.parts), False)
        pos, neg = (a, b) if a.inside else (b, a)
        return self._with(difference(neg.parts, pos.parts), False)

    def __and__(self, other: "IntSet") -> "IntSet":
        return ~(~self | ~other)

    def _with(self, parts: Intervals, inside: bool) -> "IntSet":
        return IntSet(self.lo, self.hi, parts, inside)

    @property
    def value(self) -> bool | None:
        """True: the whole range; False: empty; None: some values only."""
        whole = self.parts == ((self.lo, self.hi),)
        if not self.parts or whole:
            return whole == self.inside
        return None

    def values(self) -> set[int]:
        """Every member (for tests on small ranges)."""
        listed = {v for x, y in self.parts for v in range(x, y + 1)}
        return listed if self.inside else set(range(self.lo, self.hi + 1)) - listed
