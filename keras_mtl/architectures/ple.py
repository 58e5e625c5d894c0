"""Customized Gate Control and Progressive Layered Extraction (Tang et al., RecSys 2020)."""

from keras_mtl.architectures import _columns
from keras_mtl.architectures.registry import register
from keras_mtl.layers.expert_gate import ExpertGate


def _extraction(architecture, tasks, inputs, backbone_factory, levels, num_shared_experts,
                num_task_experts):
    """Extraction networks after the backbone layers `levels` (the last one always
    included). Every expert is a backbone copy; at a level, a task's gate mixes its
    own and the shared experts' outputs, and below the last level a shared gate
    mixes all experts. The mixtures replace the experts' activations: a task's
    experts continue on the task's mixture, the shared ones on the shared mixture.
    """
    _columns.reject_taps(tasks, architecture)
    _columns.check_int(num_shared_experts, "num_shared_experts", 1)
    _columns.check_int(num_task_experts, "num_task_experts", 0)
    owners = [t.name for t in tasks] + ["shared"]
    counts = {o: num_task_experts for o in owners}
    counts["shared"] = num_shared_experts
    experts = {
        o: _columns.columns(backbone_factory, [f"{o}_expert{i}_" for i in range(1, counts[o] + 1)], inputs)
        for o in owners
    }
    first = experts["shared"][0]
    keys = _columns.level_keys(first, first.stage_ends() if levels is None else levels, "levels")
    representation = {o: inputs for o in owners}
    for key in first.keys:
        outs = {o: [c.compute(key) for c in experts[o]] for o in owners}
        if key not in keys:
            continue
        level = keys.index(key) + 1
        gated = [o for o in owners if o != "shared" or key != keys[-1]]
        for o in gated:
            mixed = sum(outs.values(), []) if o == "shared" else outs[o] + outs["shared"]
            gate = ExpertGate(name=f"level{level}_{o}_gate")
            representation[o], _ = gate([representation[o], *mixed])
            for column in experts[o]:
                column.set(key, representation[o])
    return {t.name: t.apply_head(representation[t.name]) for t in tasks}


@register("cgc")
def cgc(tasks, inputs, backbone_factory, num_shared_experts=1, num_task_experts=1):
    """Customized Gate Control (Tang, Liu, Zhao and Gong, "Progressive Layered
    Extraction (PLE)", RecSys 2020, section 4.2): shared experts, experts of each
    task, and per task a softmax gate over its own and the shared experts' outputs.

    Experts are backbone copies (layers prefixed `shared_expert<i>_` and
    `<task>_expert<i>_`); gate `level1_<task>_gate` reads the flattened inputs.

    Args:
        num_shared_experts: experts every task's gate sees (>= 1).
        num_task_experts: experts of each task (>= 0).
    """
    return _extraction("cgc", tasks, inputs, backbone_factory, (), num_shared_experts, num_task_experts)


@register("ple")
def ple(tasks, inputs, backbone_factory, levels=None, num_shared_experts=1, num_task_experts=1):
    """Progressive Layered Extraction (Tang et al., RecSys 2020, section 4.3): CGC
    extraction networks stacked at several depths. The backbone is cut at `levels`;
    the experts of level l are copies of the backbone's layers between levels l-1
    and l, reading their owner's mixture of level l-1 (a task's or, for shared
    experts, the shared gate's). Gates are named `level<l>_<task>_gate` and
    `level<l>_shared_gate` and read the flattened mixture they refine.

    Args:
        levels: backbone layer names ending each level (default: every stage end;
            the backbone's last layer always ends the last level).
        num_shared_experts, num_task_experts: per level, as for "cgc".
    """
    return _extraction("ple", tasks, inputs, backbone_factory, levels, num_shared_experts,
                       num_task_experts)
