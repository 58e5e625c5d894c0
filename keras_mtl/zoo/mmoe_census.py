"""MMoE on census-income (Ma et al., KDD 2018)."""

from keras_mtl.zoo._census import census_model
from keras_mtl.zoo.registry import register


@register("mmoe_census")
def mmoe_census(input_shape, num_experts=4, expert_units=(64, 32), tower_units=16, learning_rate=1e-3,
                compiled=True):
    """Multi-gate Mixture-of-Experts for census-income's task group 1, income > 50K
    and never-married (Ma, Zhao, Yi, Chen, Hong and Chi, "Modeling Task Relationships
    in Multi-task Learning with Multi-gate Mixture-of-Experts", KDD 2018, section 6.3).

    As in the paper: shared MLP experts, one softmax gate per task over the experts
    reading the input features, a ReLU tower per task, binary cross-entropy, equal
    task weights, Adam, ROC-AUC as the metric. Not as in the paper: the numbers of
    experts and units are the census application's defaults (the paper tunes them per
    experiment). `input_shape`: `(features,)` of `keras_mtl.datasets.census_income`
    (its one-hot width depends on the data). Labels: 0/1 per task. Trained by
    `applications/census_income.py` (its `mmoe` row).

    Returns:
        A `MultiTaskModel`, compiled (Adam, equal weights) unless `compiled=False`.
    """
    return census_model("mmoe", "mmoe_census", input_shape, expert_units, tower_units, learning_rate, compiled,
                        num_experts=num_experts)
