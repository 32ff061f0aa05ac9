"""``python -m course_utils warm``: notebook selection, a real headless run that fills the cache, the report."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from test_features import CountingEngines, run, write_photos

from course_utils import __main__ as cli
from course_utils import warm

TESTS_DIR = Path(__file__).resolve().parent


def test_selection_reads_ranges_and_lists():
    course = warm.NOTEBOOKS_DIR
    assert [p.name[:2] for p in warm.select_notebooks("00-08", course)] == [f"{n:02d}" for n in range(9)]
    assert [p.name[:2] for p in warm.select_notebooks("2,5", course)] == ["02", "05"]
    assert [p.name[:2] for p in warm.select_notebooks("07, 02-03", course)] == ["02", "03", "07"]
    with pytest.raises(ValueError, match=r"no notebook numbered 09, 12 in .*notebooks; there are 00, 01, .*, 08\."):
        warm.select_notebooks("07-09,12", course)
    with pytest.raises(ValueError, match=r"the range 05-02 runs backwards"):
        warm.select_notebooks("05-02", course)
    with pytest.raises(ValueError, match=r"'two' is not a number or a range like 00-08"):
        warm.select_notebooks("01,two", course)


def test_cache_size_counts_regular_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.bin").write_bytes(b"1" * 1000)
    (tmp_path / "a" / "b" / "y.bin").write_bytes(b"2" * 24)
    (tmp_path / "link").symlink_to(tmp_path / "a" / "x.bin")
    assert warm.cache_size(tmp_path) == (1024, 2)


def notebook(path: Path, *cells: str) -> Path:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('PROFILE = "full"')
    parameters.metadata["tags"] = ["parameters"]
    book.cells = [parameters, *(nbformat.v4.new_code_cell(source) for source in cells)]
    nbformat.write(book, path)
    return path


@pytest.mark.slow
def test_warm_runs_the_notebooks_into_the_cache_and_reports(tmp_path, monkeypatch, capsys):
    """One tiny notebook that extracts features, one that fails: the first fills the cache, the second is reported,
    and the features are then a hit for the learner."""
    paths = write_photos(tmp_path / "img", 3)
    cache = tmp_path / "class-cache"
    books = tmp_path / "books"
    books.mkdir()
    notebook(books / "01_extract.ipynb",
             f"import sys, os\nsys.path.insert(0, {str(TESTS_DIR)!r})\n"
             "from test_features import tiny_backbone\nimport course_utils as cu",
             f"assert PROFILE == 'demo' and os.environ['COURSE_PROFILE'] == 'demo'\n"
             f"feats = cu.features.extract({[str(p) for p in paths]!r}, tiny_backbone(), engine='torch', "
             f"num_workers=0, progress=False)\n"
             f"assert feats.cache_path.is_relative_to({str(cache)!r}), feats.cache_path")
    notebook(books / "02_broken.ipynb", "raise ValueError('a cell that fails')")
    notebook(books / "03_not_selected.ipynb", "raise AssertionError('not selected, never run')")
    monkeypatch.setenv("COURSE_SHARED_CACHE", str(tmp_path))  # ignored while warming
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "elsewhere"))  # --cache wins

    code = cli.main(["warm", "--notebooks", "01-02", "--profile", "demo", "--cache", str(cache),
                     "--notebook-dir", str(books), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "COURSE_SHARED_CACHE is ignored while warming" in out
    assert f"warm: 2 notebook(s), profile demo, cache {cache}" in out
    assert re.search(r"^  01_extract\.ipynb +\d+\.\d s$", out, re.M), out
    failure = re.search(r"^  02_broken\.ipynb +FAILED: ValueError: a cell that fails \(executed copy: (.+)\)$", out,
                        re.M)
    assert failure and Path(failure.group(1)).is_file(), out
    executed = json.loads(Path(failure.group(1)).read_text())["cells"]
    assert [out["evalue"] for cell in executed for out in cell.get("outputs", []) if "evalue" in out] == [
        "a cell that fails"]
    assert "warm: 1 notebook(s) failed: 02_broken.ipynb" in err
    size, files = warm.cache_size(cache)
    assert re.search(rf"^cache {re.escape(str(cache))}: {size / 2**20:.1f} MiB in {files} files; total time "
                     rf"\d+\.\d s$", out, re.M), out
    assert len(list(cache.glob("features/*/complete.json"))) == 1

    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    assert "COURSE_SHARED_CACHE" not in os.environ  # dropped for the kernels
    counter = CountingEngines(monkeypatch)
    hit = run(paths, True)
    assert hit.from_cache and counter.rows == 0


def test_warm_rejects_a_bad_selection(tmp_path, capsys):
    assert cli.main(["warm", "--notebooks", "42", "--cache", str(tmp_path / "c")]) == 2
    assert "error: --notebooks '42': no notebook numbered 42" in capsys.readouterr().err


@pytest.fixture(autouse=True)
def _restore_environment():
    """``warm`` sets COURSE_CACHE_DIR, COURSE_PROFILE and drops COURSE_SHARED_CACHE for its kernels: undo that."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
