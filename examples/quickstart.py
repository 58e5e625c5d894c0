"""The README's first example, as a script: python examples/quickstart.py"""

import keras, keras_mtl
from keras_mtl.datasets import scenes

def tasks():  # two tasks on one image; fresh heads for each model built
    pooled = lambda units: [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(units)]
    return [keras_mtl.Task("classes_present", head=pooled(6), loss=keras.losses.BinaryCrossentropy(from_logits=True),
                           metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)]),
            keras_mtl.Task("object_count", head=pooled(1), loss="mse", metrics=["mae"])]

# Procedurally rendered 3-D scenes (generated, nothing to download): (image, {task: label}) batches.
train = scenes(512, 48, 64, seed=0, tasks=("classes_present", "object_count"), batch_size=32, shuffle=True)
val = scenes(128, 48, 64, seed=1, tasks=("classes_present", "object_count"), batch_size=32)
model = keras_mtl.build("hard_sharing", tasks(), backbone="conv", input_shape=(48, 64, 3))
model.compile(optimizer="adam", weighting="uncertainty")   # any method of keras_mtl.weighting
history = model.fit(train, validation_data=val, epochs=5)  # logs <task>_loss, <task>_weight, val_...
model.save("quickstart.keras")                             # weights, optimizers, weighting state
keras_mtl.export(model, "saved_models/quickstart")        # a SavedModel: one named output per task
