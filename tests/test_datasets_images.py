"""The image loaders name an empty, truncated or corrupt image file at iteration
(where the decoder's own error names none), and read whole images as before."""

import numpy as np
import pytest
import tensorflow as tf

from keras_mtl.datasets import utkface


def _jpeg(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    return tf.io.encode_jpeg(pixels).numpy()


@pytest.mark.parametrize("damage", [lambda b: b"", lambda b: b[:len(b) // 2],
                                    lambda b: b"<html>not found</html>" + b[40:]],
                         ids=["empty", "truncated", "not-a-jpeg"])
def test_utkface_names_a_damaged_image(tmp_path, damage):
    folder = tmp_path / "UTKFace"
    folder.mkdir()
    for i in range(4):
        (folder / f"2{i}_1_3_2017.jpg.chip.jpg").write_bytes(_jpeg(i))
    bad = folder / "30_0_1_2017.jpg.chip.jpg"
    bad.write_bytes(damage(_jpeg(9)))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{bad}.*not a whole jpeg image"):
        for split in ("train", "test"):
            list(utkface.load(str(tmp_path), split=split, test_fraction=0.2, batch_size=8,
                              image_size=16, training=False, cache=False))


def test_utkface_reads_whole_images(tmp_path):
    folder = tmp_path / "UTKFace"
    folder.mkdir()
    for i in range(5):
        (folder / f"2{i}_1_3_2017.jpg.chip.jpg").write_bytes(_jpeg(i))
    (images, labels), = list(utkface.load(str(tmp_path), split="train", test_fraction=0.2,
                                          batch_size=8, image_size=16, training=False))
    assert images.shape == (4, 16, 16, 3) and labels["age"].shape == (4,)
