"""CR-MOGM: weight smoothing of any Gramian gradient method."""

import keras
from keras import ops

from keras_mtl.weighting import registry
from keras_mtl.weighting._checks import check_float
from keras_mtl.weighting.base import GradientWeighting, present_mask
from keras_mtl.weighting.registry import register


@register("cr_mogm")
@keras.saving.register_keras_serializable(package="keras_mtl")
class CRMOGM(GradientWeighting):
    """Weight smoothing: an exponential moving average of another gradient method's
    task weights over the training steps,

        lambda_t = alpha lambda_(t-1) + (1 - alpha) lambda_hat_t,

    `lambda_hat_t` the weights of `inner` on step t's Gramian, and `lambda_1` =
    `lambda_hat_1`. The combined gradient is `sum_k lambda_t,k g_k`. The paper shows
    that weights computed from each step's stochastic gradients alone can keep
    stochastic MGDA, PCGrad and CAGrad from converging, and that averaging them over
    the steps makes them converge.

    Each task's average starts at the first step it is present; an absent task gets
    weight 0 and its average is left as it was. The averages, the inner method's state
    and its random draws are Keras weights: saved in `.keras` files and restored on
    resume. `inner` must be a method of the Gramian (`uses_gramian`), not one that
    needs the K x P matrix itself (GradDrop, TrimmedMean).

    Reference: Zhou, Zhang, Jiang, Zhong, Gu, Zhu, "On the Convergence of
    Stochastic Multi-Objective Gradient Manipulation and Beyond", NeurIPS 2022.

    Args:
        inner: the smoothed method: a registered name (made with this
            `gradient_mode` where one is given), an instance, or its serialized
            config (MGDA, one of the paper's instances, by default).
        alpha: the weight of the previous average, in [0, 1] (0: the inner method's
            weights; 1: the first step's forever). The paper lets it grow towards 1
            as the learning rate decays; a fixed value here.

    Example: `model.compile(optimizer="adam", weighting=CRMOGM(inner="upgrad", alpha=0.9))`
    """

    def __init__(self, inner="mgda", alpha=0.9, **kwargs):
        if isinstance(inner, dict):
            inner = keras.saving.deserialize_keras_object(inner)
        elif isinstance(inner, str):
            inner = registry.get(inner)
            if "gradient_mode" in kwargs:
                inner = type(inner)(gradient_mode=kwargs["gradient_mode"])
        if not isinstance(inner, GradientWeighting) or not inner.uses_gramian:
            raise ValueError(
                "CRMOGM smooths the weights of a gradient method of the Gramian (not GradDrop or "
                f"TrimmedMean, which need the K x P matrix). Received: inner={inner!r}")
        gradient_mode = kwargs.pop("gradient_mode", inner.gradient_mode)
        if gradient_mode != inner.gradient_mode:
            raise ValueError(
                f"CRMOGM takes its gradient_mode from inner ({inner.gradient_mode!r}). "
                f"Received: gradient_mode={gradient_mode!r}")
        super().__init__(gradient_mode=gradient_mode, **kwargs)
        self.inner = inner
        self.alpha = check_float("alpha", alpha, minimum=0, maximum=1)

    @property
    def residual_bound(self):
        return self.inner.residual_bound

    def build(self, input_shape):
        super().build(input_shape)
        if not self.inner.built:
            self.inner.build(input_shape)

        def state(name):
            return self.add_weight(shape=(self.num_tasks,), initializer="zeros", trainable=False,
                                   aggregation="mean", name=name)

        self.average = state("average_weights")
        self.seen = state("seen")

    def gramian_weights(self, gram, losses, present=None):
        fresh, residual = self.inner.gramian_weights(gram, losses, present)
        fresh = ops.cast(fresh, self.average.dtype)
        mask = present_mask(present, self.num_tasks)
        previous = ops.convert_to_tensor(self.average)
        average = ops.where(self.seen > 0, self.alpha * previous + (1.0 - self.alpha) * fresh, fresh)
        self.average.assign(ops.where(mask, average, previous))
        self.seen.assign(ops.where(mask, 1.0, ops.convert_to_tensor(self.seen)))
        return ops.cast(ops.where(mask, average, 0.0), gram.dtype), residual

    def on_epoch_end(self):
        self.inner.on_epoch_end()

    # The inner method is a sublayer that Keras saves and loads on its own.
    def _saved_variables(self):
        inner = {id(v) for v in self.inner.variables}
        return [v for v in self.variables if id(v) not in inner]

    def get_config(self):
        config = super().get_config()
        inner = keras.saving.serialize_keras_object(self.inner)
        inner.pop("build_config", None)  # `build` builds it
        config.update(inner=inner, alpha=self.alpha)
        return config
