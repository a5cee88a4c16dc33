import numpy as np
import numpy.typing as npt
import pytest

from pigeonhole.datasets.grouping import (
    MAX_DISTANCE,
    group_ids,
    near_duplicate_groups,
    near_duplicate_pairs,
)
from pigeonhole.errors import ValidationError
from pigeonhole.images import hamming


def _as_hex(values: npt.NDArray[np.uint64]) -> list[str]:
    return [f"{int(value):016x}" for value in values]


def _random_hashes(rng: np.random.Generator, count: int) -> npt.NDArray[np.uint64]:
    return rng.integers(0, 2**64 - 1, count, dtype=np.uint64, endpoint=True)


def _flip_bits(rng: np.random.Generator, value: int, count: int) -> int:
    for bit in rng.choice(64, size=count, replace=False).tolist():
        value ^= 1 << bit
    return value


def _with_planted(
    rng: np.random.Generator, count: int, max_flips: int
) -> npt.NDArray[np.uint64]:
    """Random hashes plus near copies of some, at 0 to ``max_flips`` bits away."""
    base = _random_hashes(rng, count)
    copies = [
        _flip_bits(rng, int(value), int(rng.integers(0, max_flips + 1)))
        for value in base[: count // 3]
    ]
    # A copy of a copy makes chains, where grouping must be transitive.
    chained = [_flip_bits(rng, copy, 1) for copy in copies[:10]]
    return np.array([*base.tolist(), *copies, *chained], dtype=np.uint64)


def _brute_force_pairs(
    values: npt.NDArray[np.uint64], max_distance: int
) -> list[tuple[int, int]]:
    size = len(values)
    return [
        (i, j)
        for i in range(size)
        for j in range(i + 1, size)
        if int(values[i] ^ values[j]).bit_count() <= max_distance
    ]


@pytest.mark.parametrize(
    "max_distance",
    [0, 1, 3, 6, 10, 20],
    ids=["exact", "d1", "d3", "d6", "d10", "d20"],
)
def test_pairs_match_brute_force(max_distance: int) -> None:
    rng = np.random.default_rng(max_distance)
    values = _with_planted(rng, 240, max_flips=max_distance + 2)

    pairs = near_duplicate_pairs(_as_hex(values), max_distance)

    expected = _brute_force_pairs(values, max_distance)
    assert pairs == expected
    assert len(expected) >= 20  # the planted copies are found, not just noise


def test_pairs_agree_with_hamming() -> None:
    rng = np.random.default_rng(5)
    hashes = _as_hex(_with_planted(rng, 100, max_flips=6))

    pairs = near_duplicate_pairs(hashes, 4)

    assert pairs
    assert all(i < j and hamming(hashes[i], hashes[j]) <= 4 for i, j in pairs)


def test_pairs_at_exact_distance_boundary() -> None:
    base = 0x0123456789ABCDEF
    hashes = _as_hex(np.array([base, base ^ 0b111, base ^ 0b1111000], dtype=np.uint64))

    assert near_duplicate_pairs(hashes, 3) == [(0, 1)]
    assert near_duplicate_pairs(hashes, 4) == [(0, 1), (0, 2)]
    assert near_duplicate_pairs(hashes, 7) == [(0, 1), (0, 2), (1, 2)]


def test_distance_zero_finds_only_equal_hashes() -> None:
    hashes = ["00000000000000ff", "00000000000000fe", "00000000000000ff", "ff"]

    assert near_duplicate_pairs(hashes, 0) == [(0, 2), (0, 3), (2, 3)]


@pytest.mark.parametrize("hashes", [[], ["abcdef0123456789"]], ids=["empty", "one"])
def test_fewer_than_two_hashes_have_no_pairs(hashes: list[str]) -> None:
    assert near_duplicate_pairs(hashes, 5) == []
    assert near_duplicate_groups(hashes, 5) == []


def test_large_bucket_of_identical_hashes() -> None:
    rng = np.random.default_rng(11)
    copies = 1500
    hashes = ["c3a1f00d9e7b2461"] * copies + _as_hex(_random_hashes(rng, 2000))

    pairs = near_duplicate_pairs(hashes, 4)
    groups = near_duplicate_groups(hashes, 4)

    identical = [(i, j) for i, j in pairs if j < copies]
    assert len(identical) == copies * (copies - 1) // 2
    assert groups[0][:copies] == list(range(copies))


def test_hundred_thousand_hashes() -> None:
    rng = np.random.default_rng(12)
    values = _random_hashes(rng, 100_000)
    planted = [_flip_bits(rng, int(value), 3) for value in values[:500]]
    hashes = _as_hex(np.concatenate([values, np.array(planted, dtype=np.uint64)]))

    pairs = set(near_duplicate_pairs(hashes, 6))

    assert all((index, 100_000 + index) in pairs for index in range(500))


def test_group_ids_use_smallest_index_of_each_group() -> None:
    ids = group_ids(7, [(5, 3), (3, 6), (1, 2), (6, 5)])

    assert ids == [0, 1, 1, 3, 4, 3, 3]


def test_group_ids_join_long_chains() -> None:
    size = 5000
    ids = group_ids(size, [(index + 1, index) for index in reversed(range(size - 1))])

    assert ids == [0] * size


def test_groups_are_transitive_sorted_and_leave_out_singletons() -> None:
    far = ["ffffffff00000000", "1234567890abcdef", "ffffffff00000001"]
    hashes = ["0f", far[0], "0e", "0c", far[1], far[2]]

    groups = near_duplicate_groups(hashes, 1)

    # 0f-0e and 0e-0c are 1 bit apart; 0f-0c is 2 bits apart but joins through 0e.
    assert groups == [[0, 2, 3], [1, 5]]


def test_groups_match_components_of_pairs() -> None:
    rng = np.random.default_rng(21)
    values = _with_planted(rng, 600, max_flips=5)
    hashes = _as_hex(np.concatenate([values, values[:40]]))  # exact copies as well

    groups = near_duplicate_groups(hashes, 4)

    ids = group_ids(len(hashes), near_duplicate_pairs(hashes, 4))
    expected: dict[int, list[int]] = {}
    for index, group_id in enumerate(ids):
        expected.setdefault(group_id, []).append(index)
    assert groups == [group for group in expected.values() if len(group) > 1]


@pytest.mark.parametrize(
    ("hashes", "match"),
    [
        (["abc", "xyz"], r"hash 'xyz' at index 1 is not a 64-bit hex hash"),
        (["0123456789abcdef0"], r"expected 1 to 16 hex digits"),
        (["-1"], r"hash '-1' at index 0"),
        ([""], r"hash '' at index 0"),
    ],
    ids=["not-hex", "too-long", "negative", "empty-string"],
)
def test_bad_hash_is_named(hashes: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        near_duplicate_pairs(hashes, 2)


@pytest.mark.parametrize(
    ("max_distance", "match"),
    [
        (-1, r"max_distance=-1 is outside 0\.\.32 bits"),
        (MAX_DISTANCE + 1, r"max_distance=33 is outside 0\.\.32 bits"),
        (2.5, r"max_distance=2\.5 is not a whole number of bits"),
    ],
    ids=["negative", "too-large", "float"],
)
def test_bad_distance_is_named(max_distance: int, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        near_duplicate_groups(["00", "01"], max_distance)


def test_group_ids_reject_index_out_of_range() -> None:
    with pytest.raises(ValidationError, match=r"pair \(0, 3\) names an index outside"):
        group_ids(3, [(0, 1), (0, 3)])
