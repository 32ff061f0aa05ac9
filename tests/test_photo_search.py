"""``search`` and :mod:`course_utils.photo_search` on small real photo groups, and ``reproduce`` on a retrieval folder.

Each group is one packaged photograph (scikit-image) in a few versions: the whole photo, a centre crop, a mirror
image (and, for groups of 4, a mirrored crop). Different photographs are far apart for any ImageNet network, so the
rankings below are clear-cut.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from course_utils import __main__ as entry
from course_utils import features, photo_search
from course_utils.retrieval import SpatialPatches, spatial_distances

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
SIDE = 128  # longer side of every test photo, in pixels


def _photo(name: str) -> Image.Image:
    from skimage import data

    photo = Image.fromarray(getattr(data, name)()).convert("RGB")
    photo.thumbnail((SIDE, SIDE))
    return photo


def _versions(photo: Image.Image, n: int) -> dict[str, Image.Image]:
    w, h = photo.size
    crop = photo.crop((w // 8, h // 8, w - w // 8, h - h // 8))
    versions = {"whole": photo, "crop": crop, "flip": ImageOps.mirror(photo), "crop_flip": ImageOps.mirror(crop)}
    return dict(list(versions.items())[:n])


def make_groups(root: Path, names=PHOTOS, per_group: int = 3) -> Path:
    """``root/<photo>/<version>.jpg``, plus ``root/broken.jpg``, a file that is not an image."""
    for name in names:
        (root / name).mkdir(parents=True)
        for version, image in _versions(_photo(name), per_group).items():
            image.save(root / name / f"{version}.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"these bytes are not a JPEG")
    return root


@pytest.fixture(scope="module")
def groups(tmp_path_factory) -> Path:
    return make_groups(tmp_path_factory.mktemp("photos") / "trip")


@pytest.fixture(scope="module")
def index(groups) -> photo_search.PhotoIndex:
    return photo_search.build_index(groups, engine="torch", progress=False)


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> Path:
    """A query outside the folder: the right two thirds of the coffee photo, never indexed."""
    photo = _photo("coffee")
    path = tmp_path_factory.mktemp("elsewhere") / "coffee_part.jpg"
    photo.crop((photo.width // 3, 0, photo.width, photo.height)).save(path, quality=95)
    return path


@pytest.fixture
def search_command(monkeypatch):
    """``main(["search", ...])`` with the command registered as the lead registers it in ``__main__.COMMANDS``."""
    monkeypatch.setitem(entry.COMMANDS, "search", ("course_utils.photo_search", "search a folder of photos"))
    return lambda *args: entry.main(["search", *map(str, args), "--engine", "torch", "--no-progress"])


def _group(path: Path) -> str:
    return path.parent.name


def test_index_holds_every_readable_photo_and_names_the_bad_one(index, groups):
    assert len(index) == 12 and index.root == groups.resolve()
    assert [p.relative_to(groups).as_posix() for p in index.paths[:3]] == [
        "astronaut/crop.jpg", "astronaut/flip.jpg", "astronaut/whole.jpg"]
    assert index.vectors.shape == (12, 1280) and index.vectors.dtype == np.float32
    assert np.linalg.norm(index.vectors, axis=1) == pytest.approx(np.ones(12), abs=1e-5)
    assert index.layer == "pool" and len(index.skipped) == 1
    path, reason = index.skipped[0]
    assert path == str(groups / "broken.jpg") and "not an image file" in reason


def test_every_photo_finds_its_own_group_first_and_never_itself(index):
    for query in index.paths:
        result = index.search(query, top=4)
        found = [m.path for m in result.matches]
        assert query not in found
        assert {_group(p) for p in found[:2]} == {_group(query)}, f"{query}: {found}"
        assert _group(found[2]) != _group(query)
        assert [m.rank for m in result.matches] == [1, 2, 3, 4]
        distances = [m.distance for m in result.matches]
        assert distances == sorted(distances) and result.method == "global" and result.reranked == 0


def test_global_distances_are_the_l2_between_normalised_vectors(index, groups):
    rocket = index.search(groups / "rocket" / "whole.jpg", top=2)
    assert [m.path.name for m in rocket.matches] == ["flip.jpg", "crop.jpg"]
    rows = {p: i for i, p in enumerate(index.paths)}
    query = index.vectors[rows[groups / "rocket" / "whole.jpg"]]  # the same file: the same vector
    for match in rocket.matches:
        assert match.distance == pytest.approx(float(np.linalg.norm(query - index.vectors[rows[match.path]])),
                                               abs=1e-5)


def test_a_query_outside_the_folder_is_extracted_on_its_own(index, outside):
    result = index.search(outside, top=3)
    assert result.query == outside and [_group(m.path) for m in result.matches] == ["coffee"] * 3


def test_a_later_index_and_search_run_no_network(groups, index, outside, monkeypatch):
    index.search(outside, top=3)  # the query's features are cached now (if an earlier test has not done it)

    def no_extraction(*_args, **_kwargs):
        raise AssertionError("features were computed instead of read from the cache")

    monkeypatch.setattr(features._Run, "into_entry", no_extraction)
    monkeypatch.setattr(features._Run, "into_memory", no_extraction)
    again = photo_search.build_index(groups, engine="torch", progress=False)
    assert again.from_cache and again.paths == index.paths
    np.testing.assert_array_equal(again.vectors, index.vectors)
    assert [m.path for m in again.search(outside, top=3).matches] == [m.path for m in index.search(outside, top=3).matches]


@pytest.mark.slow
def test_spatial_search_reranks_the_global_shortlist_with_the_papers_distance(index, outside):
    coarse = index.search(outside, top=3)
    result = index.search(outside, top=2, method="spatial", rerank=3)
    assert result.reranked == 3 and len(result.matches) == 2
    shortlist = [m.path for m in coarse.matches]
    assert {m.path for m in result.matches} <= set(shortlist)

    def patches(paths, levels):
        found = features.extract(paths, index.backbone, [index.layer], views=SpatialPatches(levels), engine="torch",
                                 progress=False)
        array = np.asarray(found[index.layer])
        return array / np.linalg.norm(array, axis=-1, keepdims=True)

    expected = spatial_distances(patches([outside], 3), patches(shortlist, 4))[0]
    by_path = dict(zip(shortlist, expected, strict=True))
    assert [m.distance for m in result.matches] == pytest.approx(sorted(expected)[:2], abs=1e-5)
    assert [m.distance for m in result.matches] == pytest.approx([by_path[m.path] for m in result.matches], abs=1e-5)


@pytest.mark.slow
def test_jitter_reranks_at_least_top_images(index, groups):
    result = index.search(groups / "chelsea" / "crop.jpg", top=2, method="jitter", rerank=1)
    assert result.reranked == 2 and result.method == "jitter"
    assert {m.path.name for m in result.matches} == {"whole.jpg", "flip.jpg"}
    assert all(_group(m.path) == "chelsea" for m in result.matches)


def test_search_rejects_unknown_methods_and_counts(index, outside):
    with pytest.raises(ValueError, match=r"Unknown search method 'patches'; choose one of \('global', 'spatial'"):
        index.search(outside, method="patches")
    with pytest.raises(ValueError, match="top and rerank must be at least 1; got top=0, rerank=20"):
        index.search(outside, top=0)


def test_empty_and_unreadable_folders_are_errors_naming_them(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no photos here")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'empty'} holds no images (searched recursively")):
        photo_search.build_index(tmp_path / "empty", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=re.escape(f"None of the 1 images under {tmp_path / 'bad'} can be read "
                                                   f"(first: {tmp_path / 'bad' / 'a.jpg'}: not an image file")):
        photo_search.build_index(tmp_path / "bad", engine="torch", progress=False)
    with pytest.raises(FileNotFoundError, match=re.escape(f"Photo folder {tmp_path / 'nope'} does not exist")):
        photo_search.build_index(tmp_path / "nope", progress=False)


def test_command_prints_rankings_and_writes_the_gallery(search_command, groups, outside, tmp_path, capsys):
    out = tmp_path / "gallery"
    code = search_command("--index", groups, "--query", outside, groups / "rocket" / "whole.jpg", "--top", 3,
                          "--out", out)
    assert code == 0
    printed = capsys.readouterr()
    assert "12 images" in printed.err and f"{groups / 'broken.jpg'}: not an image file" in printed.err
    lines = printed.out.splitlines()
    assert lines[0].startswith(f"query {outside} (global; ")
    ranked = [line.split() for line in lines[1:4]]
    assert [int(rank) for rank, _, _ in ranked] == [1, 2, 3]
    assert [Path(path).parent.name for _, _, path in ranked] == ["coffee"] * 3
    assert lines[5].split()[2] == str(groups / "rocket" / "flip.jpg")
    assert lines[-1] == f"Gallery: {out / 'gallery.html'} and {out / 'gallery.png'}"

    page = (out / "gallery.html").read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)
    links = re.findall(r'<a href="([^"]+)"', page)
    assert len(sources) == len(links) == 2 * (1 + 3) and page.count("<section>") == 2
    assert all(not Path(urllib.parse.unquote(s)).is_absolute() for s in sources)
    resolved = [(out / urllib.parse.unquote(s)).resolve() for s in sources]
    assert resolved[0] == outside.resolve() and all(p.is_file() for p in resolved)
    with Image.open(out / "gallery.png") as png:  # 4 tiles of 160 x 192 px per row, one row per query
        assert png.format == "PNG" and png.size == (4 * 160, 2 * 192)


def test_command_reports_a_bad_query_and_answers_the_others(search_command, groups, tmp_path, capsys):
    bad = tmp_path / "query.png"
    bad.write_bytes(b"\x89PNG but truncated")
    code = search_command("--index", groups, "--query", bad, groups / "coffee" / "crop.jpg", "--top", 1,
                          "--out", tmp_path / "out")
    printed = capsys.readouterr()
    assert code == 1
    assert f"Cannot use image {bad}" in printed.err
    assert printed.out.splitlines()[1].split()[2].startswith(str(groups / "coffee"))
    assert (tmp_path / "out" / "gallery.html").read_text().count("<section>") == 1


def test_command_without_query_builds_the_index_only(search_command, groups, tmp_path, capsys):
    assert search_command("--index", groups, "--out", tmp_path / "out") == 0
    printed = capsys.readouterr()
    assert "read from the feature cache" in printed.err and "add --query IMG" in printed.err
    assert printed.out == "" and not (tmp_path / "out").exists()


def test_command_refuses_a_missing_folder_before_any_work(search_command, tmp_path, capsys):
    assert search_command("--index", tmp_path / "nope") == 2
    assert f"argument --index: no folder {tmp_path / 'nope'}" in capsys.readouterr().err


# --- reproduce --dataset retrieval-folder:PATH ----------------------------------------------------------------------


@pytest.mark.slow
def test_reproduce_scores_a_retrieval_folder_by_map_and_ns(tmp_path, capsys):
    root = make_groups(tmp_path / "pairs", names=("chelsea", "rocket"), per_group=4)
    out = tmp_path / "out"
    code = entry.main(["reproduce", "--dataset", f"retrieval-folder:{root}", "--out", str(out), "--engine", "torch",
                       "--no-progress", "--no-ablations"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    rows = {(r["method"], r["metric"]): r for r in results["results"]}
    methods = ("CNN", "CNN-ss (16-view jitter)", "CNN-ss (spatial search)")
    assert set(rows) == {(m, metric) for m in methods for metric in ("mAP", "N-S score (0-4)")}
    assert {r["dataset"] for r in results["results"]} == {"retrieval-folder:pairs"}
    # Two photographs, four versions each: every query finds its 3 companions first (and itself, for N-S).
    assert rows["CNN", "mAP"]["value"] == 100.0 and rows["CNN", "N-S score (0-4)"]["value"] == 4.0
    assert rows["CNN", "mAP"]["paper"] is None
    assert results["meta"]["skipped_images"] == {
        "retrieval-folder:pairs": [{"path": str(root / "broken.jpg"),
                                    "reason": "not an image file, or a format Pillow cannot decode"}]}
    report = (out / "report.md").read_text()
    assert "| retrieval-folder:pairs | retrieval | CNN-ss (spatial search) |" in report
    assert "1 unreadable image(s) left out of the search" in report and "CNNaug-ss not run" in report
    assert "2 groups, 0 distractors" in report
