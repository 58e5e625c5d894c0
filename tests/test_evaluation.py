"""delta_m against a hand computation, and the single-task baseline trainer."""

import functools

import keras
import numpy as np
import pytest

import keras_mtl
from keras_mtl.backbones.segnet import segnet
from keras_mtl.datasets.scenes import NUM_CLASSES, scenes
from keras_mtl.evaluation import delta_m, train_single_task_baselines
from keras_mtl.losses import DepthL1, PixelCrossEntropy
from keras_mtl.metrics import DepthAbsError, MeanIoU


def test_delta_m_matches_the_formula_and_is_lower_when_better():
    higher = {"seg_miou": True, "depth_abs_error": False, "normals_within_30": True}
    baseline = {"seg_miou": 0.40, "depth_abs_error": 0.80, "normals_within_30": 0.50}
    model = {"seg_miou": 0.44, "depth_abs_error": 0.60, "normals_within_30": 0.45, "loss": 3.0}
    # (-(0.44-0.40)/0.40 + (0.60-0.80)/0.80 - (0.45-0.50)/0.50) / 3 * 100
    expected = 100 * (-0.1 - 0.25 + 0.1) / 3
    assert delta_m(model, baseline, higher) == pytest.approx(expected)
    assert delta_m(baseline, baseline, higher) == 0.0
    worse = {"seg_miou": 0.30, "depth_abs_error": 1.0, "normals_within_30": 0.40}
    assert delta_m(worse, baseline, higher) > 0
    nested = {"seg": {"seg_miou": 0.44}, "depth": {"depth_abs_error": 0.60, "normals_within_30": 0.45}}
    assert delta_m(nested, baseline, higher) == pytest.approx(expected)


def test_delta_m_names_missing_metrics_and_zero_baselines():
    with pytest.raises(ValueError, match="baselines has no metric 'b'"):
        delta_m({"a": 1.0, "b": 1.0}, {"a": 1.0}, {"a": True, "b": False})
    with pytest.raises(ValueError, match="baseline of 'a' is 0"):
        delta_m({"a": 1.0}, {"a": 0.0}, {"a": True})
    with pytest.raises(ValueError, match="higher_is_better"):
        delta_m({"a": 1.0}, {"a": 1.0}, {})


def _tasks():
    return [
        keras_mtl.Task("seg", head=keras.layers.Conv2D(NUM_CLASSES, 1, name="seg"),
                       loss=PixelCrossEntropy(), metrics=[MeanIoU(NUM_CLASSES)]),
        keras_mtl.Task("seg_depth", head=keras.layers.Conv2D(
            1, 1, name="seg_depth", bias_initializer=keras.initializers.Constant(4.0)),
            loss=DepthL1(), metrics=[DepthAbsError()]),
    ]


def test_single_task_baselines_train_one_network_per_task_and_report_by_task():
    data = scenes(64, 16, 16, seed=0, tasks=("segmentation", "depth"), batch_size=16)
    data = data.map(lambda x, y: (x, {"seg": y["segmentation"], "seg_depth": y["depth"]})).cache()
    backbone = functools.partial(segnet, filters=(8, 8), convs_per_block=1)
    depth = np.concatenate([y["seg_depth"].numpy() for _, y in data])
    constant_depth_error = np.abs(depth[depth > 0] - 4.0).mean()
    results = train_single_task_baselines(_tasks, backbone, (16, 16, 3), data, data, epochs=4,
                                          optimizer=keras.optimizers.Adam(1e-2), verbose=0)
    # "seg_depth_..." belongs to task "seg_depth", not to "seg" (longest name wins).
    assert sorted(results["seg"]) == ["seg_loss", "seg_miou"]
    assert sorted(results["seg_depth"]) == ["seg_depth_abs_error", "seg_depth_loss"]
    # Both networks learned: better than a uniform class guess and a constant depth.
    assert results["seg"]["seg_loss"] < 0.85 * np.log(NUM_CLASSES)
    assert results["seg_depth"]["seg_depth_abs_error"] < constant_depth_error
    assert np.isfinite(list(results["seg"].values())).all()


def test_single_task_baselines_need_a_factory():
    with pytest.raises(TypeError, match="tasks_factory"):
        train_single_task_baselines(_tasks(), "conv", (8, 8, 3), None, None, 1)
