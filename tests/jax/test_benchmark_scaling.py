"""`benchmarks/scaling.py` on the JAX backend: a tiny run gives its table, and its
memory column is XLA's temporary buffer of the compiled train step, which holds the
K x P matrix of per-task gradients in "param-grad" mode (no timing assertions: these
machines are shared)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks import scaling  # noqa: E402

FEATURES, UNITS = 512, (512, 256)  # `scaling.celeba_like`'s trunk


def test_scaling_runs_on_jax_and_reports_xla_temp_memory():
    modes = ("equal", "MGDA param-grad")
    rows = scaling.run(tasks=(2, 3), modes=modes, steps=2, batch_size=8, rounds=1, extra_rounds=0,
                       log=None)
    assert [(r[0], r[1]) for r in rows] == [(k, m) for k in (2, 3) for m in modes]
    for k, mode, sps, ms, vs_first, vs_equal, memory, n, note in rows:
        assert note == "" and sps > 0 and ms == pytest.approx(1000 / sps) and vs_equal > 0
        assert memory > 0
    assert rows[0][4] == 1.0  # equal at K=2 is the reference
    assert "XLA temp MiB" in scaling.report(rows)

    memory = {(k, mode): row_memory for k, mode, *_, row_memory, _, _ in rows}
    trunk_parameters = FEATURES * UNITS[0] + UNITS[0] + UNITS[0] * UNITS[1] + UNITS[1]
    row_mib = 4 * trunk_parameters / 2**20  # one task's float32 gradient of the trunk
    for k in (2, 3):
        # The step holds the K rows at once (the method needs all of them); equal
        # weighting's one backward pass holds at most about one gradient.
        assert memory[(k, "MGDA param-grad")] >= k * row_mib
        assert memory[(k, "MGDA param-grad")] - memory[(k, "equal")] >= (k - 1) * row_mib
    # One more task: at least half a row more (XLA may reuse some of the pullbacks' buffers).
    assert memory[(3, "MGDA param-grad")] - memory[(2, "MGDA param-grad")] > 0.5 * row_mib
    assert memory[(3, "equal")] - memory[(2, "equal")] < 0.1 * row_mib
