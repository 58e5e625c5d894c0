"""Reading and re-using functional graphs: inline a backbone, derive shared variables."""

import keras

from keras_mtl import _private


def _flat(structure):
    return keras.tree.flatten(structure)


def is_functional(obj):
    """Whether `obj` is a functional `keras.Model` (built from inputs and outputs:
    Keras' `Functional`, the models that are also a `keras.Function`)."""
    return isinstance(obj, keras.Model) and isinstance(obj, keras.Function)


def inline(backbone, inputs):
    """Calls `backbone` on `inputs`, layer by layer when it is a functional model or a
    Sequential, so that its layers become layers of the caller's graph.

    Returns `(output, features)`, `features` mapping each layer name to its output
    (the taps a head can read). A layer or subclassed model is called as one op.
    """
    if is_functional(backbone):
        computed = {id(t): x for t, x in zip(_flat(backbone.inputs), _flat(inputs))}
        features = {}
        for node in _private.graph_nodes(backbone):
            out = _private.call_node(node, computed)
            for ref, new in zip(node.outputs, _flat(out)):
                computed[id(ref)] = new
            features[node.operation.name] = out
        output = keras.tree.map_structure(lambda t: computed[id(t)], backbone.output)
        return output, features
    if isinstance(backbone, keras.Sequential):
        out, features = inputs, {}
        for layer in backbone.layers:
            out = layer(out)
            features[layer.name] = out
        return out, features
    out = backbone(inputs)
    return out, {backbone.name: out}


def tap_features(features, tap, backbone_name="backbone"):
    """Returns the feature a head reads at depth `tap` (a layer name or index)."""
    names = list(features)
    if isinstance(tap, int):
        if not -len(names) <= tap < len(names):
            raise ValueError(
                f"tap={tap} is out of range for a backbone with {len(names)} layers."
            )
        return features[names[tap]]
    if tap not in features:
        raise ValueError(
            f"tap={tap!r} is not a layer of {backbone_name}. Available: {names}"
        )
    return features[tap]


def _leaf_operations(tensor, boundary):
    """The operations `tensor` depends on, looking inside nested functional models.

    Stops at tensors whose id is in `boundary`. Returns `(operations, reached)`, where
    `reached` holds the boundary tensor ids that were reached.
    """
    operations, reached, seen = {}, set(), set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if id(t) in boundary:
            reached.add(id(t))
            continue
        node, tensor_index = _private.producer(t)
        if node.is_input:
            continue
        op = node.operation
        if is_functional(op):
            inner_inputs = _flat(op.inputs)
            inner_ops, inner_reached = _leaf_operations(
                _flat(op.outputs)[tensor_index], {id(i) for i in inner_inputs}
            )
            operations.update(inner_ops)
            for i, inner in enumerate(inner_inputs):
                if id(inner) in inner_reached:
                    stack.append(node.input_tensors[i])
        else:
            operations[id(op)] = op
            stack.extend(node.input_tensors)
    return operations, reached


def variable_partition(model):
    """Splits a multi-output functional model's trainable variables by task.

    A variable is shared when it feeds more than one output, and belongs to a task
    when it feeds that task's output only. Returns `(shared, by_task)`: a list, and a
    dict from output name to list, each in `model.trainable_variables` order.
    Variables that feed no output are left out.
    """
    names = list(model.output_names)
    outputs = _flat(model.outputs)
    users = {}
    for name, output in zip(names, outputs):
        operations, _ = _leaf_operations(output, {id(i) for i in _flat(model.inputs)})
        for op in operations.values():
            for v in getattr(op, "trainable_variables", ()):
                users.setdefault(id(v), set()).add(name)
    shared, by_task = [], {name: [] for name in names}
    for v in model.trainable_variables:
        tasks = users.get(id(v), set())
        if len(tasks) > 1:
            shared.append(v)
        elif len(tasks) == 1:
            by_task[next(iter(tasks))].append(v)
    return shared, by_task


def shared_representation(model):
    """The tensors where the shared part of a model hands over to the task-specific
    parts: outputs of operations that feed several tasks, consumed by an operation that
    feeds only one. For hard sharing that is the trunk's output (plus any tapped
    layer). Needs a flat graph (build() inlines backbones).
    """
    inputs = {id(t) for t in _flat(model.inputs)}
    tasks_of = {}
    for name, output in zip(model.output_names, _flat(model.outputs)):
        operations, _ = _leaf_operations(output, inputs)
        for key, op in operations.items():
            if is_functional(op):
                raise ValueError(
                    "The shared representation needs a flat functional graph; "
                    f"{op.name} is a nested functional model."
                )
            tasks_of.setdefault(key, set()).add(name)
    boundary = {}
    for node in _private.graph_nodes(model):
        if len(tasks_of.get(id(node.operation), ())) != 1:
            continue
        for t in node.input_tensors:
            if id(t) in inputs:
                continue
            producer = _private.producer(t)[0].operation
            if len(tasks_of.get(id(producer), ())) > 1:
                boundary[id(t)] = t
    if not boundary:
        raise ValueError("The model has no shared representation: no operation feeds several tasks.")
    return list(boundary.values())
