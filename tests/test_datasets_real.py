"""Real-data loaders on ../shared/data (or $KERAS_MTL_DATA): shapes, dtypes, label ranges."""

import csv
import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.datasets import census_income, mtfl, oxford_pets, tox21, utkface

DATA = Path(os.environ.get("KERAS_MTL_DATA")
            or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def _folder(name):
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent (set KERAS_MTL_DATA to the folder "
                    "holding mtfl/, utkface/, tox21/, census_income/, oxford_pets_sample/)")
    return str(folder)


def _all(ds):
    """Concatenates a finite dataset's batches into numpy arrays (same structure)."""
    batches = list(ds.as_numpy_iterator())
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)


# ----------------------------------------------------------------------------- MTFL

def test_mtfl_shapes_and_label_ranges():
    path = _folder("mtfl")
    for split in ("train", "test"):
        image, labels = _all(mtfl.load(path, split, batch_size=16, image_size=40, max_examples=48))
        assert image.shape == (48, 40, 40, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
        assert labels["landmarks"].shape == (48, 10) and labels["landmarks"].dtype == np.float32
        for name, classes in mtfl.NUM_CLASSES.items():
            assert labels[name].dtype == np.int32
            assert 0 <= labels[name].min() and labels[name].max() < classes
    assert len(mtfl.read_labels(path, "train")["path"]) == 10000
    assert len(mtfl.read_labels(path, "test")["path"]) == 2995
    _, labels = next(iter(mtfl.load(path, "test", tasks=["landmarks"], max_examples=4)))
    assert list(labels) == ["landmarks"]


def test_mtfl_indices_keep_those_examples():
    path = _folder("mtfl")
    labels = mtfl.read_labels(path, "test")
    _, got = _all(mtfl.load(path, "test", indices=[5, 2, 9], batch_size=8, cache=False))
    np.testing.assert_array_equal(got["gender"], labels["gender"][[5, 2, 9]])


def test_mtfl_crop_keeps_every_landmark_inside():
    path = _folder("mtfl")
    for split in ("train", "test"):
        points = mtfl.read_labels(path, split)["landmarks"]
        top, left, bottom, right = np.moveaxis(mtfl.face_box(points).numpy(), -1, 0)
        xs = (points[:, :5] - left[:, None]) / (right - left)[:, None]
        ys = (points[:, 5:] - top[:, None]) / (bottom - top)[:, None]
        # margin 0.5: the landmarks span at most the middle half of the box.
        assert xs.min() >= 0.25 - 1e-5 and xs.max() <= 0.75 + 1e-5
        assert ys.min() >= 0.25 - 1e-5 and ys.max() <= 0.75 + 1e-5
    # The largest jitter allowed still keeps them inside, through the real pipeline.
    _, labels = _all(mtfl.load(path, "train", jitter=1 / 6, batch_size=64, max_examples=512))
    assert labels["landmarks"].min() >= 0.0 and labels["landmarks"].max() <= 1.0
    assert labels["landmarks"].min() < 0.15 and labels["landmarks"].max() > 0.85
    with pytest.raises(ValueError, match="jitter"):
        mtfl.load(path, "train", jitter=0.2)


def _dots(size, points):
    """A black image with one bright pixel at each (rounded) landmark."""
    image = np.zeros((size, size, 3), "uint8")
    for x, y in zip(points[:5], points[5:]):
        image[int(round(y)), int(round(x))] = 255
    return image


def test_mtfl_crop_and_flip_move_landmarks_with_the_pixels():
    points = np.array([50, 90, 70, 55, 88, 60, 62, 80, 100, 98], "float32")
    box = np.array([30.0, 40.0, 120.0, 130.0], "float32")  # 90 px square, 90 px crop: 1:1
    crop, crop_points = mtfl.crop_face(_dots(150, points), points, box, 91)
    crop, crop_points = crop.numpy(), crop_points.numpy()
    for k in range(5):
        row, col = int(round(crop_points[5 + k] * 90)), int(round(crop_points[k] * 90))
        assert crop[row, col, 0] > 0.5, k
        np.testing.assert_allclose([col, row], [points[k] - 40, points[5 + k] - 30], atol=1)
    flipped, labels = mtfl._flipped(tf.constant(crop), {"landmarks": crop_points, "pose": 1})
    flipped, moved = flipped.numpy(), labels["landmarks"].numpy()
    for k in range(5):
        assert flipped[int(round(moved[5 + k] * 90)), int(round(moved[k] * 90)), 0] > 0.5, k
    # The left eye after mirroring is the right eye before it, and "left" pose turns right.
    np.testing.assert_allclose(moved[0], 1.0 - crop_points[1], atol=1e-6)
    assert int(labels["pose"]) == 3


# -------------------------------------------------------------------------- UTKFace

def test_utkface_shapes_labels_and_split():
    path = _folder("utkface")
    labels = utkface.read_labels(path)
    count = len(labels["path"])
    assert count == 23702
    train = utkface.split_indices(count, "train")
    test = utkface.split_indices(count, "test")
    assert len(test) == round(0.2 * count) and not set(train) & set(test)
    assert len(train) + len(test) == count
    image, y = _all(utkface.load(path, "test", batch_size=16, image_size=48, max_examples=32))
    assert image.shape == (32, 48, 48, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert y["age"].dtype == np.float32 and 1 <= y["age"].min() and y["age"].max() <= 116
    assert set(np.unique(y["gender"])) <= {0, 1} and set(np.unique(y["race"])) <= set(range(5))
    # Labels come from the file names; check one against the name itself.
    name = os.path.basename(labels["path"][test[0]])
    age, gender, race = name.split("_")[:3]
    first = next(iter(utkface.load(path, "test", batch_size=1, image_size=48)))[1]
    assert (float(first["age"][0]), int(first["gender"][0]), int(first["race"][0])) == (
        float(age), int(gender), int(race))
    image, _ = next(iter(utkface.load(path, "train", batch_size=8, max_examples=8)))
    assert image.shape == (8, 64, 64, 3)


# ---------------------------------------------------------------------------- Tox21

@pytest.mark.slow
def test_tox21_masks_match_the_missing_cells_exactly():
    path = _folder("tox21")
    with open(os.path.join(path, "tox21.csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    cells = np.array([[row[header.index(t)] for t in tox21.TASKS] for row in rows])
    smiles = [row[header.index("smiles")] for row in rows]
    seen = []
    for split in tox21.SPLITS:
        indices = tox21.split_indices(smiles, split, "scaffold")
        seen.append(indices)
        x, labels, masks = _all(tox21.load(path, split, training=False))
        assert x.shape == (len(indices), 1024) and x.dtype == np.float32
        assert set(np.unique(x)) == {0.0, 1.0}
        for j, task in enumerate(tox21.TASKS):
            expected = cells[indices, j]
            assert labels[task].shape == (len(indices), 1) and masks[task].shape == (len(indices),)
            np.testing.assert_array_equal(masks[task], (expected != "").astype("float32"))
            np.testing.assert_array_equal(labels[task][:, 0],
                                          np.where(expected == "1", 1.0, 0.0))
    everything = np.concatenate(seen)
    assert len(everything) == len(rows) == len(np.unique(everything))
    assert [len(s) for s in seen] == [6264, 783, 784]
    assert (cells == "").sum() == 16026


def test_tox21_random_split_is_seeded():
    path = _folder("tox21")
    smiles = tox21.read_csv(path)["smiles"]
    a = tox21.split_indices(smiles, "test", "random", seed=1)
    assert np.array_equal(a, tox21.split_indices(smiles, "test", "random", seed=1))
    assert not np.array_equal(a, tox21.split_indices(smiles, "test", "random", seed=2))
    assert len(a) == 783


def test_tox21_reads_deepchems_gzipped_csv(tmp_path):
    path = _folder("tox21")
    with gzip.open(tmp_path / "tox21.csv.gz", "wb") as f:
        f.write(Path(path, "tox21.csv").read_bytes())
    plain, zipped = tox21.read_csv(path), tox21.read_csv(str(tmp_path))
    np.testing.assert_array_equal(plain["labels"], zipped["labels"])
    assert list(plain["smiles"]) == list(zipped["smiles"])
    with pytest.raises(FileNotFoundError, match="tox21.csv"):
        tox21.read_csv(str(tmp_path / "absent"))


# ------------------------------------------------------------------- Census-income

@pytest.mark.slow
def test_census_income_features_and_labels():
    path = _folder("census_income")
    with gzip.open(os.path.join(path, "census-income.test.gz"), "rt") as f:
        raw = [line.rstrip("\n").split(", ") for line in f]
    assert sum(r[41] == "50000+." for r in raw) == 6186
    assert sum(r[7] == "Never married" for r in raw) == 43143
    everything = np.concatenate([census_income.read_split(path, s) for s in census_income.SPLITS])
    totals = census_income.labels(everything)
    assert (totals["income"].sum(), totals["marital"].sum()) == (6186, 43143)
    encoding = census_income.fit_encoding(census_income.read_split(path, "train"))
    x, y = _all(census_income.load(path, "test", batch_size=100, max_examples=300))
    assert x.shape == (300, census_income.feature_size(encoding)) and x.dtype == np.float32
    one_hot = x[:, len(census_income.CONTINUOUS):]
    assert set(np.unique(one_hot)) == {0.0, 1.0}
    np.testing.assert_array_equal(one_hot.sum(axis=1), len(census_income.NOMINAL))
    assert set(y) == {"income", "marital"}
    for task in y:
        assert y[task].shape == (300, 1) and set(np.unique(y[task])) == {0.0, 1.0}


# ------------------------------------------------------------------- Oxford-IIIT Pet

def test_oxford_pets_shapes_and_labels():
    path = _folder("oxford_pets_sample")
    assert oxford_pets.breeds(path) == ["Abyssinian", "american_bulldog", "Bengal"]
    sizes = {s: len(oxford_pets.read_split(path, s)["image"]) for s in oxford_pets.SPLIT_FILES}
    assert sizes == {"trainval": 300, "test": 298}
    image, y = _all(oxford_pets.load(path, "test", batch_size=16, image_size=32, max_examples=40))
    assert image.shape == (40, 32, 32, 3) and 0.0 <= image.min() and image.max() <= 1.0
    assert y["segmentation"].shape == (40, 32, 32) and y["segmentation"].dtype == np.int32
    assert set(np.unique(y["segmentation"])) == {0, 1, 2}
    # Breed 1 (american_bulldog) is the only dog breed of the sample.
    np.testing.assert_array_equal(y["species"], (y["breed"] == 1).astype("int32"))
    image, y = next(iter(oxford_pets.load(path, "trainval", batch_size=8, image_size=32)))
    assert image.shape == (8, 32, 32, 3) and y["segmentation"].shape == (8, 32, 32)
