"""Nearest-neighbour search: global (one vector per image) and the paper's spatial / jittered-view search.

Spatial-search distance (paper Sec. 4.2): ``d(q, r) = mean over query patches a of min over patches b of r of
||f_a - f_b||``. It is asymmetric: the query's patches look for themselves anywhere inside the database image.

The distances are computed block by block over the database: one fused matrix product per block gives
``||b||^2 - 2 a.b`` for every pair of patches, the minimum is taken over each image's patches, then
``||a||^2`` is added, the result clamped at 0 and square-rooted (after the minimum: the root is monotone).
Memory is thus bounded by the block size and not by the database: an Oxford-size database (5,000 images x 30
patches x 1,280-d) is searched in a few hundred MB. Storage can be float16 (half the memory); on a CPU each
block is widened to float32 for the product, on a GPU the product runs in the storage type. Only the minima
``(Q, Pq, block)`` come back to numpy: their square root is numpy's (correctly rounded; torch's vectorised CPU
square root can be one unit in the last place off) and their mean over query patches is accumulated in
float64, so the result does not depend on the summation order (block size, backend) and rankings are
reproducible bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

BACKENDS = ("torch", "faiss")
DEFAULT_MEMORY_MB = 256.0
_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def _as_patches(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, None, :]
    if array.ndim != 3:
        raise ValueError(
            f"{what} must be shaped (images, patches, dim) or (images, dim); got shape {array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{what} is empty (shape {array.shape}).")
    return array


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory when contiguous and writable (else one copy: memory maps)."""
    return torch.from_numpy(np.require(array, requirements=["C", "W"]))


def plan_chunk(query_rows: int, patches: int, dim: int, memory_mb: float) -> int:
    """Database images per block so that the block's distance matrix and float32 copy fit in ``memory_mb``."""
    bytes_per_image = patches * 4 * (2 * query_rows + dim)
    return max(1, int(memory_mb * 2**20 // bytes_per_image))


def _faiss_squared_distances(queries: np.ndarray, block: np.ndarray) -> torch.Tensor:
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "backend='faiss' needs the faiss package: pip install faiss-cpu (or the course's [faiss] extra)."
        ) from err
    distances = faiss.pairwise_distances(
        np.ascontiguousarray(queries, dtype=np.float32), np.ascontiguousarray(block, dtype=np.float32)
    )
    return torch.from_numpy(distances)


def _check_search(queries: np.ndarray, database: np.ndarray, chunk: int | None, dtype: str, backend: str) -> None:
    """A ``ValueError`` naming what is wrong with a search request (:func:`spatial_distances`' arguments)."""
    if queries.shape[2] != database.shape[2]:
        raise ValueError(
            f"Query features are {queries.shape[2]}-d but database features are {database.shape[2]}-d: "
            "extract both with the same backbone layer and post-processing."
        )
    if not np.isfinite(queries).all():
        raise ValueError(
            "query_patches contain NaN or infinite values (an image the feature engine skipped?); "
            "drop those queries, e.g. with FeatureSet.valid."
        )
    if dtype not in _DTYPES:
        raise ValueError(f"Unknown dtype {dtype!r}; choose one of {sorted(_DTYPES)}.")
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    if chunk is not None and int(chunk) < 1:
        raise ValueError(f"chunk must be a positive number of database images, got {chunk}.")


def spatial_distances(
    query_patches: np.ndarray,
    db_patches: np.ndarray,
    *,
    chunk: int | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    backend: str = "torch",
    memory_mb: float = DEFAULT_MEMORY_MB,
) -> np.ndarray:
    """Spatial-search distances ``(Q, N)`` between queries ``(Q, Pq, D)`` and database images ``(N, Pr, D)``.

    ``chunk`` database images are searched at a time (default: as many as fit in ``memory_mb``); the answer
    does not depend on it. ``dtype="float16"`` searches the database in half precision: pass it as a float16
    array (``db.astype(np.float16)``) to halve its memory. ``backend="faiss"`` computes each block's squared
    distances with faiss instead of a torch matrix product (same answer). Images whose features are NaN
    (skipped by the feature engine) get a NaN distance, which :func:`rank` puts last.
    """
    queries = _as_patches(query_patches, "query_patches")
    database = _as_patches(db_patches, "db_patches")
    _check_search(queries, database, chunk, dtype, backend)
    n_queries, query_patches_n, dim = queries.shape
    n_db, db_patches_n, _ = database.shape
    storage = _DTYPES[dtype]
    on_gpu = str(device).startswith("cuda")
    compute = storage if on_gpu else torch.float32
    chunk = int(chunk) if chunk else plan_chunk(n_queries * query_patches_n, db_patches_n, dim, memory_mb)

    q = _tensor(queries.reshape(-1, dim)).to(storage)
    q_norms = q.float().square().sum(1).to(device)[:, None]  # of the values as stored (float16-rounded if asked)
    q_faiss = q.float().numpy() if backend == "faiss" else None
    q = q.to(device=device, dtype=compute)
    out = np.empty((n_queries, n_db), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, n_db, chunk):
            stop = min(start + chunk, n_db)
            block = _tensor(database[start:stop].reshape(-1, dim)).to(storage)
            if backend == "faiss":
                squared = _faiss_squared_distances(q_faiss, block.float().numpy()).to(device)
                nearest = squared.view(-1, stop - start, db_patches_n).amin(dim=2)
            else:
                nearest = _nearest_squared(q, q_norms, block.to(device=device, dtype=compute), db_patches_n)
            nearest = np.sqrt(nearest.clamp_(min=0.0).cpu().numpy()).reshape(n_queries, query_patches_n, -1)
            out[:, start:stop] = nearest.mean(axis=1, dtype=np.float64)
    return out


def _nearest_squared(
    q: torch.Tensor, q_norms: torch.Tensor, block: torch.Tensor, patches: int
) -> torch.Tensor:
    """Squared distance from every query patch to the nearest patch of each block image, ``(Q * Pq, images)``.

    ``||a||^2`` is the same for every patch ``b``, so it is added after the minimum over ``b``; ``||b||^2 - 2
    a.b`` comes out of one fused matrix product (``addmm``) in float32.
    """
    wide = block.float()  # the block itself when it is already float32 (CPU): no copy
    block_norms = torch.einsum("nd,nd->n", wide, wide)[None, :]
    if block.dtype == torch.float32:
        partial = torch.addmm(block_norms, q, block.T, beta=1.0, alpha=-2.0)
    else:  # float16 on a GPU: product in half precision, the rest in float32
        partial = (q @ block.T).float().mul_(-2.0).add_(block_norms)
    return partial.view(q.shape[0], -1, patches).amin(dim=2).add_(q_norms)


def jitter_distances(query_views: np.ndarray, db_views: np.ndarray, **kwargs) -> np.ndarray:
    """Distances for the jittered-view variant (Holidays, UKBench): the same min/mean rule, over views.

    Every query view looks for its nearest view of the database image; the distance is the mean of those
    minima (the paper does not say how views are combined; this is the course's reading, ``docs/paper.md`` section 8).
    Keyword arguments are those of :func:`spatial_distances`.
    """
    return spatial_distances(query_views, db_views, **kwargs)


def global_distances(query: np.ndarray, db: np.ndarray, **kwargs) -> np.ndarray:
    """L2 distances ``(Q, N)`` between one vector per query ``(Q, D)`` and per database image ``(N, D)``."""
    query, db = np.asarray(query), np.asarray(db)
    if query.ndim != 2 or db.ndim != 2:
        raise ValueError(
            f"global search needs one vector per image, (Q, D) and (N, D); got {query.shape} and {db.shape}. "
            "Use spatial_distances() or jitter_distances() for several patches or views per image."
        )
    return spatial_distances(query, db, **kwargs)


def rank(distances: np.ndarray) -> np.ndarray:
    """Database columns sorted by increasing distance, per query; ties keep index order, NaN goes last."""
    distances = np.asarray(distances)
    if distances.ndim != 2:
        raise ValueError(f"rank() needs a (queries, database) distance matrix, got shape {distances.shape}.")
    return np.argsort(distances, axis=1, kind="stable")


def global_search(query: np.ndarray, db: np.ndarray, **kwargs) -> np.ndarray:
    """Rankings ``(Q, N)`` of the database by L2 distance to each query vector (the paper's "CNN" row)."""
    return rank(global_distances(query, db, **kwargs))
