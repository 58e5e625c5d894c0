"""Multi-task views of tfds datasets: label routing, masks, dense resizing, and the
ready-made task lists on tfds' mock data (offline: `tfds.testing.mock_data` uses each
dataset's real feature spec with random values)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mtl
from keras_mtl.datasets import tfds_view
from keras_mtl.datasets.tfds_view import TaskView, binary, class_index, from_tfds, view


def _examples():
    """Four tfds-like examples: nested features, a label with -1 = missing, a
    dense mask."""
    image = (np.arange(4 * 6 * 4 * 3) % 256).astype(np.uint8).reshape(4, 6, 4, 3)
    mask = np.zeros((4, 6, 4, 1), np.uint8) + np.arange(4, dtype=np.uint8)[None, None, :, None]
    return tf.data.Dataset.from_tensor_slices({
        "image": image,
        "attributes": {"Smiling": np.array([True, False, True, False]),
                       "Young": np.array([False, False, True, True])},
        "assay": np.array([1, -1, 0, 1], np.int64),
        "mask": mask,
    })


def test_view_routes_each_feature_to_its_task():
    tasks = [TaskView("smiling", "attributes/Smiling", binary),
             TaskView("young", "attributes/Young", class_index)]
    x, labels = next(iter(view(_examples(), tasks, batch_size=4)))
    np.testing.assert_allclose(x.numpy(), (np.arange(288) % 256).reshape(4, 6, 4, 3) / 255.0,
                               rtol=1e-6)
    assert labels["smiling"].dtype == tf.float32 and labels["smiling"].shape == (4, 1)
    np.testing.assert_array_equal(labels["smiling"].numpy()[:, 0], [1, 0, 1, 0])
    assert labels["young"].dtype == tf.int32
    np.testing.assert_array_equal(labels["young"].numpy(), [0, 0, 1, 1])


def test_view_masks_missing_labels_and_zeroes_them():
    tasks = [TaskView("assay", "assay", binary, labelled=lambda v: v >= 0),
             TaskView("smiling", "attributes/Smiling", binary)]
    x, labels, masks = next(iter(view(_examples(), tasks, batch_size=4)))
    np.testing.assert_array_equal(masks["assay"].numpy(), [1, 0, 1, 1])
    np.testing.assert_array_equal(labels["assay"].numpy()[:, 0], [1, 0, 0, 1])
    np.testing.assert_array_equal(masks["smiling"].numpy(), [1, 1, 1, 1])


def test_view_resizes_the_image_and_dense_labels_with_nearest_neighbours():
    tasks = [TaskView("segmentation", "mask", lambda v: tf.cast(v[..., 0], tf.int32), dense=True)]
    x, labels = next(iter(view(_examples(), tasks, image_size=(3, 2), batch_size=2)))
    assert x.shape == (2, 3, 2, 3)
    # Columns 0..3 hold 0..3: halving the width keeps values of the original set.
    assert labels["segmentation"].dtype == tf.int32 and labels["segmentation"].shape == (2, 3, 2)
    assert set(np.unique(labels["segmentation"].numpy())) <= {0, 1, 2, 3}
    assert len(np.unique(labels["segmentation"].numpy()[0, 0])) == 2


def test_view_names_a_missing_feature_and_rejects_duplicate_tasks():
    with pytest.raises(ValueError, match="no feature 'attributes/Bald'"):
        view(_examples(), [TaskView("bald", "attributes/Bald")])
    with pytest.raises(ValueError, match="unique names"):
        view(_examples(), [TaskView("a", "assay"), TaskView("a", "assay")])


def test_celeb_a_has_40_attribute_tasks_with_valid_task_names():
    tasks = tfds_view.celeb_a_tasks()
    assert len(tasks) == 40 == len({t.name for t in tasks})
    keras_mtl.task.check_task_names([t.name for t in tasks])
    assert tasks[0].name == "five_o_clock_shadow"


def test_keras_mtl_imports_without_tensorflow_datasets():
    # Installed, it is not imported by `import keras_mtl`; unavailable (an import of it
    # raises ImportError), keras_mtl still imports.
    for code in ("import sys, keras_mtl, keras_mtl.datasets; "
                 "assert 'tensorflow_datasets' not in sys.modules",
                 "import sys; sys.modules['tensorflow_datasets'] = None; "
                 "import keras_mtl, keras_mtl.datasets; assert keras_mtl.datasets.from_tfds"):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]


tfds = pytest.importorskip("tensorflow_datasets")


def test_celeb_a_mock_view_matches_the_raw_attributes():
    with tfds.testing.mock_data(num_examples=6):
        raw = list(tfds.as_numpy(tfds.load("celeb_a", split="train").take(6)))
        x, labels = next(iter(from_tfds("celeb_a", split="train", image_size=16, batch_size=6)))
    assert x.shape == (6, 16, 16, 3) and 0 <= float(tf.reduce_min(x)) <= float(tf.reduce_max(x)) <= 1
    assert len(labels) == 40
    for attribute in tfds_view.CELEB_A_ATTRIBUTES:
        expected = [example["attributes"][attribute] for example in raw]
        got = labels[tfds_view.celeb_a_task_name(attribute)].numpy()[:, 0]
        np.testing.assert_array_equal(got, np.array(expected, np.float32))


@pytest.mark.parametrize("name, shapes", [
    ("nyu_depth_v2", {"depth": (2, 8, 8, 1)}),
    ("oxford_iiit_pet", {"segmentation": (2, 8, 8), "breed": (2,), "species": (2,)}),
    ("smallnorb", {"category": (2,), "elevation": (2,), "azimuth": (2,), "lighting": (2,)}),
    ("shapes3d", {t: (2,) for t in ("floor_hue", "wall_hue", "object_hue", "scale", "shape",
                                     "orientation")}),
])
def test_catalogue_views_of_mock_data_have_every_task(name, shapes):
    with tfds.testing.mock_data(num_examples=2):
        x, labels = next(iter(from_tfds(name, split="train", image_size=8, batch_size=2)))
    assert x.shape[:3] == (2, 8, 8) and x.dtype == tf.float32
    assert {t: tuple(v.shape) for t, v in labels.items()} == shapes


def test_from_tfds_needs_tasks_outside_the_catalogue_and_never_downloads(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="No ready-made task list for 'mnist'"):
        from_tfds("mnist", data_dir=str(tmp_path))

    def download_and_prepare(*args, **kwargs):
        raise RuntimeError("download attempted")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", download_and_prepare)
    with pytest.raises(AssertionError, match="celeb_a: could not find data"):
        from_tfds("celeb_a", data_dir=str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(AssertionError, match=f"could not find data in {tmp_path}/tfds"):
        from_tfds("celeb_a", data_dir="~/tfds")


def test_a_mock_celeb_a_view_trains_a_40_head_model():
    with tfds.testing.mock_data(num_examples=8):
        train = from_tfds("celeb_a", split="train", image_size=8, batch_size=4)
        tasks = [keras_mtl.Task(t.name, loss=keras.losses.BinaryCrossentropy(from_logits=True),
                                head=[keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
                 for t in tfds_view.celeb_a_tasks()]
        model = keras_mtl.build("hard_sharing", tasks, input_shape=(8, 8, 3),
                                backbone=lambda shape: keras_mtl.backbones.conv(shape, filters=(4,)))
        model.compile(optimizer="adam")
        history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert len([k for k in history.history if k.endswith("_loss")]) == 40
