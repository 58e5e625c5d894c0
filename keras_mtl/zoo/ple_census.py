"""PLE on census-income (Tang et al., RecSys 2020)."""

from keras_mtl.zoo._census import census_model
from keras_mtl.zoo.registry import register


@register("ple_census")
def ple_census(input_shape, num_shared_experts=1, num_task_experts=1, expert_units=(64, 32), tower_units=16,
               learning_rate=1e-3, compiled=True):
    """Progressive Layered Extraction for census-income's income > 50K and
    never-married (Tang, Liu, Zhao and Gong, "Progressive Layered Extraction (PLE): A
    Novel Multi-Task Learning (MTL) Model for Personalized Recommendations", RecSys
    2020; the census-income pair of Ma et al. 2018).

    As in the paper: per extraction level, shared experts and each task's own
    experts, a gate per task over its own and the shared experts, a shared gate
    feeding the next level, one level per expert layer; ReLU towers, binary
    cross-entropy, equal task weights. Not as in the paper: the sizes are the census
    application's defaults; the paper's census-income runs are in its public-data
    section with their own tuning. `input_shape`: `(features,)` of
    `keras_mtl.datasets.census_income`. Labels: 0/1 per task. Trained by
    `applications/census_income.py` (its `ple` row).

    Returns:
        A `MultiTaskModel`, compiled (Adam, equal weights) unless `compiled=False`.
    """
    return census_model("ple", "ple_census", input_shape, expert_units, tower_units, learning_rate, compiled,
                        num_shared_experts=num_shared_experts, num_task_experts=num_task_experts)
