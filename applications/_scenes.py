"""The Scenes experiment the Scenes applications share: data, tasks, metrics, backbone.

Segmentation, depth and surface normals on procedurally rendered Scenes images
(`keras_mtl.datasets.scenes`), each task with MTAN's head, on a SegNet backbone.
"""

import functools
import types

import tensorflow as tf

import _common
from keras_mtl import tasks as presets
from keras_mtl.backbones.segnet import segnet
from keras_mtl.datasets.scenes import DENSE_TASKS, NUM_CLASSES, scenes_arrays

HIGHER_IS_BETTER = {
    "segmentation_miou": True,
    "segmentation_pixel_accuracy": True,
    "depth_abs_error": False,
    "depth_rel_error": False,
    "normals_angle_mean": False,
    "normals_angle_median": False,
    "normals_within_11.25": True,
    "normals_within_22.5": True,
    "normals_within_30": True,
}
LOWER_IS_BETTER = {name for name, higher in HIGHER_IS_BETTER.items() if not higher}


def make_tasks(width, mean_depth):
    """The three dense tasks (`keras_mtl.tasks` presets), each with MTAN's head: a 3x3
    conv of `width` channels and a 1x1 conv; depth starts at the mean valid depth."""
    return [presets.segmentation("segmentation", NUM_CLASSES, width=width),
            presets.depth(width=width, mean_depth=mean_depth), presets.normals(width=width)]


def make_metrics():
    """Fresh metric objects by task: those of the presets of `make_tasks`."""
    return {task.name: task.metrics for task in make_tasks(width=1, mean_depth=0.0)}


def dataset(images, labels, batch_size, shuffle_seed=None):
    data = tf.data.Dataset.from_tensor_slices((images, {t: labels[t] for t in DENSE_TASKS}))
    if shuffle_seed is not None:
        data = data.shuffle(len(images), seed=shuffle_seed)
    return data.batch(batch_size).prefetch(2)


def parser(description, train, val, epochs, filters):
    """`_common.parser`'s flags (no --data: the images are generated) and the Scenes ones."""
    p = _common.parser(description, epochs=epochs, batch_size=16, learning_rate=2e-3, data=False)
    p.add_argument("--height", type=int, default=48, help="image height (multiple of 2^blocks)")
    p.add_argument("--width", type=int, default=64, help="image width (multiple of 2^blocks)")
    p.add_argument("--train", type=int, default=train, help="training images")
    p.add_argument("--val", type=int, default=val, help="validation images")
    p.add_argument("--filters", default=filters, help="SegNet channels per block")
    return p


def parse_args(p, argv):
    args = p.parse_args(argv)
    args.filters = tuple(int(f) for f in args.filters.split(","))
    return args


def experiment(args, seed, convs_per_block=1, train=None, generated=None):
    """The data and model factories the Scenes comparisons share, for one seed: Scenes
    images for `train` (default `args.train`) / `args.val` (validation images from `seed + 10_000`),
    batched datasets (training shuffled with `seed`), a task factory (heads as wide as
    the first SegNet block, depth head starting at the mean valid depth), a SegNet
    backbone and the input shape. `generated`: `scenes_arrays(m, ..., seed=seed)` for
    some `m >= train`, whose first `train` images are the set of `train` (image `i`
    depends only on the seed and `i`)."""
    train = train or args.train
    train_images, train_labels = generated or scenes_arrays(train, args.height, args.width, seed=seed)
    train_images, train_labels = train_images[:train], {k: v[:train] for k, v in train_labels.items()}
    val_images, val_labels = scenes_arrays(args.val, args.height, args.width, seed=seed + 10_000)
    valid_depth = train_labels["depth"][train_labels["depth"] > 0]
    return types.SimpleNamespace(
        train=dataset(train_images, train_labels, args.batch_size, shuffle_seed=seed),
        val=dataset(val_images, val_labels, 2 * args.batch_size),
        train_labels=train_labels, val_images=val_images, val_labels=val_labels,
        tasks_factory=functools.partial(make_tasks, args.filters[0], float(valid_depth.mean())),
        backbone=functools.partial(segnet, filters=args.filters, convs_per_block=convs_per_block),
        input_shape=(args.height, args.width, 3))
