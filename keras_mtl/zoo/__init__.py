"""The zoo: the classic multi-task systems as one-line models, each with its paper's
architecture, losses and defaults at a size that trains on a few CPU cores, one file
per system. `available()` lists them; each constructor returns a `MultiTaskModel`,
compiled with the paper's weighting unless `compiled=False` (its docstring says what
is and is not as in the paper, and which application trains it).

Example:

```python
model = keras_mtl.zoo.mtan_segnet(input_shape=(32, 32, 3), filters=(8, 16))
print(keras_mtl.zoo.available())
```
"""

from keras_mtl.zoo.registry import available, get, register
from keras_mtl.zoo.celeba_resnet18 import celeba_resnet18
from keras_mtl.zoo.cross_stitch_segnet import cross_stitch_segnet
from keras_mtl.zoo.deepid2 import deepid2
from keras_mtl.zoo.mmoe_census import mmoe_census
from keras_mtl.zoo.mtan_segnet import mtan_segnet
from keras_mtl.zoo.ple_census import ple_census
from keras_mtl.zoo.rpn_detector import rpn_detector
from keras_mtl.zoo.tcdcn import tcdcn, tcdcn_early_stopping, tcdcn_tasks
from keras_mtl.zoo.triplet_softmax import triplet_softmax

__all__ = ["available", "celeba_resnet18", "cross_stitch_segnet", "deepid2", "get", "mmoe_census", "mtan_segnet",
           "ple_census", "register", "rpn_detector", "tcdcn", "tcdcn_early_stopping", "tcdcn_tasks", "triplet_softmax"]
