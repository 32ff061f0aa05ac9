"""The ``reproduce`` command end to end on a small folder of real photographs (cat against coffee crops)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from course_utils.__main__ import main


@pytest.fixture(scope="module")
def two_class_folder(tmp_path_factory, chelsea, coffee):
    """Six crops of each photo, in class folders, with a fixed train/test split (4 + 2 per class)."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    lines = {"train": [], "test": []}
    for name, photo in (("cat", chelsea), ("coffee", coffee)):
        (root / name).mkdir()
        for i in range(6):
            x, y = (int(v) for v in rng.integers(0, 100, 2))
            photo.crop((x, y, x + 200, y + 200)).save(root / name / f"{i}.jpg")
            lines["train" if i < 4 else "test"].append(f"{name}/{i}.jpg")
    for split, files in lines.items():
        (root / f"{split}.txt").write_text("\n".join(files) + "\n")
    return root


def run(folder, out, *extra):
    code = main(["reproduce", "--dataset", f"folder:{folder}", "--out", str(out), "--engine", "torch",
                 "--no-progress", *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_whole_image_views_give_plain_rows_only_and_a_block_of_their_own(two_class_folder, tmp_path, capsys):
    results = run(two_class_folder, tmp_path / "out", "--views", "whole")
    rows = {r["method"]: r for r in results["results"]}
    assert set(rows) == {"CNN-SVM", "CNN-SVM one-vs-one (paper's choice)"}
    plain = rows["CNN-SVM"]
    assert plain["value"] == 100.0 and plain["metric"] == "mean class accuracy" and plain["views"] == "whole"
    assert plain["settings"]["C_selection"] == "cv" and plain["paper"] is None
    assert results["meta"]["views"] == "whole image only"
    blocks = sorted(p.name for p in (tmp_path / "out" / "blocks").iterdir())
    assert len(blocks) == 1 and blocks[0].endswith("__efficientnet_lite0__whole.json")
    assert "CNN-SVM" in (tmp_path / "out" / "report.md").read_text()
    Image.open(next((tmp_path / "out").glob("*_per_class.png"))).verify()
    capsys.readouterr()
    again = run(two_class_folder, tmp_path / "out", "--views", "whole")
    assert "reusing" in capsys.readouterr().out
    assert [r["value"] for r in again["results"]] == [r["value"] for r in results["results"]]


def test_paper_views_add_the_augmented_rows_and_the_power_ablation(two_class_folder, tmp_path):
    results = run(two_class_folder, tmp_path / "out")
    rows = {r["method"]: r for r in results["results"]}
    assert {"CNN-SVM", "CNNaug-SVM", "CNNaug-SVM power=2 (paper's exponent)", "CNNaug-SVM power=1 (no power step)",
            "CNNaug-SVM, whole image at test", "CNNaug-SVM one-vs-one (paper's choice)"} <= set(rows)
    assert rows["CNNaug-SVM"]["views"] == "paper16" and rows["CNNaug-SVM"]["settings"]["power"] == 0.5
    assert rows["CNNaug-SVM power=2 (paper's exponent)"]["settings"]["power"] == 2.0
    assert rows["CNNaug-SVM"]["value"] == 100.0
    assert results["meta"]["views"].startswith("paper16")


def test_best_prior_is_the_papers_named_method_in_our_units():
    from course_utils import reproduce
    from course_utils.metrics import MEAN_CLASS_ACCURACY, NS_SCORE

    assert reproduce._best_prior("flowers102", MEAN_CLASS_ACCURACY) == (80.7, "Seg+Dense HOG+Coding+Pooling")
    value, method = reproduce._best_prior("ukbench2000", NS_SCORE)  # the subset reads the full UKBench's column
    assert method == "CVLAD" and value == pytest.approx(89.3 / 25)  # Table 7 prints percent; N-S = percent / 25
    assert reproduce._best_prior("demo_classes", MEAN_CLASS_ACCURACY) == (None, "")
    assert reproduce._best_prior("folder:mine", MEAN_CLASS_ACCURACY) == (None, "")  # a folder has no record


def test_claims_table_pairs_baseline_and_augmented_rows_and_is_empty_without_pairs():
    from course_utils.claims import claims_markdown
    from course_utils.report import ResultRecord

    def record(method, value):
        return ResultRecord("flowers102", "multiclass", method, "efficientnet_lite0", "mean class accuracy", value)

    table = claims_markdown([record("CNN-SVM", 89.75), record("CNNaug-SVM", 94.85)], aug_power=0.5)
    assert "| flowers102 | efficientnet_lite0 | CNN-SVM | 89.75 | CNNaug-SVM (power 0.5): 94.85 | +5.10 |" in table
    assert table.startswith("## The paper's two claims, as measured here\n\n| dataset | backbone | baseline |")
    assert claims_markdown([record("CNN-SVM", 89.75)], aug_power=0.5) == ""
