"""keras_mtl.plot.task_weights draws each task's per-epoch weight from a History."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from keras_mtl import plot  # noqa: E402


def test_one_line_per_task_with_the_logged_values(tmp_path):
    logs = {"loss": [3.0, 2.0, 1.5], "a_weight": [1.0, 1.2, 1.4], "b_weight": [1.0, 0.8, 0.6],
            "val_a_weight": [1.0, 1.0, 1.0], "val_b_weight": [1.0, 1.0, 1.0], "a_loss": [1, 1, 1]}
    path = tmp_path / "weights.png"
    figure = plot.task_weights(logs, path=str(path), title="DWA")
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    np.testing.assert_array_equal(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines[1].get_ydata(), [1.0, 0.8, 0.6])
    assert figure.axes[0].get_title() == "DWA"
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


def test_draws_into_given_axes_and_rejects_histories_without_weights():
    from matplotlib.figure import Figure

    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert plot.task_weights({"x_weight": [0.5, 0.7]}, axes=right) is figure
    assert len(right.get_lines()) == 1 and not left.get_lines()
    with pytest.raises(ValueError, match="no '<task>_weight' entries"):
        plot.task_weights({"loss": [1.0]})
    with pytest.raises(TypeError, match="History"):
        plot.task_weights([1.0, 2.0])


def test_grid_draws_one_titled_panel_per_run_with_its_values(tmp_path):
    histories = {"dwa": {"a_weight": [1.0, 1.3], "b_weight": [1.0, 0.7]},
                 "uncertainty": {"a_weight": [0.6, 0.5], "b_weight": [1.6, 1.9]},
                 "famo": {"a_weight": [0.2, 0.4], "b_weight": [0.8, 0.6]}}
    path = tmp_path / "grid.png"
    figure = plot.task_weights_grid(histories, path=str(path))
    visible = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in visible] == ["dwa", "uncertainty", "famo"]
    assert len(figure.axes) == 4 and not figure.axes[3].get_visible()
    np.testing.assert_array_equal(visible[1].get_lines()[1].get_ydata(), [1.6, 1.9])
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="non-empty dict"):
        plot.task_weights_grid({})
