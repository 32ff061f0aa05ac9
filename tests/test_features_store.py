"""The feature store's public interface, which every runner of an extraction goes through.

:func:`course_utils.features.plan` checks a job and makes its key; :meth:`ExtractionPlan.fetch` finds its entry
(shared or own cache) or hands an :class:`~course_utils.feature_store.EntryWriter` to the runner, which writes rows,
checkpoints and finishes the entry. The Ray runner (:mod:`course_utils.scale.ray_extract`) must use these alone, never
the private names of ``features`` or ``feature_store``: a source check says so.
"""

from __future__ import annotations

import ast
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_features import tiny_backbone, write_photos

from course_utils import feature_store, features

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "course_utils"
STORE_MODULES = ("features", "feature_store")


def private_uses(source: str) -> list[str]:
    """Each use in ``source`` of a private name (``_x``) of :data:`STORE_MODULES`: an attribute ``features._x``, or
    an import ``from ..features import _x`` (relative or absolute)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in STORE_MODULES
                and node.attr.startswith("_")):
            found.append(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").rpartition(".")[2] in STORE_MODULES:
            found += [f"from {'.' * node.level}{node.module} import {alias.name}" for alias in node.names
                      if alias.name.startswith("_")]
    return found


def test_the_ray_runner_uses_no_private_name_of_the_feature_store():
    source = (PACKAGE_DIR / "scale" / "ray_extract.py").read_text()
    assert "features" in source and "feature_store" in source  # it does use them, through their public names
    assert private_uses(source) == []


def test_the_private_name_check_finds_every_kind_of_use():
    source = ("from .. import features, feature_store\nfrom ..features import _check, plan\n"
              "from course_utils.feature_store import _exclusive\nfeatures._Run(features.plan)\n"
              "feature_store.fetch(feature_store._FEATURES_DIR)\nother._hidden\n")
    assert sorted(private_uses(source)) == ["feature_store._FEATURES_DIR", "features._Run",
                                            "from ..features import _check",
                                            "from course_utils.feature_store import _exclusive"]


def test_plan_checks_the_job_and_names_the_entry_that_extract_writes(tmp_path):
    paths = write_photos(tmp_path / "img", 3)
    backbone = tiny_backbone()
    job = features.plan([str(p) for p in paths], backbone, ["conv", "fc"], "mirror", cache=tmp_path / "cache")
    assert job.paths == [p.resolve() for p in paths] and job.layers == ["conv", "fc"]
    assert job.shapes == {"conv": (3, 2, 8), "fc": (3, 2, 6)} and job.widths == [8, 6]
    assert job.digests == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    key = json.loads(job.key)
    assert key["cache_version"] == 2 and key["images_sha256"] == job.digests and key["layers"] == ["conv", "fc"]
    assert key["views"]["name"] == "mirror" and key["weights_id"] == backbone.weights_id
    assert not job.use_shared  # a cache folder given: the class's shared cache is not read
    template = job.template()
    assert (template.paths, template.view_names, template.backbone) == (job.paths, ["whole", "flip_whole"], "tiny")
    assert template.valid.tolist() == [True] * 3 and template.arrays == {}

    result = features.extract(paths, backbone, ["conv", "fc"], "mirror", cache=tmp_path / "cache", progress=False)
    assert result.cache_path == feature_store.entry_folder(tmp_path / "cache", job.key)
    assert result.cache_path.name == hashlib.sha256(job.key.encode()).hexdigest()
    assert (result.cache_path / "key.json").read_text() == job.key


def test_a_plan_without_a_cache_has_no_key_and_nothing_to_fetch(tmp_path):
    paths = write_photos(tmp_path / "img", 2)
    job = features.plan(paths, tiny_backbone(), cache=False)
    assert job.key is None and job.cache_root is None and job.digests == [None, None]
    with pytest.raises(ValueError, match="This plan was made with cache=False: it has no cache entry to fetch"):
        job.fetch(lambda writer: pytest.fail("nothing to compute into"))
    with pytest.raises(ValueError, match="on_error must be one of"):
        features.plan(paths, tiny_backbone(), on_error="ignore")
    with pytest.raises(ValueError, match="got no image paths"):
        features.plan([], tiny_backbone())


class Interrupted(Exception):
    pass


def test_an_entry_writer_resumes_its_rows_and_finishes_a_verified_entry(tmp_path):
    """A runner's view of the store: rows written, a checkpoint, an interruption; the next call resumes from the
    checkpoint (with what the runner recorded), finishes the entry, and the call after that is a hit."""
    paths = write_photos(tmp_path / "img", 4)
    job = features.plan(paths, tiny_backbone(), "fc", cache=tmp_path / "cache")
    rows = np.arange(4 * 6, dtype=np.float32).reshape(4, 1, 6)

    def first_half(writer: feature_store.EntryWriter) -> features.FeatureSet:
        assert writer.done == 0 and writer.skipped == {} and writer.resumed is None  # a new entry
        assert json.loads((writer.folder / "progress.json").read_text()) == {"done": 0, "skipped": []}
        writer.arrays["fc"][:2] = rows[:2]
        writer.checkpoint(2, {1: "unreadable"}, finished=[[0, 2]])
        raise Interrupted

    with pytest.raises(Interrupted):
        job.fetch(first_half)
    entry = feature_store.entry_folder(tmp_path / "cache", job.key)
    assert not (entry / "complete.json").exists()

    def second_half(writer: feature_store.EntryWriter) -> features.FeatureSet:
        assert writer.done == 2 and writer.skipped == {1: "unreadable"}
        assert writer.resumed["finished"] == [[0, 2]]  # what this runner recorded comes back
        np.testing.assert_array_equal(writer.arrays["fc"][:2], rows[:2])  # the checkpointed rows are on disk
        writer.arrays["fc"][2:] = rows[2:]
        return writer.finish(writer.skipped, {"engine": "by hand"})

    made = job.fetch(second_half)
    assert not made.from_cache and made.cache_path == entry
    np.testing.assert_array_equal(made["fc"], rows)
    assert made.valid.tolist() == [True, False, True, True] and made.skipped == [(str(job.paths[1]), "unreadable")]
    record = json.loads((entry / "complete.json").read_text())
    assert record["crc32"] == {"fc": f"{zlib.crc32((entry / 'fc.npy').read_bytes()):08x}"}
    assert record["engine"] == "by hand" and record["shapes"] == {"fc": [4, 1, 6]} and record["cache_version"] == 2
    assert not (entry / "progress.json").exists()

    hit = job.fetch(lambda writer: pytest.fail("a finished entry is read, not computed"))
    assert hit.from_cache and hit.skipped == made.skipped
    np.testing.assert_array_equal(hit["fc"], rows)
