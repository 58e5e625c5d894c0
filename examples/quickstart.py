"""The README's API tour, as a script: python examples/quickstart.py"""

import keras, keras_mtl
from keras_mtl.datasets import scenes

# Procedurally rendered 3-D scenes (generated, nothing to download): which object
# classes each image shows (6 yes/no labels) and how many objects it holds.
labels = ("classes_present", "object_count")
train_ds = scenes(512, 48, 64, seed=0, tasks=labels, batch_size=32, shuffle=True)
val_ds = scenes(128, 48, 64, seed=1, tasks=labels, batch_size=32)

tasks = [
    # A head may tap the trunk at any depth: the classes present from a shallow block...
    keras_mtl.Task("classes_present", tap="block1", loss=keras.losses.BinaryCrossentropy(from_logits=True),
                   metrics=[keras.metrics.BinaryAccuracy(threshold=0.0)],
                   head=[keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(6)]),
    # ...the object count from the trunk's output.
    keras_mtl.Task("object_count", loss="mse", loss_weight=0.5, metrics=["mae"],
                   head=[keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)]),
]
model = keras_mtl.build("hard_sharing", tasks, backbone="conv", input_shape=(48, 64, 3))
model.compile(optimizer=keras.optimizers.Adam(1e-3),          # shared variables
              task_optimizer=keras.optimizers.SGD(1e-2),      # task-specific variables
              weighting="equal")                              # or loss_weights={...}, a Weighting
history = model.fit(train_ds, validation_data=val_ds, epochs=5)   # (x, {task: y}) batches
print(history.history["object_count_loss"], history.history["classes_present_weight"],
      history.history["val_classes_present_binary_accuracy"], history.history["val_object_count_mae"])
model.save("model.keras"); keras.models.load_model("model.keras")  # import keras_mtl first
keras_mtl.export(model, "saved_models/my_model")  # serving_default -> {"classes_present": ..., "object_count": ...}
