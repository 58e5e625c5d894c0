"""tensorflow-datasets builders for keras_mtl's data sets, from a user's own copy.

Importing this module registers `mtfl`, `utkface`, `tox21`, `census_income`,
`oxford_pets` and `scenes` with tfds. The first five follow tfds' manual-download
convention: the user's folder (the layout in each loader's docstring) is the
`manual_dir`; nothing is downloaded. Parsing, validation and splits are the
loaders' own (`mtfl.read_labels`, `utkface.read_labels`, ...); the loaders stay the
fast path, the builders give the same data as tfds datasets:

```python
import tensorflow_datasets as tfds
import keras_mtl.datasets.tfds_builders  # registers the builders

config = tfds.download.DownloadConfig(manual_dir="/data/mtfl")
ds = tfds.load("mtfl", split="train", data_dir="~/tensorflow_datasets",
               download_and_prepare_kwargs={"download_config": config})
```

`keras_mtl.datasets.tfds_view.from_tfds("mtfl", ...)` gives their multi-task view.
"""

import sys

import numpy as np
import tensorflow_datasets as tfds

from keras_mtl.datasets import census_income, mtfl, oxford_pets, tox21, utkface
from keras_mtl.datasets.scenes import DENSE_TASKS, scenes_arrays

class _FromFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder of a data set in the user's folder (the manual_dir), read by the
    loader module `LOADER` (whose docstring is the description and the layout)."""

    VERSION = tfds.core.Version("1.0.0")
    LOADER = None
    SPLITS = ()
    HOMEPAGE = None
    CITATION = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.MANUAL_DOWNLOAD_INSTRUCTIONS = (
            f"Place the contents of your copy of the data set, laid out as in "
            f"`{cls.LOADER.__name__}`'s docstring, in the manual_dir "
            "(`tfds.download.DownloadConfig(manual_dir=...)`; tfds' default is "
            "`<data_dir>/downloads/manual/`).")

    def _features(self):
        raise NotImplementedError

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self, description=self.LOADER.__doc__, homepage=self.HOMEPAGE,
            citation=self.CITATION, features=tfds.features.FeaturesDict(self._features()))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(str(dl_manager.manual_dir), split)
                for split in self.SPLITS}


def _image():
    return tfds.features.Image(shape=(None, None, 3))


def _classes(num_classes):
    return {t: tfds.features.ClassLabel(num_classes=n) for t, n in num_classes.items()}


class Mtfl(_FromFolder):
    """MTFL: 5 facial landmarks and 4 attributes (Zhang et al., ECCV 2014); the
    official train/test split; parsed and checked by `mtfl.read_labels`."""

    LOADER, SPLITS = mtfl, tuple(mtfl.SPLIT_FILES)
    HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/TCDCN.html"
    CITATION = "Zhang, Luo, Loy, Tang. Facial Landmark Detection by Deep Multi-task Learning. ECCV 2014."

    def _features(self):
        return {"image": _image(), "landmarks": tfds.features.Tensor(shape=(10,), dtype=np.float32),
                **_classes(mtfl.NUM_CLASSES)}

    def _generate_examples(self, path, split):
        labels = mtfl.read_labels(path, split)
        for i, file in enumerate(labels["path"]):
            yield i, {"image": file, **{k: labels[k][i] for k in mtfl.TASKS}}


class Utkface(_FromFolder):
    """UTKFace: age, gender and race (Zhang et al., CVPR 2017); `utkface.split_indices`'
    seeded 80/20 split (seed 0); parsed and checked by `utkface.read_labels`."""

    LOADER, SPLITS = utkface, utkface.SPLITS
    HOMEPAGE = "https://susanqq.github.io/UTKFace/"
    CITATION = "Zhang, Song, Qi. Age Progression/Regression by Conditional Adversarial Autoencoder. CVPR 2017."

    def _features(self):
        return {"image": _image(), "age": tfds.features.Tensor(shape=(), dtype=np.float32),
                **_classes(utkface.NUM_CLASSES)}

    def _generate_examples(self, path, split):
        labels = utkface.read_labels(path)
        for i in utkface.split_indices(len(labels["path"]), split):
            yield int(i), {"image": labels["path"][i], **{k: labels[k][i] for k in utkface.TASKS}}


class Tox21(_FromFolder):
    """Tox21: 12 assays per molecule (Mayr et al., 2016), -1 where not measured;
    Morgan fingerprints (radius 2, 1024 bits) and the scaffold split of
    `tox21.split_indices`; parsed and checked by `tox21.read_csv`. Needs RDKit."""

    LOADER, SPLITS = tox21, tox21.SPLITS
    HOMEPAGE = "https://tripod.nih.gov/tox21/challenge/"
    CITATION = ("Mayr, Klambauer, Unterthiner, Hochreiter. DeepTox: Toxicity Prediction using "
                "Deep Learning. Frontiers in Environmental Science 2016.")

    def _features(self):
        return {"fingerprint": tfds.features.Tensor(shape=(1024,), dtype=np.uint8),
                "smiles": tfds.features.Text(), "mol_id": tfds.features.Text(),
                "labels": {t: tfds.features.Tensor(shape=(), dtype=np.int64) for t in tox21.TASKS}}

    def _generate_examples(self, path, split):
        data = tox21.read_csv(path)
        rows = tox21.split_indices(data["smiles"], split)
        if not len(rows):
            return
        fingerprints = tox21.morgan_fingerprints(data["smiles"][rows])
        labels = np.nan_to_num(data["labels"][rows], nan=-1).astype("int64")
        for row, fingerprint, values in zip(rows, fingerprints, labels):
            yield int(row), {"fingerprint": fingerprint, "smiles": data["smiles"][row],
                             "mol_id": data["mol_id"][row], "labels": dict(zip(tox21.TASKS, values))}


class CensusIncome(_FromFolder):
    """Census-Income (KDD) with the MMoE tasks (Ma et al., KDD 2018): the 42 raw
    columns as text and the labels "income" and "marital" (0/1); the split of
    `census_income.read_split` (seed 0); checked by `census_income.read_table`.
    `census_income.encode` turns the columns into features."""

    LOADER, SPLITS = census_income, census_income.SPLITS
    HOMEPAGE = "https://archive.ics.uci.edu/dataset/117/census+income+kdd"
    CITATION = "Lane, Kohavi. Census-Income (KDD). UCI Machine Learning Repository, 2000."

    def _features(self):
        return {"columns": {c: tfds.features.Text() for c in census_income.COLUMNS},
                **_classes({t: 2 for t in census_income.TASKS})}

    def _generate_examples(self, path, split):
        rows = census_income.read_split(path, split)
        labels = census_income.labels(rows)
        for i, row in enumerate(rows):
            yield i, {"columns": dict(zip(census_income.COLUMNS, row)),
                      **{t: int(labels[t][i]) for t in census_income.TASKS}}


class OxfordPets(_FromFolder):
    """Oxford-IIIT Pet (Parkhi et al., CVPR 2012), the full set or a sample of
    breeds: image, trimap ("segmentation_mask": 1 pet, 2 background, 3 border, as in
    tfds' `oxford_iiit_pet`), breed (index into `oxford_pets.breeds`) and species;
    the official trainval/test split; parsed and checked by `oxford_pets.read_split`."""

    LOADER, SPLITS = oxford_pets, tuple(oxford_pets.SPLIT_FILES)
    HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/pets/"
    CITATION = "Parkhi, Vedaldi, Zisserman, Jawahar. Cats and Dogs. CVPR 2012."

    def _features(self):
        return {"image": _image(), "segmentation_mask": tfds.features.Image(shape=(None, None, 1)),
                "label": tfds.features.ClassLabel(num_classes=37),
                "species": tfds.features.ClassLabel(names=oxford_pets.SPECIES)}

    def _generate_examples(self, path, split):
        records = oxford_pets.read_split(path, split)
        for i, (image, trimap) in enumerate(zip(records["image"], records["trimap"])):
            yield i, {"image": image, "segmentation_mask": trimap,
                      "label": records["breed"][i], "species": records["species"][i]}


class ScenesConfig(tfds.core.BuilderConfig):
    """A Scenes size: `height` x `width` images, `train` examples (seed 0) and
    `test` examples (seed 1), as `scenes.scenes_arrays` makes them."""

    def __init__(self, *, height, width, train, test, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.train, self.test = height, width, train, test


class Scenes(tfds.core.GeneratorBasedBuilder):
    """The procedural Scenes data (`keras_mtl.datasets.scenes`): images and exact
    segmentation, depth and normals. Generated; nothing to download."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [ScenesConfig(name="48x64", height=48, width=64, train=2000, test=500),
                       ScenesConfig(name="96x128", height=96, width=128, train=2000, test=500)]

    def _info(self):
        h, w = self.builder_config.height, self.builder_config.width
        return tfds.core.DatasetInfo(
            builder=self, description=sys.modules[scenes_arrays.__module__].__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(h, w, 3), dtype=np.float32),
                "segmentation": tfds.features.Tensor(shape=(h, w), dtype=np.int32),
                "depth": tfds.features.Tensor(shape=(h, w, 1), dtype=np.float32),
                "normals": tfds.features.Tensor(shape=(h, w, 3), dtype=np.float32)}))

    def _split_generators(self, dl_manager):
        c = self.builder_config
        return {"train": self._generate_examples(c.train, 0),
                "test": self._generate_examples(c.test, 1)}

    def _generate_examples(self, count, seed):
        c = self.builder_config
        images, labels = scenes_arrays(count, c.height, c.width, seed=seed)
        for i, image in enumerate(images):
            yield i, {"image": image, **{t: labels[t][i] for t in DENSE_TASKS}}
