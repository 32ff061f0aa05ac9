"""Beyond one machine (``docs/scale.md``; the optional ``scale`` extra: ``pip install -e ".[scale]"``).

* :mod:`.ray_extract`: :func:`~.ray_extract.extract`, the same call as :func:`course_utils.features.extract` run as a
  Ray Data batch-inference job (one model replica per GPU or per CPU worker), writing the same feature-store entry
  (layer files, ``key.json``, ``complete.json``), resumable from the rows already finished.
* :mod:`.ann`: a faiss global index (exact, HNSW or IVF-PQ, chosen by database size and memory) whose top-k
  candidates the paper's spatial or jittered-view distance re-ranks.

The submodules import ``ray`` and ``faiss`` only when called, so importing this package costs nothing without them.
"""

from __future__ import annotations

SCALE_EXTRA_HINT = 'pip install -e ".[scale]"  (or: pip install "ray[data]>=2.40" faiss-cpu)'
