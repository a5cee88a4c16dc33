from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import httpx
import pytest
from server_kit import API, CORRUPT_PNG, TEST_SETTINGS, Live, png, upload, zip_of


def test_upload_reports_added_duplicates_and_labels(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project(("cat", "dog"))

    first = upload(
        client,
        slug,
        [("a.png", png(1)), ("b.png", png(2)), ("copy of a.png", png(1))],
        labels=["cat", "dog", "cat"],
        split=["train", "test", "train"],
    )
    again = upload(client, slug, [("other name.png", png(2))])

    report = first.json()
    assert first.status_code == 200
    assert (report["found"], report["added"], report["errors"]) == (3, 2, [])
    assert report["duplicates"] == [{"name": "copy of a.png", "duplicate_of": "a.png"}]
    assert again.json()["duplicates"] == [
        {"name": "other name.png", "duplicate_of": "b.png"}
    ]
    images = client.get(f"/projects/{slug}/images").json()["images"]
    assert [(i["filename"], i["labels"], i["split"]) for i in images] == [
        ("a.png", ["cat"], "train"),
        ("b.png", ["dog"], "test"),
    ]


def test_one_label_field_applies_to_every_file(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project(("cat",))

    report = upload(
        client, slug, [("a.png", png(3)), ("b.png", png(4))], labels=["new class"]
    ).json()

    assert report["added"] == 2
    assert report["classes_added"] == ["new class"]
    assert client.get(f"/projects/{slug}/classes").json()[1]["images"] == 2


def test_folders_and_odd_characters_are_stripped_from_names(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    report = upload(
        client, slug, [("../../etc/x<y>.png", png(5)), (".hidden.png", png(6))]
    ).json()

    names = [
        i["filename"] for i in client.get(f"/projects/{slug}/images").json()["images"]
    ]
    assert report["added"] == 2
    assert names == ["x_y_.png", "hidden.png"]


def test_corrupt_file_is_named_and_the_others_go_in(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(client, slug, [("good.png", png(7)), ("bad.png", CORRUPT_PNG)])

    report = response.json()
    assert response.status_code == 200
    assert report["added"] == 1
    assert [problem["name"] for problem in report["errors"]] == ["bad.png"]


def test_all_corrupt_is_a_400_naming_the_file_and_the_server_goes_on(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(client, slug, [("broken.png", CORRUPT_PNG)])
    after = upload(client, slug, [("fine.png", png(8))])

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"message", "code"}
    assert body["code"] == "bad_image"
    assert "every uploaded file was refused: broken.png:" in body["message"]
    assert after.status_code == 200 and after.json()["added"] == 1


def test_file_without_an_image_suffix_is_refused_by_name(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(client, slug, [("notes.txt", b"hello"), ("ok.png", png(9))])

    report = response.json()
    assert report["added"] == 1
    assert [problem["name"] for problem in report["errors"]] == ["notes.txt"]
    reason = report["errors"][0]["reason"]
    assert reason.startswith("skipped: .txt is not a supported image type; name")


def test_too_many_label_fields_is_a_400(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(
        client, slug, [("a.png", png(1)), ("b.png", png(2))], labels=["a", "b", "c"]
    )

    assert response.status_code == 400
    assert "got 3 labels fields for 2 files" in response.json()["message"]


def test_bad_split_names_the_file(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(client, slug, [("a.png", png(1))], split=["holdout"])

    assert response.status_code == 400
    assert "file 'a.png': split 'holdout'" in response.json()["message"]


def test_multi_label_file_in_a_single_label_project_is_refused(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()

    response = upload(client, slug, [("a.png", png(31))], labels=["cat;dog"])

    assert response.status_code == 400
    assert "a.png: has 2 labels (cat, dog)" in response.json()["message"]


def test_file_over_the_per_file_limit_is_a_413(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()
    big = png(10) + b"\x00" * (TEST_SETTINGS.max_upload_bytes + 1)

    response = upload(client, slug, [("big.png", big)])

    assert response.status_code == 413
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert "'big.png' is over the limit of 100,000 bytes per file" in body["message"]
    assert client.get(f"/projects/{slug}/images").json()["total"] == 0


def test_request_over_the_body_limit_is_a_413(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()
    files = [(f"{n}.png", png(n) + b"\x00" * 90_000) for n in range(8)]

    response = upload(client, slug, files)

    assert response.status_code == 413
    assert "larger than the limit of 600,000 bytes" in response.json()["message"]


def test_declared_oversize_body_is_refused_before_it_is_sent(live: Live) -> None:
    address = urlsplit(live.url)
    request = (
        f"POST {API}/projects/any/images HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {live.write_key}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        "Content-Length: 1000000000\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as s:
        s.sendall(request.encode())
        # Headers and body may come in separate packets: read until the body.
        reply = ""
        while "}" not in reply and (chunk := s.recv(65536)):
            reply += chunk.decode()

    assert reply.startswith("HTTP/1.1 413")
    assert "600,000 bytes" in reply


# Zip archives


def _post_zip(
    client: httpx.Client, slug: str, data: bytes, name: str = "dataset.zip"
) -> httpx.Response:
    files = {"file": (name, data, "application/zip")}
    return client.post(f"/projects/{slug}/imports", files=files)


def test_zip_of_class_folders_is_imported(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project(())
    archive = zip_of(
        {
            "photos/cat/1.png": png(41),
            "photos/dog/2.png": png(42),
            "photos/dog/3.png": CORRUPT_PNG,
        }
    )

    response = _post_zip(client, slug, archive)

    report = response.json()
    assert response.status_code == 200
    assert (report["source"], report["layout"]) == ("dataset.zip", "class-folders")
    assert (report["added"], report["classes_added"]) == (2, ["cat", "dog"])
    assert [problem["name"] for problem in report["errors"]] == ["dog/3.png"]


def test_zip_escaping_its_folder_is_refused(
    client: httpx.Client, make_project: Callable[..., str]
) -> None:
    slug = make_project()
    archive = zip_of({"cat/1.png": png(43), "../evil.png": png(44)})

    response = _post_zip(client, slug, archive)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "unsafe_archive"
    assert body["message"].startswith("dataset.zip: member '../evil.png'")
    assert "scratch" not in body["message"] and "/tmp" not in body["message"]
    assert client.get(f"/projects/{slug}/images").json()["total"] == 0


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("photos.tar", b"x", "is not a .zip"),
        ("broken.zip", b"PK not really", "broken.zip: not a readable zip file"),
    ],
    ids=["not-zip-name", "not-zip-bytes"],
)
def test_bad_archive_is_a_400(
    client: httpx.Client,
    make_project: Callable[..., str],
    name: str,
    data: bytes,
    message: str,
) -> None:
    slug = make_project()

    response = _post_zip(client, slug, data, name)

    assert response.status_code == 400
    assert message in response.json()["message"]


def test_streamed_body_is_cut_off_at_the_limit(live: Live) -> None:
    # In process: a body without Content-Length, counted as it arrives.
    async def send() -> httpx.Response:
        chunks_sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal chunks_sent
            yield (
                b'--x\r\nContent-Disposition: form-data; name="files"; '
                b'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
            )
            for _ in range(20):
                chunks_sent += 1
                yield b"\x00" * 65_536

        transport = httpx.ASGITransport(app=live.app)
        async with httpx.AsyncClient(transport=transport, base_url=live.url) as client:
            response = await client.post(
                f"{API}/projects/any/images",
                content=body(),
                headers={
                    "Authorization": f"Bearer {live.write_key}",
                    "Content-Type": "multipart/form-data; boundary=x",
                },
            )
        assert chunks_sent < 20
        return response

    response = asyncio.run(send())

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
