"""Dataset loaders.

`scenes(...)` (a `tf.data.Dataset`) and `scenes_arrays(...)` (numpy) generate the
procedural Scenes data; the other loaders read real data sets from a local folder.
`interleave(...)` merges one dataset per task into single-task batches (many-to-many).
`pk_batches(...)` draws P classes x K examples per batch (metric learning).
`from_tfds(...)` gives multi-task views of tensorflow-datasets (`tfds_view`);
`tfds_builders` registers tfds builders of the data sets above (needs tfds).
"""

from keras_mtl.datasets import census_income, mtfl, oxford_pets, tox21, utkface
from keras_mtl.datasets.interleave import interleave, task_probabilities
from keras_mtl.datasets.pk_batches import pk_batches
from keras_mtl.datasets.scenes import scenes, scenes_arrays
from keras_mtl.datasets.tfds_view import TaskView, from_tfds

__all__ = ["TaskView", "census_income", "from_tfds", "interleave", "mtfl", "oxford_pets", "pk_batches",
           "scenes", "scenes_arrays", "task_probabilities", "tox21", "utkface"]
