"""Data with boxes: Oxford-IIIT Pet head boxes and MTFL face boxes as padded box
batches with a mask; each damaged annotation is an error naming its file."""

import re

import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.datasets import mtfl, oxford_pets
from test_datasets_real import _all, _folder

BOX_LABELS = ("boxes", "box_classes", "box_mask")


def _voc_box(xml_file):
    """The first box and size of a VOC file, read with regular expressions."""
    text = open(xml_file).read()
    number = lambda tag: float(re.search(rf"<{tag}>\s*([\d.]+)\s*</{tag}>", text).group(1))
    return [number(t) for t in ("xmin", "ymin", "xmax", "ymax")], (number("height"), number("width"))


# ------------------------------------------------------------------- Oxford-IIIT Pet

def test_pets_head_boxes_are_the_xml_boxes_scaled_to_the_image():
    path = _folder("oxford_pets_sample")
    heads = oxford_pets.read_head_boxes(path)
    assert len(heads["image"]) == 296 and heads["box_mask"].sum() == 297
    assert sorted(heads["unannotated"]) == ["Abyssinian_104", "Bengal_111", "Bengal_175", "american_bulldog_202"]
    image, y = _all(oxford_pets.load(path, "trainval", tasks=("species",) + BOX_LABELS, batch_size=16,
                                     image_size=40, training=False, max_examples=24))
    assert image.shape == (24, 40, 40, 3) and y["boxes"].shape == (24, 2, 4)
    assert y["box_mask"].dtype == bool and y["box_mask"][:, 0].all()
    # Each head's class is its image's species, and padding rows are zero.
    np.testing.assert_array_equal(y["box_classes"][:, 0], y["species"])
    assert not y["boxes"][~y["box_mask"]].any()
    files = np.sort(np.random.default_rng(0).permutation(296)[:24])
    for row, i in enumerate(files):
        (x_min, y_min, x_max, y_max), (height, width) = _voc_box(
            heads["image"][i].replace("/images/", "/annotations/xmls/").replace(".jpg", ".xml"))
        expected = [(x_min - 1) * 40 / width, (y_min - 1) * 40 / height, x_max * 40 / width, y_max * 40 / height]
        np.testing.assert_allclose(y["boxes"][row, 0], expected, rtol=1e-5)


def test_pets_mirroring_moves_the_head_box_with_the_pixels():
    path = _folder("oxford_pets_sample")
    kept = dict(tasks=BOX_LABELS, batch_size=8, image_size=32, max_examples=8)
    plain_images, plain = _all(oxford_pets.load(path, training=False, **kept))
    images, y = _all(oxford_pets.load(path, training=True, **kept))
    mirrored = 0
    for i in range(8):
        j = int(np.flatnonzero(np.all(np.isclose(plain["boxes"][:, 0, 1:4:2], y["boxes"][i, 0, 1:4:2]), -1))[0])
        x1, y1, x2, y2 = plain["boxes"][j, 0]
        if np.allclose(images[i], plain_images[j]):
            np.testing.assert_allclose(y["boxes"][i, 0], [x1, y1, x2, y2])
        else:
            np.testing.assert_allclose(images[i], plain_images[j][:, ::-1])
            np.testing.assert_allclose(y["boxes"][i, 0], [32 - x2, y1, 32 - x1, y2], rtol=1e-6)
            mirrored += 1
    assert 0 < mirrored < 8


def _pets_with_xml(tmp_path, xml, image_size=(30, 20)):
    """A one-image Oxford-IIIT Pet folder whose head-box file holds `xml`."""
    for folder in ("annotations/xmls", "annotations/trimaps", "images"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "annotations" / "trainval.txt").write_text("Bengal_1 6 1 2\n")
    (tmp_path / "annotations" / "test.txt").write_text("Bengal_2 6 1 2\n")
    pixels = np.zeros(image_size + (3,), np.uint8)
    (tmp_path / "images" / "Bengal_1.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    (tmp_path / "annotations" / "trimaps" / "Bengal_1.png").write_bytes(
        tf.io.encode_png(np.ones(image_size + (1,), np.uint8)).numpy())
    xml_file = tmp_path / "annotations" / "xmls" / "Bengal_1.xml"
    xml_file.write_text(xml)
    return str(tmp_path), xml_file


def _voc(objects, width=20, height=30):
    body = "".join(f"<object><name>{name}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                   f"<ymax>{d}</ymax></bndbox></object>" for name, (a, b, c, d) in objects)
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{body}</annotation>"


def test_pets_reads_a_valid_head_box_file(tmp_path):
    path, _ = _pets_with_xml(tmp_path, _voc([("cat", (2, 3, 10, 12)), ("dog", (1, 1, 20, 30))]))
    heads = oxford_pets.read_head_boxes(path)
    np.testing.assert_array_equal(heads["boxes"][0], [[1, 2, 10, 12], [0, 0, 20, 30]])
    assert heads["box_classes"].tolist() == [[0, 1]] and heads["box_mask"].tolist() == [[True, True]]


@pytest.mark.parametrize("xml, message", [
    ("<annotation><size>", "not a readable PASCAL VOC XML file"),
    ("", "not a readable PASCAL VOC XML file"),
    (_voc([]), "no <object>; expected at least one head box for .*Bengal_1.jpg"),
    (_voc([("cat", (2, 3, 21, 12))]), r"<object> 0 box \(xmin 2, ymin 3, xmax 21, ymax 12\) is not inside "
                                      r"the 20x30 image"),
    (_voc([("cat", (0, 3, 10, 12))]), "<object> 0 box .* is not inside the 20x30 image"),
    (_voc([("cat", (2, 13, 10, 12))]), "<object> 0 box .* is not inside the 20x30 image"),
    (_voc([("cat", (2, 3, "ten", 12))]), "<object> 0 <xmax> is 'ten'; expected a finite number"),
    (_voc([("rabbit", (2, 3, 10, 12))]), "<object> 0 <name> is 'rabbit'; expected one of"),
    ("<annotation><object><name>cat</name></object></annotation>", "no <size>"),
    ("<annotation><size><width>20</width><height>30</height></size><object><name>cat</name></object>"
     "</annotation>", "<object> 0 has no <bndbox>"),
])
def test_pets_names_the_bad_head_box_file(tmp_path, xml, message):
    path, xml_file = _pets_with_xml(tmp_path, xml)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(xml_file))}: {message}"):
        oxford_pets.read_head_boxes(path)


def test_pets_names_missing_head_box_files_and_images(tmp_path):
    path, xml_file = _pets_with_xml(tmp_path, _voc([("cat", (2, 3, 10, 12))]))
    with pytest.raises(ValueError, match=r"test.txt: no examples; expected images with a head box"):
        oxford_pets.read_head_boxes(path, "test")
    (tmp_path / "images" / "Bengal_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(xml_file))}: its image .*Bengal_1.jpg"):
        oxford_pets.read_head_boxes(path)
    xml_file.unlink()
    (tmp_path / "annotations" / "xmls").rmdir()
    with pytest.raises(FileNotFoundError, match="No Oxford-IIIT Pet head-box folder"):
        oxford_pets.load(path, tasks=BOX_LABELS)


def test_pets_names_an_image_whose_size_is_not_its_head_box_files(tmp_path):
    path, _ = _pets_with_xml(tmp_path, _voc([("cat", (2, 3, 10, 12))], width=20, height=30), image_size=(30, 24))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Bengal_1.jpg.*another <size>"):
        list(oxford_pets.load(path, tasks=BOX_LABELS, image_size=16, training=False, cache=False))


# ----------------------------------------------------------------------------- MTFL

def test_mtfl_face_box_holds_the_landmarks_and_the_image():
    path = _folder("mtfl")
    labels = mtfl.read_labels(path, "test")
    keep = np.sort(np.random.default_rng(0).permutation(len(labels["path"]))[:16])
    image, y = _all(mtfl.load_boxes(path, "test", tasks=BOX_LABELS + ("pose",), batch_size=8, image_size=48,
                                    max_examples=16))
    assert image.shape == (16, 48, 48, 3) and y["boxes"].shape == (16, 1, 4)
    assert y["box_mask"].all() and not y["box_classes"].any()
    np.testing.assert_array_equal(y["pose"], labels["pose"][keep])
    # AFLW images are 150x150: the square around the landmarks, side twice their
    # larger extent, clipped to the image, then scaled by 48 / 150.
    points = labels["landmarks"][keep].astype(np.float64)
    xs, ys = points[:, :5], points[:, 5:]
    half = np.maximum(np.ptp(xs, 1), np.ptp(ys, 1))
    cx, cy = (xs.min(1) + xs.max(1)) / 2, (ys.min(1) + ys.max(1)) / 2
    expected = np.clip(np.stack([cx - half, cy - half, cx + half, cy + half], -1), 0, 150) * 48 / 150
    np.testing.assert_allclose(y["boxes"][:, 0], expected, atol=1e-3)
    assert np.all(xs * 48 / 150 >= y["boxes"][:, 0, :1]) and np.all(xs * 48 / 150 <= y["boxes"][:, 0, 2:3])


def test_mtfl_names_an_image_whose_landmark_lies_outside_it(tmp_path):
    (tmp_path / "lfw_5590").mkdir()
    for name in ("a", "b"):
        pixels = np.zeros((40, 30, 3), np.uint8)
        (tmp_path / "lfw_5590" / f"{name}.jpg").write_bytes(tf.io.encode_jpeg(pixels).numpy())
    inside = "5 20 12 8 18 10 11 20 30 30"
    outside = "5 20 12 8 31 10 11 20 30 30"  # x5 = 31 in a 30-pixel-wide image
    (tmp_path / "training.txt").write_text(f"lfw_5590/a.jpg {inside} 1 1 2 3\nlfw_5590/b.jpg {outside} 1 1 2 3\n")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"lfw_5590/b.jpg.*lies outside"):
        list(mtfl.load_boxes(str(tmp_path), "train", training=False, cache=False, batch_size=1))
    (tmp_path / "training.txt").write_text(f"lfw_5590/a.jpg {inside} 1 1 2 3\n")
    _, y = _all(mtfl.load_boxes(str(tmp_path), "train", training=False, cache=False, image_size=30))
    np.testing.assert_allclose(y["boxes"][0, 0], [0.0, 0.0, 30.0, 30.0], atol=1e-4)


def test_box_loaders_reject_unknown_tasks():
    with pytest.raises(ValueError, match="tasks must be a non-empty subset"):
        mtfl.load_boxes("unused", tasks=("landmarks",))
    with pytest.raises(ValueError, match="tasks must be a non-empty subset"):
        oxford_pets.load("unused", tasks=("head",))
