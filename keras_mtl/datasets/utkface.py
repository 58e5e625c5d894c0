"""UTKFace: age, gender and race from aligned and cropped faces.

Zhang, Song, Qi, "Age Progression/Regression by Conditional Adversarial
Autoencoder", CVPR 2017. Folder layout (as in the "Aligned & Cropped Faces"
download, and ../shared/data/utkface):

    UTKFace/[age]_[gender]_[race]_[date&time].jpg.chip.jpg

The labels are in the file names. UTKFace has no official split: `split_indices`
makes a seeded random one over the sorted file names.
"""

import os
import re

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate
from keras_mtl.datasets._pipeline import cached, read_image, shuffled_with_seeds

tf = LazyTensorFlow("The UTKFace tf.data pipeline (keras_mtl.datasets.utkface.load)")

TASKS = ("age", "gender", "race")
NUM_CLASSES = {"gender": 2, "race": 5}
SPLITS = ("train", "test")
MAX_AGE = 116
_FILE_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\d+)\.jpg\.chip\.jpg$")


def read_labels(path):
    """Lists the images and parses their labels from the file names.

    Files whose names do not have the four fields of
    `[age]_[gender]_[race]_[date].jpg.chip.jpg` (five in the original download lack a
    field) are skipped.

    Args:
        path: the UTKFace folder (holding the `UTKFace/` image folder).

    Returns:
        A dict of numpy arrays in sorted file-name order: "path", "age" (float32
        years), "gender" (int32, 0 male, 1 female) and "race" (int32, 0 White,
        1 Black, 2 Asian, 3 Indian, 4 Others).

    Raises:
        ValueError: naming the file whose age (0 to `MAX_AGE`), gender or race is
            out of range, or the folder when no file name matches.
    """
    folder = os.path.join(path, "UTKFace")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No UTKFace image folder {folder} (path={path!r}).")
    files, labels = [], []
    for match in filter(None, map(_FILE_NAME.match, sorted(os.listdir(folder)))):
        file = os.path.join(folder, match.group(0))
        labels.append([_validate.integer(match.group(1), file, None, "age", 0, MAX_AGE),
                       _validate.integer(match.group(2), file, None, "gender", 0, NUM_CLASSES["gender"] - 1),
                       _validate.integer(match.group(3), file, None, "race", 0, NUM_CLASSES["race"] - 1)])
        files.append(file)
    _validate.not_empty(len(files), folder, "files named [age]_[gender]_[race]_[date].jpg.chip.jpg")
    labels = np.array(labels, dtype="int32")
    return {"path": np.array(files), "age": labels[:, 0].astype("float32"),
            "gender": labels[:, 1], "race": labels[:, 2]}


def split_indices(count, split, test_fraction=0.2, seed=0):
    """The sorted indices of a seeded random train/test split of `count` examples."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1). Received: test_fraction={test_fraction!r}")
    order = np.random.default_rng(seed).permutation(count)
    test_count = int(round(count * test_fraction))
    return np.sort(order[:test_count] if split == "test" else order[test_count:])


def load(path, split="train", tasks=None, batch_size=64, image_size=64, training=None,
         seed=0, test_fraction=0.2, max_examples=None, cache=True):
    """A UTKFace `tf.data` pipeline of `(image, {task: label})` batches.

    Images are decoded, resized to `image_size` and cached as uint8. In training
    they are shuffled, mirrored at random and randomly cropped to 90% of their side
    (then resized back).

    Args:
        path: the UTKFace folder (see the module docstring).
        split: "train" or "test" of the seeded random split (`split_indices`).
        tasks: task names to return labels for (default all of `TASKS`).
        batch_size: examples per batch.
        image_size: side of the square images.
        training: shuffle and augment; defaults to `split == "train"`.
        seed: seed of the split, the subset, the shuffle and the augmentation.
        test_fraction: share of the data in the test split.
        max_examples: keep a random subset of this many examples of the split.
        cache: True caches in memory, a file name caches there, False not at all.

    Returns:
        A `tf.data.Dataset` of `(image, labels)`: image float32 `(batch, S, S, 3)` in
        [0, 1]; labels a dict with "age" float32 `(batch,)` in years, "gender" and
        "race" int32 `(batch,)`.
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    if not tasks or any(t not in TASKS for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    training = split == "train" if training is None else training
    labels = read_labels(path)
    keep = split_indices(len(labels["path"]), split, test_fraction, seed)
    if max_examples is not None:
        keep = np.sort(np.random.default_rng(seed + 1).permutation(keep)[:max_examples])

    def decode(file, targets):
        image = tf.io.decode_jpeg(read_image(file), channels=3)
        image = tf.image.resize(image, [image_size, image_size], antialias=True)
        return tf.cast(tf.round(image), tf.uint8), targets

    def augment(example, aug_seed):
        image, targets = example
        image = tf.image.stateless_random_flip_left_right(image, aug_seed)
        side = int(round(0.9 * image_size))
        image = tf.image.stateless_random_crop(image, [side, side, 3], aug_seed + 1)
        return tf.image.resize(image, [image_size, image_size]), targets

    def scale(image, targets):
        return tf.cast(image, tf.float32) / 255.0, targets

    targets = {t: labels[t][keep] for t in tasks}
    ds = tf.data.Dataset.from_tensor_slices((labels["path"][keep], targets))
    ds = cached(ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE), cache)
    if training:
        ds = shuffled_with_seeds(ds, len(keep), seed).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(scale, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
