"""``python -m course_utils search``: find the photos of a folder that show the same object or scene as a query.

The paper's instance retrieval (Sec. 4.2), pointed at a learner's own pictures::

    python -m course_utils search --index ~/Pictures/trip --query tower.jpg --method spatial --top 10

How it stays interactive on a folder of thousands of photos
-----------------------------------------------------------
* **The index** is one global vector per image (the backbone's default layer, whole image, L2-normalised), made
  with :func:`course_utils.features.extract` like every feature of the course: progress bar, feature cache, and
  unreadable images skipped and named. Images are extracted one sub-folder at a time, so the cache key of a
  sub-folder is its own list of images: a later search reads every vector back without running the network, and
  adding photos to one sub-folder extracts only that sub-folder again.
* **The query** is extracted on its own (it may lie outside the folder) and ranked by L2 distance to every indexed
  vector (:func:`course_utils.retrieval.global_distances`): milliseconds, even for thousands of photos.
* **Spatial search and the 16-view jitter re-rank** the global top ``rerank`` images (default
  :data:`RERANK_DEPTH`) with the paper's distance, the mean over the query's patches or views of the distance to
  the nearest patch or view of the database image (:func:`course_utils.retrieval.spatial_distances`): 30 patches
  per database image and 14 per query for spatial search, the ``paper16`` views on both sides for jitter, exactly
  as :func:`course_utils.retrieval.run_retrieval` does. Their cost is ``rerank`` images' patches, whatever the
  folder's size, and each image's patches are cached on their own, so a later query that shortlists the same
  photos reuses them. What the re-ranker cannot do is find a photo that the global vector ranks below ``rerank``.
* The query's own file, when it is one of the indexed photos, is left out of its results (it would always be
  first, at distance 0); a copy of it under another name is a genuine match and stays.

Results: the ranked paths and distances on standard output, and a gallery in ``--out`` (default
``search_results``): ``gallery.html`` (relative links to the photos, so the folder can be opened in a browser as it
is) and ``gallery.png`` (one row per query: the query, then its matches with their distances).
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import cli
from .config import DEFAULT_BACKBONE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHODS = ("global", "spatial", "jitter")
# Global top-k re-ranked by spatial search or jitter (at least --top). 20 keeps a first spatial search near 20 s on
# a 2-core CPU (100 took about 90 s: 3,000 patches to extract); later searches of the same photos are cached.
RERANK_DEPTH = 20
DB_LEVELS, QUERY_LEVELS = 4, 3  # the paper's pyramids: 30 patches per database image, 14 per query
JITTER_VIEWS = "paper16"
THUMBNAIL = 160  # pixels, longer side of a gallery tile
TILE_INCHES = (2.0, 2.4)  # width and height of one tile of gallery.png
GALLERY_DPI = 80



@dataclass(frozen=True)
class Match:
    """One result of a query: its rank (1 = best), the photo, and its distance (global L2, or the re-ranker's)."""

    rank: int
    path: Path
    distance: float


@dataclass
class SearchResult:
    """The ranked matches of one query; ``reranked`` is how many global results the re-ranker re-scored (0 for
    ``method="global"``) and ``seconds`` the time the query took (features included)."""

    query: Path
    method: str
    matches: list[Match]
    reranked: int = 0
    seconds: float = 0.0


@dataclass
class PhotoIndex:
    """The global vectors of every readable image below ``root``; :meth:`search` answers queries against them.

    ``paths[i]`` owns ``vectors[i]`` (L2-normalised, float32); ``skipped`` lists ``(path, reason)`` of the
    unreadable images, which are not indexed; ``from_cache`` is True when no feature had to be computed.
    """

    root: Path
    paths: list[Path]
    vectors: np.ndarray
    backbone: str
    layer: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    engine: str = "auto"
    device: str | None = None
    seconds: float = 0.0
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    def search(self, query: str | os.PathLike, *, top: int = 10, method: str = "global",
               rerank: int = RERANK_DEPTH, progress: bool = False) -> SearchResult:
        """The ``top`` photos closest to the image ``query`` (inside the folder or not), best first.

        ``method="global"`` ranks by the L2 distance between global vectors; ``"spatial"`` and ``"jitter"``
        re-rank the global top ``max(rerank, top)`` with the paper's spatial-search or jittered-view distance.
        Raises :class:`~course_utils.imageio.BadImageError` (naming the file) for a query that cannot be read.
        """
        from .retrieval import SpatialPatches, global_distances, jitter_distances, rank, spatial_distances

        if method not in METHODS:
            raise ValueError(f"Unknown search method {method!r}; choose one of {METHODS}.")
        if int(top) < 1 or int(rerank) < 1:
            raise ValueError(f"top and rerank must be at least 1; got top={top}, rerank={rerank}.")
        started = time.perf_counter()
        query = Path(os.path.abspath(os.fspath(query)))
        distances = global_distances(self._features([query], "whole")[:, 0], self.vectors)[0]
        order = rank(distances[None])[0]
        own = self._position(query)
        if own is not None:
            order = order[order != own]
        if method == "global":
            kept, scores, reranked = order[:top], distances[order[:top]], 0
        else:
            shortlist = order[: max(int(rerank), int(top))]
            if method == "spatial":
                db_views, query_views, distance = SpatialPatches(DB_LEVELS), SpatialPatches(QUERY_LEVELS), \
                    spatial_distances
            else:
                db_views, query_views, distance = JITTER_VIEWS, JITTER_VIEWS, jitter_distances
            fine = distance(self._features([query], query_views),
                            self._features([self.paths[i] for i in shortlist], db_views, progress))[0]
            resorted = np.argsort(fine, kind="stable")[:top]
            kept, scores, reranked = shortlist[resorted], fine[resorted], len(shortlist)
        matches = [Match(r + 1, self.paths[i], float(d)) for r, (i, d) in enumerate(zip(kept, scores, strict=True))]
        return SearchResult(query, method, matches, reranked, time.perf_counter() - started)

    def _position(self, query: Path) -> int | None:
        """Where ``query``'s own file is in :attr:`paths` (symbolic links resolved), or None."""
        real = os.path.realpath(query)
        return next((i for i, path in enumerate(self.paths) if os.path.realpath(path) == real), None)

    def _features(self, paths: Sequence[Path], views: object, progress: bool = False) -> np.ndarray:
        """L2-normalised ``(len(paths), views, dim)`` features of this index's layer, extracted (or read from the
        cache) one image at a time, so that each image's patches or views are cached and reused on their own."""
        from tqdm.auto import tqdm

        from . import features
        from .normalize import L2Normalizer

        rows = []
        for path in tqdm(paths, desc="re-ranking", unit="img", disable=not progress or len(paths) < 2,
                         file=sys.stderr):
            found = features.extract([path], self.backbone, [self.layer], views=views, engine=self.engine,
                                     device=self.device, progress=False)
            rows.append(found[self.layer][0])
        return L2Normalizer().fit_transform(np.stack(rows).astype(np.float32))


def build_index(folder: str | os.PathLike, backbone: str = DEFAULT_BACKBONE, layer: str | None = None, *,
                engine: str = "auto", device: str | None = None, progress: bool = True) -> PhotoIndex:
    """Index every image below ``folder`` (recursively; hidden files ignored): one global vector per image.

    Features are extracted one sub-folder at a time with :func:`course_utils.features.extract` (cached; see the
    module docstring), unreadable images are skipped and listed in :attr:`PhotoIndex.skipped`. Raises
    ``FileNotFoundError`` / ``NotADirectoryError`` for a missing folder and ``ValueError`` for a folder holding no
    image or none that can be read.
    """
    from tqdm.auto import tqdm

    from . import features
    from .datasets.folder import list_images
    from .datasets.images import IMAGE_EXTENSIONS
    from .normalize import L2Normalizer

    root = Path(folder).expanduser().resolve()
    if not root.exists():
        raise FileNotFoundError(f"Photo folder {root} does not exist; give the folder of the photos to search.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder; give the folder of the photos to search.")
    images = list_images(root)
    if not images:
        raise ValueError(f"{root} holds no images (searched recursively for {', '.join(sorted(IMAGE_EXTENSIONS))}, "
                         "any case); put photos in it, or give another folder.")
    started = time.perf_counter()
    by_folder: dict[Path, list[Path]] = {}
    for path in images:
        by_folder.setdefault(path.parent, []).append(path)
    bar = tqdm(total=len(images), desc=f"indexing {root.name}", unit="img", disable=not progress, file=sys.stderr)
    paths, vectors, skipped, cached = [], [], [], True
    try:
        for members in by_folder.values():
            start = bar.n
            found = features.extract(members, backbone, None if layer is None else [layer], views="whole",
                                     engine=engine, device=device, on_error="skip", progress=False,
                                     on_batch=lambda done, _total, start=start: bar.update(start + done - bar.n))
            bar.update(start + len(members) - bar.n)
            layer = found.layers[0]
            keep = np.flatnonzero(found.valid)
            paths += [members[i] for i in keep]
            vectors.append(np.asarray(found[layer])[keep, 0])
            skipped += found.skipped
            cached = cached and found.from_cache
    finally:
        bar.close()
    if not paths:
        first_path, first_reason = skipped[0]
        raise ValueError(f"None of the {len(images)} images under {root} can be read (first: {first_path}: "
                         f"{first_reason}).")
    return PhotoIndex(root, paths, L2Normalizer().fit_transform(np.concatenate(vectors).astype(np.float32)),
                      backbone, str(layer), skipped, engine, device, time.perf_counter() - started, cached)


# ------------------------------------------------------------------------------------------------------- gallery


def _name(path: Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it lies below it, else its file name (a query from elsewhere)."""
    if root is not None and path.is_relative_to(root):
        return path.relative_to(root).as_posix()
    return path.name


def gallery_figure(results: Sequence[SearchResult], root: Path | None = None) -> Figure:
    """One row per query: the query, then its matches titled with rank, distance and name (relative to ``root``).

    Every tile is :data:`TILE_INCHES`, so the PNG is ``(1 + most matches) x rows`` tiles of 160 x 192 pixels at
    :data:`GALLERY_DPI`.
    """
    from matplotlib.figure import Figure

    from .imageio import open_rgb

    if not results:
        raise ValueError("gallery_figure needs at least one search result.")
    columns = 1 + max(len(result.matches) for result in results)
    figure = Figure(figsize=(TILE_INCHES[0] * columns, TILE_INCHES[1] * len(results)))
    axes = np.atleast_2d(figure.subplots(len(results), columns))
    for row, result in enumerate(results):
        tiles = [(result.query, f"query ({result.method})\n{_short(_name(result.query, root))}")]
        tiles += [(m.path, f"#{m.rank}  d = {m.distance:.3f}\n{_short(_name(m.path, root))}") for m in result.matches]
        for ax, (path, title) in zip(axes[row], tiles, strict=False):
            image = open_rgb(path)
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            ax.imshow(np.asarray(image))
            ax.set_title(title, fontsize=8)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.images:
                ax.set_axis_off()
    figure.tight_layout()
    return figure


def _short(text: str, width: int = 24) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def gallery_html(results: Sequence[SearchResult], out_dir: Path, root: Path | None = None) -> str:
    """An HTML page showing each query and its matches, with links relative to ``out_dir`` (where it is saved)."""
    from .report import printable

    def tile(path: Path, caption: str) -> str:
        link = urllib.parse.quote(Path(os.path.relpath(path, out_dir)).as_posix(), errors="surrogateescape")
        return (f'<figure><a href="{link}"><img src="{link}" alt="{html.escape(path.name)}"></a>'
                f"<figcaption>{caption}</figcaption></figure>")

    sections = []
    for result in results:
        extra = f", re-ranking the global top {result.reranked}" if result.reranked else ""
        tiles = [tile(result.query, f"<b>query</b><br>{html.escape(_name(result.query, root))}")]
        tiles += [tile(m.path, f"#{m.rank} &nbsp; d = {m.distance:.3f}<br>{html.escape(_name(m.path, root))}")
                  for m in result.matches]
        sections.append(f"<section><h2>{html.escape(result.query.name)} <small>({result.method}{extra}, "
                        f"{result.seconds:.2f} s)</small></h2>{''.join(tiles)}</section>")
    where = "" if root is None else f" in {html.escape(str(root))}"
    style = ("body{font-family:sans-serif} figure{display:inline-block;margin:4px;text-align:center;"
             "font-size:12px;vertical-align:top} img{max-width:160px;max-height:160px}")
    return printable(f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Photo search</title>"
                     f"<style>{style}</style></head><body><h1>Photo search{where}</h1>{''.join(sections)}"
                     "</body></html>\n")


def write_gallery(results: Sequence[SearchResult], out_dir: str | os.PathLike,
                  root: Path | None = None) -> dict[str, Path]:
    """Write ``gallery.html`` and ``gallery.png`` into ``out_dir`` (created if needed), atomically; their paths."""
    from .datasets.images import atomic_path, write_text_atomic

    out = Path(out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    written = {"html": write_text_atomic(out / "gallery.html", gallery_html(results, out, root)),
               "png": out / "gallery.png"}
    with atomic_path(written["png"]) as tmp:
        with open(tmp, "wb") as handle:  # a handle: savefig would choose the format from the temporary name
            gallery_figure(results, root).savefig(handle, format="png", dpi=GALLERY_DPI)
    return written


# ------------------------------------------------------------------------------------------------------- command


def _photo_folder(text: str) -> Path:
    """``--index``: a folder that exists (its images are listed once the command runs)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder" if path.exists() else f"no folder {text}")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the ``search`` command; files, folders, the backbone and the engine are checked as they are read,
    before the network loads."""
    parser.add_argument("--index", required=True, type=_photo_folder, metavar="PATH",
                        help="folder of photos to search: every image below it is indexed once (cached)")
    parser.add_argument("--query", nargs="+", action="extend", type=cli.existing_file, default=[], metavar="IMG",
                        help="query image(s), inside the folder or not; without one, only the index is built")
    parser.add_argument("--top", type=cli.positive_int, default=10, help="matches shown per query (default 10)")
    parser.add_argument("--method", choices=METHODS, default="global",
                        help="global: one vector per photo (fast); spatial: the paper's patch search; jitter: its "
                             "16 views; both re-rank the global top --rerank photos")
    parser.add_argument("--rerank", type=cli.positive_int, default=RERANK_DEPTH,
                        help=f"how many global results spatial/jitter re-rank (default {RERANK_DEPTH})")
    parser.add_argument("--out", type=Path, default=Path("search_results"),
                        help="folder for gallery.html and gallery.png (default search_results)")
    parser.add_argument("--backbone", type=cli.backbone_name, default=DEFAULT_BACKBONE,
                        help=f"network (default {DEFAULT_BACKBONE}, offline)")
    parser.add_argument("--layer", default=None, help="layer to compare (default: the backbone's, e.g. pool)")
    parser.add_argument("--engine", type=cli.engine_name, default="auto",
                        help="inference engine: auto, torch, onnxruntime, onnxruntime-int8, compile (default auto)")
    parser.add_argument("--device", type=cli.device_name, default=None, help="cpu, cuda, mps (default: best)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Index the folder, answer each query, write the gallery. Exit status 1 when a query image cannot be read (the
    others are still answered), else 0."""
    from .imageio import BadImageError
    from .report import printable

    if args.layer is not None:
        cli.check_layer(args.backbone, args.layer)
    index = build_index(args.index, args.backbone, args.layer, engine=args.engine, device=args.device,
                        progress=not args.no_progress)
    how = "read from the feature cache" if index.from_cache else "features extracted"
    print(f"Indexed {len(index):,} images under {printable(str(index.root))} in {index.seconds:.1f} s ({how}; "
          f"{index.backbone}:{index.layer})", file=sys.stderr)
    if index.skipped:
        print(f"{len(index.skipped)} unreadable image(s) skipped:", file=sys.stderr)
        for path, reason in index.skipped:
            print(f"  {printable(path)}: {printable(reason)}", file=sys.stderr)
    if not args.query:
        print("No --query given: the index is built and cached; add --query IMG to search it.", file=sys.stderr)
        return 0
    results, failed = [], 0
    for query in args.query:
        try:
            result = index.search(query, top=args.top, method=args.method, rerank=args.rerank,
                                  progress=not args.no_progress)
        except BadImageError as err:
            print(cli.describe(err), file=sys.stderr)
            failed += 1
            continue
        results.append(result)
        extra = f", re-ranking the global top {result.reranked}" if result.reranked else ""
        print(f"query {printable(str(result.query))} ({result.method}{extra}; {result.seconds:.2f} s)")
        for match in result.matches:
            print(f"{match.rank:4d}  {match.distance:.4f}  {printable(str(match.path))}")
    if results:
        written = write_gallery(results, args.out, index.root)
        print(f"Gallery: {printable(str(written['html']))} and {printable(str(written['png']))}")
    return 1 if failed else 0
