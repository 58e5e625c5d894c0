"""`keras_mtl.zoo` on TensorFlow (the checks: `tests/zoo_checks.py`; on JAX:
`tests/jax/test_zoo.py`)."""

import pytest

import zoo_checks
from keras_mtl import zoo


def test_every_zoo_model_has_a_smoke_check():
    assert sorted(zoo_checks.CASES) == zoo.available()
    assert len(zoo.available()) >= 9


def test_unknown_model_names_the_available_ones():
    with pytest.raises(ValueError, match="Unknown zoo model: name='mtan'. Available: \\['celeba_resnet18'"):
        zoo.get("mtan")


@pytest.mark.parametrize("name", sorted(zoo_checks.CASES))
def test_zoo_model_builds(name):
    zoo_checks.check_zoo_model_builds(name)


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in zoo_checks.SLOW else [])
                                  for n in sorted(zoo_checks.CASES)])
def test_zoo_model_trains_saves_and_exports(name, tmp_path):
    zoo_checks.check_zoo_model(name, tmp_path)
