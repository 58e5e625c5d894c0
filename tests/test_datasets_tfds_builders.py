"""The tfds builders of keras_mtl's data sets pass tfds' own builder tests
(`tfds.testing.DatasetBuilderTestCase`) on tiny fixture folders written here, and
give the same examples as the loaders they share their parsing with."""

import importlib.util
import os
import shutil
import tempfile

import numpy as np
import pytest
import tensorflow as tf

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("dill")  # tfds.testing needs it

from keras_mtl.datasets import census_income, mtfl, oxford_pets, tox21, utkface
from keras_mtl.datasets.scenes import DENSE_TASKS, scenes_arrays  # noqa: E402
from keras_mtl.datasets import tfds_builders  # noqa: E402
from keras_mtl.datasets.tfds_view import from_tfds  # noqa: E402

SMILES = ("c1ccccc1O", "c1ccccc1N", "c1ccccc1C", "C1CCCCC1O", "C1CCCCC1N", "CCO", "CCN",
          "c1ccncc1", "c1ccncc1C", "O=C1CCCC1", "CCC")


def _jpeg(file, height, width, value):
    os.makedirs(os.path.dirname(file), exist_ok=True)
    image = np.full((height, width, 3), value, np.uint8)
    tf.io.write_file(file, tf.io.encode_jpeg(image))


def write_mtfl(folder):
    for split, names in (("training.txt", ("a", "b", "c")), ("testing.txt", ("d", "e"))):
        lines = []
        for k, name in enumerate(names):
            _jpeg(os.path.join(folder, "lfw_5590", name + ".jpg"), 40, 30, 10 * ord(name) % 256)
            points = " ".join(str(10 + k + i) for i in range(10))
            lines.append(f"lfw_5590\\{name}.jpg {points} {1 + k % 2} 2 1 {1 + k}\n")
        with open(os.path.join(folder, split), "w") as f:
            f.writelines(lines)


def write_utkface(folder):
    for k in range(5):
        _jpeg(os.path.join(folder, "UTKFace", f"{20 + k}_{k % 2}_{k}_2017.jpg.chip.jpg"), 16, 16, 40 * k)


def write_tox21(folder):
    with open(os.path.join(folder, "tox21.csv"), "w") as f:
        f.write(",".join(tox21.TASKS + ("mol_id", "smiles")) + "\n")
        for k, smiles in enumerate(SMILES):
            labels = [("", "0", "1")[(k + j) % 3] for j in range(len(tox21.TASKS))]
            f.write(",".join(labels + [f"TOX{k}", smiles]) + "\n")


def census_line(k):
    row = {c: "x" for c in census_income.COLUMNS}
    row.update({c: str(k) for c in census_income.CONTINUOUS})
    row.update(income_50k=("- 50000.", "50000+.")[k % 2], instance_weight="1.5",
               marital_stat=("Never married", "Divorced")[k % 3 == 0])
    return ", ".join(row[c] for c in census_income.COLUMNS) + "\n"


def write_census_income(folder):
    with open(os.path.join(folder, "census-income.test"), "w") as f:
        f.writelines(census_line(k) for k in range(10))


def write_oxford_pets(folder):
    for split, rows in (("trainval.txt", ("Bengal_1 6 1 2", "beagle_1 3 2 2", "Bengal_2 6 1 2")),
                        ("test.txt", ("beagle_2 3 2 2", "Bengal_3 6 1 2"))):
        os.makedirs(os.path.join(folder, "annotations", "trimaps"), exist_ok=True)
        with open(os.path.join(folder, "annotations", split), "w") as f:
            f.write("# NAME CLASS-ID SPECIES BREED-ID\n" + "".join(r + "\n" for r in rows))
        for row in rows:
            name = row.split()[0]
            _jpeg(os.path.join(folder, "images", name + ".jpg"), 12, 10, 40 * int(name[-1]))
            trimap = np.ones((12, 10, 1), np.uint8) + (np.arange(10) % 3).astype(np.uint8)[None, :, None]
            tf.io.write_file(os.path.join(folder, "annotations", "trimaps", name + ".png"),
                             tf.io.encode_png(trimap))


class _Fixture:
    """Writes the fixture folder (`WRITE`) before tfds' tests use it as manual_dir
    (a mixin, so that pytest does not collect it alone)."""

    SKIP_CHECKSUMS = True
    WRITE = None

    @classmethod
    def setUpClass(cls):
        cls.EXAMPLE_DIR = tempfile.mkdtemp()
        cls.WRITE(cls.EXAMPLE_DIR)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.EXAMPLE_DIR)


def _builder_test(builder, write, splits):
    """A `DatasetBuilderTestCase` of `builder` on the folder `write` makes."""
    return type(f"{builder.__name__}BuilderTest", (_Fixture, tfds.testing.DatasetBuilderTestCase),
                {"DATASET_CLASS": builder, "WRITE": staticmethod(write), "SPLITS": splits})


MtflBuilderTest = _builder_test(tfds_builders.Mtfl, write_mtfl, {"train": 3, "test": 2})
UtkfaceBuilderTest = _builder_test(tfds_builders.Utkface, write_utkface, {"train": 4, "test": 1})
CensusIncomeBuilderTest = _builder_test(tfds_builders.CensusIncome, write_census_income,
                                        {"train": 8, "test": 2})
OxfordPetsBuilderTest = _builder_test(tfds_builders.OxfordPets, write_oxford_pets,
                                      {"trainval": 3, "test": 2})
if importlib.util.find_spec("rdkit"):
    Tox21BuilderTest = _builder_test(tfds_builders.Tox21, write_tox21, {
        s: len(tox21.split_indices(SMILES, s)) for s in tox21.SPLITS})


def _prepared(name, folder, data_dir, **kwargs):
    builder = tfds.builder(name, data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(folder)))
    return builder


def _records(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_mtfl_builder_holds_the_loaders_labels_and_images(tmp_path):
    (tmp_path / "src").mkdir()
    write_mtfl(str(tmp_path / "src"))
    builder = _prepared("mtfl", tmp_path / "src", tmp_path / "tfds")
    labels = mtfl.read_labels(str(tmp_path / "src"), "train")
    records = _records(builder, "train")
    assert len(records) == len(labels["path"])
    for record in records:
        i = int(np.argmin(np.abs(labels["landmarks"] - record["landmarks"]).sum(1)))
        np.testing.assert_array_equal(record["landmarks"], labels["landmarks"][i])
        for t in mtfl.ATTRIBUTES:
            assert record[t] == labels[t][i]
        image = tf.io.decode_jpeg(tf.io.read_file(labels["path"][i]), channels=3).numpy()
        np.testing.assert_array_equal(record["image"], image)


def test_tox21_view_masks_the_assays_not_measured(tmp_path):
    pytest.importorskip("rdkit")
    (tmp_path / "src").mkdir()
    write_tox21(str(tmp_path / "src"))
    _prepared("tox21", tmp_path / "src", tmp_path / "tfds")
    data = tox21.read_csv(str(tmp_path / "src"))
    rows = tox21.split_indices(data["smiles"], "train")
    x, labels, masks = next(iter(from_tfds("tox21", split="train", data_dir=str(tmp_path / "tfds"),
                                           batch_size=len(rows))))
    order = np.argsort([data["smiles"].tolist().index(s) for s in data["smiles"][rows]])
    measured = ~np.isnan(data["labels"][rows])
    fingerprints = tox21.morgan_fingerprints(data["smiles"][rows])
    # tfds orders examples by key hash: match them by fingerprint.
    found = [int(np.flatnonzero((fingerprints == f).all(1))[0]) for f in x.numpy().astype(np.uint8)]
    assert sorted(found) == list(order)
    for j, task in enumerate(tox21.TASKS):
        np.testing.assert_array_equal(masks[task].numpy(), measured[found, j])
        expected = np.nan_to_num(data["labels"][rows][found, j], nan=0.0)
        np.testing.assert_array_equal(labels[task].numpy()[:, 0], expected)


def test_scenes_builder_holds_scenes_arrays(tmp_path):
    config = tfds_builders.ScenesConfig(name="tiny", height=8, width=12, train=3, test=2)
    builder = tfds.builder("scenes", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 3
    images, labels = scenes_arrays(2, 8, 12, seed=1)
    for record in _records(builder, "test"):
        i = int(np.argmin(np.abs(images - record["image"]).sum((1, 2, 3))))
        np.testing.assert_array_equal(record["image"], images[i])
        for t in DENSE_TASKS:
            np.testing.assert_array_equal(record[t], labels[t][i])


def test_census_and_pets_builders_hold_the_loaders_labels(tmp_path):
    for name, write in (("census_income", write_census_income), ("oxford_pets", write_oxford_pets)):
        (tmp_path / name).mkdir()
        write(str(tmp_path / name))
        _prepared(name, tmp_path / name, tmp_path / "tfds")
    census = _records(tfds.builder("census_income", data_dir=str(tmp_path / "tfds")), "test")
    rows = census_income.read_split(str(tmp_path / "census_income"), "test")
    expected = census_income.labels(rows)
    got = {tuple(r["columns"][c].decode() for c in census_income.COLUMNS): r for r in census}
    assert len(got) == len(rows)
    for i, row in enumerate(rows):
        assert [got[tuple(row)][t] for t in census_income.TASKS] == [expected[t][i] for t in census_income.TASKS]
    pets = _records(tfds.builder("oxford_pets", data_dir=str(tmp_path / "tfds")), "trainval")
    records = oxford_pets.read_split(str(tmp_path / "oxford_pets"), "trainval")
    assert sorted((r["label"], r["species"]) for r in pets) == sorted(zip(records["breed"], records["species"]))
    trimap = tf.io.decode_png(tf.io.read_file(records["trimap"][0])).numpy()
    for r in pets:
        np.testing.assert_array_equal(r["segmentation_mask"], trimap)


@pytest.mark.parametrize("name", ["mtfl", "utkface", "tox21", "census_income", "oxford_pets"])
def test_builders_without_a_manual_dir_give_the_instructions(tmp_path, name):
    with pytest.raises(AssertionError, match=f"laid out as in `keras_mtl.datasets.{name}`'s docstring"):
        tfds.builder(name, data_dir=str(tmp_path)).download_and_prepare()


REAL = os.environ.get("KERAS_MTL_DATA") or os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data")


def test_real_oxford_pets_sample_builds_and_its_view_matches_the_loader(tmp_path):
    folder = os.path.join(REAL, "oxford_pets_sample")
    if not os.path.isdir(folder):
        pytest.skip(f"real data folder {folder} is absent")
    builder = _prepared("oxford_pets", folder, tmp_path)
    assert builder.info.splits["test"].num_examples == len(oxford_pets.read_split(folder, "test")["breed"])
    x, labels = _all_batches(from_tfds("oxford_pets", split="test", data_dir=str(tmp_path),
                                       image_size=32, batch_size=64))
    image, expected = _all_batches(oxford_pets.load(folder, "test", image_size=32, batch_size=64))
    by_mask = {m.tobytes(): i for i, m in enumerate(expected["segmentation"])}
    assert len(by_mask) == len(image)  # every image's trimap differs: a key for matching
    for k, mask in enumerate(labels["segmentation"]):
        i = by_mask[mask.tobytes()]
        assert (labels["breed"][k], labels["species"][k]) == (expected["breed"][i], expected["species"][i])
        # The loader rounds the resized image to uint8 before scaling.
        np.testing.assert_allclose(x[k], image[i], atol=0.6 / 255)


def _all_batches(ds):
    batches = list(ds.as_numpy_iterator())
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts), *batches)

