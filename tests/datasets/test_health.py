"""Tests of the dataset health check, on hand-built records and on real images."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from pigeonhole.datasets.health import (
    UNLABELLED_ID_LIMIT,
    ConflictKind,
    HealthImage,
    HealthReport,
    compute_health,
    render_text,
    write_plots,
)
from pigeonhole.domain import ProjectType
from pigeonhole.errors import ValidationError
from pigeonhole.images import hamming, inspect

DISTANCE = 4
SINGLE = ProjectType.SINGLE_LABEL
MULTI = ProjectType.MULTI_LABEL


def record(
    image_id: int,
    labels: tuple[str, ...] = ("cat",),
    split: str | None = "train",
    *,
    sources: tuple[str, ...] | None = None,
    source_labels: tuple[tuple[str, ...], ...] | None = None,
    size: tuple[int, int] = (640, 480),
    phash: str | None = None,
) -> HealthImage:
    """One image; its hash is unrelated to every other image's unless given."""
    filename = f"img{image_id}.jpg"
    sources = sources or (f"import/{filename}",)
    if source_labels is None:
        source_labels = (labels,) * len(sources)
    if phash is None:
        phash = hashlib.sha256(str(image_id).encode()).hexdigest()[:16]
    return HealthImage(
        image_id, filename, sources, source_labels, labels, split, *size, phash
    )


def records(
    first_id: int, count: int, labels: tuple[str, ...], split: str | None
) -> list[HealthImage]:
    return [record(first_id + n, labels, split) for n in range(count)]


def zoo() -> list[HealthImage]:
    """cat: 6 train, 2 valid, 1 test, 1 unassigned; dog: 3 train, 1 test; 2 bare."""
    return [
        *records(1, 6, ("cat",), "train"),
        *records(7, 2, ("cat",), "valid"),
        *records(9, 1, ("cat",), "test"),
        *records(10, 1, ("cat",), None),
        *records(11, 3, ("dog",), "train"),
        *records(14, 1, ("dog",), "test"),
        record(15, (), "train"),
        record(16, (), None),
    ]


def health(
    images: Iterable[HealthImage],
    class_names: Iterable[str] = ("cat", "dog", "fog"),
    project_type: ProjectType = SINGLE,
    distance: int = DISTANCE,
) -> HealthReport:
    return compute_health(
        list(images),
        list(class_names),
        project_type,
        near_duplicate_distance=distance,
    )


def test_counts_per_class_and_split() -> None:
    report = health(zoo())

    table = report.class_split
    assert report.image_count == 16
    assert table.count("cat", "train") == 6
    assert table.count("cat", "valid") == 2
    assert table.count("cat", None) == 1
    assert table.count("dog", "valid") == 0
    assert table.count("dog", "test") == 1
    assert table.class_totals == (10, 4, 0)
    assert table.split_totals == (10, 2, 2, 2)  # unlabelled images count per split
    assert report.unlabelled_count == 2
    assert report.unlabelled_ids == (15, 16)
    assert report.near_duplicates == ()


def test_split_aliases_are_normalised() -> None:
    report = health([record(1, split="val"), record(2, split="Test")])

    assert report.class_split.count("cat", "valid") == 1
    assert report.class_split.count("cat", "test") == 1


def test_class_warnings() -> None:
    warnings = health(zoo()).warnings

    assert "class 'dog' has 4 images, under 10" in warnings
    assert "class 'fog' has no images" in warnings
    assert "2 images without a split; run split to assign them" in warnings
    assert any(warning.startswith("2 images without a label") for warning in warnings)
    assert not any("imbalanced" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("counts", "ratio", "empty", "warned"),
    [
        ((5, 5, 5), 1.0, (), False),
        ((12, 3, 6), 4.0, (), True),
        ((12, 0, 4), 3.0, ("dog",), False),
        ((0, 0, 0), None, ("cat", "dog", "fog"), False),
    ],
    ids=["balanced", "imbalanced", "one-empty-at-threshold", "no-images"],
)
def test_imbalance(
    counts: tuple[int, ...], ratio: float | None, empty: tuple[str, ...], warned: bool
) -> None:
    names = ("cat", "dog", "fog")
    images, next_id = [], 1
    for name, count in zip(names, counts, strict=True):
        images += records(next_id, count, (name,), "train")
        next_id += count

    report = health(images, names)

    assert report.imbalance.ratio == ratio
    assert report.imbalance.empty_classes == empty
    assert any("imbalanced" in warning for warning in report.warnings) is warned


def test_imbalance_names_largest_and_smallest() -> None:
    images = records(1, 12, ("cat",), "train") + records(20, 3, ("dog",), "train")

    imbalance = health(images, ("cat", "dog")).imbalance

    assert (imbalance.largest, imbalance.largest_count) == ("cat", 12)
    assert (imbalance.smallest, imbalance.smallest_count) == ("dog", 3)


def test_exact_duplicates_list_every_source() -> None:
    images = [
        record(1, sources=("cats/a.jpg", "backup/a.jpg", "old/a copy.jpg")),
        record(2, sources=("cats/b.jpg",)),
    ]

    duplicates = health(images).exact_duplicates

    assert len(duplicates) == 1
    assert duplicates[0].image_id == 1
    assert duplicates[0].sources == ("cats/a.jpg", "backup/a.jpg", "old/a copy.jpg")


@pytest.mark.parametrize(
    ("project_type", "labels", "source_labels", "kinds"),
    [
        (SINGLE, ("cat", "dog"), (("cat",),), [ConflictKind.MULTIPLE_LABELS]),
        (MULTI, ("cat", "dog"), (("cat", "dog"),), []),
        (SINGLE, ("cat",), (("cat",), ("dog",)), [ConflictKind.SOURCES_DISAGREE]),
        (MULTI, ("cat", "dog"), (("cat", "dog"), ("dog", "cat")), []),
        (SINGLE, ("cat",), (("cat",), ()), []),
        (
            SINGLE,
            ("cat", "dog"),
            (("cat",), ("dog",)),
            [ConflictKind.MULTIPLE_LABELS, ConflictKind.SOURCES_DISAGREE],
        ),
    ],
    ids=[
        "single-label-two-labels",
        "multi-label-two-labels",
        "sources-disagree",
        "sources-agree-in-other-order",
        "unlabelled-source-contradicts-nothing",
        "both-kinds",
    ],
)
def test_conflicting_labels(
    project_type: ProjectType,
    labels: tuple[str, ...],
    source_labels: tuple[tuple[str, ...], ...],
    kinds: list[ConflictKind],
) -> None:
    sources = tuple(f"source{n}/a.jpg" for n in range(len(source_labels)))
    image = record(1, labels, sources=sources, source_labels=source_labels)

    report = health([image, record(2)], ("cat", "dog"), project_type)

    assert [conflict.kind for conflict in report.label_conflicts] == kinds
    assert all(conflict.image_id == 1 for conflict in report.label_conflicts)
    assert all(c.source_labels == source_labels for c in report.label_conflicts)


def test_conflicting_labels_are_warned() -> None:
    images = [
        record(1, ("cat", "dog")),
        record(2, sources=("a/2.jpg", "b/2.jpg"), source_labels=(("cat",), ("dog",))),
    ]

    warnings = health(images, ("cat", "dog")).warnings

    assert any("1 image with more than one label" in w for w in warnings)
    assert any("1 image imported with different labels" in w for w in warnings)


def test_cooccurrence_for_multi_label() -> None:
    images = [
        record(1, ("rain", "wind")),
        record(2, ("rain",)),
        record(3, ("sun", "wind")),
        record(4, ("rain", "sun", "wind")),
        record(5, ()),
    ]

    cooccurrence = health(images, ("rain", "sun", "wind"), MULTI).cooccurrence

    assert cooccurrence is not None
    assert cooccurrence.counts == ((3, 1, 2), (1, 2, 2), (2, 2, 3))
    assert cooccurrence.cardinality == (1, 1, 2, 1)


def test_no_cooccurrence_for_single_label() -> None:
    assert health(zoo()).cooccurrence is None


def test_multi_label_image_counts_in_each_class() -> None:
    images = [record(1, ("rain", "wind")), record(2, ("rain",), "test")]

    report = health(images, ("rain", "sun", "wind"), MULTI)

    assert report.class_split.class_totals == (2, 0, 1)
    assert report.class_split.split_totals == (1, 0, 1, 0)


def test_size_stats() -> None:
    sizes = [(100, 400), (400, 400), (800, 600), (1000, 500), (300, 500)]
    images = [record(n, size=size) for n, size in enumerate(sizes, start=1)]

    stats = health(images).sizes

    assert stats is not None
    assert (stats.width.minimum, stats.width.median, stats.width.maximum) == (
        100,
        400,
        1000,
    )
    assert (stats.height.minimum, stats.height.median, stats.height.maximum) == (
        400,
        500,
        600,
    )
    assert stats.megapixels.median == pytest.approx(0.16)
    assert stats.median_aspect_ratio == pytest.approx(1.0)
    assert stats.sizes == tuple(sizes)


@pytest.mark.parametrize(
    ("size", "bucket"),
    [
        ((49, 100), "under 0.5"),
        ((50, 100), "0.5-0.8"),
        ((100, 100), "0.8-1.25"),
        ((125, 100), "1.25-2"),
        ((200, 100), "2 and over"),
    ],
    ids=["tall", "portrait-boundary", "square", "landscape-boundary", "panorama"],
)
def test_aspect_ratio_buckets(size: tuple[int, int], bucket: str) -> None:
    stats = health([record(1, size=size)]).sizes

    assert stats is not None
    assert dict(stats.aspect_buckets)[bucket] == 1
    assert sum(count for _, count in stats.aspect_buckets) == 1


def test_unlabelled_ids_are_capped() -> None:
    count = UNLABELLED_ID_LIMIT + 5
    images = [record(n, ()) for n in range(1, count + 1)]

    report = health(images, distance=0)

    assert report.unlabelled_count == count
    assert report.unlabelled_ids == tuple(range(1, UNLABELLED_ID_LIMIT + 1))
    assert f"... and {count - 10} more" in render_text(report)


def test_repeated_image_id_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"image ids \[3\] appear more than once"):
        health([record(3), record(3, split="test")])


def test_unknown_split_is_refused() -> None:
    with pytest.raises(ValidationError, match="split 'holdout' is not one of"):
        health([record(1, split="holdout")])


def test_empty_split_is_warned_once_splits_are_assigned() -> None:
    assigned = health([record(1, split="train"), record(2, split="test")]).warnings
    unassigned = health([record(1, split=None)]).warnings

    assert "the valid split has no images" in assigned
    assert "the test split has no images" not in assigned
    assert not any(warning.startswith("the ") for warning in unassigned)


def test_unknown_label_is_warned() -> None:
    report = health([record(1, ("cat",)), record(2, ("wolf",))], ("cat",))

    assert "label 'wolf' on 1 image is not a class" in report.warnings


def test_image_without_hash_is_left_out_of_search() -> None:
    report = health([record(1, phash=""), record(2), record(3, phash="not hex")])

    assert report.near_duplicates == ()
    assert any(
        w.startswith("2 images without a valid perceptual hash")
        for w in report.warnings
    )


def test_count_of_unknown_class_is_refused() -> None:
    with pytest.raises(ValidationError, match="class 'wolf' is not one of: cat"):
        health([record(1)], ("cat",)).class_split.count("wolf", "train")


def scene(kind: str) -> Image.Image:
    """A drawing: ``shapes`` (ellipse, box, triangle) or ``stripes``."""
    image = Image.new("RGB", (320, 240), (235, 230, 210))
    draw = ImageDraw.Draw(image)
    if kind == "shapes":
        draw.ellipse((30, 40, 170, 200), fill=(200, 40, 40))
        draw.rectangle((190, 20, 300, 120), fill=(30, 60, 180))
        draw.polygon([(200, 220), (300, 140), (310, 230)], fill=(20, 140, 60))
    else:
        for x in range(0, 320, 40):
            draw.rectangle((x, 0, x + 19, 240), fill=(20, 20, 20))
        draw.ellipse((200, 150, 300, 230), fill=(250, 250, 40))
    return image


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, HealthImage]:
    """An original, its resized copy at another JPEG quality, and another image."""
    encoded = {
        "original": jpeg(scene("shapes"), 95),
        "copy": jpeg(scene("shapes").resize((240, 180)), 40),
        "other": jpeg(scene("stripes"), 95),
    }
    found = {}
    for image_id, (name, data) in enumerate(encoded.items(), start=1):
        info = inspect(data, name=name)
        found[name] = HealthImage(
            image_id,
            f"{name}.jpg",
            (f"photos/{name}.jpg",),
            (("cat",),),
            ("cat",),
            "train",
            info.width,
            info.height,
            info.phash,
        )
    return found


def test_real_images_hash_as_expected(photos: dict[str, HealthImage]) -> None:
    original, copy, other = photos["original"], photos["copy"], photos["other"]

    assert hamming(original.phash, copy.phash) <= DISTANCE
    assert hamming(original.phash, other.phash) > 3 * DISTANCE


def test_near_duplicate_found_for_reencoded_copy_only(
    photos: dict[str, HealthImage],
) -> None:
    report = health(photos.values())

    assert len(report.near_duplicates) == 1
    members = report.near_duplicates[0].members
    assert [member.image_id for member in members] == [1, 2]
    assert [member.filename for member in members] == ["original.jpg", "copy.jpg"]
    assert report.leaking_groups == ()


@pytest.mark.parametrize(
    ("original_split", "copy_split", "leaks"),
    [
        ("train", "train", False),
        ("train", "test", True),
        ("valid", "test", True),
        ("train", None, False),
        (None, None, False),
    ],
    ids=["same-split", "train-test", "valid-test", "one-unassigned", "both-unassigned"],
)
def test_leakage_only_when_splits_differ(
    photos: dict[str, HealthImage],
    original_split: str | None,
    copy_split: str | None,
    leaks: bool,
) -> None:
    images = [
        replace(photos["original"], split=original_split),
        replace(photos["copy"], split=copy_split),
        photos["other"],
    ]

    report = health(images)

    assert len(report.leaking_groups) == int(leaks)
    warned = any(
        "1 near-duplicate group across splits: the test score" in warning
        for warning in report.warnings
    )
    assert warned is leaks
    if leaks:
        group = report.to_dict()["leaking_groups"][0]  # type: ignore[index]
        splits = [member["split"] for member in group["members"]]
        assert splits == [original_split, copy_split]


@pytest.mark.parametrize(
    ("copy_labels", "differ"),
    [(("cat",), False), (("dog",), True), ((), False)],
    ids=["same-label", "other-label", "unlabelled-copy"],
)
def test_near_duplicates_with_different_labels(
    photos: dict[str, HealthImage], copy_labels: tuple[str, ...], differ: bool
) -> None:
    copy = replace(photos["copy"], labels=copy_labels)

    report = health([photos["original"], copy, photos["other"]])

    assert len(report.mislabelled_groups) == int(differ)
    assert any("different labels" in w for w in report.warnings) is differ


def test_to_dict_is_json_safe() -> None:
    images = [*zoo(), record(20, sources=("a/x.jpg", "b/x.jpg"))]
    report = health(images)

    data = json.loads(json.dumps(report.to_dict()))

    assert data["image_count"] == 17
    assert data["project_type"] == "single-label"
    assert data["class_split"]["rows"]["cat"] == {
        "train": 7,
        "valid": 2,
        "test": 1,
        "unassigned": 1,
    }
    assert data["class_split"]["split_totals"]["unassigned"] == 2
    assert data["imbalance"]["ratio"] == pytest.approx(11 / 4)
    assert data["exact_duplicates"][0]["sources"] == ["a/x.jpg", "b/x.jpg"]
    assert data["sizes"]["width"]["median"] == 640
    assert data["warnings"] == list(report.warnings)
    assert set(data) == {
        "project_type",
        "class_names",
        "near_duplicate_distance",
        "image_count",
        "class_split",
        "imbalance",
        "sizes",
        "unlabelled_count",
        "unlabelled_ids",
        "exact_duplicates",
        "near_duplicates",
        "label_conflicts",
        "cooccurrence",
        "warnings",
        "leaking_groups",
        "mislabelled_groups",
    }


def test_to_dict_of_conflicts_and_cooccurrence() -> None:
    image = record(
        1, ("rain",), sources=("a", "b"), source_labels=(("rain",), ("sun",))
    )

    data = health([image], ("rain", "sun"), MULTI).to_dict()

    assert data["label_conflicts"] == [
        {
            "image_id": 1,
            "filename": "img1.jpg",
            "kind": "sources-disagree",
            "labels": ["rain"],
            "sources": ["a", "b"],
            "source_labels": [["rain"], ["sun"]],
        }
    ]
    assert data["cooccurrence"] == {
        "class_names": ["rain", "sun"],
        "counts": [[1, 0], [0, 0]],
        "cardinality": [0, 1],
    }


def test_render_text_shows_key_figures(photos: dict[str, HealthImage]) -> None:
    leaked = replace(photos["copy"], image_id=40, split="test")
    original = replace(photos["original"], image_id=41)
    report = health([*zoo(), original, leaked])

    text = render_text(report)

    assert text.startswith("Dataset health: 18 images, 3 classes, single-label")
    assert re.search(r"^\s+cat\s+7\s+2\s+2\s+1\s+12$", text, re.MULTILINE)
    assert re.search(r"^\s+dog\s+3\s+0\s+1\s+0\s+4$", text, re.MULTILINE)
    assert re.search(r"^\s+all images\s+11\s+2\s+3\s+2\s+18$", text, re.MULTILINE)
    assert "ratio 3.0x" in text  # cat 12 (two photos are cats) against dog 4
    assert "classes with no images: fog" in text
    assert "Unlabelled images: 2" in text
    assert "Near-duplicate groups across splits (leakage): 1" in text
    assert "original.jpg (id 41, train) [cat]; copy.jpg (id 40, test) [cat]" in text
    assert "  - class 'dog' has 4 images, under 10" in text
    assert "\x1b" not in text


def test_render_text_cuts_long_lists() -> None:
    images = [record(n, sources=(f"a/{n}.jpg", f"b/{n}.jpg")) for n in range(1, 16)]

    text = render_text(health(images))

    assert "Exact duplicates: 15 images imported from several paths" in text
    assert "img10.jpg (id 10): a/10.jpg, b/10.jpg" in text
    assert "img11.jpg" not in text
    assert "  ... and 5 more" in text


def test_render_text_of_empty_project() -> None:
    text = render_text(health([], ()))

    assert "Dataset health: 0 images, 0 classes" in text
    assert "Image sizes: no images" in text


def _check_png(path: Path) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0


@pytest.mark.parametrize(
    ("project_type", "names"),
    [
        (SINGLE, ["class_balance.png", "image_sizes.png"]),
        (MULTI, ["class_balance.png", "image_sizes.png", "label_cooccurrence.png"]),
    ],
    ids=["single-label", "multi-label"],
)
def test_write_plots(
    tmp_path: Path, project_type: ProjectType, names: list[str]
) -> None:
    images = [
        *zoo(),
        record(30, ("cat", "dog"), size=(4000, 3000)),
        record(31, ("dog",), size=(32, 48)),
    ]
    report = health(images, project_type=project_type)

    paths = write_plots(report, tmp_path / "plots")

    assert [path.name for path in paths] == names
    assert all(path.parent == tmp_path / "plots" for path in paths)
    for path in paths:
        _check_png(path)


def test_write_plots_of_empty_project(tmp_path: Path) -> None:
    paths = write_plots(health([], (), MULTI), tmp_path)

    assert [path.name for path in paths] == [
        "class_balance.png",
        "label_cooccurrence.png",
    ]
    for path in paths:
        _check_png(path)
