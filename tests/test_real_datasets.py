"""Real-data adapters on tiny fake copies of each dataset's on-disk format (no network)."""

from __future__ import annotations

import pickle
import socket
from dataclasses import replace
from pathlib import Path
from xml.etree.ElementTree import parse as parse_xml

import numpy as np
import pytest
import real_fixtures as F
import torchvision.datasets as tvd
from transferlab import metrics
from transferlab.real import (
    REAL_TASKS,
    SPEC_FILE,
    DatasetNotFound,
    available,
    index,
    load_task,
    tasks,
)
from transferlab.real import datasets as D
from transferlab.real.retrieval_layouts import load_plain_pickle
from transferlab.tasks import TaskSpec

SIZE = 16
WRITERS = {
    "voc2007": F.write_voc2007,
    "flowers102": F.write_flowers102,
    "oxford_pets": F.write_pets,
    "dtd": F.write_dtd,
    "fgvc_aircraft": F.write_aircraft,
    "stanford_cars": F.write_cars,
    "food101": F.write_food101,
    "sun397": F.write_sun397,
    "caltech101": F.write_caltech101,
    "cifar10": F.write_cifar10,
    "cifar100": F.write_cifar100,
    "mit67": lambda root: F.write_image_folder(root / "mit67"),
    "holidays": F.write_holidays,
    "ukbench": F.write_ukbench,
    "oxford5k": lambda root: F.write_oxford_classic(root, "oxford5k"),
    "paris6k": lambda root: F.write_oxford_classic(root, "paris6k"),
    "roxford5k": lambda root: F.write_revisited(root, "roxford5k"),
}


def _refuse(*args, **kwargs):
    raise AssertionError("a test tried to reach the network")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    import torchvision.datasets.utils as tvu

    for fn in ("download_url", "download_and_extract_archive", "download_file_from_google_drive"):
        monkeypatch.setattr(tvu, fn, _refuse)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("data")
    return root, {name: write(root) for name, write in WRITERS.items()}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def load(name: str, data, cache, **kw):
    return load_task(name, data[0], image_size=SIZE, cache_dir=cache, **kw)


def mean_color(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def assert_color(img: np.ndarray, rgb, atol: float = 8.0) -> None:
    assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
    np.testing.assert_allclose(mean_color(img), rgb, atol=atol)


# --- registry ----------------------------------------------------------------------------------


def test_registry_specs_follow_the_paper():
    assert all(s.role == "target" for s in REAL_TASKS.values())
    assert REAL_TASKS["voc2007"].metric == "voc07_map" and REAL_TASKS["voc2007"].distance_rank == 1
    assert REAL_TASKS["sun397"].distance_rank == 3
    assert REAL_TASKS["oxford_pets"].metric == "mean_class_accuracy"
    assert REAL_TASKS["flowers102"].metric == "mean_class_accuracy"
    assert REAL_TASKS["flowers102"].distance_rank == 9 and REAL_TASKS["oxford_pets"].distance_rank == 7
    assert REAL_TASKS["holidays"].distance_rank == 13 and REAL_TASKS["ukbench"].metric == "ns_score"
    assert {REAL_TASKS[n].group for n in ("holidays", "ukbench", "oxford5k", "rparis6k")} == {"retrieval"}
    ranks = [s.distance_rank for s in REAL_TASKS.values()]
    assert min(ranks) >= 1 and max(ranks) <= 16


def test_available_lists_what_is_on_disk(data, tmp_path):
    found = available(data[0])
    assert set(found) == set(WRITERS) | {"roxford5k_hard"}
    assert available(tmp_path) == []


# --- classification ----------------------------------------------------------------------------


def _voc_expected(ids: list[str]) -> np.ndarray:
    gt = np.full((len(ids), 20), -1, dtype=np.int8)
    for i, image_id in enumerate(ids):
        for name, difficult in F.VOC_OBJECTS[image_id]:
            c = D.VOC_CLASSES.index(name)
            gt[i, c] = max(gt[i, c], 0 if difficult else 1)
    return gt


def test_voc2007_labels_keep_difficult_in_voc_convention(data, cache):
    task = load("voc2007", data, cache)
    train, test = task.labels["train"], task.labels["test"]
    assert train.dtype == np.int8 and train.shape == (3, 20) and test.shape == (2, 20)
    chair, person, dog = (D.VOC_CLASSES.index(c) for c in ("chair", "person", "dog"))
    # 000005: a normal and a difficult chair -> 1; only a difficult person -> 0 (difficult)
    assert train[0, chair] == 1 and train[0, person] == 0 and train[0, dog] == -1
    assert test[0, dog] == 0 and test[1, dog] == 1
    np.testing.assert_array_equal(train, _voc_expected(data[1]["voc2007"]["ids"]["trainval"]))
    labels01, difficult = metrics.voc_gt_split(train)
    assert labels01[0, chair] == 1 and difficult[0, person] and not difficult[0, chair]
    # torchvision's own parser of the same files agrees
    ref = tvd.VOCDetection(str(data[0]), year="2007", image_set="test")
    for i in range(len(ref)):
        objs = ref.parse_voc_xml(parse_xml(ref.annotations[i]).getroot())
        names = {o["name"] for o in objs["annotation"]["object"]}
        assert names == {D.VOC_CLASSES[c] for c in np.flatnonzero(test[i] >= 0)}
    assert_color(task.images["train"][1], data[1]["voc2007"]["colors"]["000007"])
    assert task.spec.n_classes == 20 and task.class_names[0] == "aeroplane"


def test_flowers102_reads_the_mat_files(data, cache):
    task = load("flowers102", data, cache)
    exp = data[1]["flowers102"]
    np.testing.assert_array_equal(task.labels["train"], [exp["labels"][i - 1] for i in exp["train_ids"]])
    np.testing.assert_array_equal(task.labels["test"], [0, 4, 101, 6])
    assert task.class_names[101] == "blackberry lily" and task.spec.n_classes == 102
    for row, image_id in enumerate(exp["train_ids"]):
        assert_color(task.images["train"][row], F.color(image_id))


@pytest.mark.parametrize(
    "name, tv_splits",
    [
        (
            "oxford_pets",
            {"train": ("OxfordIIITPet", {"split": "trainval"}), "test": ("OxfordIIITPet", {"split": "test"})},
        ),
        ("dtd", {"test": ("DTD", {"split": "test"})}),
        (
            "fgvc_aircraft",
            {"train": ("FGVCAircraft", {"split": "trainval"}), "test": ("FGVCAircraft", {"split": "test"})},
        ),
        (
            "stanford_cars",
            {"train": ("StanfordCars", {"split": "train"}), "test": ("StanfordCars", {"split": "test"})},
        ),
        ("food101", {"train": ("Food101", {"split": "train"}), "test": ("Food101", {"split": "test"})}),
        ("caltech101", {}),
        ("sun397", {}),
    ],
)
def test_layout_agrees_with_torchvision(data, name, tv_splits):
    layout = index(name, data[0])
    for split, (cls, kwargs) in tv_splits.items():
        ref = getattr(tvd, cls)(str(data[0]), **kwargs)
        if hasattr(ref, "_samples"):
            pairs = {(str(p), int(y)) for p, y in ref._samples}
        else:
            files = getattr(ref, "_image_files", None) or getattr(ref, "_images", None)
            pairs = {(str(p), int(y)) for p, y in zip(files, ref._labels, strict=True)}
        mine = {
            (str(it.path), int(y)) for it, y in zip(layout.splits[split], layout.labels[split], strict=True)
        }
        assert mine == pairs
    if name in ("caltech101", "sun397"):  # no official split in torchvision: compare the union
        ref = tvd.Caltech101(str(data[0])) if name == "caltech101" else tvd.SUN397(str(data[0]))
        ref_labels = ref.y if name == "caltech101" else ref._labels
        mine = np.concatenate([layout.labels["train"], layout.labels["test"]])
        assert sorted(mine.tolist()) == sorted(ref_labels)
        assert list(layout.class_names) == (ref.categories if name == "caltech101" else ref.classes)


def test_pets_dtd_aircraft_cars_food_labels(data, cache):
    pets = load("oxford_pets", data, cache)
    np.testing.assert_array_equal(pets.labels["train"], [0, 1, 2])
    assert pets.class_names == data[1]["oxford_pets"]["classes"]
    dtd = load("dtd", data, cache)  # train = train1 + val1
    np.testing.assert_array_equal(dtd.labels["train"], [0, 2, 1])
    np.testing.assert_array_equal(dtd.labels["test"], [0, 1, 2])
    air = load("fgvc_aircraft", data, cache)
    np.testing.assert_array_equal(air.labels["train"], [2, 0])
    assert air.class_names[2] == "Cessna 172"
    cars = load("stanford_cars", data, cache)
    np.testing.assert_array_equal(cars.labels["train"], [1, 0])
    np.testing.assert_array_equal(cars.labels["test"], [2, 0])
    assert cars.class_names[2] == "Audi R8 Coupe 2012"
    food = load("food101", data, cache)
    np.testing.assert_array_equal(food.labels["train"], [0, 1, 1])  # apple_pie, tacos, tacos
    assert all(t.spec.kind == "single-label" for t in (pets, dtd, air, cars, food))


def test_sun397_and_caltech101_splits(data, cache, tmp_path):
    sun = load("sun397", data, cache)  # no Partitions files: per class first half train
    np.testing.assert_array_equal(sun.labels["train"], [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(sun.labels["test"], [0, 1, 2])
    assert sun.class_names[1] == "apartment_building/outdoor"
    F.write_sun397(tmp_path, partitions=True)
    part = index("sun397", tmp_path)
    files = F.write_sun397(tmp_path / "again", partitions=True)["files"]
    assert [it.path.name for it in part.splits["train"]] == [Path(f[2]).name for f in files.values()]
    np.testing.assert_array_equal(part.labels["test"], [0, 1, 2])
    cal = load("caltech101", data, cache)  # BACKGROUND_Google left out; sorted class names
    assert cal.class_names == ("Faces", "accordion")
    np.testing.assert_array_equal(cal.labels["train"], [0, 1, 1])
    np.testing.assert_array_equal(cal.labels["test"], [0, 1])


def test_cifar_batches_give_exact_pixels(data, cache):
    task = load("cifar10", data, cache)
    exp = data[1]["cifar10"]
    np.testing.assert_array_equal(task.labels["train"], exp["train_labels"])
    np.testing.assert_array_equal(task.labels["test"], exp["test_labels"])
    for img, rgb in zip(task.images["test"], exp["test_colors"], strict=True):
        np.testing.assert_array_equal(img, np.broadcast_to(np.array(rgb, dtype=np.uint8), (SIZE, SIZE, 3)))
    assert task.class_names[9] == "truck"
    c100 = load("cifar100", data, cache)
    np.testing.assert_array_equal(c100.labels["train"], [3, 99])
    assert c100.spec.n_classes == 100 and c100.class_names[50] == "class50"


def test_limit_spreads_over_the_split(data, cache):
    task = load("cifar10", data, cache, limit=3)
    np.testing.assert_array_equal(task.labels["train"], [1, 3, 6])  # rows 0, 4, 9 of 10
    assert task.images["train"].shape == (3, SIZE, SIZE, 3)


def test_image_folders_are_tasks_placed_by_their_file(data, cache, tmp_path):
    root = tmp_path / "data"
    exp = F.write_image_folder(root / "birds")
    F.write_image_folder(root / "textures")
    F.write_image_folder(root / "mit67")  # a known folder dataset: its paper place by default
    (root / "birds" / SPEC_FILE).write_text("group: fine-grained\ndistance_rank: 8\n"
                                             "metric: mean_class_accuracy\nanalog: CUB\n")
    assert available(root) == ["mit67", "birds", "textures"]
    found = tasks(root)
    assert found["birds"] == TaskSpec("birds", "target", "fine-grained", "single-label",
                                      "mean_class_accuracy", "CUB", 8, 2)
    assert (found["textures"].group, found["textures"].distance_rank) == ("classification", 2)
    assert found["mit67"] == replace(REAL_TASKS["mit67"], n_classes=2)
    task = load_task("birds", root, image_size=SIZE, cache_dir=cache)
    assert task.spec == found["birds"] and task.class_names == exp["classes"]
    np.testing.assert_array_equal(task.labels["train"], exp["train_labels"])  # notes.txt skipped
    np.testing.assert_array_equal(task.labels["test"], exp["test_labels"])
    wrong = TaskSpec("x", "target", "classification", "multi-label", "voc07_map", "VOC07", 1, 2)
    with pytest.raises(ValueError, match="kind 'single-label'"):
        load_task("birds", root, spec=wrong)
    with pytest.raises(ValueError, match=r"name='birdz' is not a real task.*found: \['birds', 'mit67'"):
        load_task("birdz", root)


@pytest.mark.parametrize(
    "text, match",
    [
        ("group: birds", r"transferlab.yaml: group='birds' is not valid; valid choices: "
                         r"\['classification', 'attributes', 'fine-grained', 'compositional'\]"),
        ("distance_rank: 0", r"transferlab.yaml: distance_rank=0 must be an integer from 1"),
        ("distance_rank: near", r"distance_rank='near' must be an integer"),
        ("kind: retrieval", r"kind='retrieval' is not valid; valid choices: \['single-label'\]"),
        ("metric: voc07_map", r"metric='voc07_map' is not valid; valid choices: \['accuracy'"),
        ("domain: indoor", r"domain='indoor' is not valid; valid choices: \['object', 'scene'\]"),
        ("rank: 3", r"transferlab.yaml: unknown keys \['rank'\]; valid keys: \['group'"),
        ("group: [a", r"transferlab.yaml is not valid YAML"),
        ("- 3", r"transferlab.yaml must hold a mapping"),
    ],
)
def test_image_folder_file_errors_name_the_file_key_and_choices(tmp_path, text, match):
    F.write_image_folder(tmp_path / "birds")
    (tmp_path / "birds" / SPEC_FILE).write_text(text + "\n")
    with pytest.raises(ValueError, match=match) as err:
        available(tmp_path)
    assert str(tmp_path / "birds" / SPEC_FILE) in str(err.value)


def test_image_folder_layout_errors(tmp_path):
    F.write_image_folder(tmp_path)  # the old layout: train/ and test/ directly in data_root
    with pytest.raises(ValueError, match=r"holds train/ and test/ directly.*mv .*train .*test "
                                         r".*my_task/.*tasks: \[my_task\]"):
        available(tmp_path)
    other = tmp_path / "other"
    (other / "birds").mkdir(parents=True)
    (other / "birds" / SPEC_FILE).write_text("group: fine-grained\n")
    with pytest.raises(ValueError, match=r"birds/transferlab.yaml describes an image-folder "
                                         r"dataset, but .*birds lacks train/<class>/<image>"):
        available(other)
    (other / "birds" / SPEC_FILE).unlink()
    F.write_image_folder(other / "flowers102")
    with pytest.raises(ValueError, match="'flowers102' is the name of a real dataset with its own "
                                         "layout; rename the folder"):
        load_task("flowers102", other)


def test_small_images_are_stored_at_their_own_size(tmp_path):
    """28 px images are not stored upscaled: bytes per image = their own 28 x 28 x 3."""
    root = tmp_path / "data"
    for split, n in (("train", 6), ("test", 4)):
        for k in range(n):
            F.jpg(root / "digits" / split / str(k % 2) / f"{k}.png", F.color(k), (28, 28))
    F.jpg(root / "digits" / "train" / "0" / "wide.png", F.color(9), (20, 12))
    task = load_task("digits", root, image_size=256, cache_dir=tmp_path / "c")
    assert task.images["train"].shape == (7, 28, 28, 3)
    stored = sum(f.stat().st_size for f in Path(task.images["train"].filename).parent.glob("*.u8"))
    assert stored == 11 * 28 * 28 * 3  # 2.2 MiB per 1,000 images instead of 188 MiB at 256 px
    big = load_task("digits", root, image_size=16, cache_dir=tmp_path / "c")
    assert big.images["test"].shape == (4, 16, 16, 3)  # larger than asked: squashed to it
    F.write_cifar10(tmp_path / "cifar")
    arrays = load_task("cifar10", tmp_path / "cifar", image_size=256, cache_dir=tmp_path / "c")
    assert arrays.images["train"].shape[1:] == (32, 32, 3)


# --- retrieval ---------------------------------------------------------------------------------


def test_holidays_groups_and_queries(data, cache):
    task = load("holidays", data, cache)
    names = data[1]["holidays"]["names"]  # 100000 100001 100002 | 100100 100101 | 100200
    assert task.images["database"].shape[0] == 6 and task.images["query"].shape[0] == 3
    np.testing.assert_array_equal(task.truth.query_in_db, [0, 3, 5])
    assert [p.tolist() for p in task.truth.positives] == [[1, 2], [4], []]
    assert all(j.size == 0 for j in task.truth.junk)
    np.testing.assert_array_equal(task.labels["database"], [0, 0, 0, 1, 1, 2])
    np.testing.assert_array_equal(task.labels["train"], [0, 0, 1])  # the database without queries
    for row, db in ((0, 1), (1, 2), (2, 4)):
        np.testing.assert_array_equal(task.images["train"][row], task.images["database"][db])
    for q, db in enumerate((0, 3, 5)):
        assert_color(task.images["query"][q], F.color(db))
    assert task.class_names == ("1000", "1001", "1002") and len(names) == 6
    small = load("holidays", data, cache, limit=2)  # groups 1000 and 1002
    np.testing.assert_array_equal(small.truth.query_in_db, [0, 3])
    assert small.class_names == ("1000", "1002")


def test_ukbench_every_image_is_a_query_stored_once(data, cache):
    task = load("ukbench", data, cache)
    np.testing.assert_array_equal(task.truth.query_in_db, np.arange(12))
    assert task.truth.positives[5].tolist() == [4, 6, 7]
    np.testing.assert_array_equal(task.labels["query"], np.repeat([0, 1, 2], 4))
    assert task.images["query"].filename == task.images["database"].filename == task.images["train"].filename
    assert_color(task.images["database"][7], F.color(7))
    small = load("ukbench", data, cache, limit=2)  # groups 0 and 2
    assert small.images["database"].shape[0] == 8
    assert_color(small.images["database"][4], F.color(8))
    assert small.truth.positives[4].tolist() == [5, 6, 7]


@pytest.mark.parametrize("name", ["oxford5k", "paris6k"])
def test_oxford_paris_classic_ground_truth(data, cache, name):
    task = load(name, data, cache)
    # database sorted by name; the zero-byte radcliffe_camera_000003 is left out everywhere
    assert task.images["database"].shape[0] == 7
    np.testing.assert_array_equal(task.truth.query_in_db, [0, 5])
    assert [p.tolist() for p in task.truth.positives] == [[1, 2], [6]]
    assert [j.tolist() for j in task.truth.junk] == [[3], []]
    np.testing.assert_array_equal(task.labels["database"], [0, 0, 0, -1, -1, 1, 1])
    assert task.class_names == ("all_souls", "radcliffe_camera")
    assert_color(task.images["query"][0], F.QUERY_RIGHT)  # cropped to the box: the right half
    db0 = mean_color(task.images["database"][0])  # the whole image: both halves
    np.testing.assert_allclose(db0, (np.array(F.QUERY_LEFT) + F.QUERY_RIGHT) / 2, atol=10)
    small = load(name, data, cache, limit=1)  # only images relevant to a query: magdalen goes
    assert small.images["database"].shape[0] == 6
    assert [j.tolist() for j in small.truth.junk] == [[3], []]
    assert [p.tolist() for p in small.truth.positives] == [[1, 2], [5]]


def test_revisited_protocols(data, cache):
    med = load("roxford5k", data, cache)
    hard = load("roxford5k_hard", data, cache)
    # imlist order is kept; the query image is not in the database
    assert med.truth.query_in_db.tolist() == [-1] == hard.truth.query_in_db.tolist()
    assert med.truth.positives[0].tolist() == [1, 2, 5] and med.truth.junk[0].tolist() == [4]
    assert hard.truth.positives[0].tolist() == [2] and hard.truth.junk[0].tolist() == [1, 4, 5]
    assert_color(med.images["query"][0], F.QUERY_RIGHT)
    assert_color(med.images["database"][3], F.color(3))
    assert med.spec.distance_rank == 15 and med.spec.metric == "retrieval_map"


def test_ground_truth_pickles_may_not_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "gnd.pkl"
    path.write_bytes(pickle.dumps({"imlist": [Evil()]}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        load_plain_pickle(path)


# --- errors, downloads and the cache -----------------------------------------------------------


def test_missing_dataset_messages(tmp_path):
    with pytest.raises(DatasetNotFound) as err:
        load_task("flowers102", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "flowers-102" / "jpg") in msg
    assert "download=True" in msg and "torchvision.datasets.Flowers102(root, download=True)" in msg
    with pytest.raises(DatasetNotFound, match="not in torchvision.*lear.inrialpes.fr"):
        load_task("holidays", tmp_path, download=True)
    F.write_voc2007(tmp_path)
    (tmp_path / "VOCdevkit/VOC2007/ImageSets/Main/test.txt").unlink()
    with pytest.raises(DatasetNotFound, match=r"test\.txt.*image_set='test', download=True"):
        load_task("voc2007", tmp_path)
    with pytest.raises(DatasetNotFound, match="ukbenchNNNNN"):
        (tmp_path / "ukbench").mkdir()
        load_task("ukbench", tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "voc2012"}, "name='voc2012' is not a real task; valid names: .*'cifar10'.*an image folder"),
        ({"image_size": 8}, "image_size=8"),
        ({"limit": 0}, "limit=0"),
        ({"workers": 0}, "workers=0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    args = {"name": "cifar10", "root": tmp_path} | kwargs
    with pytest.raises(ValueError, match=match):
        load_task(**args)


def test_download_goes_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    calls = []

    class FakeFlowers(tvd.Flowers102):  # keeps the real class's class names
        def __init__(self, root, download=False):
            calls.append((root, download))
            F.write_flowers102(Path(root))  # what a download leaves on disk

    monkeypatch.setattr(tvd, "Flowers102", FakeFlowers)
    with pytest.raises(DatasetNotFound):
        load_task("flowers102", tmp_path)
    assert calls == []
    task = load_task("flowers102", tmp_path, download=True, image_size=SIZE, cache_dir=tmp_path / "c")
    assert calls == [(str(tmp_path), True)] and task.labels["test"].tolist() == [0, 4, 101, 6]
    load_task("flowers102", tmp_path, download=True, image_size=SIZE, cache_dir=tmp_path / "c")
    assert len(calls) == 1  # present now: not fetched again


def test_image_cache_is_reused_rebuilt_and_keyed_by_files(tmp_path, monkeypatch):
    root = tmp_path / "data"
    F.write_dtd(root)
    first = load_task("dtd", root, image_size=SIZE, cache_dir=tmp_path / "c")
    assert isinstance(first.images["train"], np.memmap)
    folder = Path(first.images["train"].filename).parent
    assert (folder / "manifest.json").exists() and not list(folder.parent.glob(".*tmp"))

    decoded = []
    real_decode = D.decode
    monkeypatch.setattr(D, "decode", lambda item, size: decoded.append(item) or real_decode(item, size))
    again = load_task("dtd", root, image_size=SIZE, cache_dir=tmp_path / "c")
    assert decoded == [] and np.array_equal(again.images["test"], first.images["test"])

    expected = np.array(first.images["test"])
    del first, again  # drop the maps before damaging the file under them
    with open(folder / "test.u8", "r+b") as fh:  # a damaged entry is rebuilt, not used
        fh.truncate(10)
    rebuilt = load_task("dtd", root, image_size=SIZE, cache_dir=tmp_path / "c")
    assert len(decoded) == 6 and np.array_equal(rebuilt.images["test"], expected)

    F.jpg(root / "dtd/dtd/images/dotted/dotted_0007.jpg", (1, 2, 250))  # a changed file: new entry
    changed = load_task("dtd", root, image_size=SIZE, cache_dir=tmp_path / "c")
    assert Path(changed.images["test"].filename).parent != folder
    assert_color(changed.images["test"][1], (1, 2, 250))
