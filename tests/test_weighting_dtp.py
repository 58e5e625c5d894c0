"""DTP: per-task KPIs from the batch, their moving average, and focal weights."""

import keras
import numpy as np
import pytest
from weighting_utils import assert_round_trip, assert_weights_logged, fit_tiny

from keras_mtl.weighting import DTP


@keras.saving.register_keras_serializable(package="keras_mtl_tests")
def within_one(y_true, y_pred):
    """A regression KPI: the share of entries predicted within 1 of the label."""
    return keras.ops.cast(keras.ops.abs(y_true - y_pred) < 1.0, "float32")


def _focal(kpi, gamma):
    return -((1 - kpi) ** gamma) * np.log(kpi)


def test_kpi_moving_average_and_focal_weights_match_numpy():
    rng = np.random.default_rng(1)
    layer = DTP({"cls": "accuracy", "bin": "binary_accuracy", "reg": within_one},
                gamma=2.0, momentum=0.8)
    layer.resolve(["cls", "bin", "reg", "aux"])
    layer.build((4,))
    expected, seen = np.ones(3), np.zeros(3, bool)
    for step in range(4):
        n = 10
        y = {"cls": rng.integers(0, 3, n), "bin": rng.integers(0, 2, (n, 1)).astype("float32"),
             "reg": rng.normal(size=(n, 2)).astype("float32"), "aux": np.zeros((n, 1), "float32")}
        pred = {"cls": rng.dirichlet(np.ones(3), n).astype("float32"),
                "bin": rng.uniform(size=(n, 1)).astype("float32"),
                "reg": rng.normal(size=(n, 2)).astype("float32"), "aux": np.zeros((n, 1), "float32")}
        # Step 1 masks half the "cls" labels; step 2 has no "bin" labels at all.
        cls_mask = (np.arange(n) % 2).astype("float32") if step == 1 else None
        bin_mask = np.zeros(n, "float32") if step == 2 else None
        layer.observe(y, pred, {"cls": cls_mask, "bin": bin_mask, "reg": None, "aux": None})
        correct = pred["cls"].argmax(1) == y["cls"]
        batch = np.array([
            correct[cls_mask == 1].mean() if cls_mask is not None else correct.mean(),
            ((pred["bin"] > 0.5) == y["bin"]).mean(),
            (np.abs(y["reg"] - pred["reg"]) < 1).mean()])
        labelled = np.array([True, step != 2, True])
        update = np.where(seen, 0.8 * expected + 0.2 * batch, batch)
        expected = np.where(labelled, update, expected)
        seen |= labelled
        np.testing.assert_allclose(layer.kpi_averages.numpy()[:3], expected, rtol=1e-5)
        weights = layer.task_weights(np.ones(4, "float32")).numpy()
        np.testing.assert_allclose(weights[:3], _focal(np.clip(expected, 1e-6, 1), 2.0), rtol=1e-5)
        assert weights[3] == 1.0  # no KPI


def test_perfect_kpi_gets_zero_weight_and_zero_kpi_a_finite_one():
    layer = DTP({"a": "sparse_categorical_accuracy", "b": "categorical_accuracy"}, gamma=1.0)
    layer.resolve(["a", "b"])
    layer.build((2,))
    y = {"a": np.array([0, 1]), "b": np.array([[1.0, 0.0], [0.0, 1.0]], "float32")}
    pred = {"a": np.array([[0.9, 0.1], [0.2, 0.8]], "float32"),
            "b": np.array([[0.1, 0.9], [0.8, 0.2]], "float32")}
    layer.observe(y, pred, {"a": None, "b": None})
    weights = layer.task_weights(np.ones(2, "float32")).numpy()
    np.testing.assert_allclose(weights, [0.0, -np.log(1e-6) * (1 - 1e-6)], rtol=1e-5)


def test_argument_errors():
    with pytest.raises(ValueError, match="DTP needs kpis"):
        DTP()
    with pytest.raises(ValueError, match="kpis\\['a'\\]='top5'"):
        DTP({"a": "top5"})
    with pytest.raises(ValueError, match="momentum=1"):
        DTP({"a": "accuracy"}, momentum=1)
    with pytest.raises(ValueError, match="unknown tasks \\['z'\\]"):
        DTP({"z": "accuracy"}).resolve(["a"])


def test_fit_with_accuracy_kpis_and_round_trip(tmp_path):
    weighting = DTP({"cls": "accuracy", "bin": "accuracy", "reg": within_one}, gamma=1.0)
    model, history = fit_tiny(weighting, epochs=2)
    assert_weights_logged(history, 2)
    kpis = model.weighting.kpi_averages.numpy()
    assert np.all((kpis > 0) & (kpis < 1)) and np.all(model.weighting.kpi_seen.numpy() == 1)
    final = model.weighting.task_weights(np.ones(3, "float32")).numpy()
    np.testing.assert_allclose(final, _focal(kpis, 1.0), rtol=1e-5)
    loaded = assert_round_trip(model, tmp_path)
    assert loaded.weighting.kpis["reg"] is within_one
