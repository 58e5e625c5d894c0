"""Verification tasks (EmbeddingHead + ContrastiveLoss / TripletLoss + pair metrics)
beside a classification task: build / compile / fit / evaluate under several
weighting methods, the logged loss against the float64 reference with masks,
`.keras` round trips, and (slow) two replicas mining per replica."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_mtl
import metric_learning_references as ref
from keras_mtl.datasets import pk_batches
from keras_mtl.layers import EmbeddingHead
from keras_mtl.losses import ContrastiveLoss, TripletLoss
from keras_mtl.metrics import PairDistanceAUC, RecallAtOne

CLASSES = 6


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    centres = rng.normal(size=(CLASSES, 8)) * 1.5
    x = (centres[labels] + rng.normal(size=(n, 8))).astype("float32")
    # A quarter of the examples have no identity label for verification.
    mask = (rng.random(n) > 0.25).astype("float32")
    return x, labels.astype("int32"), mask


def _model(loss, normalize=False):
    tasks = [
        keras_mtl.Task("identity", head=CLASSES,
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"]),
        keras_mtl.Task("verification", head=EmbeddingHead(4, normalize=normalize), loss=loss,
                       metrics=[PairDistanceAUC(), RecallAtOne()]),
    ]
    return keras_mtl.build("hard_sharing", tasks, backbone=lambda s: keras_mtl.backbones.mlp(s, units=(16,)),
                           input_shape=(8,))


def _train(x, labels, mask, seed=0, epochs=1):
    return pk_batches((x, {"identity": labels, "verification": labels},
                       {"identity": np.ones_like(mask), "verification": mask}),
                      labels, 3, 4, num_batches=10, seed=seed)


def test_embedding_head_matches_numpy():
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    for normalize in (False, True):
        layer = EmbeddingHead(4, normalize=normalize)
        out = layer(x).numpy()
        kernel, bias = (v.numpy().astype(np.float64) for v in layer.dense.weights)
        expected = x.astype(np.float64) @ kernel + bias
        if normalize:
            expected /= np.linalg.norm(expected, axis=1, keepdims=True)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pool spatial features"):
        EmbeddingHead(4)(np.zeros((2, 3, 3, 1), "float32"))


@pytest.mark.parametrize("loss", [ContrastiveLoss(margin=2.0), TripletLoss("batch_hard", margin=0.5),
                                  TripletLoss("batch_all", margin=0.5, normalize=True)],
                         ids=["contrastive", "batch_hard", "batch_all"])
def test_logged_loss_is_the_reference_with_masks(loss):
    x, labels, mask = _data()
    model = _model(loss)
    model.compile(optimizer="adam", weighting="equal")
    batch = 40
    logs = model.evaluate(x[:batch], {"identity": labels[:batch], "verification": labels[:batch]},
                          sample_weight={"identity": np.ones(batch, "float32"), "verification": mask[:batch]},
                          batch_size=batch, return_dict=True, verbose=0)
    embeddings = model.predict(x[:batch], verbose=0)["verification"]
    config = loss.get_config()
    if isinstance(loss, ContrastiveLoss):
        expected = ref.contrastive(labels[:batch], embeddings, mask[:batch], config["margin"])
    else:
        expected = ref.triplet(labels[:batch], embeddings, mask[:batch], config["mining"], config["margin"],
                               normalize=config["normalize"])
    assert expected > 0
    np.testing.assert_allclose(logs["verification_loss"], expected, rtol=1e-4)
    auc, total = ref.auc_counts(labels[:batch], embeddings, mask[:batch])
    np.testing.assert_allclose(logs["verification_pair_distance_auc"], auc / total, rtol=1e-5)


WEIGHTINGS = {
    "equal": lambda: "equal",
    "uncertainty": lambda: keras_mtl.weighting.Uncertainty(),
    "gradnorm": lambda: keras_mtl.weighting.GradNorm(),
    "pcgrad": lambda: keras_mtl.weighting.PCGrad(seed=1),
    "mgda_representation": lambda: keras_mtl.weighting.MGDA(gradient_mode="representation"),
}


@pytest.mark.parametrize("weighting", list(WEIGHTINGS))
def test_trains_under_weighting_methods(weighting):
    x, labels, mask = _data()
    model = _model(TripletLoss("batch_hard", margin=0.5, normalize=True), normalize=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), weighting=WEIGHTINGS[weighting]())
    test = (x, {"identity": labels, "verification": labels})
    before = model.evaluate(*test, batch_size=len(x), return_dict=True, verbose=0)
    history = model.fit(_train(x, labels, mask), epochs=4, verbose=0).history
    after = model.evaluate(*test, batch_size=len(x), return_dict=True, verbose=0)
    assert all(np.all(np.isfinite(v)) for v in history.values())
    assert np.all(np.asarray(history["verification_weight"]) > 0)
    # Clustered data: the embedding learns to verify and retrieve.
    assert after["verification_loss"] < before["verification_loss"]
    assert after["verification_pair_distance_auc"] > max(0.85, before["verification_pair_distance_auc"])


@pytest.mark.parametrize("mode", ["xla", "mixed_float16"])
def test_trains_under_xla_and_mixed_precision(mode):
    x, labels, mask = _data()
    if mode == "mixed_float16":
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model(TripletLoss("batch_all", margin=0.5, normalize=True))
        model.compile(optimizer="adam", jit_compile=mode == "xla")
        history = model.fit(_train(x, labels, mask), epochs=1, verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(np.all(np.isfinite(v)) for v in history.values())
    assert history["verification_loss"][0] > 0


def test_saves_and_loads(tmp_path):
    x, labels, mask = _data()
    model = _model(ContrastiveLoss(margin=1.5), normalize=True)
    model.compile(optimizer="adam", weighting="uncertainty")
    model.fit(_train(x, labels, mask), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0)["verification"],
                               model.predict(x, verbose=0)["verification"], rtol=1e-6)
    loaded.fit(_train(x, labels, mask, seed=1), epochs=1, verbose=0)


_TWO_REPLICAS = textwrap.dedent("""
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, keras_mtl
    import metric_learning_references as ref
    from test_metric_learning_tasks import _data, _model, _train
    from keras_mtl.losses import TripletLoss

    x, labels, mask = _data()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = _model(TripletLoss("batch_hard", margin=0.5))
        model.compile(optimizer="adam", weighting=keras_mtl.weighting.PCGrad(seed=1))
    history = model.fit(_train(x, labels, mask), epochs=2, verbose=0).history
    assert all(np.all(np.isfinite(v)) for v in history.values()), history
    batch = 40
    logs = model.evaluate(x[:batch], {"identity": labels[:batch], "verification": labels[:batch]},
                          sample_weight={"identity": np.ones(batch, "float32"), "verification": mask[:batch]},
                          batch_size=batch, return_dict=True, verbose=0)
    e = model.predict(x[:batch], verbose=0)["verification"]
    # Each replica mines in its half; the model weighs the halves by their masks.
    halves = [slice(0, batch // 2), slice(batch // 2, batch)]
    losses = [ref.triplet(labels[h], e[h], mask[h], "batch_hard", 0.5) for h in halves]
    sums = [mask[h].sum() for h in halves]
    expected = sum(l * s for l, s in zip(losses, sums)) / sum(sums)
    whole = ref.triplet(labels[:batch], e, mask[:batch], "batch_hard", 0.5)
    assert abs(expected - whole) > 1e-3 * whole, (expected, whole)
    np.testing.assert_allclose(logs["verification_loss"], expected, rtol=1e-4)
    print("OK")
""")


@pytest.mark.slow
def test_two_replicas_mine_per_replica():
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", _TWO_REPLICAS], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), (
        result.stdout[-3000:] + result.stderr[-3000:])
