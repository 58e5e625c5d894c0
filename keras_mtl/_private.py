"""The one place keras_mtl touches private Keras APIs.

Keras keeps these helpers in private modules; wrapping them here keeps a Keras upgrade
to a one-file change.
"""

from keras.src.losses.loss import scale_loss_for_distribution
from keras.src.losses.losses import LossFunctionWrapper
from keras.src.losses.loss import unscale_loss_for_distribution
from keras.src.models.functional import Functional
from keras.src.trainers.data_adapters.data_adapter_utils import unpack_x_y_sample_weight
from keras.src.utils.tracking import no_automatic_dependency_tracking

__all__ = [
    "Functional",
    "LossFunctionWrapper",
    "no_automatic_dependency_tracking",
    "scale_loss_for_distribution",
    "unpack_x_y_sample_weight",
    "unscale_loss_for_distribution",
]
