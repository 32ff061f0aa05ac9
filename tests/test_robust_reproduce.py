"""``reproduce`` on faulty folders: unreadable images, odd file names, tiny classes, several folders in one run.

Each folder holds crops of two real photographs (skimage's cat and coffee cup) saved as JPEGs, so the network
separates the classes perfectly and every number below is known in advance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from course_utils.__main__ import main

NOT_AN_IMAGE = b"this is not a JPEG file"


def _crops(photo, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [photo.crop((x, y, x + 200, y + 200)) for x, y in rng.integers(0, 100, size=(n, 2)).tolist()]


def _folder(root: Path, classes: dict[str, list], split: dict[str, list[str]] | None = None) -> Path:
    """``root/<class>/<i>.jpg`` from PIL images (``None`` writes an unreadable file); optional split files."""
    for name, images in classes.items():
        (root / name).mkdir(parents=True)
        for i, image in enumerate(images):
            if image is None:
                (root / name / f"{i}.jpg").write_bytes(NOT_AN_IMAGE)
            else:
                image.save(root / name / f"{i}.jpg")
    for part, files in (split or {}).items():
        (root / f"{part}.txt").write_text("\n".join(files) + "\n")
    return root


def _run(out: Path, *datasets: Path, extra: tuple[str, ...] = ()) -> int:
    args = ["reproduce", "--out", str(out), "--engine", "torch", "--no-progress", "--views", "whole",
            "--no-ablations", *extra]
    for folder in datasets:
        args += ["--dataset", f"folder:{folder}"]
    return main(args)


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_confused_pairs_gallery_never_opens_an_image_that_extraction_skipped(tmp_path, chelsea, coffee, capsys):
    # The first training image of "coffee" is unreadable, and one "cat" test image is really a coffee cup: it is
    # taken for coffee, so the gallery wants a training coffee to show beside it. It must pick a readable one.
    cats, cups = _crops(chelsea, 6, 0), _crops(coffee, 7, 1)
    root = _folder(tmp_path / "pets", {"cat": cats[:5] + [cups[6]], "coffee": [None] + cups[1:6]},
                   {"train": [f"{c}/{i}.jpg" for c in ("cat", "coffee") for i in range(4)],
                    "test": ["cat/4.jpg", "cat/5.jpg", "coffee/4.jpg", "coffee/5.jpg"]})
    out = tmp_path / "out"
    assert _run(out, root) == 0
    report = (out / "report.md").read_text()
    assert "cat taken for coffee (1x)" in report
    gallery = next(out.glob("*_confused_pairs.png"))
    assert gallery.stat().st_size > 1000 and f"![{gallery.stem}]({gallery.name})" in report
    row = _results(out)["results"][0]
    assert row["method"] == "CNN-SVM" and row["value"] == 75.0  # cat 1/2 right, coffee 2/2


def test_an_all_unreadable_class_counts_as_zero_and_is_reported_everywhere(tmp_path, chelsea, coffee, capsys):
    cats, cups = _crops(chelsea, 6, 2), _crops(coffee, 6, 3)
    root = _folder(tmp_path / "three", {"broken": [None] * 3, "cat": cats, "coffee": cups})
    out = tmp_path / "out"
    assert _run(out, root) == 0
    console = capsys.readouterr().out
    broken = sorted(str(p) for p in (root / "broken").iterdir())
    results = _results(out)
    row = results["results"][0]
    # cat and coffee are perfect; broken has no usable image and counts 0: (100 + 100 + 0) / 3
    assert row["value"] == pytest.approx(66.67)
    assert row["settings"]["classes_without_usable_images"] == ["broken"]
    assert "3 unreadable image(s) skipped" in console
    assert all(path in console for path in broken)
    assert "class 'broken' has no usable image" in console
    skipped = results["meta"]["skipped_images"]["folder:three"]
    assert sorted(item["path"] for item in skipped) == broken and all(item["reason"] for item in skipped)
    assert any("class 'broken' has no usable image" in w for w in results["meta"]["warnings"])
    report = (out / "report.md").read_text()
    assert "3 unreadable image(s) skipped" in report and all(path in report for path in broken)
    assert "class 'broken' has no usable image" in report


def test_two_images_per_class_fix_C_instead_of_crashing_in_cross_validation(tmp_path, chelsea, coffee, capsys):
    root = _folder(tmp_path / "tiny", {"cat": _crops(chelsea, 2, 4), "coffee": _crops(coffee, 2, 5)})
    out = tmp_path / "out"
    assert _run(out, root) == 0
    row = _results(out)["results"][0]
    assert row["settings"]["C"] == 2.0
    assert row["settings"]["C_selection"].startswith("fixed (too few training images for 3-fold cross-validation")
    assert "C fixed at 2" in capsys.readouterr().out
    assert "C fixed at 2" in (out / "report.md").read_text()


def test_each_folder_dataset_keeps_its_own_split_files(tmp_path, chelsea, coffee):
    first = _folder(tmp_path / "a" / "pets", {"cat": _crops(chelsea, 5, 6), "coffee": _crops(coffee, 5, 7)})
    second = _folder(tmp_path / "b" / "pets", {"cat": _crops(chelsea, 6, 8), "coffee": _crops(coffee, 6, 9)})
    out = tmp_path / "out"
    assert _run(out, first, second) == 0
    pairs = sorted(p.parent for p in out.rglob("train.txt"))
    assert len(pairs) == 2 and all((folder / "test.txt").is_file() for folder in pairs)
    listed = sorted(len((folder / "train.txt").read_text().split()) + len((folder / "test.txt").read_text().split())
                    for folder in pairs)
    assert listed == [10, 12]  # one pair per dataset, each listing its own images


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are UTF-16: no undecodable bytes")
def test_a_file_name_that_is_not_utf8_is_read_split_and_reported(tmp_path, chelsea, coffee, capsys):
    root = _folder(tmp_path / "odd", {"cat": _crops(chelsea, 4, 10), "coffee": _crops(coffee, 5, 11)})
    odd = os.fsdecode(os.fsencode(root / "cat") + b"/caf\xe9.jpg")  # Latin-1 e-acute: not UTF-8
    _crops(chelsea, 1, 12)[0].save(odd)
    out = tmp_path / "out"
    assert _run(out, root) == 0
    assert _results(out)["results"][0]["value"] == 100.0
    split_files = list(out.rglob("*.txt"))
    listed = b"".join(path.read_bytes() for path in split_files)
    assert b"cat/caf\xe9.jpg" in listed  # the name's own bytes, so the split file reproduces the split
    from course_utils.datasets.folder import image_folder

    for path in split_files:
        (root / path.name).write_bytes(path.read_bytes())
    frozen = image_folder(root)
    assert Path(odd) in frozen.paths and len(frozen) == 10


@pytest.mark.skipif(os.name == "nt", reason="Windows file names are UTF-16: no undecodable bytes")
def test_a_class_folder_whose_name_is_not_utf8_is_cached_and_reported(tmp_path, chelsea, coffee):
    root = _folder(tmp_path / "odd", {"coffee": _crops(coffee, 5, 13)})
    odd_class = Path(os.fsdecode(os.fsencode(root) + b"/ch\xe2t"))  # Latin-1 a-circumflex: not UTF-8
    odd_class.mkdir()
    for k, image in enumerate(_crops(chelsea, 5, 14)):
        image.save(odd_class / f"{k}.jpg")
    out = tmp_path / "out"
    assert _run(out, root) == 0
    assert _results(out)["results"][0]["value"] == 100.0


def test_writing_a_report_leaves_the_matplotlib_backend_alone(tmp_path, chelsea, coffee):
    import matplotlib
    import matplotlib.pyplot as plt

    root = _folder(tmp_path / "pets", {"cat": _crops(chelsea, 5, 13), "coffee": _crops(coffee, 5, 14)})
    previous = matplotlib.get_backend()
    plt.switch_backend("svg")  # stands for a notebook's inline backend
    try:
        assert _run(tmp_path / "out", root) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        plt.switch_backend(previous)


def test_revisited_rows_skip_queries_without_positives_and_carry_mean_precision_at_k(tmp_path, capsys):
    import fixtures_official as fx

    from course_utils import reproduce
    from course_utils.datasets import load
    from course_utils.metrics import retrieval_ap, revisited_precision_at
    from course_utils.retrieval import run_retrieval

    root = fx.make_revisited(tmp_path / "data")
    for i, image in enumerate(sorted((root / "jpg").iterdir())):  # photos large enough for the query boxes
        fx.jpeg(image, size=(64, 48), value=30 * i)
    record = load("roxford5k", root=root, setup="easy")  # q1 has no easy image
    opts = reproduce.Options(tmp_path / "out", engine="torch", ablations=False, progress=False, views="whole")
    block = reproduce.retrieval_block(record, "efficientnet_lite0", opts)
    row = block.records[0]
    assert row.method == "CNN" and row.settings["queries_without_positives"] == 1
    search = run_retrieval(record, "efficientnet_lite0", "global", extract_options={"engine": "torch"})
    ranked = search.db_index[search.ranks[0]].tolist()  # the row's ranking (features from the cache)
    q0 = record.queries[0]  # the only query scored: its AP and precision at 1, 5, 10 are the row's
    assert row.value == round(100 * retrieval_ap(ranked, q0.positives, q0.junk), 2)
    expected = 100 * revisited_precision_at(ranked, q0.positives, q0.junk)
    assert [row.settings[f"mP@{k}"] for k in (1, 5, 10)] == [round(v, 2) for v in expected]
    assert "mP@1" in capsys.readouterr().out


def test_blocks_saved_by_an_older_version_are_recomputed_not_reused():
    from course_utils import reproduce

    # version 1 averaged class accuracy over the readable classes only and kept no list of skipped images
    assert reproduce.Block.from_json(json.dumps({"records": [], "sections": [], "plots": []})) is None
    block = reproduce.Block(dataset="folder:x", skipped=[["x/a.jpg", "not an image"]], warnings=["w"])
    assert reproduce.Block.from_json(block.to_json()) == block
