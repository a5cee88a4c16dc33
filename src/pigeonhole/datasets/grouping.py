"""Near-duplicate grouping of images by their 64-bit perceptual hashes.

Comparing every pair of 100,000 hashes means five billion comparisons. Instead the
search uses multi-index hashing, which rests on the pigeonhole principle: cut the 64
bits into ``max_distance + 1`` chunks; two hashes that differ in at most
``max_distance`` bits cannot differ in every chunk, so they agree exactly on at least
one. Bucketing the hashes by each chunk in turn therefore finds every near-duplicate
pair, and only the few pairs that share a bucket are checked bit by bit. The work grows
with the distance: chunks get narrower and buckets fuller, so keep ``max_distance``
small (perceptual hashes of unrelated photos differ in about 32 bits, near-duplicates
in a handful).

Example:
    >>> from pigeonhole.datasets.grouping import near_duplicate_groups
    >>> hashes = ["f0f0f0f0f0f0f0f0", "0123456789abcdef", "f0f0f0f0f0f0f0f1"]
    >>> near_duplicate_groups(hashes, max_distance=2)
    [[0, 2]]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from pigeonhole.errors import ValidationError

#: The largest accepted ``max_distance``; beyond it unrelated photos start to match.
MAX_DISTANCE = 32

_HASH_BITS = 64
_HEX_HASH = re.compile(r"[0-9a-fA-F]{1,16}")
_BYTE_POPCOUNT = np.array([bin(byte).count("1") for byte in range(256)], np.uint8)

_Hashes = npt.NDArray[np.uint64]
_Indices = npt.NDArray[np.int64]


def near_duplicate_pairs(
    hashes: Sequence[str], max_distance: int
) -> list[tuple[int, int]]:
    """Finds every pair of hashes that differ in at most ``max_distance`` bits.

    Args:
        hashes: 64-bit perceptual hashes as hex strings (up to 16 digits), as
            :func:`pigeonhole.images.perceptual_hash` returns them.
        max_distance: Largest Hamming distance, in bits, that still counts as a
            near-duplicate: 0 finds exact matches only. At most :data:`MAX_DISTANCE`.

    Returns:
        Index pairs ``(i, j)`` with ``i < j``, sorted. A run of ``k`` equal hashes
        yields all ``k * (k - 1) / 2`` of its pairs; use :func:`near_duplicate_groups`
        when only the groups matter, as it never lists those pairs.

    Raises:
        ValidationError: A hash is not hex, or ``max_distance`` is out of range.
    """
    _check_distance(max_distance)
    firsts, seconds = _search(_parse_hashes(hashes), max_distance)
    return list(zip(firsts.tolist(), seconds.tolist(), strict=True))


def group_ids(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Joins linked indices into connected groups with a union-find.

    Args:
        n: Number of indices, ``0`` to ``n - 1``.
        pairs: Links between two indices; each link puts both in the same group.

    Returns:
        For each index, the smallest index of its group; an index without links is
        its own group.

    Raises:
        ValidationError: ``n`` is negative or a pair names an index outside ``0..n-1``.
    """
    if n < 0:
        raise ValidationError(f"n={n} is negative; pass the number of items, 0 or more")
    parent = list(range(n))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]  # path halving keeps trees flat
            index = parent[index]
        return index

    for first, second in pairs:
        if not (0 <= first < n and 0 <= second < n):
            raise ValidationError(
                f"pair ({first}, {second}) names an index outside 0..{n - 1}; "
                f"every index must be at least 0 and below n={n}"
            )
        a, b = root(first), root(second)
        # The smaller root wins, so every root is the smallest index of its group.
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b
    return [root(index) for index in range(n)]


def near_duplicate_groups(hashes: Sequence[str], max_distance: int) -> list[list[int]]:
    """Groups images whose hashes are chained by near-duplicate links.

    Grouping is transitive: if A is near B and B is near C, all three share a group
    even when A and C are further apart than ``max_distance``.

    Args:
        hashes: 64-bit perceptual hashes as hex strings, one per image.
        max_distance: Largest Hamming distance, in bits, that links two images.

    Returns:
        Groups of two or more indices, each sorted, ordered by their first index.
        Images without a near-duplicate are left out.

    Raises:
        ValidationError: A hash is not hex, or ``max_distance`` is out of range.

    Example:
        >>> near_duplicate_groups(["00ff", "00fe", "ffff", "00ff"], max_distance=1)
        [[0, 1, 3]]
    """
    _check_distance(max_distance)
    values = _parse_hashes(hashes)
    # Equal hashes join their group through their one distinct value, so a pile of
    # identical images costs memory in proportion to its size, not to its pairs.
    distinct, inverse = np.unique(values, return_inverse=True)
    firsts, seconds = _search(distinct, max_distance)
    links = zip(firsts.tolist(), seconds.tolist(), strict=True)
    distinct_ids = group_ids(len(distinct), links)
    members: dict[int, list[int]] = {}
    for index, position in enumerate(inverse.ravel().tolist()):
        members.setdefault(distinct_ids[position], []).append(index)
    groups = [group for group in members.values() if len(group) >= 2]
    return sorted(groups, key=lambda group: group[0])


def _check_distance(max_distance: int) -> None:
    if isinstance(max_distance, bool) or not isinstance(max_distance, int | np.integer):
        raise ValidationError(
            f"max_distance={max_distance!r} is not a whole number of bits; "
            f"pass an int from 0 to {MAX_DISTANCE}"
        )
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValidationError(
            f"max_distance={max_distance} is outside 0..{MAX_DISTANCE} bits; "
            "unrelated photos differ in about 32 bits, near-duplicates in a handful"
        )


def _parse_hashes(hashes: Sequence[str]) -> _Hashes:
    for index, text in enumerate(hashes):
        if not isinstance(text, str) or not _HEX_HASH.fullmatch(text):
            raise ValidationError(
                f"hash {text!r} at index {index} is not a 64-bit hex hash; "
                "expected 1 to 16 hex digits such as 'c3a1f00d9e7b2461'"
            )
    return np.array([int(text, 16) for text in hashes], dtype=np.uint64)


def _chunks(max_distance: int) -> list[tuple[int, int]]:
    """Cuts the 64 bits into ``max_distance + 1`` (shift, width) chunks, near equal."""
    count = max_distance + 1
    base, extra = divmod(_HASH_BITS, count)
    widths = [base + 1 if position < extra else base for position in range(count)]
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return list(zip(shifts, widths, strict=True))


def _search(values: _Hashes, max_distance: int) -> tuple[_Indices, _Indices]:
    """Returns the sorted index pairs within ``max_distance``, as two arrays."""
    chunks = _chunks(max_distance)
    found = [
        _pairs_in_chunk(values, chunks, k, max_distance) for k in range(len(chunks))
    ]
    firsts = np.concatenate([np.empty(0, np.int64), *(pair[0] for pair in found)])
    seconds = np.concatenate([np.empty(0, np.int64), *(pair[1] for pair in found)])
    order = np.lexsort((seconds, firsts))
    return firsts[order], seconds[order]


def _pairs_in_chunk(
    values: _Hashes, chunks: list[tuple[int, int]], k: int, max_distance: int
) -> tuple[_Indices, _Indices]:
    """Near pairs whose first exactly equal chunk is chunk ``k``.

    Sorting by the chunk puts each bucket in one run. Rather than listing a bucket's
    pairs at once, step ``lag`` pairs every position with the one ``lag`` places
    later in the same run, so no step holds more than ``len(values)`` candidates.
    """
    shift, width = chunks[k]
    keys = (values >> np.uint64(shift)) & np.uint64((1 << width) - 1)
    order = np.argsort(keys, kind="stable")
    run_end = _run_ends(keys[order])
    ranked = values[order]  # contiguous reads in the loop below
    firsts: list[_Indices] = []
    seconds: list[_Indices] = []
    lag = 1
    active = np.flatnonzero(run_end > np.arange(len(values)) + lag)
    while active.size:
        xor = ranked[active] ^ ranked[active + lag]
        near = active[_verify(xor, chunks[:k], max_distance)]
        left, right = order[near], order[near + lag]
        firsts.append(np.minimum(left, right))
        seconds.append(np.maximum(left, right))
        lag += 1
        active = active[run_end[active] > active + lag]
    empty = np.empty(0, np.int64)
    return np.concatenate([empty, *firsts]), np.concatenate([empty, *seconds])


def _run_ends(sorted_keys: npt.NDArray[np.uint64]) -> _Indices:
    """For each position, the position just past the run of equal keys it is in."""
    size = len(sorted_keys)
    starts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    ends = np.append(starts, size)
    lengths = np.diff(np.concatenate([[0], ends]))
    return np.repeat(ends, lengths).astype(np.int64)


def _verify(
    xor: _Hashes, earlier: list[tuple[int, int]], max_distance: int
) -> _Indices:
    """Positions of candidates within the distance that no earlier chunk found."""
    near = np.flatnonzero(_popcount(xor) <= max_distance)
    near_xor = xor[near]
    fresh = np.ones(len(near), dtype=bool)
    for shift, width in earlier:
        fresh &= ((near_xor >> np.uint64(shift)) & np.uint64((1 << width) - 1)) != 0
    return near[fresh]


def _popcount(values: _Hashes) -> npt.NDArray[np.uint8]:
    if hasattr(np, "bitwise_count"):  # numpy 2.0 and later
        return np.bitwise_count(values)
    as_bytes = values.view(np.uint8).reshape(-1, 8)
    return _BYTE_POPCOUNT[as_bytes].sum(axis=1, dtype=np.uint8)
