"""Multi-task views of tensorflow-datasets (tfds): `(x, {task: label})` batches.

A `TaskView` declares one task of a view: the feature it reads (a `/` path into a
tfds example, e.g. `"attributes/Smiling"`), how the value becomes a label, which
examples are labelled (a mask) and whether the label is dense (resized with the
image). `view(...)` applies a list of them to a dataset of tfds examples;
`from_tfds(...)` loads a prepared tfds dataset (it never downloads) and views it.
`CATALOGUE` holds ready-made task lists by tfds name: CelebA's 40 attributes (the
setting of Sener and Koltun, "Multi-Task Learning as Multi-Objective Optimization",
NeurIPS 2018), NYU Depth v2's depth, Oxford-IIIT Pet, smallNORB, Shapes3D, and the
builders of `keras_mtl.datasets.tfds_builders`.

tensorflow-datasets is an optional dependency, imported by `from_tfds` only.
"""

import dataclasses
import os
from typing import Callable, Optional

from keras_mtl._tensorflow import LazyTensorFlow

tf = LazyTensorFlow("Views of tensorflow-datasets (keras_mtl.datasets.tfds_view)")


@dataclasses.dataclass(frozen=True)
class TaskView:
    """One task of a multi-task view of a tfds dataset.

    Args:
        name: the task's name (the key of its label, and of its `keras_mtl.Task`).
        feature: the `/`-separated path of the feature in a tfds example.
        preprocess: maps the feature's value to the label (default: unchanged).
        labelled: maps the feature's raw value to a boolean "has a label"; unlabelled
            examples get label 0 and mask 0 (default: every example is labelled).
        dense: a per-pixel label, resized with the image (nearest neighbour).
        num_classes: classes of a classification task, 1 for a binary one (its
            head's width); None for regression.

    Example:

    ```python
    smiling = TaskView("smiling", "attributes/Smiling", preprocess=binary, num_classes=1)
    ```
    """

    name: str
    feature: str
    preprocess: Optional[Callable] = None
    labelled: Optional[Callable] = None
    dense: bool = False
    num_classes: Optional[int] = None


def binary(value):
    """A boolean or 0/1 value as a float32 `(1,)` label (for binary cross-entropy)."""
    return tf.reshape(tf.cast(value, tf.float32), [1])


def class_index(value):
    """An integer class as an int32 scalar (for sparse categorical cross-entropy)."""
    return tf.cast(value, tf.int32)


def _feature(example, path):
    value = example
    for key in path.split("/"):
        if key not in value:
            raise ValueError(f"The tfds example has no feature {path!r} (no {key!r} among "
                             f"{sorted(value)}).")
        value = value[key]
    return value


def _resized(value, size, method):
    """`value` of shape (H, W) or (H, W, C) resized to `size`, its rank and dtype kept."""
    flat = len(value.shape) == 2
    image = value[..., None] if flat else value
    if method == "nearest":
        resized = tf.image.resize(image, size, method="nearest")
    else:
        resized = tf.image.resize(tf.cast(image, tf.float32), size, antialias=True)
    resized = tf.cast(resized, value.dtype) if method == "nearest" else resized
    return resized[..., 0] if flat else resized


def view(dataset, tasks, input_feature="image", image_size=None, batch_size=32,
         shuffle=False, seed=0, max_examples=None):
    """A multi-task view of a dataset of tfds examples (dicts of features).

    Args:
        dataset: a `tf.data.Dataset` of unbatched tfds examples.
        tasks: a list of `TaskView`.
        input_feature: the feature that is the model's input. A uint8 image
            `(H, W, C)` becomes float32 in [0, 1]; other inputs become float32.
        image_size: `(height, width)` or an int (square) to resize the input image
            (bilinear, antialiased) and the dense labels (nearest) to; None keeps them.
        batch_size: examples per batch (None: unbatched).
        shuffle: shuffle the examples (a buffer of 10,000), anew each epoch.
        seed: the shuffle's seed.
        max_examples: use only the first examples.

    Returns:
        A `tf.data.Dataset` of `(x, {task: label})`, or `(x, {task: label},
        {task: mask})` (float32 masks, 1 for every task without `labelled`) when a
        task declares `labelled`.
    """
    tasks = list(tasks)
    names = [t.name for t in tasks]
    if not tasks or len(set(names)) != len(names):
        raise ValueError(f"tasks must be a non-empty list of TaskView with unique names. "
                         f"Received: tasks={names!r}")
    size = None if image_size is None else (
        (int(image_size),) * 2 if isinstance(image_size, (int, float)) else tuple(image_size))
    masked = any(t.labelled is not None for t in tasks)

    def route(example):
        x = _feature(example, input_feature)
        scale = 1 / 255 if x.dtype == tf.uint8 and len(x.shape) == 3 else 1
        if size is not None:
            x = _resized(x, size, "bilinear")
        x = tf.cast(x, tf.float32) * scale
        labels, masks = {}, {}
        for task in tasks:
            raw = _feature(example, task.feature)
            label = raw if task.preprocess is None else task.preprocess(raw)
            if task.dense and size is not None:
                label = _resized(label, size, "nearest")
            mask = tf.constant(True) if task.labelled is None else task.labelled(raw)
            labels[task.name] = tf.where(mask, label, tf.zeros_like(label))
            masks[task.name] = tf.cast(mask, tf.float32)
        return (x, labels, masks) if masked else (x, labels)

    if max_examples is not None:
        dataset = dataset.take(max_examples)
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(route, num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size:
        dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)


def from_tfds(name, tasks=None, split="train", data_dir=None, input_feature=None, **options):
    """A multi-task view of a prepared tfds dataset; never downloads.

    Args:
        name: the tfds name (e.g. "celeb_a", "nyu_depth_v2", or "mtfl" after
            `import keras_mtl.datasets.tfds_builders`), with an optional config
            ("name/config").
        tasks: a list of `TaskView`, or None for the dataset's `CATALOGUE` entry.
        split: the tfds split (slicing such as "train[:10%]" works).
        data_dir: the tfds data folder (`~` expanded; default: tfds' own,
            `~/tensorflow_datasets`).
        input_feature: the input feature (default: the `CATALOGUE` entry's, else "image").
        **options: `view`'s (image_size, batch_size, shuffle, seed, max_examples).

    Returns:
        `view(...)` of the split.

    Example:

    ```python
    train = from_tfds("celeb_a", split="train", data_dir="~/tensorflow_datasets",
                      image_size=64, batch_size=64, shuffle=True)
    ```
    """
    import tensorflow_datasets as tfds

    entry = CATALOGUE.get(name.split("/")[0].split(":")[0])
    if tasks is None:
        if entry is None:
            raise ValueError(f"No ready-made task list for {name!r}: pass tasks=[TaskView(...)]. "
                             f"Ready-made: {sorted(CATALOGUE)}.")
        tasks = entry[1]()
    if input_feature is None:
        input_feature = entry[0] if entry else "image"
    data_dir = None if data_dir is None else os.path.expanduser(data_dir)
    dataset = tfds.load(name, split=split, data_dir=data_dir, download=False,
                        shuffle_files=bool(options.get("shuffle")))
    return view(dataset, tasks, input_feature=input_feature, **options)


CELEB_A_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)


def celeb_a_task_name(attribute):
    """The task name of a CelebA attribute: lower case, "5_o_Clock_Shadow" spelled
    "five_o_clock_shadow" (a task name cannot start with a digit)."""
    return attribute.lower().replace("5_o_", "five_o_")


def celeb_a_tasks(attributes=CELEB_A_ATTRIBUTES):
    """CelebA's binary attributes (Liu et al., ICCV 2015), one task each: float32 `(1,)`."""
    return [TaskView(celeb_a_task_name(a), f"attributes/{a}", binary, num_classes=1)
            for a in attributes]


def _depth(value):
    return tf.cast(value, tf.float32)[..., None]


def nyu_depth_v2_tasks():
    """NYU Depth v2 (Silberman et al., ECCV 2012) in tfds: depth in metres, float32
    `(H, W, 1)`, 0 where the sensor has no reading. (tfds' version has no
    segmentation or normals; `keras_mtl.datasets.scenes` has all three.)"""
    return [TaskView("depth", "depth", _depth, dense=True)]


def _trimap(value):
    return tf.cast(value[..., 0], tf.int32) - 1


def oxford_iiit_pet_tasks():
    """Oxford-IIIT Pet (Parkhi et al., CVPR 2012) in tfds: segmentation (0 pet,
    1 background, 2 border), breed (37) and species (2)."""
    return [TaskView("segmentation", "segmentation_mask", _trimap, dense=True, num_classes=3),
            TaskView("breed", "label", class_index, num_classes=37),
            TaskView("species", "species", class_index, num_classes=2)]


def smallnorb_tasks():
    """smallNORB (LeCun et al., CVPR 2004): category, elevation, azimuth and lighting."""
    classes = {"category": 5, "elevation": 9, "azimuth": 18, "lighting": 6}
    return [TaskView(t, f"label_{t}", class_index, num_classes=n) for t, n in classes.items()]


def shapes3d_tasks():
    """Shapes3D (Burgess and Kim, 2018): its six generative factors, as classes."""
    classes = {"floor_hue": 10, "wall_hue": 10, "object_hue": 10, "scale": 8, "shape": 4,
               "orientation": 15}
    return [TaskView(t, f"label_{t}", class_index, num_classes=n) for t, n in classes.items()]


def _labelled(value):
    return value >= 0


def tox21_tasks():
    """`tfds_builders.Tox21`'s 12 assays: float32 `(1,)` labels, masked where not
    measured (stored as -1)."""
    from keras_mtl.datasets.tox21 import TASKS

    return [TaskView(t, f"labels/{t}", binary, labelled=_labelled, num_classes=1) for t in TASKS]


def mtfl_tasks():
    """`tfds_builders.Mtfl`: landmarks (10 pixel coordinates) and the 4 attributes."""
    from keras_mtl.datasets.mtfl import NUM_CLASSES

    return [TaskView("landmarks", "landmarks")] + [
        TaskView(t, t, class_index, num_classes=n) for t, n in NUM_CLASSES.items()]


def utkface_tasks():
    """`tfds_builders.Utkface`: age (years, float32 `(1,)`), gender and race."""
    from keras_mtl.datasets.utkface import NUM_CLASSES

    return [TaskView("age", "age", lambda v: tf.reshape(v, [1]))] + [
        TaskView(t, t, class_index, num_classes=n) for t, n in NUM_CLASSES.items()]


def scenes_tasks():
    """`tfds_builders.Scenes`: segmentation, depth and normals."""
    from keras_mtl.datasets.scenes import NUM_CLASSES

    return [TaskView("segmentation", "segmentation", dense=True, num_classes=NUM_CLASSES),
            TaskView("depth", "depth", dense=True), TaskView("normals", "normals", dense=True)]


# tfds name -> (input feature, task list function).
CATALOGUE = {
    "celeb_a": ("image", celeb_a_tasks),
    "nyu_depth_v2": ("image", nyu_depth_v2_tasks),
    "oxford_iiit_pet": ("image", oxford_iiit_pet_tasks),
    "smallnorb": ("image", smallnorb_tasks),
    "shapes3d": ("image", shapes3d_tasks),
    "mtfl": ("image", mtfl_tasks),
    "utkface": ("image", utkface_tasks),
    "tox21": ("fingerprint", tox21_tasks),
    "oxford_pets": ("image", oxford_iiit_pet_tasks),
    "scenes": ("image", scenes_tasks),
}
