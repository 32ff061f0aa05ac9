"""Retrieval: patch pyramid geometry, global/spatial search against hand-computed and brute-force distances,
chunking, post-processing safeguards, query expansion, evaluation and the typed outcome of run_retrieval."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from course_utils.datasets.base import DatasetRecord, Query
from course_utils.metrics import NS_SCORE
from course_utils.retrieval import (
    QueryExpansion,
    RetrievalOutcome,
    RetrievalPostprocessor,
    SpatialPatches,
    ViewRecipes,
    crop_square,
    evaluate_retrieval,
    global_distances,
    global_search,
    jitter_distances,
    junk_images,
    patch_boxes,
    rank,
    run_retrieval,
    spatial_distances,
    square_box,
)

HAS_FAISS = importlib.util.find_spec("faiss") is not None


def brute_force(query: np.ndarray, db: np.ndarray) -> np.ndarray:
    """The paper's distance written out, in float64: mean over query patches of the nearest db patch."""
    diff = query[:, None, :, None, :].astype(np.float64) - db[None, :, None, :, :]
    return np.sqrt((diff**2).sum(-1)).min(-1).mean(-1)


def grid_features(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Features on a 1/4 grid: every squared distance is exact in float32, so any summation order agrees."""
    return (np.clip(np.round(rng.standard_normal(shape) * 2), -8, 8) / 4).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# patch pyramid
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels, count", [(1, 1), (3, 14), (4, 30)])
@pytest.mark.parametrize("width, height", [(640, 480), (101, 57), (33, 200), (7, 5)])
def test_patch_grid_counts_cover_the_image_with_equal_patches(levels, count, width, height):
    boxes = patch_boxes(width, height, levels)
    assert len(boxes) == count
    covered = np.zeros((height, width), dtype=bool)
    start = 0
    for level in range(1, levels + 1):
        level_boxes = boxes[start : start + level**2]
        start += level**2
        sizes = {(x1 - x0, y1 - y0) for x0, y0, x1, y1 in level_boxes}
        assert len(sizes) == 1, f"level {level} patches differ in size: {sizes}"
        level_mask = np.zeros_like(covered)
        for x0, y0, x1, y1 in level_boxes:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            level_mask[y0:y1, x0:x1] = True
        assert level_mask.all(), f"level {level} leaves part of the image uncovered"
        covered |= level_mask
    assert boxes[0] == (0, 0, width, height)  # level 1 is the whole image


def test_patch_side_and_fifty_percent_overlap():
    boxes = patch_boxes(600, 300, 3)
    # level 2: side 2W/3 = 400 x 200, starts 0 and 200 (stride W/3); level 3: side W/2 = 300 x 150, stride 150
    assert boxes[1:5] == [(0, 0, 400, 200), (200, 0, 600, 200), (0, 100, 400, 300), (200, 100, 600, 300)]
    assert boxes[5:8] == [(0, 0, 300, 150), (150, 0, 450, 150), (300, 0, 600, 150)]
    # a 3-level pyramid is the first 14 boxes of the 4-level one (queries reuse database patches)
    assert patch_boxes(600, 300, 4)[:14] == boxes


def test_square_box_is_shifted_inside_or_centred_and_padded():
    # the patch's square (side 40) sticks out at the top of a 120 x 60 image: shifted down inside the image
    assert square_box((80, 0, 120, 30), 120, 60) == (80, 0, 120, 40)
    # the whole of a wide image: a square taller than the image, centred (padded above and below)
    assert square_box((0, 0, 200, 100), 200, 100) == (0, -50, 200, 150)


def test_crop_square_pads_with_the_mean_colour():
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, 20:] = (200, 100, 50)  # right half coloured: mean colour (100, 50, 25)
    image = Image.fromarray(pixels)
    square = np.asarray(crop_square(image, (0, 0, 40, 20)))
    assert square.shape == (40, 40, 3)
    assert (square[:10] == (100, 50, 25)).all() and (square[30:] == (100, 50, 25)).all()
    assert np.array_equal(square[10:30], pixels)


def test_spatial_patches_view_spec(chelsea):
    spec = SpatialPatches(3)
    views = spec(chelsea)
    assert spec.n_views == len(spec.view_names) == len(views) == 14
    assert spec.name != SpatialPatches(4).name  # different geometry, different feature cache key
    assert all(view.width == view.height for view in views)
    assert views[0].width == max(chelsea.size)  # level 1: the whole image, padded to a square
    with pytest.raises(ValueError, match="levels >= 1"):
        SpatialPatches(0)
    with pytest.raises(ValueError, match="positive image size"):
        patch_boxes(0, 10, 3)


# ----------------------------------------------------------------------------------------------------------
# search
# ----------------------------------------------------------------------------------------------------------


def test_global_search_ranks_by_hand_computed_distances():
    query = np.array([[0.0, 0.0], [3.0, 4.0]])
    db = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    distances = global_distances(query, db)
    expected = np.array([[5.0, 1.0, 2.0, 1.0], [0.0, np.sqrt(20.0), np.sqrt(13.0), np.sqrt(20.0)]])
    np.testing.assert_allclose(distances, expected, rtol=1e-6)
    # ties (images 1 and 3) keep index order
    assert global_search(query, db).tolist() == [[1, 3, 2, 0], [0, 2, 1, 3]]


def test_spatial_distance_on_a_hand_example():
    query = np.array([[[0.0, 0.0], [10.0, 0.0]]])  # 2 query patches
    db = np.array(
        [
            [[0.0, 3.0], [10.0, 1.0], [50.0, 50.0]],  # nearest: 3 and 1 -> mean 2
            [[6.0, 8.0], [6.0, 8.0], [6.0, 8.0]],  # nearest: 10 and sqrt(16 + 64) -> mean (10 + 8.944) / 2
        ]
    )
    distances = spatial_distances(query, db)
    np.testing.assert_allclose(distances, [[2.0, (10.0 + np.sqrt(80.0)) / 2]], rtol=1e-6)
    # asymmetric: db image 1 as the query finds (6, 8) 10 away from (0, 0) and sqrt(80) from (10, 0)
    np.testing.assert_allclose(spatial_distances(db[1:], query), [[np.sqrt(80.0)]], rtol=1e-6)


def test_spatial_distances_match_brute_force():
    rng = np.random.default_rng(0)
    query, db = rng.standard_normal((4, 5, 16)), rng.standard_normal((23, 7, 16))
    np.testing.assert_allclose(spatial_distances(query, db), brute_force(query, db), rtol=1e-5)
    np.testing.assert_allclose(jitter_distances(query, db), brute_force(query, db), rtol=1e-5)


def _crop_case(rng: np.random.Generator, dim: int = 64, n_db: int = 40):
    """Query = a crop of image A; distractor B looks like the query as a whole but holds none of its parts."""

    def unit(*shape):
        x = rng.standard_normal((*shape, dim))
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    db = unit(n_db, 30)
    query = unit(1, 14)
    target, distractor = 7, 21
    # A's level-3/4 patches hold the query's parts (slightly changed); its whole-image vector is unrelated
    db[target, 16:30] = unit(14) * 0.05 + query[0]
    # B's whole-image vector is the query's own, nearly; none of B's patches resembles the query's parts
    db[distractor, 0] = query[0, 0] + unit() * 0.05
    return query.astype(np.float32), db.astype(np.float32), target, distractor


def test_a_crop_is_found_by_spatial_search_but_not_by_global_search():
    query, db, target, distractor = _crop_case(np.random.default_rng(1))
    global_ranks = global_search(query[:, 0], db[:, 0])
    spatial_ranks = rank(spatial_distances(query, db))
    assert spatial_ranks[0, 0] == target
    assert global_ranks[0, 0] == distractor
    assert list(global_ranks[0]).index(target) > 0


@pytest.mark.parametrize("chunk", [1, 7, 40, 1000])
def test_chunked_search_is_identical_to_unchunked(chunk):
    rng = np.random.default_rng(2)
    query, db = grid_features(rng, (6, 14, 32)), grid_features(rng, (40, 30, 32))
    whole = spatial_distances(query, db, chunk=len(db))
    chunked = spatial_distances(query, db, chunk=chunk)
    assert np.array_equal(chunked, whole)
    assert np.array_equal(rank(chunked), rank(whole))
    # real-valued features: equal to float rounding
    query, db = rng.standard_normal((6, 14, 32)), rng.standard_normal((40, 30, 32))
    np.testing.assert_allclose(spatial_distances(query, db, chunk=chunk), brute_force(query, db), rtol=1e-5)


def test_memory_budget_picks_the_chunk_without_changing_the_result():
    rng = np.random.default_rng(3)
    query, db = grid_features(rng, (3, 14, 64)), grid_features(rng, (50, 30, 64))
    tiny = spatial_distances(query, db, memory_mb=0.05)  # a few images per block
    assert np.array_equal(tiny, spatial_distances(query, db))


def test_float16_search_is_close_to_float32():
    query, db, target, _ = _crop_case(np.random.default_rng(4))
    exact = spatial_distances(query, db)
    half = spatial_distances(query, db.astype(np.float16), dtype="float16")
    np.testing.assert_allclose(half, exact, atol=2e-3)
    assert rank(half)[0, 0] == target


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (pip install faiss-cpu)")
def test_faiss_and_torch_agree():
    rng = np.random.default_rng(5)
    query, db = rng.standard_normal((5, 14, 48)), rng.standard_normal((60, 30, 48))
    torch_d = spatial_distances(query, db, chunk=16)
    faiss_d = spatial_distances(query, db, chunk=16, backend="faiss")
    np.testing.assert_allclose(faiss_d, torch_d, rtol=1e-5)
    query, db = grid_features(rng, (5, 14, 48)), grid_features(rng, (60, 30, 48))
    assert np.array_equal(
        rank(spatial_distances(query, db, backend="faiss")), rank(spatial_distances(query, db))
    )


def test_images_skipped_by_the_feature_engine_rank_last():
    rng = np.random.default_rng(6)
    query, db = rng.standard_normal((2, 3, 8)), rng.standard_normal((5, 4, 8))
    db[1] = np.nan
    distances = spatial_distances(query, db)
    assert np.isnan(distances[:, 1]).all() and np.isfinite(np.delete(distances, 1, axis=1)).all()
    assert (rank(distances)[:, -1] == 1).all()


def test_search_input_errors():
    q, db = np.zeros((2, 3, 8)), np.zeros((4, 5, 6))
    with pytest.raises(ValueError, match="Query features are 8-d but database features are 6-d"):
        spatial_distances(q, db)
    with pytest.raises(ValueError, match=r"query_patches must be shaped \(images, patches, dim\)"):
        spatial_distances(np.zeros((2, 3, 4, 8)), db)
    with pytest.raises(ValueError, match="NaN or infinite.*FeatureSet.valid"):
        spatial_distances(np.full((1, 2, 6), np.nan), db)
    with pytest.raises(ValueError, match="Unknown dtype 'bfloat8'"):
        spatial_distances(np.zeros((1, 2, 6)), db, dtype="bfloat8")
    with pytest.raises(ValueError, match="Unknown backend 'annoy'"):
        spatial_distances(np.zeros((1, 2, 6)), db, backend="annoy")
    with pytest.raises(ValueError, match="chunk must be a positive number"):
        spatial_distances(np.zeros((1, 2, 6)), db, chunk=0)
    with pytest.raises(ValueError, match="one vector per image"):
        global_distances(np.zeros((1, 2, 6)), db)


# ----------------------------------------------------------------------------------------------------------
# post-processing and query expansion
# ----------------------------------------------------------------------------------------------------------


def test_postprocessor_refuses_to_learn_on_the_searched_set():
    rng = np.random.default_rng(7)
    searched, other = rng.standard_normal((30, 4, 16)), rng.standard_normal((30, 4, 16))
    post = RetrievalPostprocessor(pca_dim=8)
    with pytest.raises(
        ValueError, match="4 of the 124 training vectors are also vectors of the searched set"
    ):
        post.fit(np.concatenate([other, searched[:1]]), searched=searched)
    with pytest.raises(ValueError, match="X comes from 'oxford5k', the dataset being searched"):
        post.fit(other, searched="oxford5k", fit_dataset="oxford5k")
    with pytest.raises(ValueError, match="fit_dataset="):
        post.fit(other, searched="oxford5k")
    post.fit(other, searched=searched)  # another dataset: fine
    post.fit(other, searched="oxford5k", fit_dataset="paris6k")
    post.fit(searched, searched=searched, allow_fit_on_searched=True)  # told to: fine
    assert post.transform(searched).shape == (30, 4, 8)


def test_postprocessor_is_the_paper_chain():
    from course_utils.normalize import L2Normalizer, PCAWhitening, SignedPower

    rng = np.random.default_rng(8)
    train, test = rng.standard_normal((200, 32)), rng.standard_normal((10, 3, 32))
    post = RetrievalPostprocessor(pca_dim=12, power=2.0).fit(train)
    l2 = L2Normalizer()
    pca = PCAWhitening(n_components=12, whiten=True).fit(l2.fit_transform(train))
    expected = l2.fit_transform(
        SignedPower(alpha=2.0).fit_transform(l2.fit_transform(pca.transform(l2.fit_transform(test))))
    )
    out = post.transform(test)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)
    raw = RetrievalPostprocessor(pca_dim=12, power=2.0, final_l2=False).fit(train).transform(test)
    assert not np.allclose(np.linalg.norm(raw, axis=-1), 1.0)


def test_postprocessor_clips_pca_dim_with_a_warning():
    train = np.random.default_rng(9).standard_normal((20, 64))
    with pytest.warns(
        UserWarning, match="pca_dim=500 is more than the 20 training vectors of 64 dims allow; using 19"
    ):
        post = RetrievalPostprocessor().fit(train)
    assert post.transform(train).shape == (20, 19)
    with pytest.raises(ValueError, match="X has 32 features, but RetrievalPostprocessor is expecting 64 features"):
        post.transform(np.zeros((2, 32)))


def test_average_and_alpha_query_expansion_on_a_hand_example():
    query = np.array([[1.0, 0.0]])
    db = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    ranks = global_search(query, db)
    assert ranks.tolist() == [[0, 1, 2]]
    # AQE, k=2: query + db0 + db1 = (2.6, 0.8), normalised
    np.testing.assert_allclose(
        QueryExpansion(k=2).expand(query, db, ranks), [[2.6, 0.8] / np.hypot(2.6, 0.8)], rtol=1e-6
    )
    # alpha-QE, alpha=3: weights 1 (db0) and 0.6 ** 3 = 0.216 (db1) -> (2.1296, 0.1728)
    np.testing.assert_allclose(
        QueryExpansion(k=2, alpha=3).expand(query, db, ranks),
        [[2.1296, 0.1728] / np.hypot(2.1296, 0.1728)],
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="k must be >= 1"):
        QueryExpansion(k=0)


# ----------------------------------------------------------------------------------------------------------
# evaluation and saved rankings
# ----------------------------------------------------------------------------------------------------------


def _record(tmp_path) -> DatasetRecord:
    paths = [tmp_path / f"img{i}.jpg" for i in range(6)]
    queries = [
        Query(index=0, positives=[2, 4]),  # the query is a database image but not its own positive: ignored
        Query(index=5, positives=[1], junk=[3], name="q5"),  # not in the database
    ]
    return DatasetRecord("toy", "retrieval", tmp_path, paths, queries=queries, database=np.arange(5))


def test_evaluate_retrieval_by_hand(tmp_path):
    record = _record(tmp_path)
    ranks = np.array([[0, 2, 1, 4, 3], [3, 0, 1, 2, 4]])
    result = evaluate_retrieval(record, ranks=ranks)
    # query 0: itself ignored, then 2 (hit), 1, 4 (hit): precision 1, then 2/3 at the second positive
    ap0 = 0.5 * (1 + 1) / 2 + 0.5 * (1 / 2 + 2 / 3) / 2
    # query 5: 3 is junk, then 0 (miss), 1 (hit at position 2)
    ap1 = 1.0 * (0 + 1 / 2) / 2
    np.testing.assert_allclose(result.ap, [ap0, ap1])
    assert result.map == pytest.approx((ap0 + ap1) / 2)
    assert result.ns_score is None and result.ukbench_percent is None and result.precision_at == {}
    distances = np.argsort(ranks, axis=1).astype(float)  # the distances that produce these ranks
    assert evaluate_retrieval(record, distances).map == pytest.approx(result.map)
    with pytest.raises(ValueError, match="2 queries but the rankings have shape"):
        evaluate_retrieval(record, ranks=ranks[:1])
    with pytest.raises(ValueError, match="index the searched images"):
        evaluate_retrieval(record, ranks=ranks + 1)


def test_junk_images_is_the_junk_list_and_the_query_unless_it_is_a_positive():
    assert junk_images(Query(index=0, positives=[2, 4])) == {0}  # Holidays: the query image is ignored
    assert junk_images(Query(index=5, positives=[1], junk=[3])) == {3, 5}
    assert junk_images(Query(index=0, positives=[0, 1, 2, 3])) == set()  # UKBench: the query counts
    assert junk_images(Query(index=7, positives=[7], junk=[8])) == {8}  # Oxford: among its own "good" images


def test_revisited_queries_without_positives_are_skipped_and_counted_like_compute_map(tmp_path):
    import fixtures_official as fx

    from course_utils.datasets import load

    root = fx.make_revisited(tmp_path)
    ranks = np.array([[1, 0, 3, 2, 4], [0, 1, 2, 3, 4]])
    # Easy: q0's positives are d0, d2 (d3 hard and d4 junk ignored): 1 0 2 -> hits at positions 2 and 3,
    # AP = (0 + 1/2)/2 * 1/2 + (1/2 + 2/3)/2 * 1/2 = 5/12. q1 has no easy image: skipped, counted, AP NaN.
    easy = evaluate_retrieval(load("roxford5k", root=root, setup="easy"), ranks=ranks)
    assert easy.map == pytest.approx(5 / 12) and easy.n_empty_queries == 1 and easy.n_queries == 2
    assert easy.ap[0] == pytest.approx(5 / 12) and np.isnan(easy.ap[1])
    # precision at 1, 5, 10 with k capped at the last positive (position 3): 0, 2/3, 2/3
    assert list(easy.precision_at) == [1, 5, 10]
    assert list(easy.precision_at.values()) == pytest.approx([0, 2 / 3, 2 / 3])
    # Medium: q0's positives d0, d2, d3 at positions 2, 3, 4 -> 1/12 + 7/36 + 17/72 = 37/72; q1's d1 comes
    # first once junk d0 is removed -> 1. P@k: q0 0, 3/4, 3/4; q1 1, 1, 1.
    medium = evaluate_retrieval(load("roxford5k", root=root, setup="medium"), ranks=ranks)
    assert medium.map == pytest.approx((37 / 72 + 1) / 2) and medium.n_empty_queries == 0
    assert list(medium.precision_at.values()) == pytest.approx([1 / 2, 7 / 8, 7 / 8])


def test_queries_without_positives_in_other_sets_and_all_empty(tmp_path):
    record = _record(tmp_path)
    record.queries.append(Query(index=1, positives=[], name="empty"))
    ranks = np.array([[0, 2, 1, 4, 3], [3, 0, 1, 2, 4], [0, 1, 2, 3, 4]])
    result = evaluate_retrieval(record, ranks=ranks)
    ap0, ap1 = 0.5 * (1 + 1) / 2 + 0.5 * (1 / 2 + 2 / 3) / 2, 1.0 * (0 + 1 / 2) / 2  # as in the test above
    assert result.map == pytest.approx((ap0 + ap1) / 2) and result.n_empty_queries == 1
    assert result.precision_at == {}  # precision at k belongs to the revisited protocol
    for query in record.queries:
        query.positives = []
    with pytest.raises(ValueError, match="'toy': none of its 3 queries has a positive; mAP is undefined"):
        evaluate_retrieval(record, ranks=ranks)


def test_ukbench_style_score(tmp_path):
    paths = [tmp_path / f"u{i}.jpg" for i in range(8)]
    queries = [Query(index=i, positives=list(range(4 * (i // 4), 4 * (i // 4) + 4))) for i in (0, 5)]
    record = DatasetRecord(
        name="ukb",
        task="retrieval",
        root=tmp_path,
        paths=paths,
        queries=queries,
        metric=NS_SCORE,
    )
    ranks = np.array([[0, 1, 4, 2, 3, 5, 6, 7], [5, 4, 6, 7, 0, 1, 2, 3]])
    result = evaluate_retrieval(record, ranks=ranks)
    assert result.ns_score == pytest.approx((3 + 4) / 2)
    assert result.ukbench_percent == pytest.approx(87.5)


# ----------------------------------------------------------------------------------------------------------
# the whole pipeline on real photographs (EfficientNet-Lite0 features)
# ----------------------------------------------------------------------------------------------------------


def _photo(name: str) -> Image.Image:
    from skimage import data

    pixels = getattr(data, name)()
    image = Image.fromarray(pixels).convert("RGB")
    image.thumbnail((160, 160))
    return image


@pytest.fixture(scope="module")
def photo_records(tmp_path_factory):
    """An Oxford-style set (a query box on a database image, and a query that is a separate crop) and a
    disjoint set of other photographs to learn PCA-whitening from."""
    root = tmp_path_factory.mktemp("retrieval_photos")
    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"]
    paths = []
    for name in names:
        _photo(name).save(root / f"{name}.jpg", quality=95)
        paths.append(root / f"{name}.jpg")
    rocket = _photo("rocket")
    rocket.crop((40, 10, 120, 100)).save(root / "rocket_crop.jpg", quality=95)
    paths.append(root / "rocket_crop.jpg")
    queries = [
        Query(index=1, positives=[1], box=(30.0, 5.0, 100.0, 75.0), name="chelsea_face"),  # the cat's head
        Query(index=6, positives=[3], name="rocket_crop"),
    ]
    record = DatasetRecord("photos", "retrieval", root, paths, queries=queries, database=np.arange(6))
    other = []
    for name in ["retina", "colorwheel", "clock", "horse", "coins"]:
        _photo(name).save(root / f"other_{name}.jpg", quality=95)
        other.append(root / f"other_{name}.jpg")
    fit_record = DatasetRecord(name="other_photos", task="retrieval", root=root, paths=other)
    return record, fit_record


# Small pyramids (2 levels, 5 patches) keep the network's work to a few dozen views; the geometry of the
# paper's 4/3-level pyramids is tested above on boxes. Extracted features are cached, so later calls reuse
# earlier ones.
SMALL = {"layer": "head@gem", "recipes": ViewRecipes(db_levels=2, query_levels=2)}


@pytest.mark.slow
def test_run_retrieval_global_and_spatial_on_photographs(photo_records, lite0):
    record, fit_record = photo_records
    spatial = run_retrieval(record, lite0, "spatial", **SMALL)
    assert isinstance(spatial, RetrievalOutcome)
    assert spatial.distances.shape == spatial.ranks.shape == (2, 6)
    assert spatial.map == 1.0 and spatial.ap.tolist() == [1.0, 1.0]  # both queries find their image first
    assert spatial.db_index[spatial.ranks[:, 0]].tolist() == [1, 3] and spatial.query_index.tolist() == [1, 6]
    assert (spatial.dataset, spatial.method, spatial.layer) == ("photos", "spatial", "head@gem")
    assert set(spatial.seconds) == {"features", "search"} and spatial.ns_score is None

    plain = run_retrieval(record, lite0, "global", layer="head@gem")
    assert plain.map == 1.0
    expanded = run_retrieval(record, lite0, "global", layer="head@gem", qe=QueryExpansion(k=1))
    assert expanded.setting.endswith("+aqe1") and expanded.ranks[:, 0].tolist() == [1, 3]

    post = RetrievalPostprocessor(pca_dim=4)
    whitened = run_retrieval(
        record, lite0, "global", layer="head@gem", postprocess=post, fit_record=fit_record
    )
    assert post.n_components_ == 4 and post.fit_dataset_ == "other_photos"
    assert whitened.ranks.shape == (2, 6) and whitened.setting.endswith("global +pca-whiten-power")
    searched_again = DatasetRecord(
        name="photos_db", task="retrieval", root=record.root, paths=record.paths[:6]
    )
    with pytest.raises(ValueError, match="6 of the 6 training vectors are also vectors of the searched set"):
        run_retrieval(
            record,
            lite0,
            "global",
            layer="head@gem",
            postprocess=RetrievalPostprocessor(pca_dim=4),
            fit_record=searched_again,
        )
    with pytest.raises(ValueError, match="does not apply to method='spatial'"):
        run_retrieval(record, lite0, "spatial", qe=QueryExpansion())


@pytest.mark.slow
def test_run_retrieval_queries_from_the_database_reuse_its_patches(photo_records, lite0):
    record, _ = photo_records
    every_image = DatasetRecord(
        name="self",
        task="retrieval",
        root=record.root,
        paths=record.paths[:6],
        queries=[Query(index=i, positives=[i]) for i in range(6)],
    )
    result = run_retrieval(every_image, lite0, "spatial", **{**SMALL, "recipes": ViewRecipes(2, query_levels=1)})
    # each query's patch (the whole image) is among its own image's 5: distance ~0 (float rounding), found
    # first
    assert np.diag(result.distances).max() < 1e-3
    assert result.ranks[:, 0].tolist() == list(range(6))


# ----------------------------------------------------------------------------------------------------------
# the benchmark's reference and its output
# ----------------------------------------------------------------------------------------------------------


def test_search_benchmark_reference_and_result_line(capsys):
    import argparse
    import re

    from course_utils.bench import search as bench

    # the straightforward reference gives bit-identical distances to ours on the exact grid features
    queries, targets = bench.make_queries(3, 300, 32, seed=1, exact=True)
    database = bench.make_database(300, 32, "float32", seed=1, exact=True)
    reference = bench.numpy_distances(queries, 300, 32, seed=1, exact=True)
    assert np.array_equal(spatial_distances(queries, database, chunk=64), reference)
    assert rank(reference)[:, 0].tolist() == targets.tolist()  # the planted image comes first

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--quick"])) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"RESULT search_speedup_vs_numpy=\d+\.\d peak_rss_mb=\d+", last), last
