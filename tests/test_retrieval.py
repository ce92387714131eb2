"""Retrieval: sub-patch grid, PCA-whitening, ranking, spatial distance and the task metrics."""

import numpy as np
import pytest
from transferlab import pca
from transferlab import retrieval as R
from transferlab.metrics import trapezoid_ap
from transferlab.tasks import RetrievalTruth


def truth(positives, junk=None, query_in_db=None):
    n = len(positives)
    return RetrievalTruth(
        positives=tuple(np.array(p, dtype=int) for p in positives),
        junk=tuple(np.array(j, dtype=int) for j in (junk or [[]] * n)),
        query_in_db=np.array(query_in_db if query_in_db is not None else [-1] * n),
    )


# ---- the 30 sub-patches -----------------------------------------------------------------------


def test_subpatch_boxes_are_the_papers_30_windows():
    boxes = R.subpatch_boxes()
    assert boxes.shape == (30, 4)
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    np.testing.assert_allclose(h, w)  # square
    assert boxes.min() >= 0 and boxes.max() <= 1
    areas = h * w
    for start, count, area in ((0, 1, 1.0), (1, 4, 4 / 9), (5, 9, 4 / 16), (14, 16, 4 / 25)):
        np.testing.assert_allclose(areas[start : start + count], area)
    np.testing.assert_allclose(boxes[0], [0, 0, 1, 1])
    t = 1 / 3
    np.testing.assert_allclose(
        boxes[1:5], [[0, 0, 2 * t, 2 * t], [0, t, 2 * t, 1], [t, 0, 1, 2 * t], [t, t, 1, 1]]
    )
    # each level's windows reach the bottom-right corner: the grid covers the image
    for start, count in ((1, 4), (5, 9), (14, 16)):
        assert boxes[start + count - 1, 2] == pytest.approx(1.0)
        assert boxes[start + count - 1, 3] == pytest.approx(1.0)


def test_spatial_distance_is_min_over_patch_pairs_in_any_chunking(monkeypatch):
    rng = np.random.default_rng(0)
    q, db = rng.normal(size=(5, 3, 8)), rng.normal(size=(7, 4, 8))
    brute = np.sqrt(((q[:, None, :, None, :] - db[None, :, None, :, :]) ** 2).sum(-1))
    expected = brute.min(axis=(2, 3))
    np.testing.assert_allclose(R.spatial_distance(q, db), expected, rtol=1e-4)
    monkeypatch.setattr(R, "_CHUNK_BYTES", 100)  # one query x one image per block
    np.testing.assert_allclose(R.spatial_distance(q, db), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="patch"):
        R.spatial_distance(q[:, 0], db)


# ---- whitening --------------------------------------------------------------------------------


def test_whitening_decorrelates_the_fit_set_and_keeps_only_its_rank():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    w = R.fit_whitening(X, dim=6)
    assert w.dim == 6
    np.testing.assert_allclose(w.components @ w.components.T, np.eye(6), atol=1e-8)
    proj = (R.l2_normalize(X) - w.mean) @ w.components.T * w.scale
    np.testing.assert_allclose(np.cov(proj.T, bias=True), np.eye(6), atol=1e-6)
    # fewer images than dimensions: the Gram path, rank n - 1 after centering
    small = R.fit_whitening(X[:5], dim=None)
    assert small.dim == 4
    cov = np.cov(R.l2_normalize(X[:5]).T, bias=True)
    top = np.sort(np.linalg.eigvalsh(cov))[::-1][:4]
    np.testing.assert_allclose(1 / small.scale**2, top, rtol=1e-6)
    with pytest.raises(ValueError, match="dim=13"):
        R.fit_whitening(X, dim=13)
    full = R.fit_whitening(X)
    np.testing.assert_allclose(np.abs(full.truncate(6).components), np.abs(w.components), atol=1e-5)
    np.testing.assert_allclose(full.truncate(6).scale, w.scale, rtol=1e-5)
    with pytest.raises(ValueError, match="dim=13"):
        full.truncate(13)


def test_whitening_of_patch_stacks_subsamples_rows_evenly(monkeypatch):
    rng = np.random.default_rng(6)
    patches = rng.normal(size=(20, 5, 8))
    monkeypatch.setattr(pca, "_MAX_FIT_ROWS", 50)
    w = R.fit_whitening(patches, dim=3)
    flat = patches.reshape(100, 8)
    ref = R.fit_whitening(flat[np.linspace(0, 99, 50).round().astype(int)], dim=3)
    np.testing.assert_allclose(w.scale, ref.scale)
    assert not np.allclose(w.scale, R.fit_whitening(flat[:50], dim=3).scale)
    # Rows chosen before they are normalised: the same bits as normalising all, then choosing.
    whole = pca.fit_pca(R.l2_normalize(patches.astype(np.float32)), 3, whiten=True)
    for field in ("mean", "components", "scale"):
        assert np.array_equal(getattr(w, field), getattr(whole, field))


def test_embed_is_l2_whiten_l2():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 10))
    w = R.fit_whitening(X, dim=4)
    e = R.embed(X[:3], w)
    manual = (X[:3] / np.linalg.norm(X[:3], axis=1, keepdims=True) - w.mean) @ w.components.T
    manual *= w.scale
    np.testing.assert_allclose(e, manual / np.linalg.norm(manual, axis=1, keepdims=True), rtol=1e-5)
    assert R.embed(3 * X[:3], w) == pytest.approx(e, rel=1e-5)  # scale invariant
    np.testing.assert_allclose(np.linalg.norm(R.embed(X, None), axis=1), 1, rtol=1e-6)
    # Worked in place (patch stacks are large), it gives the out-of-place formula's bits.
    patches = rng.normal(size=(20, 5, 10)).astype(np.float32)
    unit = R.l2_normalize(patches.astype(np.float64))
    whitened = R.l2_normalize(((unit - w.mean) @ w.components.T) * w.scale)
    assert np.array_equal(R.embed(patches, w), whitened.astype(np.float32))
    assert np.array_equal(R.embed(patches, None), unit.astype(np.float32))


def test_embed_in_blocks_of_rows_gives_the_bits_of_the_whole(monkeypatch):
    rng = np.random.default_rng(4)
    patches = rng.normal(size=(40, 30, 64)).astype(np.float32)
    w = R.fit_whitening(patches, dim=16)
    whole = R.embed(patches, w), R.embed(patches, None)
    monkeypatch.setattr(R, "_EMBED_ROWS", 7)  # blocks that split an image's patch stack
    assert np.array_equal(R.embed(patches, w), whole[0])
    assert np.array_equal(R.embed(patches, None), whole[1])


def test_images_picked_by_index_give_the_bits_of_a_copy_of_them(monkeypatch):
    # The validation score fits and embeds halves of a split by index, never copying them.
    rng = np.random.default_rng(5)
    patches = rng.normal(size=(30, 6, 12)).astype(np.float32)
    images = np.array([7, 2, 2, 19, 0, 11, 25])
    for max_rows in (1000, 20):  # whole, then evenly subsampled
        monkeypatch.setattr(pca, "_MAX_FIT_ROWS", max_rows)
        by_index = R.fit_whitening(patches, dim=5, images=images)
        copied = R.fit_whitening(patches[images], dim=5)
        for field in ("mean", "components", "scale"):
            assert np.array_equal(getattr(by_index, field), getattr(copied, field))
    monkeypatch.setattr(R, "_EMBED_ROWS", 8)
    for w in (by_index, None):
        assert np.array_equal(R.embed(patches, w, images), R.embed(patches[images], w))
    flat = rng.normal(size=(30, 12))  # (N, D) features: one row per image
    assert np.array_equal(R.embed(flat, None, images),
                          R.embed(flat[images], None))


def test_whitening_is_fitted_on_train_only_not_queries_or_database():
    rng = np.random.default_rng(3)
    train, db, q = rng.normal(size=(40, 16)), rng.normal(size=(30, 16)), rng.normal(size=(6, 16))
    cfg = R.RetrievalConfig(pca_dim=8)
    base = R.retrieval_distances(train, db, q, cfg)
    more_q = R.retrieval_distances(train, db, np.vstack([q, 5 * rng.normal(size=(20, 16))]), cfg)
    np.testing.assert_allclose(more_q[:6], base, rtol=1e-5)
    more_db = R.retrieval_distances(train, np.vstack([db, rng.normal(size=(25, 16))]), q, cfg)
    np.testing.assert_allclose(more_db[:, :30], base, rtol=1e-5)
    other_train = R.retrieval_distances(rng.normal(size=(40, 16)), db, q, cfg)
    assert not np.allclose(other_train, base)


def test_whitening_helps_when_a_shared_nuisance_dominates():
    # instances differ a little in every dimension; all images share big nuisance directions
    rng = np.random.default_rng(4)
    d, n_inst = 24, 40

    def images(codes, per):
        out = []
        for c in codes:
            for _ in range(per):
                nuisance = rng.normal(size=d) * np.r_[np.full(3, 3.0), np.zeros(d - 3)]
                out.append(c + nuisance + 0.1 * rng.normal(size=d))
        return np.array(out) + 5.0

    codes = rng.normal(size=(n_inst, d)) * 0.5
    db = images(codes, 3)
    q = images(codes, 1)
    train = images(rng.normal(size=(60, d)) * 0.5, 3)
    t = truth([np.arange(3 * i, 3 * i + 3) for i in range(n_inst)])
    plain = R.evaluate_retrieval(
        "retrieval_map", R.retrieval_distances(train, db, q, R.RetrievalConfig(whiten=False)), t
    )[0]
    white = R.evaluate_retrieval(
        "retrieval_map", R.retrieval_distances(train, db, q, R.RetrievalConfig(whiten=True)), t
    )[0]
    assert white > plain + 10


# ---- ranking and metrics ----------------------------------------------------------------------


def test_rank_by_euclidean_distance_ties_by_index():
    q = np.array([[0.0, 0.0]])
    db = np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, -1.0]])
    np.testing.assert_array_equal(R.rank(q, db), [[1, 3, 2, 0]])
    np.testing.assert_allclose(R.euclidean_distances(q, db), [[3, 1, 2, 1]])


def test_evaluate_retrieval_map_per_query_and_errors():
    dist = np.array([[0.1, 0.5, 0.2, 0.9, 0.3], [0.0, 0.4, 0.3, 0.2, 0.1]])
    t = truth([[1, 2], [0, 3]], junk=[[4], []], query_in_db=[-1, 0])
    score, per = R.evaluate_retrieval("retrieval_map", dist, t)
    # query 0: ranking 0, 2, (4 junk), 1, 3 -> hits at kept ranks 1 and 2
    ap0 = trapezoid_ap(np.array([0, 2, 4, 1, 3]), np.array([1, 2]), np.array([4]))
    assert per[0] == pytest.approx(100 * ap0)
    assert ap0 == pytest.approx(0.5 * (0 + 0.5) / 2 + 0.5 * (0.5 + 2 / 3) / 2)
    # query 1 is image 0 itself: ignored; its only other positive (3) is ranked 2nd
    assert per[1] == pytest.approx(100 * 1.0 * (0 + 0.5) / 2)
    assert score == pytest.approx(per.mean())
    with pytest.raises(ValueError, match="no positives"):
        R.evaluate_retrieval("retrieval_map", dist, truth([[1], [0]], query_in_db=[-1, 0]))
    with pytest.raises(ValueError, match="metric='top1'"):
        R.evaluate_retrieval("top1", dist, t)
    with pytest.raises(ValueError, match="Q=3"):
        R.evaluate_retrieval("retrieval_map", dist, truth([[1], [2], [3]]))


def test_evaluate_ns_score_counts_the_query_itself():
    # UKB: groups of 4, queries are database images 0 and 4
    dist = np.array([[0.0, 0.1, 0.9, 0.2, 0.3, 0.8, 0.7, 0.6], [0.5, 0.1, 0.2, 0.3, 0.0, 0.9, 0.8, 0.7]])
    t = truth([[1, 2, 3], [5, 6, 7]], query_in_db=[0, 4])
    score, per = R.evaluate_retrieval("ns_score", dist, t)
    np.testing.assert_array_equal(per, [3, 1])  # top 4: {0,1,3,4} and {4,1,2,3}
    assert score == pytest.approx(2.0)


def test_spatial_search_matches_a_zoomed_in_view():
    # the query is a zoom on a sub-patch of its database image: only spatial search sees it
    rng = np.random.default_rng(5)
    db = rng.normal(size=(10, 30, 16))
    q = rng.normal(size=(1, 30, 16))
    q[0, 0] = db[6, 9] * 2.0  # whole query image ~ one 4/16 patch of image 6 (up to scale)
    train = rng.normal(size=(20, 30, 16))
    cfg = R.RetrievalConfig(whiten=False, spatial=True)
    dist = R.retrieval_distances(train, db, q, cfg)
    assert dist.shape == (1, 10)
    assert dist[0].argmin() == 6 and dist[0, 6] == pytest.approx(0.0, abs=1e-3)
    whole = R.retrieval_distances(train[:, 0], db[:, 0], q[:, 0], R.RetrievalConfig(whiten=False))
    assert whole[0, 6] > 0.5


def test_config_and_shape_validation():
    with pytest.raises(ValueError, match="pca_dim=0"):
        R.RetrievalConfig(pca_dim=0)
    x = np.zeros((5, 4))
    with pytest.raises(ValueError, match="spatial=True"):
        R.retrieval_distances(x, x, x, R.RetrievalConfig(spatial=True))
    with pytest.raises(ValueError, match="NaN"):
        R.fit_whitening(np.full((5, 4), np.nan))
