"""Oxford-IIIT Pet: pet/background/border segmentation, breed and cat-vs-dog.

Parkhi, Vedaldi, Zisserman, Jawahar, "Cats and Dogs", CVPR 2012. Folder layout
(as in the full download of images.tar.gz and annotations.tar.gz, and
../shared/data/oxford_pets_sample):

    images/NAME.jpg
    annotations/trainval.txt  annotations/test.txt  annotations/trimaps/NAME.png

List lines are `NAME CLASS-ID SPECIES BREED-ID`; lines starting with `#` are
comments. The split is the official one: `trainval.txt` and `test.txt`.
"""

import os

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate
from keras_mtl.datasets._pipeline import cached, read_image, shuffled_with_seeds

tf = LazyTensorFlow("The Oxford-IIIT Pet tf.data pipeline (keras_mtl.datasets.oxford_pets.load)")

TASKS = ("segmentation", "breed", "species")
SPLIT_FILES = {"trainval": "trainval.txt", "test": "test.txt"}
SEGMENTATION_CLASSES = ("pet", "background", "border")
SPECIES = ("cat", "dog")


def _read_list(path, split):
    """A list file's lines as `(name, class_id, species)`, checked (species 1 cat, 2 dog)."""
    list_file = os.path.join(path, "annotations", SPLIT_FILES[split])
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"No Oxford-IIIT Pet list file {list_file} (path={path!r}).")
    rows = []
    with open(list_file) as f:
        for line, text in enumerate(f, 1):
            fields = text.split()
            if not fields or text.startswith("#"):
                continue
            _validate.field_count(fields, 4, list_file, line, "`NAME CLASS-ID SPECIES BREED-ID`")
            name = _validate.file_name(fields[0], list_file, line, "NAME")
            class_id = _validate.integer(fields[1], list_file, line, "CLASS-ID", 1)
            species = _validate.integer(fields[2], list_file, line, "SPECIES", 1, len(SPECIES))
            _validate.integer(fields[3], list_file, line, "BREED-ID", 1)
            rows.append((name, class_id, species))
    _validate.not_empty(len(rows), list_file, "lines `NAME CLASS-ID SPECIES BREED-ID`")
    return rows


def breeds(path):
    """The breed names in class-index order, from both list files.

    Breeds are indexed by their sorted original CLASS-ID, so the full data set keeps
    the ids 1..37 as 0..36 and a sample of breeds gets 0..n-1.
    """
    by_id = {}
    for split in SPLIT_FILES:
        for name, class_id, _ in _read_list(path, split):
            by_id[class_id] = name.rsplit("_", 1)[0]
    return [by_id[i] for i in sorted(by_id)]


def read_split(path, split):
    """Reads a split's list file.

    Args:
        path: the Oxford-IIIT Pet folder.
        split: "trainval" or "test".

    Returns:
        A dict of numpy arrays: "image" and "trimap" (file paths), "breed" (int32
        index into `breeds(path)`) and "species" (int32, 0 cat, 1 dog).

    Raises:
        ValueError: naming the list file and line of a malformed line, a value out
            of range, or a NAME that is not a plain file name.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}. Received: split={split!r}")
    rows = _read_list(path, split)
    class_ids = sorted({row[1] for s in SPLIT_FILES for row in _read_list(path, s)})
    index = {class_id: i for i, class_id in enumerate(class_ids)}
    return {
        "image": np.array([os.path.join(path, "images", row[0] + ".jpg") for row in rows]),
        "trimap": np.array([os.path.join(path, "annotations", "trimaps", row[0] + ".png")
                            for row in rows]),
        "breed": np.array([index[row[1]] for row in rows], dtype="int32"),
        "species": np.array([row[2] - 1 for row in rows], dtype="int32"),
    }


def load(path, split="trainval", tasks=None, batch_size=32, image_size=64, training=None,
         seed=0, max_examples=None, cache=True):
    """An Oxford-IIIT Pet `tf.data` pipeline of `(image, {task: label})` batches.

    Images (bilinear, antialiased) and trimaps (nearest neighbour) are resized to a
    square `image_size` (the aspect ratio is not kept) and cached as uint8. In
    training they are shuffled and mirrored together at random.

    Args:
        path: the Oxford-IIIT Pet folder (see the module docstring).
        split: "trainval" or "test" (the official split).
        tasks: task names to return labels for (default all of `TASKS`).
        batch_size: examples per batch.
        image_size: side of the square images and masks.
        training: shuffle and augment; defaults to `split == "trainval"`.
        seed: seed of the subset, the shuffle and the augmentation.
        max_examples: keep a random subset of this many examples.
        cache: True caches in memory, a file name caches there, False not at all.

    Returns:
        A `tf.data.Dataset` of `(image, labels)`: image float32 `(batch, S, S, 3)` in
        [0, 1]; labels a dict with "segmentation" int32 `(batch, S, S)` (0 pet,
        1 background, 2 border), "breed" and "species" int32 `(batch,)`.
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    if not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    training = split == "trainval" if training is None else training
    records = read_split(path, split)
    if max_examples is not None:
        keep = np.sort(np.random.default_rng(seed).permutation(len(records["image"]))[:max_examples])
        records = {k: v[keep] for k, v in records.items()}

    def decode(image_file, trimap_file, targets):
        # decode_image: a few files of the full download are PNG or GIF named .jpg.
        image = tf.io.decode_image(read_image(image_file, ("jpeg", "png", "gif")), channels=3,
                                   expand_animations=False)
        image = tf.image.resize(image, [image_size, image_size], antialias=True)
        trimap = tf.io.decode_png(read_image(trimap_file, ("png",)), channels=1)
        trimap = tf.image.resize(trimap, [image_size, image_size], method="nearest")
        return tf.cast(tf.round(image), tf.uint8), trimap, targets

    def augment(example, aug_seed):
        image, trimap, targets = example
        mirror = tf.random.stateless_uniform([], aug_seed) < 0.5
        image = tf.where(mirror, tf.reverse(image, [1]), image)
        trimap = tf.where(mirror, tf.reverse(trimap, [1]), trimap)
        return image, trimap, targets

    def finish(image, trimap, targets):
        labels = {t: targets[t] for t in tasks if t != "segmentation"}
        if "segmentation" in tasks:
            labels["segmentation"] = tf.cast(trimap[..., 0], tf.int32) - 1
        return tf.cast(image, tf.float32) / 255.0, {t: labels[t] for t in tasks}

    targets = {"breed": records["breed"], "species": records["species"]}
    ds = tf.data.Dataset.from_tensor_slices((records["image"], records["trimap"], targets))
    ds = cached(ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE), cache)
    if training:
        ds = shuffled_with_seeds(ds, len(records["image"]), seed).map(
            augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
