import random
from collections import Counter

import pytest

from pigeonhole.datasets.splitting import (
    SplitItem,
    SplitRatios,
    assign_splits,
    split_counts,
)
from pigeonhole.domain import SPLITS, Split
from pigeonhole.errors import ValidationError

CLASS_SIZES = (500, 250, 150, 70, 30)


def _single_label(seed: int = 0, max_group: int = 4) -> list[SplitItem]:
    """1,000 images over five uneven classes, in groups of 1 to ``max_group``."""
    rng = random.Random(seed)
    items: list[SplitItem] = []
    group = 0
    for class_id, size in enumerate(CLASS_SIZES):
        left = size
        while left:
            members = min(left, rng.randint(1, max_group))
            for _ in range(members):
                items.append(SplitItem(len(items), (class_id,), group))
            left -= members
            group += 1
    return items


def _multi_label(seed: int = 0, count: int = 1000) -> list[SplitItem]:
    """Images with 1 to 3 of 8 labels, mostly in pairs, some unlabelled."""
    rng = random.Random(seed)
    items = []
    for key in range(count):
        labels = tuple(sorted(rng.sample(range(8), rng.randint(0, 3))))
        items.append(SplitItem(key, labels, group=key // 2))
    return items


def _fractions(assignment: dict[int, Split], items: list[SplitItem]) -> dict[str, dict]:
    fractions = {}
    for class_id, counts in split_counts(assignment, items).items():
        total = sum(counts.values())
        fractions[class_id] = {split: n / total for split, n in counts.items()}
    return fractions


def _split_of_groups(
    assignment: dict[int, Split], items: list[SplitItem]
) -> dict[int, set[Split]]:
    splits: dict[int, set[Split]] = {}
    for item in items:
        splits.setdefault(item.group, set()).add(assignment[item.key])
    return splits


def test_single_label_classes_follow_ratios() -> None:
    items = _single_label()

    assignment = assign_splits(items, SplitRatios(), seed=1)

    counts = split_counts(assignment, items)
    for class_id, size in enumerate(CLASS_SIZES):
        for split, ratio in zip(SPLITS, SplitRatios().as_tuple(), strict=True):
            # Groups of up to 4 images may overshoot a split's count by that much.
            assert abs(counts[str(class_id)][split.value] - size * ratio) <= 4


def test_multi_label_classes_follow_ratios() -> None:
    items = _multi_label()

    assignment = assign_splits(items, SplitRatios(0.6, 0.2, 0.2), seed=1)

    for class_id, fractions in _fractions(assignment, items).items():
        assert fractions["train"] == pytest.approx(0.6, abs=0.04), class_id
        assert fractions["valid"] == pytest.approx(0.2, abs=0.04), class_id
        assert fractions["test"] == pytest.approx(0.2, abs=0.04), class_id


def test_unlabelled_images_follow_overall_ratios() -> None:
    items = [SplitItem(key, (), group=key) for key in range(1000)]

    assignment = assign_splits(items, SplitRatios(), seed=4)

    assert Counter(split.value for split in assignment.values()) == {
        "train": 700,
        "valid": 200,
        "test": 100,
    }


@pytest.mark.parametrize("reassign", [False, True], ids=["keep", "reassign"])
def test_groups_never_straddle_splits(reassign: bool) -> None:
    for seed in range(40):
        rng = random.Random(seed)
        items = [
            SplitItem(
                key=key,
                labels=tuple(rng.sample(range(5), rng.randint(0, 2))),
                group=rng.randrange(120),
                current=rng.choice([None, None, None, *SPLITS]) if key < 40 else None,
            )
            for key in range(300)
        ]
        # Current splits of one group may disagree; only fresh groups are checked.
        fresh = {item.group for item in items if item.current is None}
        fresh -= {item.group for item in items if item.current is not None}
        checked = items if reassign else [i for i in items if i.group in fresh]

        assignment = assign_splits(items, SplitRatios(), seed=seed, reassign=reassign)

        assert all(len(s) == 1 for s in _split_of_groups(assignment, checked).values())


def test_same_items_in_any_order_give_same_splits() -> None:
    items = _multi_label(seed=3)
    shuffled = list(items)
    random.Random(9).shuffle(shuffled)

    first = assign_splits(items, SplitRatios(), seed=5)
    second = assign_splits(shuffled, SplitRatios(), seed=5)

    assert first == second
    assert list(second) == sorted(second)


def test_different_seed_gives_different_splits() -> None:
    items = _single_label()

    first = assign_splits(items, SplitRatios(), seed=1)
    second = assign_splits(items, SplitRatios(), seed=2)

    assert first != second
    other = split_counts(second, items)
    for class_id, counts in split_counts(first, items).items():
        for split, count in counts.items():
            assert abs(count - other[class_id][split]) <= 4


def test_existing_splits_are_kept_and_new_images_steer_to_target() -> None:
    # 600 old images all in train; 400 new ones should fill valid and test.
    old = [SplitItem(key, (key % 2,), key, current=Split.TRAIN) for key in range(600)]
    new = [SplitItem(key, (key % 2,), key) for key in range(600, 1000)]

    assignment = assign_splits([*old, *new], SplitRatios(), seed=0)

    assert all(assignment[item.key] is Split.TRAIN for item in old)
    placed = Counter(assignment[item.key].value for item in new)
    assert placed == {"train": 100, "valid": 200, "test": 100}


def test_existing_split_over_target_takes_no_new_images() -> None:
    # Test holds 300 where the whole wants 100; train wants 700 and valid 200 more,
    # but only 700 are new: the larger want is served first until both fall short
    # by the same 100.
    old = [SplitItem(key, (0,), key, current=Split.TEST) for key in range(300)]
    new = [SplitItem(key, (0,), key) for key in range(300, 1000)]

    assignment = assign_splits([*old, *new], SplitRatios(), seed=0)

    placed = Counter(assignment[item.key].value for item in new)
    assert placed["test"] == 0
    assert placed["train"] == pytest.approx(600, abs=1)


def test_new_image_joins_split_of_its_group() -> None:
    items = [
        SplitItem(1, (0,), group=10, current=Split.VALID),
        SplitItem(2, (0,), group=10, current=Split.VALID),
        SplitItem(3, (0,), group=10, current=Split.TEST),
        SplitItem(4, (0,), group=10),
        *(SplitItem(key, (0,), group=key) for key in range(100, 150)),
    ]

    assignment = assign_splits(items, SplitRatios(), seed=0)

    assert assignment[4] is Split.VALID
    assert assignment[3] is Split.TEST  # kept, even though its group is elsewhere


def test_reassign_ignores_current_splits() -> None:
    items = [SplitItem(key, (key % 3,), key, current=Split.TEST) for key in range(300)]

    kept = assign_splits(items, SplitRatios(), seed=0)
    moved = assign_splits(items, SplitRatios(), seed=0, reassign=True)

    assert set(kept.values()) == {Split.TEST}
    assert Counter(split.value for split in moved.values()) == {
        "train": 210,
        "valid": 60,
        "test": 30,
    }


def test_zero_ratio_split_gets_nothing() -> None:
    items = [*_single_label(), *_multi_label(count=200)]
    items = [SplitItem(key, i.labels, i.group) for key, i in enumerate(items)]

    assignment = assign_splits(items, SplitRatios.parse("80/20/0"), seed=2)

    assert Split.TEST not in set(assignment.values())
    assert {Split.TRAIN, Split.VALID} == set(assignment.values())


@pytest.mark.parametrize(
    ("size", "expected"),
    [(1, (1, 0, 0)), (2, (2, 0, 0)), (3, (2, 1, 0)), (6, (4, 1, 1))],
    ids=["one", "two", "three", "six"],
)
def test_tiny_class_prefers_train(size: int, expected: tuple[int, int, int]) -> None:
    tiny = [SplitItem(key, (0,), key) for key in range(size)]
    others = [SplitItem(key, (1,), key) for key in range(100, 400)]

    assignment = assign_splits([*tiny, *others], SplitRatios(), seed=3)

    counts = split_counts(assignment, tiny)["0"]
    assert (counts["train"], counts["valid"], counts["test"]) == expected


def test_duplicate_key_is_refused() -> None:
    items = [SplitItem(7, (0,), 1), SplitItem(7, (1,), 2)]

    with pytest.raises(ValidationError, match=r"image key 7 appears twice"):
        assign_splits(items, SplitRatios(), seed=0)


def test_empty_items_give_empty_assignment() -> None:
    assert assign_splits([], SplitRatios(), seed=0) == {}


def test_split_counts_per_class_and_split() -> None:
    items = [SplitItem(1, (2, 0), 1), SplitItem(2, (0,), 2), SplitItem(3, (), 3)]
    assignment = {1: Split.TRAIN, 2: Split.TEST, 3: Split.VALID}

    assert split_counts(assignment, items) == {
        "0": {"train": 1, "valid": 0, "test": 1},
        "2": {"train": 1, "valid": 0, "test": 0},
    }


def test_split_counts_refuses_unassigned_item() -> None:
    with pytest.raises(ValidationError, match=r"image key 5 has no split"):
        split_counts({}, [SplitItem(5, (0,), 5)])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("70/20/10", (0.7, 0.2, 0.1)),
        ("0.7,0.2,0.1", (0.7, 0.2, 0.1)),
        ("80/20/0", (0.8, 0.2, 0.0)),
        ("1:1:2", (0.25, 0.25, 0.5)),
        (" 60% 20% 20% ", (0.6, 0.2, 0.2)),
    ],
    ids=["percent-slash", "fraction-comma", "zero-test", "colon-weights", "spaces"],
)
def test_ratios_parse(text: str, expected: tuple[float, float, float]) -> None:
    assert SplitRatios.parse(text).as_tuple() == pytest.approx(expected)


def test_ratios_normalise_to_one() -> None:
    assert SplitRatios(70, 20, 10) == SplitRatios(0.7, 0.2, 0.1)
    assert sum(SplitRatios(3, 3, 3).as_tuple()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("70/30", r"split ratios '70/30' are not three numbers"),
        ("a/b/c", r"split ratios 'a/b/c' are not three numbers"),
        ("70/20/10/5", r"write them as 70/20/10 or 0\.7,0\.2,0\.1"),
        ("70/-20/10", r"split ratio valid=-20\.0 is not accepted"),
        ("nan/1/1", r"split ratio train=nan is not accepted"),
        ("0/0/0", r"train=0\.0, valid=0\.0, test=0\.0 add up to 0"),
    ],
    ids=["two-parts", "not-numbers", "four-parts", "negative", "nan", "all-zero"],
)
def test_bad_ratios_are_refused(text: str, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        SplitRatios.parse(text)


def test_non_number_ratio_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"split ratio test='10' is not accepted"):
        SplitRatios(70, 20, "10")  # type: ignore[arg-type]
