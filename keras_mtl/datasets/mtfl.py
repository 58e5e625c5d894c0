"""MTFL: 5 facial landmarks and 4 face attributes (the TCDCN data set).

Zhang, Luo, Loy, Tang, "Facial Landmark Detection by Deep Multi-task Learning",
ECCV 2014. Folder layout (as in the MTFL download, and ../shared/data/mtfl):

    training.txt  testing.txt  lfw_5590/  net_7876/  AFLW/

with one label line per image: `path x1..x5 y1..y5 gender smile glasses pose`.
The split is the official one: `training.txt` (10,000 faces from LFW and the web)
and `testing.txt` (2,995 faces from AFLW).
"""

import os

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate
from keras_mtl.datasets._pipeline import cached, read_image, shuffled_with_seeds

tf = LazyTensorFlow("The MTFL tf.data pipeline (keras_mtl.datasets.mtfl)")

TASKS = ("landmarks", "gender", "smile", "glasses", "pose")
ATTRIBUTES = TASKS[1:]
NUM_CLASSES = {"gender": 2, "smile": 2, "glasses": 2, "pose": 5}
SPLIT_FILES = {"train": "training.txt", "test": "testing.txt"}
# Mirroring the image swaps left and right: eyes (0, 1), mouth corners (3, 4) and
# the poses left profile/right profile and left/right.
_FLIPPED_POINTS = (1, 0, 2, 4, 3)
_FLIPPED_POSE = (4, 3, 2, 1, 0)
_LAYOUT = "`path x1..x5 y1..y5 gender smile glasses pose` (attributes from 1)"


def read_labels(path, split):
    """Reads a split's label file.

    Args:
        path: the MTFL folder.
        split: "train" (`training.txt`) or "test" (`testing.txt`).

    Returns:
        A dict of numpy arrays: "path" (absolute image paths), "landmarks" `(N, 10)`
        float32 pixel coordinates `x1..x5, y1..y5` (left eye, right eye, nose, left
        and right mouth corner), and "gender" (0 male, 1 female), "smile" (0 smiling,
        1 not), "glasses" (0 wearing, 1 not), "pose" (0 left profile .. 4 right
        profile) as int32 class indices.

    Raises:
        ValueError: naming the file and line of a malformed line, a value out of
            range, or an image path that leads outside `path`.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}. Received: split={split!r}")
    label_file = os.path.join(path, SPLIT_FILES[split])
    if not os.path.isfile(label_file):
        raise FileNotFoundError(f"No MTFL label file {label_file} (path={path!r}).")
    paths, values = [], []
    with open(label_file) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                image, points, attributes = _parse_line(line.split(), path, label_file, number)
                paths.append(image)
                values.append(points + attributes)
    _validate.not_empty(len(paths), label_file, "lines " + _LAYOUT)
    values = np.array(values, dtype="float32")
    labels = {"path": np.array(paths), "landmarks": values[:, :10]}
    for i, name in enumerate(ATTRIBUTES):
        labels[name] = values[:, 10 + i].astype("int32") - 1
    return labels


def _parse_line(fields, path, file, line):
    """One label line's image path, 10 landmark coordinates and 4 attributes
    (1-based, as in the file), checked."""
    _validate.field_count(fields, 15, file, line, _LAYOUT)
    # The original MTFL files use backslashes in paths; `path_inside` accepts both.
    image = _validate.path_inside(path, fields[0], file, line)
    points = [_validate.number(v, file, line, "a landmark coordinate") for v in fields[1:11]]
    if max(points[:5]) - min(points[:5]) <= 0 and max(points[5:]) - min(points[5:]) <= 0:
        raise _validate.error(file, line, "all 5 landmarks are the same point",
                              "landmarks that span a face")
    attributes = [_validate.integer(v, file, line, name, 1, NUM_CLASSES[name])
                  for v, name in zip(fields[11:], ATTRIBUTES)]
    return image, points, attributes


def face_box(landmarks, margin=0.5):
    """A square face box around 5 landmarks, in pixel coordinates.

    The box is centred on the landmarks' bounding box; its side is the larger extent
    of that bounding box times `1 + 2 * margin`.

    Args:
        landmarks: `(..., 10)` pixel coordinates `x1..x5, y1..y5`.
        margin: space added on each side, as a fraction of the larger extent.

    Returns:
        `(..., 4)` float32 boxes `(top, left, bottom, right)`.
    """
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    xs, ys = landmarks[..., :5], landmarks[..., 5:]
    x_min, x_max = tf.reduce_min(xs, -1), tf.reduce_max(xs, -1)
    y_min, y_max = tf.reduce_min(ys, -1), tf.reduce_max(ys, -1)
    half = tf.maximum(x_max - x_min, y_max - y_min) * (0.5 + margin)
    cx, cy = (x_min + x_max) / 2, (y_min + y_max) / 2
    return tf.stack([cy - half, cx - half, cy + half, cx + half], axis=-1)


def landmarks_in_box(landmarks, box):
    """Re-expresses `(..., 10)` pixel landmarks in the normalised coordinates of
    `(..., 4)` boxes `(top, left, bottom, right)`: 0 at the top/left edge, 1 at the
    bottom/right one."""
    landmarks = tf.convert_to_tensor(landmarks, tf.float32)
    box = tf.convert_to_tensor(box, tf.float32)
    top, left, bottom, right = (box[..., i:i + 1] for i in range(4))
    xs = (landmarks[..., :5] - left) / (right - left)
    ys = (landmarks[..., 5:] - top) / (bottom - top)
    return tf.concat([xs, ys], axis=-1)


def crop_face(image, landmarks, box, image_size):
    """Crops `box` out of `image`, resizes it and re-expresses the landmarks.

    Parts of the box outside the image are black. Coordinates are pixel indices
    (pixel centres at integers), as `tf.image.crop_and_resize` samples them.

    Args:
        image: `(H, W, C)` image.
        landmarks: `(10,)` pixel coordinates `x1..x5, y1..y5`.
        box: `(4,)` `(top, left, bottom, right)` in pixels.
        image_size: side of the square output.

    Returns:
        `(crop, landmarks)`: the `(image_size, image_size, C)` float32 crop with
        values in [0, 1], and the landmarks in the crop's normalised coordinates
        (0 at the first pixel's centre, 1 at the last one's).
    """
    extent = tf.cast(tf.shape(image)[:2] - 1, tf.float32)
    scale = tf.concat([extent, extent], axis=0)
    crop = tf.image.crop_and_resize(
        tf.cast(image, tf.float32)[None] / 255.0, (box / scale)[None], [0],
        [image_size, image_size], extrapolation_value=0.0)[0]
    return crop, landmarks_in_box(landmarks, box)


def _jittered(box, seed, jitter):
    """Moves the box's centre by up to `jitter` of its side and scales its side by
    a factor in [1 - jitter, 1 + jitter]."""
    shift = tf.random.stateless_uniform([2], seed, -jitter, jitter)
    factor = tf.random.stateless_uniform([], seed + 1, 1.0 - jitter, 1.0 + jitter)
    top, left, bottom, right = tf.unstack(box)
    side = bottom - top
    cy = (top + bottom) / 2 + shift[0] * side
    cx = (left + right) / 2 + shift[1] * side
    half = side * factor / 2
    return tf.stack([cy - half, cx - half, cy + half, cx + half])


def _flipped(image, labels):
    image = tf.image.flip_left_right(image)
    flipped = dict(labels)
    if "landmarks" in labels:
        xs, ys = labels["landmarks"][:5], labels["landmarks"][5:]
        order = list(_FLIPPED_POINTS)
        flipped["landmarks"] = tf.concat([1.0 - tf.gather(xs, order), tf.gather(ys, order)], 0)
    if "pose" in labels:
        flipped["pose"] = tf.gather(_FLIPPED_POSE, labels["pose"])
    return image, flipped


def load(path, split="train", tasks=None, batch_size=64, image_size=40, margin=0.5,
         jitter=0.1, flip=True, training=None, seed=0, max_examples=None, cache=True,
         indices=None):
    """An MTFL `tf.data` pipeline of `(image, {task: label})` batches.

    Each face is cropped around a square box derived from its landmarks
    (`face_box`), resized to `image_size`, and its landmarks are re-expressed in
    the crop's normalised coordinates. In training the box is jittered (shift and
    scale) and the face mirrored at random (landmarks and pose mirrored with it).
    The JPEG bytes are cached in training (the crop is random), the crops otherwise.

    Args:
        path: the MTFL folder (see the module docstring).
        split: "train" or "test" (the official split).
        tasks: task names to return labels for (default all of `TASKS`).
        batch_size: examples per batch.
        image_size: side of the square crops.
        margin: the face box's margin (see `face_box`).
        jitter: the largest box shift (fraction of its side) and relative scale change
            in training; at most `2 * margin / (3 * (1 + 2 * margin))`, which keeps
            all landmarks inside the crop.
        flip: mirror half of the faces in training.
        training: shuffle and augment; defaults to `split == "train"`.
        seed: seed of the subset, the shuffle and the augmentation.
        max_examples: keep a random subset of this many examples.
        cache: True caches in memory, a file name caches there, False not at all.
        indices: keep only these examples (positions in the split's label file),
            before `max_examples`; e.g. to hold out a validation part of "train".

    Returns:
        A `tf.data.Dataset` of `(image, labels)`: image float32 `(batch, S, S, 3)` in
        [0, 1]; labels a dict with "landmarks" float32 `(batch, 10)` and the
        attributes int32 `(batch,)` (classes as in `read_labels`).
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}. Received: tasks={tasks!r}")
    limit = 2 * margin / (3 * (1 + 2 * margin))
    if not 0 <= jitter <= limit + 1e-9:
        raise ValueError(
            f"jitter must be in [0, {limit:.4f}] for margin={margin}, so that the landmarks "
            f"stay inside the crop. Received: jitter={jitter!r}"
        )
    training = split == "train" if training is None else training
    labels = read_labels(path, split)
    if indices is not None:
        labels = {k: v[np.asarray(indices)] for k, v in labels.items()}
    if max_examples is not None:
        keep = np.sort(np.random.default_rng(seed).permutation(len(labels["path"]))[:max_examples])
        labels = {k: v[keep] for k, v in labels.items()}

    def read(file, landmarks, targets):
        return read_image(file), landmarks, targets

    def prepare(data, landmarks, targets, box_seed=None):
        image = tf.io.decode_jpeg(data, channels=3)
        box = face_box(landmarks, margin)
        if box_seed is not None:
            box = _jittered(box, box_seed, jitter)
        crop, points = crop_face(image, landmarks, box, image_size)
        out = {t: points if t == "landmarks" else targets[t] for t in tasks}
        if box_seed is not None and flip:
            crop, out = tf.cond(tf.random.stateless_uniform([], box_seed + 2) < 0.5,
                                lambda: _flipped(crop, out), lambda: (crop, out))
        return crop, out

    targets = {t: labels[t] for t in ATTRIBUTES}
    ds = tf.data.Dataset.from_tensor_slices((labels["path"], labels["landmarks"], targets))
    ds = ds.map(read, num_parallel_calls=tf.data.AUTOTUNE)
    if training:
        ds = shuffled_with_seeds(cached(ds, cache), len(labels["path"]), seed).map(
            lambda example, s: prepare(*example, box_seed=s), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = cached(ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE), cache)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
