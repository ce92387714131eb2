"""Write tiny fake copies of real datasets, in their exact on-disk formats, into a folder.

Each `write_*(root)` lays its dataset out under `root` as torchvision (or the dataset's own
distribution) would and returns what a correct reader must find: labels, ground truth and
the colour of each image. Every image is one solid colour (JPEG keeps a flat colour within a
few levels), so a test can tell which file ended up where after decoding.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def color(i: int) -> tuple[int, int, int]:
    """A distinct, JPEG-robust colour per index."""
    return (40 + 53 * i % 200, 200 - 37 * i % 160, 30 + 91 * i % 190)


def jpg(path: Path, rgb: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, rgb).save(path, quality=95)
    return path


def _text(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


# --- classification ------------------------------------------------------------------------

VOC_OBJECTS = {
    # id: [(class, difficult)]
    "000005": [("chair", 0), ("chair", 1), ("person", 1)],
    "000007": [("car", 0)],
    "000009": [("dog", 0), ("person", 0)],
    "000001": [("dog", 1)],
    "000002": [("train", 0), ("dog", 0)],
}


def write_voc2007(root: Path) -> dict:
    """VOCdevkit/VOC2007 with trainval (3 images) and test (2 images)."""
    base = root / "VOCdevkit" / "VOC2007"
    ids = {"trainval": ["000005", "000007", "000009"], "test": ["000001", "000002"]}
    for image_set, names in ids.items():
        _text(base / "ImageSets" / "Main" / f"{image_set}.txt", names)
    for k, (image_id, objects) in enumerate(VOC_OBJECTS.items()):
        jpg(base / "JPEGImages" / f"{image_id}.jpg", color(k))
        objs = "".join(
            f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"<difficult>{d}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
            f"<ymax>9</ymax></bndbox></object>"
            for name, d in objects
        )
        xml = (
            f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>40</width><height>30</height><depth>3</depth></size>{objs}</annotation>"
        )
        (base / "Annotations").mkdir(parents=True, exist_ok=True)
        (base / "Annotations" / f"{image_id}.xml").write_text(xml)
    return {"ids": ids, "colors": {i: color(k) for k, i in enumerate(VOC_OBJECTS)}}


def write_flowers102(root: Path) -> dict:
    """flowers-102/: 8 images, labels 1..102 in imagelabels.mat, splits in setid.mat."""
    from scipy.io import savemat

    base = root / "flowers-102"
    labels = [1, 1, 5, 5, 102, 102, 7, 7]  # 1-based, as the .mat files
    for i in range(1, len(labels) + 1):
        jpg(base / "jpg" / f"image_{i:05d}.jpg", color(i))
    savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    sets = {"trnid": [1, 3], "valid": [5, 7], "tstid": [2, 4, 6, 8]}
    savemat(base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in sets.items()})
    return {
        "train_ids": [1, 3, 5, 7],
        "test_ids": [2, 4, 6, 8],
        "labels": [v - 1 for v in labels],
    }


def write_pets(root: Path) -> dict:
    """oxford-iiit-pet/: images/ and annotations/{trainval,test}.txt (class id, species, breed)."""
    base = root / "oxford-iiit-pet"
    rows = {
        "trainval": [("Abyssinian_1", 1, 1, 1), ("american_bulldog_10", 2, 2, 1), ("Bengal_3", 3, 1, 3)],
        "test": [("Abyssinian_2", 1, 1, 1), ("american_bulldog_11", 2, 2, 1)],
    }
    k = 0
    for split, rs in rows.items():
        _text(base / "annotations" / f"{split}.txt", [" ".join(map(str, r)) for r in rs])
        for r in rs:
            jpg(base / "images" / f"{r[0]}.jpg", color(k))
            k += 1
    (base / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    return {"rows": rows, "classes": ("Abyssinian", "American Bulldog", "Bengal")}


def write_dtd(root: Path) -> dict:
    """dtd/dtd/: images/<class>/<file> and labels/{train,val,test}1.txt."""
    base = root / "dtd" / "dtd"
    lists = {
        "train1": ["banded/banded_0002.jpg", "zigzagged/zigzagged_0001.jpg"],
        "val1": ["dotted/dotted_0001.jpg"],
        "test1": ["banded/banded_0004.jpg", "dotted/dotted_0007.jpg", "zigzagged/zigzagged_0009.jpg"],
    }
    k = 0
    for name, rel in lists.items():
        _text(base / "labels" / f"{name}.txt", rel)
        for r in rel:
            jpg(base / "images" / r, color(k))
            k += 1
    return {"lists": lists, "classes": ("banded", "dotted", "zigzagged")}


def write_aircraft(root: Path) -> dict:
    """fgvc-aircraft-2013b/data/: variants.txt, images_variant_{trainval,test}.txt, images/."""
    data = root / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "A300B4", "Cessna 172"]  # names may contain spaces
    _text(data / "variants.txt", variants)
    rows = {"trainval": [("0034309", "Cessna 172"), ("0034958", "707-320")], "test": [("1514522", "A300B4")]}
    k = 0
    for split, rs in rows.items():
        _text(data / f"images_variant_{split}.txt", [f"{i} {v}" for i, v in rs])
        for i, _ in rs:
            jpg(data / "images" / f"{i}.jpg", color(k))
            k += 1
    return {"rows": rows, "classes": tuple(variants)}


def write_cars(root: Path) -> dict:
    """stanford_cars/: devkit/*.mat struct arrays, cars_train/, cars_test/."""
    from scipy.io import savemat

    base = root / "stanford_cars"
    fields = [
        ("bbox_x1", "O"),
        ("bbox_y1", "O"),
        ("bbox_x2", "O"),
        ("bbox_y2", "O"),
        ("class", "O"),
        ("fname", "O"),
    ]
    rows = {"train": [("00001.jpg", 2), ("00002.jpg", 1)], "test": [("00001.jpg", 3), ("00002.jpg", 1)]}
    k = 0
    for split, rs in rows.items():
        annos = np.zeros((1, len(rs)), dtype=fields)
        for j, (fname, cls) in enumerate(rs):
            annos[0, j] = (1, 1, 9, 9, cls, fname)
            jpg(base / f"cars_{split}" / fname, color(k))
            k += 1
        mat = (
            base / "devkit" / "cars_train_annos.mat"
            if split == "train"
            else base / "cars_test_annos_withlabels.mat"
        )
        mat.parent.mkdir(parents=True, exist_ok=True)
        savemat(mat, {"annotations": annos})
    names = np.array(
        [["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi R8 Coupe 2012"]], dtype=object
    )
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    return {"rows": rows, "classes": tuple(names[0])}


def write_food101(root: Path) -> dict:
    """food-101/: meta/{train,test}.json ({class: ["class/id", ...]}) and images/."""
    base = root / "food-101"
    meta = {
        "train": {"tacos": ["tacos/11", "tacos/12"], "apple_pie": ["apple_pie/21"]},
        "test": {"tacos": ["tacos/13"], "apple_pie": ["apple_pie/22"]},
    }
    k = 0
    for split, m in meta.items():
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "meta" / f"{split}.json").write_text(json.dumps(m))
        for rel in [r for v in m.values() for r in v]:
            jpg(base / "images" / f"{rel}.jpg", color(k))
            k += 1
    return {"meta": meta, "classes": ("apple_pie", "tacos")}


def write_sun397(root: Path, partitions: bool = False) -> dict:
    """SUN397/: ClassName.txt and <letter>/<class>/sun_*.jpg (3 images per class)."""
    base = root / "SUN397"
    classes = ["/a/abbey", "/a/apartment_building/outdoor", "/b/beach"]
    _text(base / "ClassName.txt", classes)
    files = {}
    k = 0
    for c in classes:
        files[c] = []
        for j in range(3):
            rel = f"{c}/sun_{'abc'[j]}{k:03d}.jpg"
            jpg(base / rel.strip("/"), color(k))
            files[c].append(rel)
            k += 1
    if partitions:
        _text(base / "Training_01.txt", [files[c][2] for c in classes])
        _text(base / "Testing_01.txt", [files[c][0] for c in classes])
    return {"files": files, "classes": ("abbey", "apartment_building/outdoor", "beach")}


def write_caltech101(root: Path) -> dict:
    """caltech101/101_ObjectCategories/<class>/image_NNNN.jpg (+ BACKGROUND_Google)."""
    base = root / "caltech101" / "101_ObjectCategories"
    counts = {"accordion": 3, "Faces": 2, "BACKGROUND_Google": 2}
    k = 0
    for cls, n in counts.items():
        for j in range(1, n + 1):
            jpg(base / cls / f"image_{j:04d}.jpg", color(k))
            k += 1
    return {"classes": ("Faces", "accordion")}


def _cifar_rows(colors: list[tuple[int, int, int]]) -> np.ndarray:
    """CIFAR's row layout: 1024 red, 1024 green, 1024 blue values per image."""
    return np.array([np.repeat(np.array(c, dtype=np.uint8), 1024) for c in colors], dtype=np.uint8)


def write_cifar10(root: Path) -> dict:
    """cifar-10-batches-py/: data_batch_1..5, test_batch, batches.meta (pickled dicts)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    train_labels, k = [], 0
    for b in range(1, 6):
        labels = [(b + j) % 10 for j in range(2)]
        train_labels += labels
        batch = {
            "batch_label": f"training batch {b} of 5",
            "labels": labels,
            "data": _cifar_rows([color(k), color(k + 1)]),
            "filenames": ["a.png", "b.png"],
        }
        k += 2
        with open(base / f"data_batch_{b}", "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    test = {"labels": [9, 0, 4], "data": _cifar_rows([color(20), color(21), color(22)])}
    with open(base / "test_batch", "wb") as fh:
        pickle.dump(test, fh, protocol=2)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(base / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names, "num_vis": 3072}, fh, protocol=2)
    return {
        "train_labels": train_labels,
        "test_labels": [9, 0, 4],
        "test_colors": [color(20), color(21), color(22)],
        "classes": tuple(names),
    }


def write_cifar100(root: Path) -> dict:
    """cifar-100-python/: train, test, meta (fine and coarse labels)."""
    base = root / "cifar-100-python"
    base.mkdir(parents=True, exist_ok=True)
    for split, fine in (("train", [3, 99]), ("test", [50])):
        entry = {
            "fine_labels": fine,
            "coarse_labels": [0] * len(fine),
            "data": _cifar_rows([color(i) for i in fine]),
        }
        with open(base / split, "wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    names = [f"class{i:02d}" for i in range(100)]
    with open(base / "meta", "wb") as fh:
        pickle.dump({"fine_label_names": names, "coarse_label_names": ["c"] * 20}, fh, protocol=2)
    return {"train_labels": [3, 99], "test_labels": [50], "classes": tuple(names)}


def write_image_folder(base: Path) -> dict:
    """base/train/<class>/*.jpg|png and base/test/<class>/*."""
    layout = {
        "train": {"cat": ["c1.jpg", "c2.png"], "dog": ["d1.jpg"]},
        "test": {"dog": ["d2.jpg"], "cat": ["c3.JPG"]},
    }
    k = 0
    for split, classes in layout.items():
        for cls, names in classes.items():
            for name in names:
                path = base / split / cls / name
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (30, 30), color(k)).save(
                    path, format="PNG" if name.endswith("png") else "JPEG"
                )
                k += 1
    (base / "train" / "cat" / "notes.txt").write_text("not an image")
    return {"classes": ("cat", "dog"), "train_labels": [0, 0, 1], "test_labels": [0, 1]}


# --- retrieval -------------------------------------------------------------------------------


def write_holidays(root: Path) -> dict:
    """holidays/jpg/NNNNxx.jpg: groups 1000 (3 images), 1001 (2), 1002 (1)."""
    names = ["100000", "100001", "100002", "100100", "100101", "100200"]
    for k, n in enumerate(names):
        jpg(root / "holidays" / "jpg" / f"{n}.jpg", color(k))
    return {"names": names}


def write_ukbench(root: Path) -> dict:
    """ukbench/full/ukbenchNNNNN.jpg: 3 groups of 4."""
    for i in range(12):
        jpg(root / "ukbench" / "full" / f"ukbench{i:05d}.jpg", color(i))
    return {"n": 12}


QUERY_SIZE = (400, 300)
QUERY_BOX = (200.0, 0.0, 400.0, 300.0)  # the right half, which is QUERY_RIGHT; the left is QUERY_LEFT
QUERY_LEFT, QUERY_RIGHT = (250, 20, 20), (20, 20, 250)


def _two_halves(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", QUERY_SIZE, QUERY_LEFT)
    im.paste(QUERY_RIGHT, (QUERY_SIZE[0] // 2, 0, QUERY_SIZE[0], QUERY_SIZE[1]))
    im.save(path, quality=95)


def write_oxford_classic(root: Path, dataset: str = "oxford5k") -> dict:
    """Classic Oxford (flat jpg/ + gt_files/, "oxc1_" query prefix) or Paris (per-landmark
    image folders, no prefix). Two queries; one zero-byte image (as Paris's broken files)."""
    base = root / dataset
    paris = dataset == "paris6k"
    names = [
        "all_souls_000001",
        "all_souls_000002",
        "all_souls_000003",
        "christ_church_000001",
        "magdalen_000001",
        "radcliffe_camera_000001",
        "radcliffe_camera_000002",
    ]
    for k, n in enumerate(names):
        folder = base / ("images" if not paris else f"paris/{n.rsplit('_', 1)[0]}")
        if n == "all_souls_000001":
            _two_halves(folder / f"{n}.jpg")
        else:
            jpg(folder / f"{n}.jpg", color(k))
    broken = base / ("images" if not paris else "paris/radcliffe_camera") / "radcliffe_camera_000003.jpg"
    broken.write_bytes(b"")
    gt = base / "gt_files"
    prefix = "" if paris else "oxc1_"
    box = " ".join(str(v) for v in QUERY_BOX)
    _text(gt / "all_souls_1_query.txt", [f"{prefix}all_souls_000001 {box}"])
    _text(gt / "all_souls_1_good.txt", ["all_souls_000001", "all_souls_000002"])
    _text(gt / "all_souls_1_ok.txt", ["all_souls_000003"])
    _text(gt / "all_souls_1_junk.txt", ["christ_church_000001"])
    _text(gt / "radcliffe_camera_1_query.txt", [f"{prefix}radcliffe_camera_000001 1.0 2.0 30.0 25.0"])
    _text(
        gt / "radcliffe_camera_1_good.txt",
        ["radcliffe_camera_000001", "radcliffe_camera_000002", "radcliffe_camera_000003"],
    )
    _text(gt / "radcliffe_camera_1_ok.txt", [])
    _text(gt / "radcliffe_camera_1_junk.txt", [])
    return {"db": sorted(names)}


def write_revisited(root: Path, dataset: str = "roxford5k") -> dict:
    """<dataset>/gnd_<dataset>.pkl (imlist, qimlist, gnd with bbx/easy/hard/junk) and jpg/."""
    base = root / dataset
    imlist = [
        "radcliffe_camera_000002",
        "all_souls_000002",
        "all_souls_000003",
        "magdalen_000001",
        "christ_church_000001",
        "all_souls_000004",
    ]
    qimlist = ["all_souls_000001"]
    for k, n in enumerate(imlist):
        jpg(base / "jpg" / f"{n}.jpg", color(k))
    _two_halves(base / "jpg" / "all_souls_000001.jpg")
    gnd = [
        {"bbx": np.array(QUERY_BOX), "easy": np.array([1, 5]), "hard": np.array([2]), "junk": np.array([4])}
    ]
    with open(base / f"gnd_{dataset}.pkl", "wb") as fh:
        pickle.dump({"imlist": imlist, "qimlist": qimlist, "gnd": gnd}, fh)
    return {"imlist": imlist}
