"""Assigning images to the train, valid and test splits.

Splits are stratified, grouped and reproducible:

* Stratified: for every class, the share of its images in each split approaches the
  split ratios. Groups are placed by iterative stratification (Sechidis, Tsoumakas and
  Vlahavas, 2011), which serves single-label and multi-label projects alike: the
  rarest class that still has unplaced groups goes first, and each of its groups goes
  to the split that still wants the most of that class, then the most images overall.
* Grouped: images of one group (near-duplicates, frames of one video, photos of one
  specimen) always land in the same split, so the test split never holds a copy of a
  training image. A group counts as the sum of its images' labels.
* Reproducible: the same images, in any order, with the same seed give the same
  splits; groups are sorted by key before the seeded random choices.

Images that already have a split keep it unless ``reassign`` is set, and the rest are
placed to bring the whole back towards the ratios. Unlabelled images are spread by the
overall ratios. A split with ratio 0 receives nothing new, except new images of a group
that is already there.

Tiny classes: a class's desired count in a split is its size times the ratio, and a
group goes where that count is largest, ties going to the split that wants the most
images overall. Rare classes are placed first, while train (the largest split at
70/20/10) still wants the most images, so a class of 1 or 2 images lands wholly in
train; a split receives a class only once the class's expected share there is close
to one image (a class of 3 gives 2 train and 1 valid, one of 6 gives 4, 1 and 1).

Example:
    >>> from pigeonhole.datasets.splitting import SplitItem, SplitRatios, assign_splits
    >>> items = [SplitItem(key=k, labels=(k % 2,), group=k) for k in range(10)]
    >>> splits = assign_splits(items, SplitRatios.parse("80/20/0"), seed=7)
    >>> sum(split.value == "train" for split in splits.values())
    8
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from pigeonhole.domain import SPLITS, Split
from pigeonhole.errors import ValidationError

logger = logging.getLogger(__name__)

_NAMES = ("train", "valid", "test")  # SplitRatios fields, in the order of SPLITS
_RATIO_SEPARATORS = re.compile(r"[\s,/:;]+")
_TIE = 1e-9  # desired counts closer than this are equal; they are sums of floats


@dataclass(frozen=True)
class SplitItem:
    """One image as the splitter sees it.

    Attributes:
        key: The image's unique id; the result maps it to a split.
        labels: Class ids of the image; empty when it is unlabelled.
        group: Images with the same group always share a split; give each image a
            group of its own when nothing ties it to others.
        current: The split the image has now, if any.
    """

    key: int
    labels: tuple[int, ...]
    group: int
    current: Split | None = None


@dataclass(frozen=True)
class SplitRatios:
    """Shares of images that go to train, valid and test, normalised to sum to 1.

    Any non-negative numbers with a positive sum are accepted, so
    ``SplitRatios(70, 20, 10)`` equals ``SplitRatios(0.7, 0.2, 0.1)``.

    Raises:
        ValidationError: A ratio is negative or not a finite number, or all are 0.
    """

    train: float = 0.7
    valid: float = 0.2
    test: float = 0.1

    def __post_init__(self) -> None:
        values = [_checked_ratio(name, getattr(self, name)) for name in _NAMES]
        total = sum(values)
        if total <= 0:
            raise ValidationError(
                f"split ratios train={self.train}, valid={self.valid}, "
                f"test={self.test} add up to 0; give at least one split a ratio "
                "above 0, as in 70/20/10"
            )
        if not math.isclose(total, 1.0, rel_tol=0.0, abs_tol=1e-12):
            values = [value / total for value in values]
        for name, value in zip(_NAMES, values, strict=True):
            object.__setattr__(self, name, value)

    @classmethod
    def parse(cls, text: str) -> SplitRatios:
        """Reads three numbers for train, valid and test.

        Args:
            text: Numbers separated by ``/``, ``,``, ``:`` or spaces, such as
                ``"70/20/10"``, ``"0.7,0.2,0.1"`` or ``"80/20/0"``; a ``%`` after a
                number is allowed.

        Returns:
            The normalised ratios.

        Raises:
            ValidationError: The text is not three numbers, or they are not valid
                ratios.
        """
        parts = [part for part in _RATIO_SEPARATORS.split(text.strip()) if part]
        try:
            if len(parts) != 3:
                raise ValueError(text)
            train, valid, test = (float(part.removesuffix("%")) for part in parts)
        except ValueError:
            raise ValidationError(
                f"split ratios {text!r} are not three numbers for train, valid and "
                "test; write them as 70/20/10 or 0.7,0.2,0.1"
            ) from None
        return cls(train, valid, test)

    def as_tuple(self) -> tuple[float, float, float]:
        """The ratios in split order: train, valid, test."""
        return (self.train, self.valid, self.test)


def _checked_ratio(name: str, value: object) -> float:
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValidationError(
            f"split ratio {name}={value!r} is not accepted; each ratio must be a "
            "finite number of at least 0, as in train=0.7, valid=0.2, test=0.1"
        )
    return number


@dataclass(frozen=True)
class _Group:
    """Images that move together, with the summed label counts of its images."""

    items: tuple[SplitItem, ...]
    label_counts: dict[int, int] = field(hash=False)

    @property
    def size(self) -> int:
        return len(self.items)


class _Targets:
    """Images each split still wants, overall and per class; split indices 0..2."""

    def __init__(
        self, ratios: SplitRatios, items: Sequence[SplitItem], placed: Mapping[int, int]
    ) -> None:
        shares = ratios.as_tuple()
        self.open = [index for index, share in enumerate(shares) if share > 0]
        class_totals = Counter(label for item in items for label in set(item.labels))
        class_placed: Counter[tuple[int, int]] = Counter()
        split_placed = Counter(placed.values())
        for item in items:
            if item.key in placed:
                for label in set(item.labels):
                    class_placed[label, placed[item.key]] += 1
        # The whole should meet the ratios: want = target - already there, floored.
        self.overall = [
            max(0.0, len(items) * share - split_placed[index])
            for index, share in enumerate(shares)
        ]
        self.by_class = {
            label: [
                max(0.0, total * share - class_placed[label, index])
                for index, share in enumerate(shares)
            ]
            for label, total in class_totals.items()
        }

    def choose(self, label: int | None, rng: random.Random) -> int:
        """The split that wants ``label`` most, then most images; else random."""
        candidates = self.open
        if label is not None:
            candidates = _most_wanted(candidates, self.by_class[label])
        if len(candidates) > 1:
            candidates = _most_wanted(candidates, self.overall)
        return candidates[0] if len(candidates) == 1 else rng.choice(candidates)

    def take(self, split: int, group: _Group) -> None:
        self.overall[split] -= group.size
        for label, count in group.label_counts.items():
            self.by_class[label][split] -= count


def _most_wanted(candidates: list[int], wants: list[float]) -> list[int]:
    best = max(wants[index] for index in candidates)
    return [index for index in candidates if wants[index] >= best - _TIE]


def assign_splits(
    items: Sequence[SplitItem], ratios: SplitRatios, seed: int, reassign: bool = False
) -> dict[int, Split]:
    """Gives every image a split, stratified by class and never splitting a group.

    Args:
        items: The images to split, each with a unique key.
        ratios: Target shares of train, valid and test.
        seed: Seed of the random choices; the same items and seed give the same
            splits whatever the order of ``items``.
        reassign: When False, images with a ``current`` split keep it and images of
            a group that already has a split join it (the most common one if the
            group has several). When True, every current split is ignored.

    Returns:
        The split of every item, by key, in key order.

    Raises:
        ValidationError: Two items share a key.

    Example:
        >>> items = [
        ...     SplitItem(key=1, labels=(0,), group=1, current=Split.TEST),
        ...     SplitItem(key=2, labels=(0,), group=1),
        ...     SplitItem(key=3, labels=(), group=3),
        ... ]
        >>> assign_splits(items, SplitRatios(), seed=0)[2]
        <Split.TEST: 'test'>
    """
    ordered = _sorted_unique(items)
    rng = random.Random(seed)
    groups = _groups(ordered)
    placed, free = _settle_current(groups, reassign)
    targets = _Targets(ratios, ordered, placed)
    _stratify([group for group in free if group.label_counts], targets, rng, placed)
    _spread_unlabelled(
        [group for group in free if not group.label_counts], targets, rng, placed
    )
    return {item.key: SPLITS[placed[item.key]] for item in ordered}


def split_counts(
    assignment: Mapping[int, Split], items: Iterable[SplitItem]
) -> dict[str, dict[str, int]]:
    """Counts images per class and split, for previews.

    Args:
        assignment: Split per item key, as :func:`assign_splits` returns it.
        items: The items that were split.

    Returns:
        For each class id (as a string, in numeric order), the number of its images
        in ``train``, ``valid`` and ``test``. Unlabelled images are not counted.

    Raises:
        ValidationError: An item has no split in ``assignment``.
    """
    counts: dict[int, dict[str, int]] = {}
    for item in items:
        if item.key not in assignment:
            raise ValidationError(
                f"image key {item.key} has no split in the assignment; pass the "
                "result of assign_splits for the same items"
            )
        split = Split.parse(assignment[item.key]).value
        for label in set(item.labels):
            per_split = counts.setdefault(label, {each.value: 0 for each in SPLITS})
            per_split[split] += 1
    return {str(label): counts[label] for label in sorted(counts)}


def _sorted_unique(items: Sequence[SplitItem]) -> list[SplitItem]:
    ordered = sorted(items, key=lambda item: item.key)
    for before, after in pairwise(ordered):
        if before.key == after.key:
            raise ValidationError(
                f"image key {after.key} appears twice in the items to split; "
                "every item needs a unique key"
            )
    return ordered


def _groups(ordered: list[SplitItem]) -> list[_Group]:
    """The groups in order of group id, their items in key order."""
    members: dict[int, list[SplitItem]] = {}
    for item in ordered:
        members.setdefault(item.group, []).append(item)
    groups = []
    for group_id in sorted(members):
        labels = Counter(
            label for item in members[group_id] for label in set(item.labels)
        )
        groups.append(_Group(tuple(members[group_id]), dict(sorted(labels.items()))))
    return groups


def _settle_current(
    groups: list[_Group], reassign: bool
) -> tuple[dict[int, int], list[_Group]]:
    """Splits fixed by current state, by item key, and the groups still free."""
    placed: dict[int, int] = {}
    free: list[_Group] = []
    torn = 0
    for group in groups:
        current = [item.current for item in group.items if item.current is not None]
        if reassign or not current:
            free.append(group)
            continue
        counts = Counter(SPLITS.index(split) for split in current)
        torn += len(counts) > 1
        # Most common split; on a tie the earlier of train, valid, test.
        joined = max(counts, key=lambda index: (counts[index], -index))
        for item in group.items:
            kept = item.current
            placed[item.key] = joined if kept is None else SPLITS.index(kept)
    if torn:
        logger.warning(
            "%d groups have images in more than one split; they were kept apart "
            "because reassign is off. Reassign the splits to reunite them.",
            torn,
        )
    return placed, free


def _stratify(
    groups: list[_Group], targets: _Targets, rng: random.Random, placed: dict[int, int]
) -> None:
    """Iterative stratification over labelled groups, rarest class first."""
    by_label: dict[int, list[int]] = {}
    left: Counter[int] = Counter()
    for position, group in enumerate(groups):
        for label, count in group.label_counts.items():
            by_label.setdefault(label, []).append(position)
            left[label] += count
    tie_break = sorted(by_label)
    rng.shuffle(tie_break)
    rank = {label: order for order, label in enumerate(tie_break)}
    # Entries go stale as counts drop; every new count is pushed, stale ones skipped.
    heap = [(left[label], rank[label], label) for label in by_label]
    heapq.heapify(heap)
    done: set[int] = set()
    while heap:
        count, _, label = heapq.heappop(heap)
        if count != left[label] or count == 0:
            continue
        waiting = [position for position in by_label[label] if position not in done]
        for position in _largest_first(waiting, groups, rng):
            group = groups[position]
            split = targets.choose(label, rng)
            _place(group, split, targets, placed)
            done.add(position)
            for other, taken in group.label_counts.items():
                left[other] -= taken
                if other != label and left[other] > 0:
                    heapq.heappush(heap, (left[other], rank[other], other))


def _spread_unlabelled(
    groups: list[_Group], targets: _Targets, rng: random.Random, placed: dict[int, int]
) -> None:
    """Places groups without labels where the most images are still wanted."""
    for position in _largest_first(list(range(len(groups))), groups, rng):
        group = groups[position]
        _place(group, targets.choose(None, rng), targets, placed)


def _largest_first(
    positions: list[int], groups: list[_Group], rng: random.Random
) -> list[int]:
    """Shuffles, then puts big groups first: small ones fill the gaps they leave."""
    rng.shuffle(positions)
    return sorted(positions, key=lambda position: -groups[position].size)


def _place(
    group: _Group, split: int, targets: _Targets, placed: dict[int, int]
) -> None:
    targets.take(split, group)
    for item in group.items:
        placed[item.key] = split
