"""Oxford-IIIT Pet: pet/background/border segmentation, breed and cat-vs-dog.

Parkhi, Vedaldi, Zisserman, Jawahar, "Cats and Dogs", CVPR 2012. Folder layout
(as in the full download of images.tar.gz and annotations.tar.gz, and
../shared/data/oxford_pets_sample):

    images/NAME.jpg
    annotations/trainval.txt  annotations/test.txt  annotations/trimaps/NAME.png
    annotations/xmls/NAME.xml   (head boxes, PASCAL VOC; trainval images only)

List lines are `NAME CLASS-ID SPECIES BREED-ID`; lines starting with `#` are
comments. The split is the official one: `trainval.txt` and `test.txt`.
"""

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from keras_mtl._tensorflow import LazyTensorFlow
from keras_mtl.datasets import _validate
from keras_mtl.datasets._pipeline import cached, read_image, shuffled_with_seeds

tf = LazyTensorFlow("The Oxford-IIIT Pet tf.data pipeline (keras_mtl.datasets.oxford_pets.load)")

TASKS = ("segmentation", "breed", "species")
BOX_LABELS = ("boxes", "box_classes", "box_mask")
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


def _read_head_boxes(xml_file, image_file):
    """The head boxes of one PASCAL VOC file as `(boxes, species)`: `(n, 4)` float32
    `(x1, y1, x2, y2)` in pixels (pixel `(i, j)` spans `[j, j + 1) x [i, i + 1)`, so
    VOC's 1-based inclusive `xmin .. xmax` is `xmin - 1 .. xmax`), and `(n,)` int32
    species (0 cat, 1 dog), checked against the file's `<size>`."""
    try:
        root = ElementTree.parse(xml_file).getroot()
    except (ElementTree.ParseError, OSError) as e:
        raise _validate.error(xml_file, None, f"not a readable PASCAL VOC XML file ({e})",
                              "an <annotation> with <size> and <object><bndbox> elements") from None

    def value(element, tag, where):
        text = element.findtext(tag)
        if text is None:
            raise _validate.error(xml_file, None, f"{where} has no <{tag}>", f"<{tag}> with a number")
        return _validate.number(text.strip(), xml_file, None, f"{where} <{tag}>")

    size = root.find("size")
    if size is None:
        raise _validate.error(xml_file, None, "no <size>", "the image's <size><width> and <height>")
    width, height = value(size, "width", "<size>"), value(size, "height", "<size>")
    objects = root.findall("object")
    if not objects:
        raise _validate.error(xml_file, None, "no <object>", f"at least one head box for {image_file}")
    boxes, species = [], []
    for i, element in enumerate(objects):
        where = f"<object> {i}"
        name = (element.findtext("name") or "").strip()
        if name not in SPECIES:
            raise _validate.error(xml_file, None, f"{where} <name> is {name!r}", f"one of {SPECIES}")
        box = element.find("bndbox")
        if box is None:
            raise _validate.error(xml_file, None, f"{where} has no <bndbox>", "<bndbox> with xmin ymin xmax ymax")
        x_min, y_min, x_max, y_max = (value(box, tag, where) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if not (1 <= x_min <= x_max <= width and 1 <= y_min <= y_max <= height):
            raise _validate.error(
                xml_file, None, f"{where} box (xmin {x_min:g}, ymin {y_min:g}, xmax {x_max:g}, ymax {y_max:g}) "
                f"is not inside the {width:g}x{height:g} image", "1 <= xmin <= xmax <= width and "
                "1 <= ymin <= ymax <= height")
        boxes.append((x_min - 1, y_min - 1, x_max, y_max))
        species.append(SPECIES.index(name))
    return np.array(boxes, "float32").reshape(-1, 4), np.array(species, "int32"), (height, width)


def read_head_boxes(path, split="trainval"):
    """Reads the head boxes of a split's images that have an XML file.

    The data set gives head boxes for trainval images only, and not for all of them
    (`annotations/xmls/NAME.xml`, PASCAL VOC): listed images without an XML are left
    out and named in `"unannotated"`.

    Args:
        path: the Oxford-IIIT Pet folder.
        split: "trainval" or "test".

    Returns:
        A dict: "image" (file paths), "boxes" `(N, M, 4)` float32 `(x1, y1, x2, y2)`
        in the image's pixels, "box_classes" `(N, M)` int32 species (0 cat, 1 dog),
        "box_mask" `(N, M)` bool (M the most boxes of any image; padding rows are 0
        and False), "size" `(N, 2)` int32 `(height, width)` from the XML, and
        "unannotated" (names of listed images without an XML).

    Raises:
        FileNotFoundError: no `annotations/xmls` folder, or an XML whose image is missing.
        ValueError: naming the XML file of an unreadable file, an object without a
            box, a box outside the image, an XML without any box, or a split none of
            whose images has a box.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(SPLIT_FILES)}. Received: split={split!r}")
    folder = os.path.join(path, "annotations", "xmls")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"No Oxford-IIIT Pet head-box folder {folder} (path={path!r}).")
    images, boxes, classes, sizes, unannotated = [], [], [], [], []
    for name, _, _ in _read_list(path, split):
        xml_file = os.path.join(folder, name + ".xml")
        if not os.path.isfile(xml_file):
            unannotated.append(name)
            continue
        image_file = os.path.join(path, "images", name + ".jpg")
        if not os.path.isfile(image_file):
            raise FileNotFoundError(f"{xml_file}: its image {image_file} does not exist.")
        found, species, size = _read_head_boxes(xml_file, image_file)
        images.append(image_file)
        boxes.append(found)
        classes.append(species)
        sizes.append(size)
    _validate.not_empty(len(images), os.path.join(path, "annotations", SPLIT_FILES[split]),
                        f"images with a head box in {folder}")
    most = max(len(b) for b in boxes)
    padded = np.zeros((len(images), most, 4), "float32")
    box_classes = np.zeros((len(images), most), "int32")
    box_mask = np.zeros((len(images), most), bool)
    for i, (found, species) in enumerate(zip(boxes, classes)):
        padded[i, :len(found)], box_classes[i, :len(found)], box_mask[i, :len(found)] = found, species, True
    return {"image": np.array(images), "boxes": padded, "box_classes": box_classes, "box_mask": box_mask,
            "size": np.array(sizes, "int32"), "unannotated": unannotated}


def load(path, split="trainval", tasks=None, batch_size=32, image_size=64, training=None,
         seed=0, max_examples=None, cache=True):
    """An Oxford-IIIT Pet `tf.data` pipeline of `(image, {task: label})` batches.

    Images (bilinear, antialiased) and trimaps (nearest neighbour) are resized to a
    square `image_size` (the aspect ratio is not kept) and cached as uint8; head
    boxes are scaled with them. In training they are shuffled and mirrored together
    at random.

    Args:
        path: the Oxford-IIIT Pet folder (see the module docstring).
        split: "trainval" or "test" (the official split).
        tasks: labels to return, from `TASKS` and `BOX_LABELS` (default all of
            `TASKS`). With any of `BOX_LABELS`, only the images with a head box are
            read (`read_head_boxes`).
        batch_size: examples per batch.
        image_size: side of the square images and masks.
        training: shuffle and augment; defaults to `split == "trainval"`.
        seed: seed of the subset, the shuffle and the augmentation.
        max_examples: keep a random subset of this many examples.
        cache: True caches in memory, a file name caches there, False not at all.

    Returns:
        A `tf.data.Dataset` of `(image, labels)`: image float32 `(batch, S, S, 3)` in
        [0, 1]; labels a dict with "segmentation" int32 `(batch, S, S)` (0 pet,
        1 background, 2 border), "breed" and "species" int32 `(batch,)`, "boxes"
        float32 `(batch, M, 4)` head boxes `(x1, y1, x2, y2)` in the resized image's
        pixels, "box_classes" int32 `(batch, M)` (0 cat, 1 dog) and "box_mask" bool
        `(batch, M)` (padding rows False).
    """
    tasks = tuple(TASKS if tasks is None else tasks)
    if not tasks or any(t not in TASKS + BOX_LABELS for t in tasks):
        raise ValueError(f"tasks must be a non-empty subset of {TASKS + BOX_LABELS}. Received: tasks={tasks!r}")
    training = split == "trainval" if training is None else training
    records = read_split(path, split)
    with_boxes = any(t in BOX_LABELS for t in tasks)
    if with_boxes:
        heads = read_head_boxes(path, split)
        keep = np.flatnonzero(np.isin(records["image"], heads["image"]))
        records = {k: v[keep] for k, v in records.items()}
        order = {image: i for i, image in enumerate(heads["image"])}
        rows = [order[image] for image in records["image"]]
        records.update({k: heads[k][rows] for k in BOX_LABELS + ("size",)})
    if max_examples is not None:
        keep = np.sort(np.random.default_rng(seed).permutation(len(records["image"]))[:max_examples])
        records = {k: v[keep] for k, v in records.items()}

    def decode(image_file, trimap_file, targets):
        # decode_image: a few files of the full download are PNG or GIF named .jpg.
        image = tf.io.decode_image(read_image(image_file, ("jpeg", "png", "gif")), channels=3,
                                   expand_animations=False)
        if with_boxes:
            targets = dict(targets)
            shape = tf.shape(image)[:2]
            check = tf.debugging.Assert(tf.reduce_all(shape == targets.pop("size")), [
                "keras_mtl: the image file", image_file, "has size (height, width)", shape,
                "but its head-box XML gives another <size>: the boxes would not fit the image"])
            with tf.control_dependencies([check]):
                scale = tf.cast(image_size, tf.float32) / tf.cast(shape, tf.float32)
                targets["boxes"] = targets["boxes"] * tf.stack([scale[1], scale[0], scale[1], scale[0]])
        image = tf.image.resize(image, [image_size, image_size], antialias=True)
        trimap = tf.io.decode_png(read_image(trimap_file, ("png",)), channels=1)
        trimap = tf.image.resize(trimap, [image_size, image_size], method="nearest")
        return tf.cast(tf.round(image), tf.uint8), trimap, targets

    def augment(example, aug_seed):
        image, trimap, targets = example
        mirror = tf.random.stateless_uniform([], aug_seed) < 0.5
        image = tf.where(mirror, tf.reverse(image, [1]), image)
        trimap = tf.where(mirror, tf.reverse(trimap, [1]), trimap)
        if with_boxes:
            targets = dict(targets)
            x1, y1, x2, y2 = tf.unstack(targets["boxes"], axis=-1)
            side = tf.cast(image_size, tf.float32)
            mirrored = tf.where(targets["box_mask"][:, None], tf.stack([side - x2, y1, side - x1, y2], -1), 0.0)
            targets["boxes"] = tf.where(mirror, mirrored, targets["boxes"])
        return image, trimap, targets

    def finish(image, trimap, targets):
        labels = {t: targets[t] for t in tasks if t != "segmentation"}
        if "segmentation" in tasks:
            labels["segmentation"] = tf.cast(trimap[..., 0], tf.int32) - 1
        return tf.cast(image, tf.float32) / 255.0, {t: labels[t] for t in tasks}

    targets = {k: records[k] for k in ("breed", "species") + (BOX_LABELS + ("size",) if with_boxes else ())}
    ds = tf.data.Dataset.from_tensor_slices((records["image"], records["trimap"], targets))
    ds = cached(ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE), cache)
    if training:
        ds = shuffled_with_seeds(ds, len(records["image"]), seed).map(
            augment, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
