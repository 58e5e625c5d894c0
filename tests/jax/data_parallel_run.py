"""Trains the tiny three-task model for a few steps with each weighting method given,
once on one device and once under `keras.distribution.DataParallel` on every device,
from the same initial weights, and writes both runs' weights and weighting state to
OUT.npz ("<config>/<one|all>/<i>"). Run with
`XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax`.

Usage: python data_parallel_run.py OUT.npz CONFIG... (CONFIG: METHOD:MODE[:masks][:mixed],
"mixed": the mixed_float16 policy, with its loss scale)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from cross_backend_run import weighting  # noqa: E402
from weighting_utils import TASKS, tiny_data, tiny_model  # noqa: E402


def train(config, initial, devices):
    name, mode, *options = config.split(":")
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    distribution = keras.distribution.DataParallel(devices=devices) if devices else None
    keras.distribution.set_distribution(distribution)
    if "mixed" in options:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_model()
        if initial is not None:
            model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(0.05), weighting=weighting(name, mode))
        x, y = tiny_data()
        sample_weight = None
        if "masks" in options:
            rng = np.random.default_rng(1)
            sample_weight = {t: (rng.random(len(x)) > 0.4).astype("float32") for t in TASKS}
        model.fit(x, y, sample_weight=sample_weight, batch_size=16, epochs=2, verbose=0,
                  shuffle=False)
        if devices:
            # Replicated on every device, not left on one.
            for v in model.trainable_variables + model.non_trainable_variables:
                assert len(v.value.sharding.device_set) == len(devices), v.path
        state = [v.numpy() for v in model.weighting.variables if "seed_generator" not in v.path]
        return [np.asarray(w) for w in model.get_weights()] + state
    finally:
        keras.distribution.set_distribution(None)
        keras.mixed_precision.set_global_policy("float32")


def main(out, configs):
    assert len(jax.devices()) >= 2, jax.devices()
    keras.utils.set_random_seed(0)
    initial = tiny_model().get_weights()
    result = {}
    for config in configs:
        for which, devices in (("one", None), ("all", jax.devices())):
            for i, value in enumerate(train(config, initial, devices)):
                result[f"{config}/{which}/{i}"] = value
    np.savez(out, **result)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
