from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import imagegen
from pigeonhole.cli.main import cli


@pytest.fixture
def workspace_path(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    run("init", str(path))
    return path


def run(*args: str, code: int = 0, env: dict[str, str] | None = None) -> Result:
    """Runs the CLI and checks its exit status; errors are not swallowed."""
    result = CliRunner(catch_exceptions=False).invoke(cli, list(args), env=env)
    assert result.exit_code == code, result.output
    return result


def run_json(*args: str) -> object:
    """Runs a command with ``--json`` and parses its stdout."""
    return json.loads(run(*args, "--json").stdout)


def in_workspace(path: Path, *args: str, code: int = 0) -> Result:
    return run(*args, "-w", str(path), code=code)


@pytest.fixture
def bananas(workspace_path: Path, tmp_path: Path) -> imagegen.Dataset:
    """A single-label project ``bananas`` holding a split class-folder import."""
    dataset = imagegen.split_class_folders(tmp_path / "source")
    in_workspace(workspace_path, "project", "create", "Bananas")
    in_workspace(workspace_path, "import", "bananas", str(dataset.path))
    return dataset


# The whole flow


def test_init_reports_the_workspace(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "new"))

    assert result.stdout == f"Workspace ready at {tmp_path / 'new'}\n"
    assert (tmp_path / "new" / "pigeonhole.json").is_file()


def test_init_without_a_path_uses_the_workspace_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"PIGEONHOLE_WORKSPACE": str(tmp_path / "from-env")}

    run("init", env=env)
    run("project", "create", "Found", env=env)

    assert (tmp_path / "from-env" / "pigeonhole.json").is_file()
    assert not (tmp_path / "pigeonhole-workspace").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], ("bananas", "single-label", [])),
        (
            ["--type", "multi-label", "--class", "a", "--class", "b"],
            ("bananas", "multi-label", ["a", "b"]),
        ),
        (["--slug", "yellow-fruit"], ("yellow-fruit", "single-label", [])),
    ],
    ids=["single-label", "multi-label", "slug"],
)
def test_project_create(
    workspace_path: Path, options: list[str], expected: tuple
) -> None:
    created = run_json(
        "project", "create", "Bananas", *options, "-w", str(workspace_path)
    )
    shown = run_json("project", "show", expected[0], "-w", str(workspace_path))
    text = in_workspace(workspace_path, "project", "show", expected[0]).stdout

    assert (created["slug"], created["type"], created["classes"]) == expected
    assert shown == created
    assert (shown["images"], shown["versions"]) == (0, [])
    assert f"Bananas ({expected[0]}), {expected[1]}" in text


def test_import_prints_a_summary_and_json(workspace_path: Path, tmp_path: Path) -> None:
    dataset = imagegen.split_class_folders(tmp_path / "source")
    imagegen.write(
        dataset.path / "train" / "ant" / "cut.jpg", imagegen.truncated_jpeg()
    )
    in_workspace(workspace_path, "project", "create", "Bananas")

    first = in_workspace(workspace_path, "import", "bananas", str(dataset.path))
    again = run_json("import", "bananas", str(dataset.path), "-w", str(workspace_path))

    assert first.stdout.splitlines()[:2] == [
        "split-class-folders: 15 files: 14 added, 0 unchanged, 0 exact duplicates, "
        "1 refused",
        "new classes: ant, bee",
    ]
    assert "refused: train/ant/cut.jpg: cannot decode (truncated" in first.stderr
    assert (again["found"], again["added"], again["unchanged"]) == (15, 0, 14)
    assert again["layout"] == "split-class-folders"
    assert again["errors"][0]["name"] == "train/ant/cut.jpg"


def test_images_lists_and_filters(workspace_path: Path, bananas) -> None:
    every = run_json("images", "bananas", "-w", str(workspace_path))
    train = run_json("images", "bananas", "--split", "train", "-w", str(workspace_path))
    valid = run_json("images", "bananas", "--split", "val", "-w", str(workspace_path))
    ants = run_json("images", "bananas", "--label", "ant", "-w", str(workspace_path))
    page = run_json(
        "images", "bananas", "--limit", "3", "--offset", "2", "-w", str(workspace_path)
    )
    text = in_workspace(workspace_path, "images", "bananas", "--limit", "1").stdout

    assert len(every) == 14
    assert {image["filename"]: image["labels"] for image in every} == {
        name: list(labels) for name, labels in bananas.labels.items()
    }
    assert (len(train), len(valid), len(ants)) == (8, 4, 7)
    assert {image["split"] for image in valid} == {"valid"}
    assert [image["id"] for image in page] == [image["id"] for image in every[2:5]]
    assert text.split()[:3] == [str(every[0]["id"]), every[0]["split"], "40x32"]


def test_label_and_split_by_hand(workspace_path: Path, bananas) -> None:
    first, second = run_json(
        "images", "bananas", "--label", "ant", "-w", str(workspace_path)
    )[:2]
    ids = [str(first["id"]), str(second["id"])]

    labelled = in_workspace(workspace_path, "label", "bananas", *ids, "--set", "bee")
    moved = in_workspace(workspace_path, "label", "bananas", ids[0], "--split", "test")
    cleared = in_workspace(workspace_path, "label", "bananas", ids[1], "--clear")

    assert labelled.stdout == "Labelled 2 images: bee\n"
    assert moved.stdout == "Moved 1 images to test\n"
    assert cleared.stdout == "Labelled 1 images: none\n"
    images = {
        i["id"]: i for i in run_json("images", "bananas", "-w", str(workspace_path))
    }
    assert (images[first["id"]]["labels"], images[first["id"]]["split"]) == (
        ["bee"],
        "test",
    )
    assert images[second["id"]]["labels"] == []


def test_add_labels_in_a_multi_label_project(
    workspace_path: Path, tmp_path: Path
) -> None:
    path = imagegen.write(tmp_path / "photo one.png", imagegen.png("photo"))
    in_workspace(workspace_path, "project", "create", "Tags", "--type", "multi-label")

    added = run_json(
        "add",
        "tags",
        str(path),
        "--label",
        "cat",
        "--label",
        "dog",
        "--split",
        "val",
        "-w",
        str(workspace_path),
    )
    image_id = str(added[0]["id"])
    in_workspace(workspace_path, "label", "tags", image_id, "--add", "bird")
    removed = in_workspace(workspace_path, "label", "tags", image_id, "--remove", "cat")

    assert (added[0]["filename"], added[0]["split"]) == ("photo one.png", "valid")
    assert removed.stdout == "Removed cat from 1 images\n"
    (image,) = run_json("images", "tags", "-w", str(workspace_path))
    assert image["labels"] == ["bird", "dog"]
    classes = run_json("class", "list", "tags", "-w", str(workspace_path))
    assert classes == [
        {"class_id": 0, "name": "cat"},
        {"class_id": 1, "name": "dog"},
        {"class_id": 2, "name": "bird"},
    ]


def test_split_assigns_and_reports(workspace_path: Path, tmp_path: Path) -> None:
    dataset = imagegen.class_folders(tmp_path / "source")
    in_workspace(workspace_path, "project", "create", "Pets")
    in_workspace(workspace_path, "import", "pets", str(dataset.path))

    summary = run_json(
        "split",
        "pets",
        "--ratios",
        "50/25/25",
        "--seed",
        "3",
        "-w",
        str(workspace_path),
    )
    again = in_workspace(workspace_path, "split", "pets")

    assert summary["ratios"] == [0.5, 0.25, 0.25]
    assert (summary["assigned"], summary["moved"], summary["seed"]) == (9, 0, 3)
    assert sum(summary["counts"].values()) == 9
    assert again.stdout.startswith("0 images assigned, 0 moved; 0 near-duplicate")
    assert "all" in again.stdout.splitlines()[-1]


def test_versions_create_list_show_and_export(
    workspace_path: Path, tmp_path: Path, bananas
) -> None:
    ws = ["-w", str(workspace_path)]

    created = run_json(
        "version",
        "create",
        "bananas",
        "--resize",
        "16x12",
        "--augment",
        "flip-h,brightness=0.2",
        "--multiplier",
        "2",
        *ws,
    )
    text = in_workspace(workspace_path, "version", "create", "bananas", "--grayscale")
    listed = run_json("version", "list", "bananas", *ws)
    shown = run_json("version", "show", "bananas", "1", *ws)
    newest = in_workspace(workspace_path, "version", "show", "bananas").stdout
    exported = in_workspace(
        workspace_path, "version", "export", "bananas", "1", str(tmp_path / "out")
    )

    assert (created["id"], created["number"]) == ("bananas/1", 1)
    assert created["counts"]["files"] == {"train": 16, "valid": 4, "test": 2}
    assert created["recipe"]["preprocessing"]["resize"] == [16, 12]
    assert text.stdout.startswith("Created version bananas/2 (manifest ")
    assert [version["number"] for version in listed] == [1, 2]
    assert shown == created
    assert newest.startswith("version bananas/2, manifest ")
    assert exported.stdout == f"Exported bananas/1 to {tmp_path / 'out'} (folders)\n"
    assert len(list((tmp_path / "out" / "train").rglob("*.jpg"))) == 16
    assert (
        json.loads((tmp_path / "out" / "manifest.json").read_text())["counts"]
        == (created["counts"])
    )


def test_project_list_counts_images(workspace_path: Path, bananas) -> None:
    in_workspace(workspace_path, "project", "create", "Empty")

    listed = run_json("project", "list", "-w", str(workspace_path))
    text = in_workspace(workspace_path, "project", "list").stdout

    assert [(p["slug"], p["images"]) for p in listed] == [("bananas", 14), ("empty", 0)]
    assert text.splitlines()[0].split() == [
        "bananas",
        "single-label",
        "14",
        "images",
        "2",
        "classes",
    ]


def test_project_delete_asks_unless_yes(workspace_path: Path, bananas) -> None:
    refused = CliRunner().invoke(
        cli, ["project", "delete", "bananas", "-w", str(workspace_path)], input="n\n"
    )
    deleted = in_workspace(workspace_path, "project", "delete", "bananas", "--yes")

    assert refused.exit_code == 1
    assert "Aborted" in refused.output
    assert deleted.stdout == "Deleted project bananas\n"
    assert run_json("project", "list", "-w", str(workspace_path)) == []


def test_health_reports_counts(workspace_path: Path, bananas) -> None:
    report = run_json("health", "bananas", "-w", str(workspace_path))
    text = in_workspace(workspace_path, "health", "bananas").stdout

    assert report["image_count"] == 14
    assert report["class_names"] == ["ant", "bee"]
    assert "ant" in text


# Errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["images", "nope"], "Error: no project 'nope'; projects: bananas"),
        (["split", "nope"], "Error: no project 'nope'; projects: bananas"),
        (
            ["version", "show", "bananas", "9"],
            "Error: project 'bananas' has no dataset version yet",
        ),
        (
            ["split", "bananas", "--ratios", "70/30"],
            "Error: split ratios '70/30' are not three numbers",
        ),
        (
            ["split", "bananas", "--ratios", "0/0/0"],
            "add up to 0; give at least one split",
        ),
        (["split", "bananas", "--ratios", "70,-20,10"], "ratio valid=-20.0 is not"),
        (
            ["label", "bananas", "1", "--set", "ant", "--set", "bee"],
            "Error: project 'bananas' is single-label; got 2 labels",
        ),
        (
            ["label", "bananas", "999", "--set", "ant"],
            "Error: project 'bananas' has no image(s) 999",
        ),
        (
            ["version", "create", "bananas", "--augment", "sparkle"],
            "unknown augmentation 'sparkle'; accepted: flip-h",
        ),
        (
            ["version", "create", "bananas", "--resize", "big"],
            "Error: size 'big' is not WIDTH",
        ),
        (
            ["project", "create", "Bananas"],
            "Error: a project with slug 'bananas' already exists",
        ),
    ],
    ids=[
        "unknown-project",
        "unknown-project-split",
        "no-version",
        "two-ratios",
        "zero-ratios",
        "negative-ratio",
        "two-labels",
        "unknown-image",
        "unknown-augmentation",
        "bad-size",
        "slug-taken",
    ],
)
def test_failures_print_error_and_exit_1(
    workspace_path: Path, bananas, args: list[str], message: str
) -> None:
    result = in_workspace(workspace_path, *args, code=1)

    assert message in result.stderr
    assert result.stderr.startswith("Error: ")
    assert result.stdout == ""


def test_a_folder_that_is_not_a_workspace_exits_1(tmp_path: Path) -> None:
    result = run("project", "list", "-w", str(tmp_path), code=1)

    assert "is not a Pigeonhole workspace" in result.stderr
    assert "pigeonhole init" in result.stderr


def test_export_into_a_non_empty_folder_exits_1(
    workspace_path: Path, tmp_path: Path, bananas
) -> None:
    in_workspace(workspace_path, "version", "create", "bananas")
    imagegen.write(tmp_path / "out" / "keep.txt", b"mine")

    result = in_workspace(
        workspace_path,
        "version",
        "export",
        "bananas",
        "1",
        str(tmp_path / "out"),
        code=1,
    )

    assert "is not empty; export into a new folder" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import"], "Missing argument 'PROJECT'"),
        (["import", "bananas", "/no/such/path"], "does not exist"),
        (["label", "bananas", "1"], "give --set, --add, --remove, --clear or --split"),
        (["images", "bananas", "--split", "dev"], "'dev' is not one of"),
        (
            ["version", "export", "bananas", "1", "out", "--format", "yolo"],
            "'yolo' is not one of",
        ),
        (["project", "create", "X", "--type", "binary"], "'binary' is not one of"),
        (
            ["version", "create", "bananas", "--multiplier", "99"],
            "99 is not in the range",
        ),
        (["nonsense"], "No such command 'nonsense'"),
    ],
    ids=[
        "missing-argument",
        "missing-path",
        "no-label-option",
        "bad-split-choice",
        "bad-export-format",
        "bad-project-type",
        "multiplier-range",
        "unknown-command",
    ],
)
def test_usage_errors_exit_2(
    workspace_path: Path, bananas, args: list[str], message: str
) -> None:
    result = run(*args, "-w", str(workspace_path), code=2)

    assert "Usage:" in result.stderr
    assert message in result.stderr


def test_commands_that_change_things_answer_json(
    workspace_path: Path, bananas, tmp_path: Path
) -> None:
    w = ["-w", str(workspace_path)]
    first = run_json("images", "bananas", "--label", "ant", *w)[0]
    added = run_json("class", "add", "bananas", "wasp", *w)
    labelled = run_json(
        "label", "bananas", str(first["id"]), "--set", "bee", "--split", "test", *w
    )
    in_workspace(workspace_path, "version", "create", "bananas")
    exported = run_json("version", "export", "bananas", "1", str(tmp_path / "out"), *w)
    created = run_json("init", str(tmp_path / "other"))
    deleted = run_json("project", "delete", "bananas", "--yes", *w)

    assert added == {"added": ["wasp"], "classes": ["ant", "bee", "wasp"]}
    assert labelled == {"labelled": 1, "moved": 1}
    assert exported["version"] == "bananas/1"
    assert (Path(exported["folder"]) / "train").is_dir()
    assert created == {"workspace": str(tmp_path / "other")}
    assert deleted == {"deleted": "bananas"}
