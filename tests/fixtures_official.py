"""Tiny copies of the paper's benchmarks, written in their official file formats, for the loader tests.

Each ``make_*`` function writes a handful of 8 x 6 JPEGs and the dataset's real annotation files (same names, same
line formats, same folder layout as the official archives extract to) under ``root`` and returns ``root``. The tests
compare what the loaders read with the values written here by hand.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def jpeg(path: Path, size: tuple[int, int] = (8, 6), value: int = 128) -> Path:
    """Write a small grey JPEG at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path, format="JPEG")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_voc2007(root: Path) -> Path:
    """trainval = 000005 (train), 000007 (val), 000009 (train); test = 000001, 000002.

    car: 000005 positive, 000009 difficult (0). dog: test 000001 positive. person: test 000002 difficult.
    Every other entry is -1.
    """
    devkit = root / "VOCdevkit" / "VOC2007"
    trainval, test = ["000005", "000007", "000009"], ["000001", "000002"]
    flags = {("car", "000005"): 1, ("car", "000009"): 0, ("dog", "000001"): 1, ("person", "000002"): 0}
    main = devkit / "ImageSets" / "Main"
    write(main / "trainval.txt", "\n".join(trainval) + "\n")
    write(main / "train.txt", "000005\n000009\n")
    write(main / "val.txt", "000007\n")
    write(main / "test.txt", "\n".join(test) + "\n")
    for cls in VOC_CLASSES:
        for name, ids in (("trainval", trainval), ("test", test)):
            write(main / f"{cls}_{name}.txt", "".join(f"{i} {flags.get((cls, i), -1):2d}\n" for i in ids))
    for i in trainval + test:
        jpeg(devkit / "JPEGImages" / f"{i}.jpg")
    return root


def make_mit67(root: Path) -> Path:
    """Classes bedroom, kitchen; train 2 + 2, test 1 + 1; one extra unlisted image in the archive."""
    train = ["kitchen/int1.jpg", "kitchen/int2.jpg", "bedroom/b1.jpg", "bedroom/b2.jpg"]
    test = ["kitchen/int3.jpg", "bedroom/b3.jpg"]
    write(root / "TrainImages.txt", "\n".join(train) + "\n")
    write(root / "TestImages.txt", "\r\n".join(test) + "\r\n")  # the official files use Windows line ends
    for entry in train + test + ["kitchen/unlisted.jpg"]:
        jpeg(root / "Images" / entry)
    return root


def make_cub200(root: Path) -> Path:
    """3 images, classes 1 and 2; image 2 is a test image; boxes given as x y w h."""
    base = root / "CUB_200_2011"
    images = ["001.Black_footed_Albatross/a_1.jpg", "001.Black_footed_Albatross/a_2.jpg", "002.Laysan_Albatross/b_1.jpg"]
    write(base / "images.txt", "".join(f"{k} {p}\n" for k, p in enumerate(images, 1)))
    write(base / "image_class_labels.txt", "1 1\n2 1\n3 2\n")
    write(base / "train_test_split.txt", "1 1\n2 0\n3 1\n")
    write(base / "bounding_boxes.txt", "1 60.0 27.0 325.0 304.0\n2 1.0 2.0 3.0 4.0\n3 10.5 20.5 5.0 6.0\n")
    write(base / "classes.txt", "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    for p in images:
        jpeg(base / "images" / p)
    return root


def make_flowers102(root: Path, with_names: bool = False) -> Path:
    """6 images: labels 77, 77, 1, 102, 1, 2; trnid [3, 1], valid [2], tstid [4, 5, 6]."""
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    savemat(root / "imagelabels.mat", {"labels": np.array([[77, 77, 1, 102, 1, 2]], dtype=np.uint8)})
    savemat(root / "setid.mat", {"trnid": np.array([[3, 1]], dtype=np.uint16),
                                 "valid": np.array([[2]], dtype=np.uint16),
                                 "tstid": np.array([[4, 5, 6]], dtype=np.uint16)})
    for k in range(1, 7):
        jpeg(root / "jpg" / f"image_{k:05d}.jpg")
    if with_names:
        write(root / "cat_to_name.json", '{"1": "custom one", "77": "custom seventy-seven"}')
    return root


def uiuc_line(image: str, cls: str, box: tuple[int, int, int, int], on: set[int]) -> str:
    attributes = " ".join("1" if k in on else "0" for k in range(64))
    return f"{image} {cls} {' '.join(map(str, box))} {attributes}\n"


def make_uiuc(root: Path) -> Path:
    """aPascal train: 2 objects in one image; aPascal test: 1 object; aYahoo test: 1 object."""
    data = root / "attribute_data"
    write(data / "attribute_names.txt", "".join(f"attr{k}\n" for k in range(64)))
    write(data / "apascal_train.txt", uiuc_line("2008_000008.jpg", "horse", (52, 86, 470, 419), {0, 63})
          + uiuc_line("2008_000008.jpg", "person", (157, 43, 289, 167), {5}))
    write(data / "apascal_test.txt", uiuc_line("2008_000009.jpg", "cow", (1, 1, 8, 6), set()))
    write(data / "ayahoo_test.txt", uiuc_line("bag_1.jpg", "bag", (2, 3, 4, 5), {10, 11}))
    jpeg(root / "VOCdevkit" / "VOC2008" / "JPEGImages" / "2008_000008.jpg")
    jpeg(root / "VOCdevkit" / "VOC2008" / "JPEGImages" / "2008_000009.jpg")
    jpeg(root / "ayahoo_test_images" / "bag_1.jpg")
    return root


def make_h3d(root: Path) -> Path:
    """train: 2 people (the second without a box); test: 1 person."""
    base = root / "attributes_dataset"
    write(base / "train" / "labels.txt",
          "00001.jpg 10 20 30 40 1 -1 0 1 -1 -1 1 0 -1\n00002.jpg NaN NaN NaN NaN -1 1 1 -1 0 1 -1 -1 1\n")
    write(base / "test" / "labels.txt", "00001.jpg 1.5 2.5 3 4 0 0 0 0 0 0 0 0 1\n")
    for name in ("train/00001.jpg", "train/00002.jpg", "test/00001.jpg"):
        jpeg(base / name)
    return root


def make_oxford(root: Path) -> Path:
    """Images a_000000 .. a_000004 and b_000000, b_000001; queries a_1 (image a_000000) and b_1 (b_000001)."""
    for name in ("a_000000", "a_000001", "a_000002", "a_000003", "a_000004", "b_000000", "b_000001"):
        jpeg(root / "jpg" / f"{name}.jpg")
    gt = root / "gt"
    write(gt / "a_1_query.txt", "oxc1_a_000000 136.5 34.1 648.5 955.7\n")
    write(gt / "a_1_good.txt", "a_000000\na_000002\n")
    write(gt / "a_1_ok.txt", "a_000003\n")
    write(gt / "a_1_junk.txt", "a_000004\n")
    write(gt / "b_1_query.txt", "oxc1_b_000001 1 2 3 4\n")
    write(gt / "b_1_good.txt", "b_000000\n")
    write(gt / "b_1_ok.txt", "")
    write(gt / "b_1_junk.txt", "")
    return root


def make_paris(root: Path) -> Path:
    """Paris layout (jpg/paris/<landmark>/); paris_louvre_000136 is one of the 20 corrupt images."""
    folder = root / "jpg" / "paris"
    for name in ("paris_defense_000000", "paris_defense_000001", "paris_louvre_000000", "paris_louvre_000136"):
        jpeg(folder / name.split("_")[1] / f"{name}.jpg")
    gt = root / "gt"
    write(gt / "defense_1_query.txt", "paris_defense_000000 10 20 30 40\n")
    write(gt / "defense_1_good.txt", "paris_defense_000001\nparis_louvre_000136\n")
    write(gt / "defense_1_ok.txt", "")
    write(gt / "defense_1_junk.txt", "paris_louvre_000000\n")
    return root


def make_revisited(root: Path, name: str = "roxford5k", protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """Database d0..d4 and queries q0, q1 (separate images) with easy / hard / junk lists."""
    for image in ("d0", "d1", "d2", "d3", "d4", "q0", "q1"):
        jpeg(root / "jpg" / f"{image}.jpg")
    gnd = {
        "imlist": ["d0", "d1", "d2", "d3", "d4"],
        "qimlist": ["q0", "q1"],
        "gnd": [
            {"bbx": np.array([1.0, 2.0, 3.0, 4.0]), "easy": np.array([0, 2]), "hard": np.array([3]),
             "junk": np.array([4])},
            {"bbx": [5.0, 6.0, 7.0, 8.0], "easy": np.array([], dtype=int), "hard": np.array([1]),
             "junk": np.array([0])},
        ],
    }
    (root / f"gnd_{name}.pkl").write_bytes(pickle.dumps(gnd, protocol=protocol))
    return root


def make_holidays(root: Path, folder: str = "jpg") -> Path:
    """Groups 1000 (100000, 100001, 100002) and 1001 (100100, 100101)."""
    for image_id in (100000, 100001, 100002, 100100, 100101):
        jpeg(root / folder / f"{image_id}.jpg", size=(8, 6))
    return root


def make_ukbench(root: Path, n: int = 8) -> Path:
    for i in range(n):
        jpeg(root / "full" / f"ukbench{i:05d}.jpg")
    return root


def make_sculptures(root: Path, gt_format: str = "oxford") -> Path:
    """train: s0, s1, s2; test: t0, t1, t2, t3; queries q_train (image s0) and q_test (image t0)."""
    write(root / "sculptures6k_train.txt", "s0.jpg\ns1.jpg\ns2.jpg\n")
    write(root / "sculptures6k_test.txt", "t0.jpg\nt1.jpg\nt2.jpg\nt3.jpg\n")
    for name in ("s0", "s1", "s2"):
        jpeg(root / "train" / f"{name}.jpg")
    for name in ("t0", "t1", "t2", "t3"):
        jpeg(root / "test" / f"{name}.jpg")
    if gt_format == "oxford":
        gt = root / "gt"
        write(gt / "q_train_query.txt", "s0 1 1 5 5\n")
        write(gt / "q_train_good.txt", "s1\nt3\n")
        write(gt / "q_train_ok.txt", "")
        write(gt / "q_train_junk.txt", "s2\n")
        write(gt / "q_test_query.txt", "t0 2 2 6 6\n")
        write(gt / "q_test_good.txt", "t1\n")
        write(gt / "q_test_ok.txt", "t2\ns1\n")
        write(gt / "q_test_junk.txt", "t3\n")
    else:
        write(root / "sculptures6k_gt.txt",
              "query / box / positives / junk\n"
              "s0.jpg\n1 1 5 5\ns1.jpg t3.jpg\ns2.jpg\n"
              "t0.jpg\nno box here\nt1.jpg t2.jpg s1.jpg\nt3.jpg\n")
    return root
