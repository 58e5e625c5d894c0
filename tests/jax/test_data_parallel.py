"""`keras.distribution.DataParallel` on JAX: two CPU devices train as one device does
on the same global batches (to 1e-5), for loss-weighting and gradient methods in both
gradient modes, with masks, and under mixed_float16 (a loss scale; to 2e-4, as float16
arithmetic rounds the two runs apart, while the largest change is about 0.1). Runs
`data_parallel_run.py` in a process with two host devices (`XLA_FLAGS` must be set
before JAX starts)."""

import os
import subprocess
import sys

import numpy as np
import pytest

CONFIGS = ["equal:-", "uncertainty:-", "dwa:-:masks", "gradnorm:-", "famo:-",
           "mgda:shared_parameters", "nash_mtl:shared_parameters:masks", "imtl:representation",
           "cagrad:representation:masks", "gradnorm:-:mixed", "mgda:shared_parameters:mixed",
           "pcgrad:representation:mixed"]


@pytest.mark.slow
def test_two_devices_train_as_one(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    out = str(tmp_path / "runs.npz")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(here)),
                                          os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, os.path.join(here, "data_parallel_run.py"), out,
                             *CONFIGS], env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    runs = np.load(out)
    for config in CONFIGS:
        keys = [k for k in runs.files if k.startswith(f"{config}/one/")]
        assert keys, config
        tolerance = 2e-4 if config.endswith(":mixed") else 1e-5
        for key in keys:
            np.testing.assert_allclose(runs[key.replace("/one/", "/all/")], runs[key],
                                       rtol=tolerance, atol=tolerance, err_msg=key)
