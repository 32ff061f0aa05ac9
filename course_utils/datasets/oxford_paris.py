"""Oxford Buildings 5k and Paris 6k instance retrieval (paper Table 7), original and revisited ground truth.

Layout read (as ``data_scripts/download.py`` extracts the official archives)
-----------------------------------------------------------------------------
* ``jpg/``: the images, at any depth (Paris keeps ``jpg/paris/<landmark>/``); names are unique across folders.
* ``gt/``: the original ground truth, four files per query: ``<query>_query.txt`` holds
  ``<image> <x0> <y0> <x1> <y1>`` (Oxford prefixes the image with ``oxc1_``, which is removed), and
  ``<query>_{good,ok,junk}.txt`` list image names without extension.
* ``gnd_roxford5k.pkl`` / ``gnd_rparis6k.pkl``: the revisited ground truth (Radenovic et al. 2018), a pickled dict
  ``{"imlist": [...], "qimlist": [...], "gnd": [{"bbx", "easy", "hard", "junk"}, ...]}``. It is read with a
  restricted unpickler that accepts only plain containers, numbers, strings and numpy arrays: a pickle that tries to
  build anything else (the usual way to run code from a pickle) is refused.

Protocol (original, as the paper used)
--------------------------------------
55 queries (11 landmarks x 5). Each query is its *region*: ``Query.box`` in the query image's pixels. Positives are
good + ok; junk images are ignored (removed from the ranking before AP is computed). The query image stays in the
database, as in the official ``compute_ap``. Metric: mAP. Paris: the 20 archive images that cannot be decoded are
left out (:data:`PARIS_CORRUPT`), and dropped from the ground-truth lists.

Protocol (revisited)
--------------------
70 queries kept *out* of the database (the record lists the database images, then the query images;
``record.database`` indexes the former). ``setup`` chooses Easy (positives easy, junk junk + hard), Medium (positives
easy + hard, junk junk: the default) or Hard (positives hard, junk junk + easy). Metric: mAP per setup.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .base import DatasetMissingError, DatasetRecord, Query
from .specs import get, require, resolve_root

PARIS_CORRUPT = frozenset({
    "paris_louvre_000136", "paris_louvre_000146", "paris_moulinrouge_000422", "paris_museedorsay_001059",
    "paris_notredame_000188", "paris_pantheon_000284", "paris_pantheon_000960", "paris_pantheon_000974",
    "paris_pompidou_000195", "paris_pompidou_000196", "paris_pompidou_000201", "paris_pompidou_000467",
    "paris_pompidou_000640", "paris_sacrecoeur_000299", "paris_sacrecoeur_000330", "paris_sacrecoeur_000353",
    "paris_triomphe_000662", "paris_triomphe_000833", "paris_triomphe_000863", "paris_triomphe_000867",
})
SETUPS = ("easy", "medium", "hard")


# --- restricted unpickling ---------------------------------------------------------------------------------------

_SAFE_BUILTINS = frozenset({"list", "dict", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes",
                            "bytearray", "bool", "slice", "range"})
_SAFE_NUMPY = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (numpy array buffers among them)
})


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain containers, numbers, strings and numpy arrays (anything else: refused)."""

    def find_class(self, module: str, name: str):
        if module.startswith("numpy.core"):  # pickles written by numpy < 2
            module = module.replace("numpy.core", "numpy._core", 1)
        if module == "__builtin__":  # protocol 0-2 pickles name the builtins module the Python 2 way
            module = "builtins"
        if (module == "builtins" and name in _SAFE_BUILTINS) or (module, name) in _SAFE_NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"Refusing to load {module}.{name} from a ground-truth pickle: only containers, numbers, strings and "
            "numpy arrays are allowed. The file is not a genuine revisited-Oxford/Paris ground truth; download it again."
        )


def load_pickle_restricted(path: str | Path) -> object:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (Python 2 pickles are read with ``latin1``)."""
    return RestrictedUnpickler(io.BytesIO(Path(path).read_bytes()), encoding="latin1").load()


# --- shared helpers ----------------------------------------------------------------------------------------------


def _image_index(name: str, root: Path, drop: frozenset[str]) -> dict[str, Path]:
    """``{image name without extension: path}`` of every ``jpg/**/*.jpg`` not in ``drop``."""
    require(name, root, "jpg")
    index = {p.stem: p for p in sorted((root / "jpg").rglob("*.jpg")) if p.stem not in drop}
    if not index:
        raise DatasetMissingError(name, root, detail="The jpg/ folder holds no .jpg images.")
    return index


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_query_file(path: Path) -> tuple[str, tuple[float, float, float, float]]:
    """``(image name, box)`` from an Oxford/Paris ``<query>_query.txt`` file."""
    parts = path.read_text().split()
    if len(parts) != 5:
        raise ValueError(f"{path}: expected '<image> <x0> <y0> <x1> <y1>', got {' '.join(parts)!r}.")
    image = parts[0].removeprefix("oxc1_")
    x0, y0, x1, y1 = (float(v) for v in parts[1:])
    return image, (x0, y0, x1, y1)


def read_oxford_gt(gt: Path) -> list[dict]:
    """All queries of an Oxford-style ground-truth folder, sorted by query name.

    Each entry: ``{"name", "image", "box", "good", "ok", "junk"}`` (image names without extension).
    """
    entries = []
    for query_file in sorted(gt.glob("*_query.txt")):
        query = query_file.name.removesuffix("_query.txt")
        image, box = read_query_file(query_file)
        lists = {}
        for kind in ("good", "ok", "junk"):
            path = gt / f"{query}_{kind}.txt"
            if not path.is_file():
                raise ValueError(f"{gt}: {query_file.name} has no {path.name}; the ground truth is incomplete.")
            lists[kind] = _read_names(path)
        entries.append({"name": query, "image": image, "box": box, **lists})
    return entries


def _original(name: str, root: str | Path | None, drop: frozenset[str], paper_table: str) -> DatasetRecord:
    root = resolve_root(name, root)
    if not root.exists():
        raise DatasetMissingError(name, root)
    require(name, root, "gt")
    index = _image_index(name, root, drop)
    names = sorted(index)
    position = {n: i for i, n in enumerate(names)}
    entries = read_oxford_gt(root / "gt")
    if not entries:
        raise DatasetMissingError(name, root, detail="gt/ holds no <query>_query.txt files.")
    queries = []
    for e in entries:
        referenced = [e["image"], *e["good"], *e["ok"], *e["junk"]]
        missing = [n for n in referenced if n not in position and n not in drop]
        if missing:
            raise DatasetMissingError(name, root, detail=f"Images of query {e['name']} not in jpg/: {missing[:3]}.")
        if e["image"] not in position:
            raise ValueError(f"Query {e['name']} uses image {e['image']}, which is excluded as corrupt.")
        queries.append(Query(
            index=position[e["image"]], name=e["name"], box=e["box"],
            positives=[position[n] for n in e["good"] + e["ok"] if n in position],
            junk=[position[n] for n in e["junk"] if n in position],
        ))
    return DatasetRecord(
        name=name, task="retrieval", root=root, paths=[index[n] for n in names], queries=queries,
        database=np.arange(len(names)), metric=get(name).metric,
        protocol="55 queries with query boxes; positives good+ok; junk ignored; query image stays in the database",
        paper_table=paper_table,
    )


def _revisited(name: str, root: str | Path | None, setup: str, drop: frozenset[str]) -> DatasetRecord:
    if setup not in SETUPS:
        raise ValueError(f"setup must be one of {SETUPS}; got {setup!r}.")
    root = resolve_root(name, root)
    if not root.exists():
        raise DatasetMissingError(name, root)
    pkl = f"gnd_{name}.pkl"
    require(name, root, pkl)
    gnd = load_pickle_restricted(root / pkl)
    if not isinstance(gnd, dict) or not {"imlist", "qimlist", "gnd"} <= set(gnd):
        raise ValueError(f"{root / pkl}: expected a dict with imlist, qimlist and gnd.")
    imlist, qimlist = [str(n) for n in gnd["imlist"]], [str(n) for n in gnd["qimlist"]]
    if len(gnd["gnd"]) != len(qimlist):
        raise ValueError(f"{root / pkl}: {len(qimlist)} query images but {len(gnd['gnd'])} ground-truth entries.")
    index = _image_index(name, root, drop)
    if missing := [n for n in imlist + qimlist if n not in index]:
        raise DatasetMissingError(name, root, detail=f"{len(missing)} images of {pkl} not in jpg/, e.g. {missing[:3]}.")
    n_db = len(imlist)
    queries = []
    for q, (image, entry) in enumerate(zip(qimlist, gnd["gnd"], strict=True)):
        easy, hard, junk = (np.asarray(entry[k], dtype=int).ravel() for k in ("easy", "hard", "junk"))
        positives, ignored = {
            "easy": (easy, np.concatenate([junk, hard])),
            "medium": (np.concatenate([easy, hard]), junk),
            "hard": (hard, np.concatenate([junk, easy])),
        }[setup]
        box = tuple(float(v) for v in np.asarray(entry["bbx"], dtype=float).ravel()[:4])
        queries.append(Query(index=n_db + q, name=image, box=box, positives=sorted(positives.tolist()),
                             junk=sorted(ignored.tolist())))
    return DatasetRecord(
        name=name, task="retrieval", root=root, paths=[index[n] for n in imlist + qimlist],
        queries=queries, database=np.arange(n_db),
        metric=get(name).metric, paper_table="not in the paper (revisited ground truth, 2018)",
        protocol=f"revisited {setup}: queries outside the database, query boxes used",
    )


def oxford5k(root: str | Path | None = None) -> DatasetRecord:
    """Oxford 5k with the original ground truth, from ``root`` (default ``<data dir>/oxford5k``)."""
    return _original("oxford5k", root, frozenset(), "Table 7")


def paris6k(root: str | Path | None = None, drop_corrupt: bool = True) -> DatasetRecord:
    """Paris 6k with the original ground truth (the 20 corrupt images left out unless ``drop_corrupt=False``)."""
    return _original("paris6k", root, PARIS_CORRUPT if drop_corrupt else frozenset(), "Table 7")


def roxford5k(root: str | Path | None = None, setup: str = "medium") -> DatasetRecord:
    """Revisited Oxford 5k (``setup`` easy / medium / hard), from ``root`` (default ``<data dir>/oxford5k``)."""
    return _revisited("roxford5k", root, setup, frozenset())


def rparis6k(root: str | Path | None = None, setup: str = "medium") -> DatasetRecord:
    """Revisited Paris 6k (``setup`` easy / medium / hard), from ``root`` (default ``<data dir>/paris6k``)."""
    return _revisited("rparis6k", root, setup, PARIS_CORRUPT)
