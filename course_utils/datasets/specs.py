"""Where each benchmark of the paper comes from, how to check it, and which protocol it is read with.

One :class:`DatasetSpec` per name that :func:`course_utils.datasets.load` accepts. ``data_scripts/download.py`` reads
these specs to download, verify and extract; the loaders read :func:`default_root` to find the files (the
course's real sets, with a ``shared_copy``, follow :func:`locate`: the shared copy, else the download); and
``docs/datasets.md`` is the human-readable version of this table. A new benchmark is one spec here plus one loader.

Checksums
---------
``sha256`` values come from the file itself where a copy was at hand (the Flowers-102 ``.mat`` files of the shared
folder, byte-identical to the official ones) or from TensorFlow Datasets' published checksum lists
(``tensorflow_datasets/url_checksums/{voc,oxford_flowers102,caltech_birds2011}.txt``); ``md5`` values are the ones
torchvision publishes. Where no checksum has been published anywhere we could check, the field is ``None`` and the
download tool prints the SHA-256 it computed and asks for it to be recorded here: it never pretends to verify.

Dead links
----------
Several original links of 2007-2014 are dead; each spec lists the working URL first, then mirrors that serve the
same bytes (the checksum catches a mirror that does not), and says in ``notes`` what moved where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import config, metrics
from ..metrics import Metric
from .base import DatasetMissingError

DOWNLOADS = "downloads"  # sub-folder of a dataset folder holding archives, .part files and .done markers


@dataclass(frozen=True)
class Artifact:
    """One file to download: its URLs (official first, then mirrors), checksums, and what to do with it."""

    filename: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None  # published MD5, checked when no SHA-256 is known
    size: int | None = None  # bytes, for display ("about ... to download")
    # bytes once extracted (about); extraction refuses an archive whose members add up to more than
    # download.EXPANSION_MARGIN times this (without it: a multiple of the archive's own size, see download.py)
    unpacked_size: int | None = None
    extract: bool = True  # archives are unpacked into the dataset folder (``extract_to`` below it)
    extract_to: str = ""
    note: str = ""


@dataclass(frozen=True)
class CountCheck:
    """After download: ``pattern`` (a glob below the dataset folder) must match ``count`` files.

    With ``lines=True`` the first file matching ``pattern`` must instead hold ``count`` non-empty lines.
    ``strict=False`` marks counts taken from papers rather than from the files themselves: a mismatch is then a
    warning, not an error.
    """

    pattern: str
    count: int
    lines: bool = False
    strict: bool = True


@dataclass(frozen=True)
class Figure1Bar:
    """Where a benchmark stands in the paper's Figure 1: its bar group's ``label`` and ``position`` (0 = first)."""

    position: int
    label: str


@dataclass(frozen=True)
class PaperEntry:
    """How the paper reports a benchmark: the name its tables use, and what the course reads from them.

    ``name`` is the paper's dataset whose column our numbers are compared with (``ukbench`` for the course's
    ``ukbench2000`` subset); ``C`` the SVM cost the paper used (``None``: not given, so cross-validated);
    ``metric`` which of the paper's measures matches ours where it prints several (UIUC: ``"mAUC"``);
    ``best_prior`` the earlier method the paper marks as the best (bold in Tables 2-4, Figure 1's "SoTA" bars;
    ``None``: the top baseline of the table); ``figure1`` its bar group in Figure 1.
    """

    name: str
    C: float | None = None
    metric: str | None = None
    best_prior: str | None = None
    figure1: Figure1Bar | None = None


SEARCHES = ("spatial", "jitter")  # the paper's two CNN-ss searches: square patches, or the 16 classification views
TASK_GROUPS = ("classification", "attributes", "retrieval")  # what ``reproduce --tasks`` selects


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the course knows about one benchmark, in one place.

    Download and documentation facts (free text, printed by ``docs/datasets.md`` and the download tool) come first;
    then the typed facts code reads: ``metric`` (how it is scored; ``scoring`` is that in words), ``task_group``
    (which ``reproduce --tasks`` group runs it), ``paper`` (how the paper reports it), ``search`` (retrieval: the
    paper's CNN-ss search, with ``extra_search`` shown as an ablation row), ``whitening_source`` (where CNNaug-ss
    learns its PCA-whitening: another dataset, never the searched one, docs/paper.md section 8), ``profiles``
    (the ``reproduce`` profiles that run it, in the order of this table), ``subset_note`` and ``shared_copy_note``
    (how the course's data differs from the paper's benchmark, for the report's data column).
    """

    name: str
    loader: str  # "module:function" of its loader in course_utils.datasets
    title: str
    task: str
    kind: str  # "download" (automatic), "manual" (instructions only), "builtin" (embedded demo set)
    folder: str  # sub-folder of the data root; datasets sharing files share a folder
    images: str
    size_on_disk: str
    license: str
    protocol: str
    scoring: str
    paper_table: str
    metric: Metric
    task_group: str = "classification"
    paper: PaperEntry | None = None
    search: str | None = None
    extra_search: str | None = None
    whitening_source: str | None = None
    profiles: tuple[str, ...] = ()
    subset_note: str = ""
    shared_copy_note: str = ""
    homepage: str = ""
    artifacts: tuple[Artifact, ...] = ()
    checks: tuple[CountCheck, ...] = ()
    notes: str = ""
    manual: str = ""  # what to do by hand when there is no working direct link
    shared_copy: str = ""  # folder in the shared data folder; used first when present (see locate)
    citation: str = ""

    def __post_init__(self) -> None:
        problems = [f"{what} {value!r} is not one of {allowed}" for what, value, allowed in (
            ("task_group", self.task_group, TASK_GROUPS),
            ("search", self.search, (None, *SEARCHES)), ("extra_search", self.extra_search, (None, *SEARCHES)),
        ) if value not in allowed]
        problems += [f"profile {p!r} is not one of {tuple(config.PROFILES)}" for p in self.profiles
                     if p not in config.PROFILES]
        if problems:
            raise ValueError(f"Dataset spec {self.name!r}: " + "; ".join(problems) + ".")

    @property
    def download_command(self) -> str:
        """The command that fetches this dataset (or says where it comes from)."""
        if self.kind == "builtin":
            return "none: built from photographs inside installed packages on first use"
        return f"python data_scripts/download.py {self.name}"


VOC_TERMS = (
    "PASCAL VOC: images from Flickr under their owners' terms; annotations for research use; cite Everingham et al."
)
VGG_TERMS = "No explicit licence; distributed by Oxford VGG for research; cite the paper; images from Flickr."

# --- artifacts shared by several specs --------------------------------------------------------------------------

_VOC2007_TRAINVAL = Artifact(
    "VOCtrainval_06-Nov-2007.tar",
    (
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
        "http://pjreddie.com/media/files/VOCtrainval_06-Nov-2007.tar",
    ),
    sha256="7d8cd951101b0957ddfd7a530bdc8a94f06121cfc1e511bb5937e973020c7508",
    md5="c52e279531787c972589f7e41ab4ae64",
    size=460_032_000,
)
_VOC2007_TEST = Artifact(
    "VOCtest_06-Nov-2007.tar",
    (
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
        "http://pjreddie.com/media/files/VOCtest_06-Nov-2007.tar",
    ),
    sha256="6836888e2e01dca84577a849d339fa4f73e1e4f135d312430c4856b5609b4892",
    md5="b6e924de25625d8de591ea690078ad9f",
    size=451_020_800,
)
_VOC2008_TRAINVAL = Artifact(
    "VOCtrainval_14-Jul-2008.tar",
    ("http://host.robots.ox.ac.uk/pascal/VOC/voc2008/VOCtrainval_14-Jul-2008.tar",),
    md5="2629fa636546599198acfcfbfcf1904a",
    note="aPascal's images are the VOC 2008 trainval images.",
)
_UIUC_ANNOTATIONS = Artifact(
    "attribute_data.tar.gz",
    ("http://vision.cs.uiuc.edu/attributes/attribute_data.tar.gz",),
)
_AYAHOO_IMAGES = Artifact(
    "ayahoo_test_images.tar.gz",
    ("http://vision.cs.uiuc.edu/attributes/ayahoo_test_images.tar.gz",),
)
_OXFORD_IMAGES = Artifact(
    "oxbuild_images-v1.tgz",
    (
        "https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/oxbuild_images-v1.tgz",
        "https://thor.robots.ox.ac.uk/oxbuildings/oxbuild_images-v1.tgz",
    ),
    size=1_938_238_004,
    extract_to="jpg",
)
_PARIS_IMAGES = tuple(
    Artifact(
        f"paris_{part}-v1.tgz",
        (
            f"https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_{part}-v1.tgz",
            f"https://thor.robots.ox.ac.uk/datasets/paris-buildings/paris_{part}-v1.tgz",
        ),
        extract_to="jpg",
    )
    for part in (1, 2)
)
_REVISITOP = "http://cmp.felk.cvut.cz/revisitop/data/datasets"
# Sizes marked "about" were not published: a JPEG archive unpacks to about its own size, and UKBench's 10,200
# images at 640 x 480 weigh about 1.4 GB (2,000 of them are 272 MB); 17 Flowers' 1,360 are about 43 KB each.
_UKBENCH_ZIP = Artifact(
    "ukbench.zip",
    ("https://archive.org/download/ukbench/ukbench.zip", "http://www.vis.uky.edu/~stewe/ukbench/ukbench.zip"),
    size=1_500_000_000,  # about
    unpacked_size=1_500_000_000,  # about
)
_VGG_FLOWERS17 = "https://www.robots.ox.ac.uk/~vgg/data/flowers/17"

_UIUC_COMMON = dict(
    task="attributes",
    metric=metrics.MEAN_AUC,
    task_group="attributes",
    kind="download",
    folder="uiuc_attributes",
    size_on_disk="about 1.9 GB (VOC 2008 trainval 0.55 GB + aYahoo images + annotations)",
    license="Annotations: research use, cite Farhadi et al.; aPascal images: PASCAL VOC 2008 terms; aYahoo images: "
    "collected from Yahoo image search, research use only.",
    scoring="AUC per attribute and its mean (mAUC); Table 5's 'within' and 'across categories' AUCs.",
    paper_table="Table 5 (UIUC 64 object attributes)",
    homepage="https://vision.cs.uiuc.edu/attributes/",
    citation="A. Farhadi, I. Endres, D. Hoiem, D. Forsyth, 'Describing Objects by their Attributes', CVPR 2009.",
)

# --- the specs ---------------------------------------------------------------------------------------------------

_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="voc2007",
        loader="voc2007:voc2007",
        metric=metrics.VOC07_MAP, profiles=("full",),
        paper=PaperEntry("voc2007", C=0.2, best_prior="AGS", figure1=Figure1Bar(0, "Objects (VOC07)")),
        title="Pascal VOC 2007",
        task="multi-label object classification, 20 classes",
        kind="download",
        folder="voc2007",
        images="9,963 (trainval 5,011 / test 4,952)",
        size_on_disk="0.9 GB",
        license=VOC_TERMS,
        protocol="Train on trainval, test on test; whole images (boxes not used); 'difficult' (0) entries ignored.",
        scoring="11-point interpolated AP per class (VOC 2007 criterion) and mAP.",
        paper_table="Table 1",
        homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2007/",
        artifacts=(_VOC2007_TRAINVAL, _VOC2007_TEST),
        checks=(
            CountCheck("VOCdevkit/VOC2007/JPEGImages/*.jpg", 9963),
            CountCheck("VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", 5011, lines=True),
            CountCheck("VOCdevkit/VOC2007/ImageSets/Main/test.txt", 4952, lines=True),
        ),
        notes="host.robots.ox.ac.uk is often down or slow; pjreddie.com serves the same tar files (same SHA-256, "
        "as recorded by TensorFlow Datasets). The 2007 test tar includes the test annotations.",
        citation="M. Everingham et al., 'The PASCAL Visual Object Classes (VOC) Challenge', IJCV 2010.",
    ),
    DatasetSpec(
        name="mit67",
        loader="mit67:mit67",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("full",),
        paper=PaperEntry("mit67", C=2.0, best_prior="MLrep", figure1=Figure1Bar(1, "Scenes (MIT-67)")),
        title="MIT Indoor 67",
        task="scene classification, 67 classes",
        kind="download",
        folder="mit67",
        images="15,620 in the archive; standard split 5,360 train / 1,340 test (80 + 20 per class)",
        size_on_disk="2.4 GB",
        license="Research use; images collected from the web (LabelMe, Google, Flickr); cite Quattoni & Torralba.",
        protocol="The official TrainImages.txt / TestImages.txt split; one-vs-one linear SVMs.",
        scoring="Mean per-class accuracy (mean of the confusion-matrix diagonal).",
        paper_table="Table 2",
        homepage="https://web.mit.edu/torralba/www/indoor.html",
        artifacts=(
            Artifact("indoorCVPR_09.tar", ("http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",)),
            Artifact(
                "TrainImages.txt",
                ("https://web.mit.edu/torralba/www/TrainImages.txt", "http://web.mit.edu/torralba/www/TrainImages.txt"),
                extract=False,
            ),
            Artifact(
                "TestImages.txt",
                ("https://web.mit.edu/torralba/www/TestImages.txt", "http://web.mit.edu/torralba/www/TestImages.txt"),
                extract=False,
            ),
        ),
        checks=(
            CountCheck("Images/*/*", 15620),
            CountCheck("TrainImages.txt", 5360, lines=True),
            CountCheck("TestImages.txt", 1340, lines=True),
        ),
        notes="No checksum has been published: the tool prints the SHA-256 it computes. A few files in the archive "
        "are GIF or PNG data despite their .jpg names; Pillow reads them.",
        citation="A. Quattoni, A. Torralba, 'Recognizing Indoor Scenes', CVPR 2009.",
    ),
    DatasetSpec(
        name="cub200",
        loader="cub200:cub200",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("full",),
        paper=PaperEntry("cub200", C=2.0, best_prior="POOF", figure1=Figure1Bar(2, "Birds (CUB-200)")),
        title="Caltech-UCSD Birds-200-2011",
        task="fine-grained classification, 200 bird species",
        kind="download",
        folder="cub200",
        images="11,788 (train 5,994 / test 5,794)",
        size_on_disk="1.2 GB",
        license="Research and non-commercial use; images from Flickr; cite Wah et al.",
        protocol="Official train_test_split.txt; the bounding box is used at train and test time, enlarged to 150% "
        "(part annotations are not used).",
        scoring="Mean per-class accuracy.",
        paper_table="Table 3",
        homepage="https://www.vision.caltech.edu/datasets/cub_200_2011/",
        artifacts=(
            Artifact(
                "CUB_200_2011.tgz",
                (
                    "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                    "https://s3.amazonaws.com/fast-ai-imageclas/CUB_200_2011.tgz",
                ),
                sha256="0c685df5597a8b24909f6a7c9db6d11e008733779a671760afef78feb49bf081",
                md5="97eceeb196236b17998738112f37df78",
                size=1_150_585_339,
            ),
        ),
        checks=(
            CountCheck("CUB_200_2011/images/*/*.jpg", 11788),
            CountCheck("CUB_200_2011/images.txt", 11788, lines=True),
        ),
        notes="The original link www.vision.caltech.edu/visipedia-data/CUB-200-2011/CUB_200_2011.tgz is dead; the "
        "archive moved to CaltechDATA. The fast.ai S3 copy is a mirror (its bytes are checked like any other).",
        citation="C. Wah, S. Branson, P. Welinder, P. Perona, S. Belongie, 'The Caltech-UCSD Birds-200-2011 "
        "Dataset', CNS-TR-2011-001.",
    ),
    DatasetSpec(
        name="flowers102",
        loader="flowers102:flowers102",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("full",),
        paper=PaperEntry("flowers102", C=2.0, best_prior="Seg+Dense HOG+Coding+Pooling",
                         figure1=Figure1Bar(3, "Flowers (102)")),
        shared_copy_note="downscaled to 256 px: about 1.5 points below the full-size images",
        title="Oxford 102 Flowers",
        task="fine-grained classification, 102 flower species",
        kind="download",
        folder="flowers102",
        images="8,189 (train 1,020 / val 1,020 / test 6,149)",
        size_on_disk="0.35 GB (shared copy at 256 px: 105 MB)",
        license=VGG_TERMS,
        protocol="Official setid.mat split; train on train+val (2,040 images), test on test; segmentations unused.",
        scoring="Mean per-class accuracy.",
        paper_table="Table 4",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        artifacts=(
            Artifact(
                "102flowers.tgz",
                ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz",),
                sha256="2d01ecc807db462958cfe3d92f57a8c252b4abd240eb955770201e45f783b246",
                md5="52808999861908f626f3c1f4e79d11fa",
                size=344_862_509,
            ),
            Artifact(
                "imagelabels.mat",
                ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/imagelabels.mat",),
                sha256="4903e94206bac23bf772aadf06451916df56b58fc483a62db32a97b82656651d",
                md5="e0620be6f572b9609742df49c70aed4d",
                size=502,
                extract=False,
            ),
            Artifact(
                "setid.mat",
                ("https://www.robots.ox.ac.uk/~vgg/data/flowers/102/setid.mat",),
                sha256="46b8678f91fd95d3c8f4feab80d271a6c834a1dd896fe29fd3e6ad9ce5c8dccd",
                md5="a5357ecc9cb78c4bef273ce3793fc85c",
                size=14_989,
                extract=False,
            ),
        ),
        checks=(CountCheck("jpg/*.jpg", 8189),),
        shared_copy="oxford_flowers102",
        notes="A complete copy (images downscaled to 256 px, official .mat files) is in ../shared/data/"
        "oxford_flowers102; flowers102() reads it when no download is present. The .mat SHA-256 values were "
        "computed from that copy and agree with TensorFlow Datasets' list.",
        citation="M.-E. Nilsback, A. Zisserman, 'Automated Flower Classification over a Large Number of Classes', "
        "ICVGIP 2008.",
    ),
    DatasetSpec(
        name="uiuc_apascal",
        loader="uiuc_attributes:uiuc_apascal",
        profiles=("full",),
        paper=PaperEntry("uiuc_apascal", C=0.2, metric="mAUC", figure1=Figure1Bar(5, "Object attributes (UIUC)")),
        title="UIUC attributes: aPascal",
        images="12,695 objects (train 6,340 / test 6,355) in 4,340 VOC 2008 images",
        protocol="Train on apascal_train, test on apascal_test ('within categories'); the object box is the crop.",
        artifacts=(_UIUC_ANNOTATIONS, _VOC2008_TRAINVAL),
        checks=(
            CountCheck("attribute_data/apascal_train.txt", 6340, lines=True, strict=False),
            CountCheck("attribute_data/apascal_test.txt", 6355, lines=True, strict=False),
            CountCheck("VOCdevkit/VOC2008/JPEGImages/*.jpg", 4340, strict=False),
        ),
        notes="No SHA-256 has been published; VOC 2008 is checked against torchvision's MD5.",
        **_UIUC_COMMON,
    ),
    DatasetSpec(
        name="uiuc_ayahoo",
        loader="uiuc_attributes:uiuc_ayahoo",
        paper=PaperEntry("uiuc_ayahoo", C=0.2),
        title="UIUC attributes: aYahoo (across categories)",
        images="aPascal train 6,340 objects + aYahoo test 2,644 objects",
        protocol="Train on apascal_train, test on ayahoo_test ('across categories': 12 classes unseen in training).",
        artifacts=(_UIUC_ANNOTATIONS, _VOC2008_TRAINVAL, _AYAHOO_IMAGES),
        checks=(
            CountCheck("attribute_data/apascal_train.txt", 6340, lines=True, strict=False),
            CountCheck("attribute_data/ayahoo_test.txt", 2644, lines=True, strict=False),
        ),
        notes="Shares its folder with uiuc_apascal: the annotations and VOC 2008 are downloaded once.",
        **_UIUC_COMMON,
    ),
    DatasetSpec(
        name="h3d",
        loader="h3d:h3d",
        metric=metrics.VOC07_MAP, task_group="attributes", profiles=("full",),
        paper=PaperEntry("h3d", C=0.2, best_prior="DPD", figure1=Figure1Bar(4, "Human attributes (H3D)")),
        title="H3D / Berkeley 'attributes of people'",
        task="9 binary person attributes",
        kind="download",
        folder="h3d",
        images="8,035 people (train+val 4,013 / test 4,022)",
        size_on_disk="0.3 GB",
        license="Research use; images from H3D and PASCAL VOC; cite Bourdev, Maji, Malik.",
        protocol="Train on train, test on test; the person box (enlarged to 150%) is the crop; attribute value 0 "
        "(unknown) is ignored.",
        scoring="AP per attribute and mAP.",
        paper_table="Table 6",
        homepage="https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/shape/poselets/",
        artifacts=(
            Artifact(
                "attributes_dataset.tgz",
                ("https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/shape/poselets/attributes_dataset.tgz",),
            ),
        ),
        checks=(
            CountCheck("**/train/labels.txt", 4013, lines=True, strict=False),
            CountCheck("**/test/labels.txt", 4022, lines=True, strict=False),
        ),
        notes="The paper's 'H3D' table uses the Berkeley attributes-of-people set (Bourdev et al. ICCV 2011). "
        "Format read: {train,test}/labels.txt, lines 'name x y w h a1 .. a9' with 1 / -1 / 0 (unknown).",
        citation="L. Bourdev, S. Maji, J. Malik, 'Describing People: A Poselet-Based Approach to Attribute "
        "Classification', ICCV 2011.",
    ),
    DatasetSpec(
        name="oxford5k",
        loader="oxford_paris:oxford5k",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="spatial", whitening_source="paris6k",
        profiles=("full",),
        paper=PaperEntry("oxford5k", best_prior="ASMK+MA", figure1=Figure1Bar(6, "Oxford5k")),
        title="Oxford Buildings 5k",
        task="instance retrieval (landmarks)",
        kind="download",
        folder="oxford5k",
        images="5,063; 55 queries (11 landmarks x 5)",
        size_on_disk="1.9 GB",
        license=VGG_TERMS,
        protocol="Query = cropped region (query box); positives good+ok; junk ignored; the query image stays in the "
        "database as in the official compute_ap.",
        scoring="mAP.",
        paper_table="Table 7",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/",
        artifacts=(
            _OXFORD_IMAGES,
            Artifact(
                "gt_files_170407.tgz",
                ("https://www.robots.ox.ac.uk/~vgg/data/oxbuildings/gt_files_170407.tgz",),
                extract_to="gt",
            ),
        ),
        checks=(CountCheck("jpg/*.jpg", 5063), CountCheck("gt/*_query.txt", 55)),
        notes="The old name oxbuild_images.tgz no longer resolves; the images are now oxbuild_images-v1.tgz, and "
        "www.robots.ox.ac.uk is reported to redirect to thor.robots.ox.ac.uk (listed as a mirror).",
        citation="J. Philbin, O. Chum, M. Isard, J. Sivic, A. Zisserman, 'Object retrieval with large vocabularies "
        "and fast spatial matching', CVPR 2007.",
    ),
    DatasetSpec(
        name="roxford5k",
        loader="oxford_paris:roxford5k",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="spatial", whitening_source="rparis6k",
        title="Revisited Oxford 5k",
        task="instance retrieval (landmarks), revisited ground truth",
        kind="download",
        folder="oxford5k",
        images="4,993 database + 70 queries",
        size_on_disk="1.9 GB (shares the Oxford images)",
        license=VGG_TERMS + " Revisited annotations: cite Radenovic et al.",
        protocol="Queries are separate from the database; Easy / Medium (default) / Hard setups from "
        "gnd_roxford5k.pkl; query boxes used.",
        scoring="mAP per setup (Medium and Hard are the usual ones).",
        paper_table="not in the paper (2018 re-annotation); Table 7 uses the original oxford5k",
        homepage="http://cmp.felk.cvut.cz/revisitop/",
        artifacts=(
            _OXFORD_IMAGES,
            Artifact(
                "gnd_roxford5k.pkl",
                (f"{_REVISITOP}/roxford5k/gnd_roxford5k.pkl", "http://cmp.felk.cvut.cz/cnnimageretrieval/data/test/"
                 "roxford5k/gnd_roxford5k.pkl"),
                extract=False,
            ),
        ),
        checks=(CountCheck("jpg/*.jpg", 5063),),
        notes="Shares its folder with oxford5k, so the images are downloaded once. The .pkl is read with a "
        "restricted unpickler (plain containers, numbers, strings and numpy arrays only).",
        citation="F. Radenovic, A. Iscen, G. Tolias, Y. Avrithis, O. Chum, 'Revisiting Oxford and Paris: "
        "Large-Scale Image Retrieval Benchmarking', CVPR 2018.",
    ),
    DatasetSpec(
        name="paris6k",
        loader="oxford_paris:paris6k",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="spatial", whitening_source="oxford5k",
        profiles=("full",),
        paper=PaperEntry("paris6k", best_prior="ASMK+MA", figure1=Figure1Bar(7, "Paris6k")),
        title="Paris 6k",
        task="instance retrieval (landmarks)",
        kind="download",
        folder="paris6k",
        images="6,412 in the archives (20 are corrupt and dropped); 55 queries",
        size_on_disk="2.4 GB",
        license=VGG_TERMS,
        protocol="As oxford5k: query boxes, positives good+ok, junk ignored.",
        scoring="mAP.",
        paper_table="Table 7",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/",
        artifacts=(
            *_PARIS_IMAGES,
            Artifact(
                "paris_120310.tgz",
                ("https://www.robots.ox.ac.uk/~vgg/data/parisbuildings/paris_120310.tgz",),
                extract_to="gt",
            ),
        ),
        checks=(CountCheck("jpg/**/*.jpg", 6412), CountCheck("gt/*_query.txt", 55)),
        notes="paris_1.tgz / paris_2.tgz were renamed -v1; 20 images of the archives cannot be decoded and are left "
        "out by the loader (list in course_utils/datasets/oxford_paris.py).",
        citation="J. Philbin, O. Chum, M. Isard, J. Sivic, A. Zisserman, 'Lost in Quantization', CVPR 2008.",
    ),
    DatasetSpec(
        name="rparis6k",
        loader="oxford_paris:rparis6k",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="spatial", whitening_source="roxford5k",
        title="Revisited Paris 6k",
        task="instance retrieval (landmarks), revisited ground truth",
        kind="download",
        folder="paris6k",
        images="6,322 database + 70 queries",
        size_on_disk="2.4 GB (shares the Paris images)",
        license=VGG_TERMS + " Revisited annotations: cite Radenovic et al.",
        protocol="As roxford5k.",
        scoring="mAP per setup (Easy / Medium / Hard).",
        paper_table="not in the paper (2018 re-annotation); Table 7 uses the original paris6k",
        homepage="http://cmp.felk.cvut.cz/revisitop/",
        artifacts=(
            *_PARIS_IMAGES,
            Artifact(
                "gnd_rparis6k.pkl",
                (f"{_REVISITOP}/rparis6k/gnd_rparis6k.pkl", "http://cmp.felk.cvut.cz/cnnimageretrieval/data/test/"
                 "rparis6k/gnd_rparis6k.pkl"),
                extract=False,
            ),
        ),
        checks=(CountCheck("jpg/**/*.jpg", 6412),),
        notes="Shares its folder with paris6k.",
        citation="F. Radenovic et al., CVPR 2018.",
    ),
    DatasetSpec(
        name="sculptures6k",
        loader="sculptures:sculptures6k",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="spatial", whitening_source="oxford5k",
        profiles=("full",),
        paper=PaperEntry("sculptures6k", best_prior="BoB", figure1=Figure1Bar(8, "Sculptures6k")),
        title="Sculptures 6k",
        task="instance retrieval (smooth, texture-less sculptures)",
        kind="manual",
        folder="sculptures6k",
        images="6,340 (train half 3,170 / test half 3,170); 70 queries",
        size_on_disk="about 2 GB",
        license=VGG_TERMS,
        protocol="Search the test half with the test-half queries (the train half is for learning, e.g. PCA).",
        scoring="mAP (positives good+ok, junk ignored).",
        paper_table="Table 7",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/sculptures6k/",
        checks=(CountCheck("**/*.jpg", 6340, strict=False),),
        manual="The original download links on the VGG page are reported down and no checksum is published. "
        "Download the images and the evaluation files from https://www.robots.ox.ac.uk/~vgg/data/sculptures6k/ "
        "(or the Kaggle mirror 'hunter0007/6k-sculptures-dataset', which needs a Kaggle account) and place them "
        "in ROOT as: train/*.jpg, test/*.jpg, sculptures6k_train.txt, sculptures6k_test.txt and the ground truth "
        "(gt/<query>_{good,ok,junk,query}.txt or sculptures6k_gt.txt). Then run: "
        "python data_scripts/download.py sculptures6k --verify-only",
        notes="The file layout was reconstructed from third-party readers (no official archive was reachable "
        "offline); see course_utils/datasets/sculptures.py.",
        citation="R. Arandjelovic, A. Zisserman, 'Smooth Object Retrieval using a Bag of Boundaries', ICCV 2011.",
    ),
    DatasetSpec(
        name="holidays",
        loader="holidays:holidays",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="jitter", whitening_source="oxford5k",
        profiles=("full",),
        paper=PaperEntry("holidays", best_prior="ASMK+MA", figure1=Figure1Bar(9, "Holidays")),
        title="INRIA Holidays",
        task="instance retrieval (holiday scenes)",
        kind="download",
        folder="holidays",
        images="1,491 in 500 groups; 500 queries",
        size_on_disk="2.7 GB",
        license="Research use; personal photos of the authors (INRIA); cite Jegou, Douze, Schmid.",
        protocol="The first image of each group (id divisible by 100) is the query; the rest of its group are the "
        "positives; the query itself is excluded (passed as junk).",
        scoring="mAP.",
        paper_table="Table 7",
        homepage="https://lear.inrialpes.fr/people/jegou/data.php",
        artifacts=tuple(
            Artifact(f"jpg{part}.tar.gz", (f"ftp://ftp.inrialpes.fr/pub/lear/douze/data/jpg{part}.tar.gz",))
            for part in (1, 2)
        ),
        checks=(CountCheck("jpg/*.jpg", 1491),),
        notes="The INRIA FTP server is slow and sometimes refuses connections (FTP cannot resume: a dropped transfer "
        "restarts). A minority of the images are stored sideways; later papers rotate them by hand, the paper "
        "did not. A copy with fixed orientation has been shared by other authors (holidays_rotated.tar.gz, "
        "Dropbox, no checksum); extract it so that the images sit in ROOT/jpg_rotated/, or build that folder from "
        "a rotation list with course_utils.datasets.holidays.write_rotated_copies, then load with rotated=True.",
        citation="H. Jegou, M. Douze, C. Schmid, 'Hamming Embedding and Weak Geometric Consistency for Large Scale "
        "Image Search', ECCV 2008.",
    ),
    DatasetSpec(
        name="ukbench",
        loader="ukbench:ukbench",
        metric=metrics.NS_SCORE, task_group="retrieval", search="jitter", whitening_source="holidays",
        profiles=("full",),
        paper=PaperEntry("ukbench", best_prior="CVLAD", figure1=Figure1Bar(10, "UKBench")),
        title="UKBench (University of Kentucky benchmark)",
        task="instance retrieval (objects, 4 views each)",
        kind="download",
        folder="ukbench",
        images="10,200 (2,550 objects x 4)",
        size_on_disk="1.5 GB",
        license="No explicit licence; distributed for research on retrieval; cite Nister & Stewenius.",
        protocol="Every image is a query against all 10,200; its 4 group images (itself included) are the positives.",
        scoring="N-S score: mean number of the 4 group images in the top 4 (max 4); Table 7 prints it x 25 (%).",
        paper_table="Table 7",
        homepage="https://archive.org/details/ukbench",
        artifacts=(_UKBENCH_ZIP,),
        checks=(CountCheck("full/*.jpg", 10200),),
        notes="The original host www.vis.uky.edu/~stewe/ukbench/ is offline; the Internet Archive copy is the "
        "working source. Some images carry EXIF orientation tags; the feature extractor applies exif_transpose.",
        citation="D. Nister, H. Stewenius, 'Scalable Recognition with a Vocabulary Tree', CVPR 2006.",
    ),
    DatasetSpec(
        name="demo_classes",
        loader="demo:demo_classes",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("demo",),
        title="Demo texture/material classes (built in)",
        task="8-class classification of crops cut from large packaged photographs",
        kind="builtin",
        folder="",
        images="built on first use (see course_utils/datasets/demo.py)",
        size_on_disk="a few MB in the cache",
        license="Sample photographs bundled in the scikit-image, scikit-learn and matplotlib wheels.",
        protocol="Training crops from the left two thirds of each photograph, test crops from the right third.",
        scoring="Mean per-class accuracy.",
        paper_table="none (offline demo)",
    ),
    DatasetSpec(
        name="demo_faces",
        loader="demo:demo_faces",
        metric=metrics.MEAN_AUC, task_group="attributes", profiles=("demo",),
        title="Demo faces (built in)",
        task="one binary attribute ('face') on scikit-image's LFW subset and non-face patches",
        kind="builtin",
        folder="",
        images="built on first use (see course_utils/datasets/demo.py)",
        size_on_disk="a few MB in the cache",
        license="As scikit-image's bundled LFW subset (research use).",
        protocol="See course_utils/datasets/demo.py.",
        scoring="AUC / AP.",
        paper_table="none (offline demo of the attribute tables)",
    ),
    DatasetSpec(
        name="demo_retrieval",
        loader="demo:demo_retrieval",
        metric=metrics.RETRIEVAL_MAP, task_group="retrieval", search="jitter", extra_search="spatial",
        whitening_source="demo_classes", profiles=("demo",),
        title="Demo retrieval set (built in)",
        task="Holidays-style instance retrieval: transformed copies of packaged photographs among distractors",
        kind="builtin",
        folder="",
        images="built on first use (see course_utils/datasets/demo.py)",
        size_on_disk="a few MB in the cache",
        license="Sample photographs bundled in the scikit-image, scikit-learn and matplotlib wheels.",
        protocol="Queries (crops, rotations, colour shifts, occlusion ...) are not in the database; see demo.py.",
        scoring="mAP.",
        paper_table="none (offline demo of Table 7's setting)",
    ),
    DatasetSpec(
        name="flowers17",
        loader="shared:flowers17",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("demo",),
        title="Oxford 17 Flowers",
        task="fine-grained classification, 17 classes",
        kind="download",
        folder="flowers17",
        images="1,360 (train 1,088 / test 272)",
        size_on_disk="60 MB (shared copy at 320 px: 35 MB)",
        license=VGG_TERMS,
        protocol="The course's 80/20 split (64 train / 16 test per class; lists in course_utils/datasets/splits/"
        "flowers17/, the same as the shared copy's); the official datasplits.mat (3 x 40/20/20 per class) with "
        "split='official1' .. 'official3'.",
        scoring="Mean per-class accuracy.",
        paper_table="none (sibling of Table 4's Flowers-102)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/flowers/17/",
        artifacts=(
            Artifact(
                "17flowers.tgz",
                (f"{_VGG_FLOWERS17}/17flowers.tgz",),
                md5="b59a65d8d1a99cd66944d474e1289eab",
                size=60_000_000,  # about
                unpacked_size=60_000_000,  # about
            ),
            Artifact(
                "datasplits.mat",
                (f"{_VGG_FLOWERS17}/datasplits.mat",),
                md5="4828cddfd0d803c5abbdebcb1e148a1e",
                extract=False,
            ),
        ),
        checks=(CountCheck("jpg/*.jpg", 1360),),
        shared_copy="oxford_flowers17",
        notes="The archive holds jpg/image_0001.jpg .. image_1360.jpg; image k is class ceil(k / 80). The MD5 values "
        "are the ones other dataset libraries record for the VGG files (none is published on the VGG page).",
        citation="M.-E. Nilsback, A. Zisserman, 'A Visual Vocabulary for Flower Classification', CVPR 2006.",
    ),
    DatasetSpec(
        name="dtd10",
        loader="shared:dtd10",
        metric=metrics.MEAN_CLASS_ACCURACY, profiles=("demo",),
        title="DTD textures, the first 10 of 47 classes",
        task="texture classification, 10 classes",
        kind="download",
        folder="dtd",
        images="1,200 (120 per class)",
        size_on_disk="0.63 GB (all 47 DTD classes; shared copy at 320 px: 38 MB)",
        license="Research purposes (DTD authors); images from Flickr.",
        protocol="The 10 alphabetically first classes; a seeded 40/40/40 split per class (lists in "
        "course_utils/datasets/splits/dtd10/), the same for the shared copy and the download.",
        scoring="Mean per-class accuracy.",
        paper_table="none (not one of the paper's benchmarks)",
        homepage="https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        artifacts=(
            Artifact(
                "dtd-r1.0.1.tar.gz",
                ("https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",),
                sha256="e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
                md5="fff73e5086ae6bdbea199a49dfb8a4c1",
                size=625_239_812,
                unpacked_size=630_000_000,  # about
            ),
        ),
        checks=(CountCheck("dtd/images/*/*.jpg", 5640),),
        shared_copy="dtd_subset10",
        notes="The archive holds all 47 classes (dtd/images/<class>/<class>_NNNN.jpg, dtd/labels/); the loader "
        "reads the first 10. Its official 10 splits are not used: the course's split is the seeded one above.",
        citation="M. Cimpoi, S. Maji, I. Kokkinos, S. Mohamed, A. Vedaldi, 'Describing Textures in the Wild', "
        "CVPR 2014.",
    ),
    DatasetSpec(
        name="ukbench2000",
        loader="shared:ukbench2000",
        metric=metrics.NS_SCORE, task_group="retrieval", search="jitter", whitening_source="dtd10",
        profiles=("demo",), paper=PaperEntry("ukbench"),
        subset_note="paper column: the full UKBench (10,200 images); this subset (2,000) scores higher",
        title="UKBench, first 2,000 images (objects 0-499)",
        task="instance retrieval (objects, 4 views each)",
        kind="download",
        folder="ukbench",
        images="2,000 (500 objects x 4)",
        size_on_disk="1.5 GB (the whole of ukbench, shared with it; shared copy at 320 px: 38 MB)",
        license="As ukbench.",
        protocol="As ukbench, on objects 0-499 (the image list ships in course_utils/datasets/splits/ukbench2000/); "
        "scores are higher than on the full 10,200.",
        scoring="N-S score (max 4).",
        paper_table="Table 7 (subset)",
        homepage="https://archive.org/details/ukbench",
        artifacts=(_UKBENCH_ZIP,),
        checks=(CountCheck("full/*.jpg", 10200),),
        shared_copy="ukbench_subset2000",
        notes="Downloads the whole of UKBench (into the ukbench folder, so ukbench needs no second download) and "
        "reads its first 2,000 images. 168 of those carry an EXIF orientation tag; the feature extractor applies "
        "exif_transpose.",
        citation="D. Nister, H. Stewenius, 'Scalable Recognition with a Vocabulary Tree', CVPR 2006.",
    ),
)

SPECS: dict[str, DatasetSpec] = {spec.name: spec for spec in _SPECS}


def get(name: str) -> DatasetSpec:
    """The spec called ``name``; a ``KeyError`` listing the known names otherwise."""
    if name not in SPECS:
        raise KeyError(f"No dataset spec called {name!r}. Known: {', '.join(sorted(SPECS))}.")
    return SPECS[name]


def in_profile(profile: str) -> tuple[str, ...]:
    """The datasets the ``reproduce`` profile ``profile`` runs, in the order of this table (their ``profiles``)."""
    config.profile(profile)  # an unknown profile's ValueError lists the known ones
    return tuple(spec.name for spec in SPECS.values() if profile in spec.profiles)


def default_root(name: str) -> Path:
    """Where ``python data_scripts/download.py NAME`` puts the files of ``name``: ``config.data_dir() / folder``."""
    return config.data_dir() / get(name).folder


def marker(folder: Path, artifact: Artifact) -> Path:
    """The file recording that ``artifact`` was downloaded, verified and extracted into ``folder`` (written last)."""
    return folder / DOWNLOADS / f"{artifact.filename}.done"


@dataclass(frozen=True)
class Location:
    """Where a dataset's files were found: ``source`` is ``"shared"`` or ``"downloaded"``."""

    source: str
    root: Path


def _spec(spec: DatasetSpec | str) -> DatasetSpec:
    return get(spec) if isinstance(spec, str) else spec


def shared_copy(spec: DatasetSpec | str) -> Path | None:
    """The shared copy of a dataset (``<shared data folder>/<shared_copy>``), or None when this machine has none.

    A missing or empty folder counts as none, so ``COURSE_SHARED_DATA`` pointing at an empty folder means "no shared
    copies" (CI runs the notebooks that way).
    """
    spec, shared = _spec(spec), config.shared_data_dir()
    if not spec.shared_copy or shared is None:
        return None
    folder = shared / spec.shared_copy
    return folder if folder.is_dir() and any(folder.iterdir()) else None


def downloaded_copy(spec: DatasetSpec | str, data_root: str | Path | None = None) -> Path | None:
    """The folder of a finished download of a dataset (every artifact's marker present), or None.

    ``data_root`` is the parent of the dataset folders (default ``config.data_dir()``). Manual datasets (no
    artifacts) count as downloaded when their folder exists; embedded demo sets never do.
    """
    spec = _spec(spec)
    if spec.kind == "builtin":
        return None
    folder = Path(data_root if data_root is not None else config.data_dir()).expanduser() / spec.folder
    done = all(marker(folder, a).is_file() for a in spec.artifacts) if spec.artifacts else folder.is_dir()
    return folder if done else None


def locate(name: str) -> Location | None:
    """The one rule for where data comes from: the shared copy, else the downloaded copy, else None.

    Callers fall back to an embedded demo set on None (:func:`course_utils.datasets.load_preferred`).
    """
    if (root := shared_copy(name)) is not None:
        return Location("shared", root)
    if (root := downloaded_copy(name)) is not None:
        return Location("downloaded", root)
    return None


def missing_error(name: str) -> DatasetMissingError:
    """The error for a dataset with neither a shared copy nor a finished download: it says how to get one."""
    spec, shared = get(name), config.shared_data_dir()
    if not spec.shared_copy:
        return DatasetMissingError(name, default_root(name))
    where = ("the shared data folder is absent" if shared is None
             else f"no {spec.shared_copy}/ in the shared data folder {shared}")
    return DatasetMissingError(
        name, default_root(name), detail=f"No shared copy ({where}) and no finished download.",
        hint=f"Download it with: {spec.download_command} (or set COURSE_SHARED_DATA to a folder that holds "
             f"{spec.shared_copy}/).",
    )


def find(name: str, root: str | Path | None) -> Location:
    """``root`` when given (source ``""``: a folder chosen by the caller), else :func:`locate`'s answer.

    Raises :func:`missing_error` when ``root`` is None and neither copy is on this machine.
    """
    if root is not None:
        return Location("", Path(root).expanduser().absolute())
    if (found := locate(name)) is None:
        raise missing_error(name)
    return found


def resolve_root(name: str, root: str | Path | None) -> Path:
    """``root`` as an absolute path, or :func:`default_root` of ``name`` when ``root`` is None."""
    return Path(root).expanduser().absolute() if root is not None else default_root(name)


def require(name: str, root: Path, *paths: Path | str) -> None:
    """Raise :class:`DatasetMissingError` (naming the download command) unless every path exists.

    Relative paths are taken below ``root``; the message lists the first few missing ones.
    """
    missing = [p for p in (root / p for p in paths) if not p.exists()]
    if missing:
        shown = ", ".join(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetMissingError(name, root, detail=f"Missing: {shown}{more}.")
