"""Oxford 102 Flowers (paper Table 4): 8,189 images of 102 species.

Protocol
--------
* Split: the official ``setid.mat`` (``trnid`` 1,020 train, ``valid`` 1,020 val, ``tstid`` 6,149 test: 10 train and 10
  val images per class). As in the paper, train on train+val (2,040 images) and test on test.
* Labels: ``imagelabels.mat`` (``labels[0, k-1]`` in 1..102 is the class of ``jpg/image_{k:05d}.jpg``), stored 0..101.
* Whole images: the dataset's segmentations are not used (every prior method in Table 4 used them; the CNN did not).
* One-vs-one linear SVMs (C = 2). Metric: mean per-class accuracy.

Where the files come from
-------------------------
With ``root=None`` the loader reads ``<data dir>/flowers102`` when ``python data_scripts/download.py flowers102`` has
put the official files there, and otherwise the complete copy in the shared data folder
(``../shared/data/oxford_flowers102``: all 8,189 images downscaled to 256 px, official .mat files byte for byte).
The downscaling costs about 1.5 points of accuracy (see that folder's README).

Class names: the official archive has none. ``cat_to_name.json`` (id -> name, as shipped by the shared copy) is used
when present, else :data:`CLASS_NAMES`, the same widely used list (names from the categories page of the VGG site).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import specs
from .base import DatasetMissingError, DatasetRecord
from .specs import get, require, resolve_root

NAME = "flowers102"
SPLITS = {"trnid": "train", "valid": "val", "tstid": "test"}

_NAMES = """
pink primrose; hard-leaved pocket orchid; canterbury bells; sweet pea; english marigold; tiger lily; moon
orchid; bird of paradise; monkshood; globe thistle; snapdragon; colt's foot; king protea; spear thistle;
yellow iris; globe-flower; purple coneflower; peruvian lily; balloon flower; giant white arum lily; fire lily;
pincushion flower; fritillary; red ginger; grape hyacinth; corn poppy; prince of wales feathers; stemless
gentian; artichoke; sweet william; carnation; garden phlox; love in the mist; mexican aster; alpine sea holly;
ruby-lipped cattleya; cape flower; great masterwort; siam tulip; lenten rose; barbeton daisy; daffodil; sword
lily; poinsettia; bolero deep blue; wallflower; marigold; buttercup; oxeye daisy; common dandelion; petunia;
wild pansy; primula; sunflower; pelargonium; bishop of llandaff; gaura; geranium; orange dahlia; pink-yellow
dahlia; cautleya spicata; japanese anemone; black-eyed susan; silverbush; californian poppy; osteospermum;
spring crocus; bearded iris; windflower; tree poppy; gazania; azalea; water lily; rose; thorn apple; morning
glory; passion flower; lotus lotus; toad lily; anthurium; frangipani; clematis; hibiscus; columbine;
desert-rose; tree mallow; magnolia; cyclamen; watercress; canna lily; hippeastrum; bee balm; ball moss;
foxglove; bougainvillea; camellia; mallow; mexican petunia; bromelia; blanket flower; trumpet creeper;
blackberry lily
"""
CLASS_NAMES: tuple[str, ...] = tuple(n.strip() for n in " ".join(_NAMES.split()).split(";"))


def _default_root() -> Path:
    """The course's one rule for where data comes from: the shared copy, else a finished download."""
    return specs.find(NAME, None).root


def _class_names(root: Path) -> list[str]:
    path = root / "cat_to_name.json"
    if not path.is_file():
        return list(CLASS_NAMES)
    mapping = json.loads(path.read_text())
    return [mapping.get(str(k), CLASS_NAMES[k - 1]) for k in range(1, 103)]


def flowers102(root: str | Path | None = None) -> DatasetRecord:
    """Load Oxford Flowers-102 with the official split (see the module docstring for where ``root=None`` looks)."""
    from scipy.io import loadmat

    root = resolve_root(NAME, root) if root is not None else _default_root()
    if not root.exists():
        raise DatasetMissingError(NAME, root)
    require(NAME, root, "imagelabels.mat", "setid.mat", "jpg")
    labels = loadmat(root / "imagelabels.mat")["labels"].ravel().astype(int)
    setid = loadmat(root / "setid.mat")
    split = np.full(len(labels), "", dtype=object)
    for key, name in SPLITS.items():
        if key not in setid:
            raise ValueError(f"{root / 'setid.mat'} has no variable {key!r}; expected trnid, valid and tstid.")
        ids = setid[key].ravel().astype(int)
        if ids.min() < 1 or ids.max() > len(labels) or (split[ids - 1] != "").any():
            raise ValueError(f"{root / 'setid.mat'}: {key} holds ids outside 1..{len(labels)} or ids of another split.")
        split[ids - 1] = name
    if (split == "").any():
        raise ValueError(f"{root / 'setid.mat'}: images {np.flatnonzero(split == '')[:3] + 1} are in no split.")
    if labels.min() < 1 or labels.max() > len(CLASS_NAMES):
        raise ValueError(f"{root / 'imagelabels.mat'}: labels must lie in 1..{len(CLASS_NAMES)}.")
    paths = [root / "jpg" / f"image_{k:05d}.jpg" for k in range(1, len(labels) + 1)]
    require(NAME, root, *paths)
    return DatasetRecord(
        name=NAME, task="multiclass", root=root, paths=paths, labels=labels - 1, class_names=_class_names(root),
        split=split.astype(str), metric=get(NAME).metric,
        protocol="official setid.mat split; train on train+val, test on test; whole images, no segmentation",
        paper_table="Table 4",
    )
