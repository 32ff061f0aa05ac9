"""The paper's published numbers, as data (from the CVPRW 2014 PDF; ``docs/paper.md`` section 6 prints
them as tables).

Reports and notebooks look numbers up here instead of typing them, so a "paper versus ours" table can never drift
from the source. Values are percent (mAP, mean accuracy, AUC, AP); UKBench in Table 7 is the paper's "top-4 recall"
in percent, which is the N-S score x 25 (see :func:`ukbench_percent_to_ns`).
"""

from __future__ import annotations

from dataclasses import dataclass

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
H3D_ATTRIBUTES = ("male", "long hair", "glasses", "hat", "tshirt", "long sleeves", "shorts", "jeans", "long pants")


@dataclass(frozen=True)
class PaperResult:
    """One number of the paper: a dataset, a method and its value in the table that prints it."""

    table: str
    dataset: str
    task: str
    method: str
    metric: str
    value: float
    ours: bool  # True for the paper's own CNN rows, False for the baselines it compares with


# Table 1, Pascal VOC 2007, AP per class (the same order as VOC_CLASSES), then mAP.
VOC07_PER_CLASS = {
    "GHM": (76.7, 74.7, 53.8, 72.1, 40.4, 71.7, 83.6, 66.5, 52.5, 57.5, 62.8, 51.1, 81.4, 71.5, 86.5, 36.4, 55.3, 60.6, 80.6, 57.8),
    "AGS": (82.2, 83.0, 58.4, 76.1, 56.4, 77.5, 88.8, 69.1, 62.2, 61.8, 64.2, 51.3, 85.4, 80.2, 91.1, 48.1, 61.7, 67.7, 86.3, 70.9),
    "NUS": (82.5, 79.6, 64.8, 73.4, 54.2, 75.0, 77.5, 79.2, 46.2, 62.7, 41.4, 74.6, 85.0, 76.8, 91.1, 53.9, 61.0, 67.5, 83.6, 70.6),
    "CNN-SVM": (88.5, 81.0, 83.5, 82.0, 42.0, 72.5, 85.3, 81.6, 59.9, 58.5, 66.5, 77.8, 81.8, 78.8, 90.2, 54.8, 71.1, 62.6, 87.2, 71.8),
    "CNNaug-SVM": (90.1, 84.4, 86.5, 84.1, 48.4, 73.4, 86.7, 85.4, 61.3, 67.6, 69.6, 84.0, 85.4, 80.0, 92.0, 56.9, 76.7, 67.3, 89.1, 74.9),
}
VOC07_MAP = {"GHM": 64.7, "AGS": 71.1, "NUS": 70.5, "CNN-SVM": 73.9, "CNNaug-SVM": 77.2}

# Table 6, H3D, AP per attribute (order H3D_ATTRIBUTES), then mAP.
H3D_PER_ATTRIBUTE = {
    "Freq": (59.3, 30.0, 22.0, 16.6, 23.5, 49.0, 17.9, 33.8, 74.7),
    "SPM": (68.1, 40.0, 25.9, 35.3, 30.6, 58.0, 31.4, 39.5, 84.3),
    "Poselets": (82.4, 72.5, 55.6, 60.1, 51.2, 74.2, 45.5, 54.7, 90.3),
    "DPD": (83.7, 70.0, 38.1, 73.4, 49.8, 78.1, 64.1, 78.1, 93.5),
    "CNN-SVM": (83.0, 67.6, 39.7, 66.8, 52.6, 82.2, 78.2, 71.7, 95.2),
    "CNNaug-SVM": (84.8, 71.0, 42.5, 66.9, 57.7, 84.0, 79.1, 75.7, 95.3),
}
H3D_MAP = {"Freq": 36.3, "SPM": 45.9, "Poselets": 65.2, "DPD": 69.9, "CNN-SVM": 70.8, "CNNaug-SVM": 73.0}

_OURS = {"CNN-SVM", "CNNaug-SVM", "CNN", "CNN-ss", "CNNaug-ss"}

def _rows() -> list[PaperResult]:
    rows: list[PaperResult] = []

    def add(table: str, dataset: str, task: str, metric: str, values: dict[str, float]) -> None:
        for method, value in values.items():
            rows.append(PaperResult(table, dataset, task, method, metric, value, method in _OURS))

    add("Table 1", "voc2007", "classification", "mAP (11-point)", VOC07_MAP)
    add("Table 2", "mit67", "classification", "mean class accuracy", {
        "ROI+Gist": 26.1, "DPM": 30.4, "Object Bank": 37.6, "RBoW": 37.9, "BoP": 46.1, "miSVM": 46.4,
        "D-Parts": 51.4, "IFV": 60.8, "MLrep": 64.0, "CNN-SVM": 58.4, "CNNaug-SVM": 69.0, "MOP-CNN": 68.9,
    })
    add("Table 3", "cub200", "fine-grained", "mean accuracy", {
        "Sift+Color+SVM": 17.3, "Pose pooling kernel": 28.2, "RF": 19.2, "DPD": 51.0, "POOF": 56.8,
        "CNN-SVM": 53.3, "CNNaug-SVM": 61.8, "DPD+DeCAF": 65.0,
    })
    add("Table 4", "flowers102", "fine-grained", "mean class accuracy", {
        "HSV": 43.0, "SIFT internal": 55.1, "SIFT boundary": 32.0, "HOG": 49.6, "MKL (Nilsback & Zisserman)": 72.8,
        "BOW(4000)": 65.5, "SPM(4000)": 67.4, "FLH(100)": 72.7, "BiCoS seg": 79.4, "Dense HOG+Coding+Pooling": 76.7,
        "Seg+Dense HOG+Coding+Pooling": 80.7, "CNN-SVM": 74.7, "CNNaug-SVM": 86.8,
    })
    add("Table 5", "uiuc_apascal", "attributes", "AUC within categories", {
        "Farhadi et al.": 83.4, "Latent Model": 62.2, "Sparse Representation": 89.6, "CNN-SVM": 91.7, "CNNaug-SVM": 93.7,
    })
    add("Table 5", "uiuc_ayahoo", "attributes", "AUC across categories", {
        "Latent Model": 79.9, "Sparse Representation": 90.2, "CNN-SVM": 82.2, "CNNaug-SVM": 84.9,
    })
    add("Table 5", "uiuc_apascal", "attributes", "mAUC", {
        "Farhadi et al.": 73.0, "Lampert et al.": 73.7, "CNN-SVM": 89.0, "CNNaug-SVM": 91.5,
    })
    add("Table 6", "h3d", "attributes", "mAP", H3D_MAP)
    retrieval = {
        # method: (Oxford5k, Paris6k, Sculptures6k, Holidays, UKBench) ; None where the paper prints "-" or N/A
        "BoB": (None, None, 45.4, None, None),
        "BoW": (36.4, 46.0, 8.1, 54.0, 70.3),
        "IFV": (41.8, None, None, 62.6, 83.8),
        "VLAD": (55.5, None, None, 64.6, None),
        "CVLAD": (47.8, None, None, 81.9, 89.3),
        "HE+burst": (64.5, None, None, 78.0, None),
        "AHE+burst": (66.6, None, None, 79.4, None),
        "Fine vocab": (74.2, 74.9, None, 74.9, None),
        "ASMK*+MA": (80.4, 77.0, None, 81.0, None),
        "ASMK+MA": (81.7, 78.2, None, 82.2, None),
        "CNN": (32.2, 49.5, 24.1, 64.2, 76.0),
        "CNN-ss": (55.6, 69.7, 31.1, 76.9, 86.9),
        "CNNaug-ss": (68.0, 79.5, 42.3, 84.3, 91.1),
        "MOP-CNN": (None, None, None, 80.2, None),
    }
    datasets = ("oxford5k", "paris6k", "sculptures6k", "holidays", "ukbench")
    for method, values in retrieval.items():
        for dataset, value in zip(datasets, values, strict=True):
            if value is not None:
                metric = "top-4 recall (%)" if dataset == "ukbench" else "mAP"
                rows.append(PaperResult("Table 7", dataset, "retrieval", method, metric, value, method in _OURS))
    return rows


RESULTS: tuple[PaperResult, ...] = tuple(_rows())


def paper_method(method: str) -> str:
    """The paper's row name of one of our methods: a qualifier in parentheses is ours ("CNN-ss (16-view jitter)")."""
    return method.split(" (", 1)[0]


def lookup(dataset: str, method: str, metric: str | None = None) -> float | None:
    """The paper's value for ``method`` on ``dataset`` (first match, or the one whose metric is ``metric``)."""
    for row in RESULTS:
        if row.dataset == dataset and row.method == method and (metric is None or row.metric == metric):
            return row.value
    return None


def best_prior(dataset: str, metric: str | None = None) -> PaperResult | None:
    """The best earlier method on ``dataset`` (one of the paper's names, e.g. ``"ukbench"``) as the paper names it,
    else the top baseline.

    The paper marks its best earlier method in bold (Tables 2-4) and as Figure 1's "SoTA" bars; the dataset's record
    keeps that name (``datasets.specs.get(dataset).paper.best_prior``). Later CNN methods that the paper also prints
    (MOP-CNN, DPD+DeCAF, PANDA, Oquab et al.) are not "prior": they came with or after it.
    """
    from .datasets import specs

    spec = specs.SPECS.get(dataset)
    named_method = spec.paper.best_prior if spec is not None and spec.paper is not None else None
    rows = [r for r in RESULTS if r.dataset == dataset and not r.ours and (metric is None or r.metric == metric)]
    named = [r for r in rows if r.method == named_method]
    if named:
        return named[0]
    return max(rows, key=lambda r: r.value) if rows else None


def ukbench_percent_to_ns(percent: float) -> float:
    """Table 7's UKBench column (percent of the 4 true images in the top 4) as an N-S score from 0 to 4."""
    return percent / 25.0


def ns_to_ukbench_percent(score: float) -> float:
    """An N-S score (0 to 4) as Table 7's UKBench percentage."""
    return score * 25.0
