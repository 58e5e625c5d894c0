"""Constructor arguments of the weighting methods: wrong types and values are named."""

import re

import numpy as np
import pytest

from keras_mtl.weighting import (CAGrad, DTP, DWA, FAMO, Fixed, GradDrop, GradNorm, GradVac, MGDA,
                                 NashMTL, PCGrad, RLW, Uncertainty)

_KPIS = {"a": "accuracy"}
_INF, _NAN = float("inf"), float("nan")


@pytest.mark.parametrize("make,received", [
    (lambda: DWA(temperature="hot"), "temperature='hot'"),
    (lambda: DWA(temperature=_INF), "temperature=inf"),
    (lambda: Fixed([_INF, 1.0]), "weights[0]=inf"),
    (lambda: Fixed({"a": 1.0, "b": "2"}), "weights['b']='2'"),
    (lambda: Fixed(2.0), "weights=2.0"),
    (lambda: Uncertainty(initial_log_variance="zero"), "initial_log_variance='zero'"),
    (lambda: Uncertainty(forms="log"), "forms='log'"),
    (lambda: GradNorm(alpha=None), "alpha=None"),
    (lambda: GradNorm(min_weight=[0.1]), "min_weight=[0.1]"),
    (lambda: DTP(_KPIS, gamma="2"), "gamma='2'"),
    (lambda: DTP(_KPIS, momentum=_NAN), "momentum=nan"),
    (lambda: RLW(seed=1.5), "seed=1.5"),
    (lambda: RLW(seed="1"), "seed='1'"),
    (lambda: FAMO(beta_1="0.9"), "beta_1='0.9'"),
    (lambda: FAMO(epsilon=_INF), "epsilon=inf"),
    (lambda: MGDA(tolerance="tight"), "tolerance='tight'"),
    (lambda: CAGrad(c=_INF), "c=inf"),
    (lambda: CAGrad(max_iterations=2.5), "max_iterations=2.5"),
    (lambda: NashMTL(max_norm="1"), "max_norm='1'"),
    (lambda: PCGrad(seed=True), "seed=True"),
    (lambda: GradVac(beta="small"), "beta='small'"),
    (lambda: GradDrop(leak=[0.1]), "leak=[0.1]"),
    (lambda: GradDrop(leak=-0.5), "leak=-0.5"),
])
def test_bad_argument_raises_an_error_naming_it(make, received):
    with pytest.raises((TypeError, ValueError), match=re.escape(f"Received: {received}")):
        make()


def test_good_arguments_of_numpy_types_are_kept_as_python_numbers():
    assert DWA(temperature=np.float32(0.5)).temperature == 0.5
    assert type(DWA(temperature=np.float32(0.5)).temperature) is float
    assert RLW(seed=np.int64(3)).seed == 3 and type(RLW(seed=np.int64(3)).seed) is int
    assert Fixed({"a": 1, "b": np.float64(0.5)}).get_config()["weights"] == {"a": 1.0, "b": 0.5}
    assert Fixed((0, 2)).fixed_weights == [0.0, 2.0]
