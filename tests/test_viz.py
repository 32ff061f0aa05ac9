"""Plot helpers: the numbers and lines a reader needs are on the figure."""

from __future__ import annotations

from course_utils import viz


def test_bar_chart_shows_the_reference_line_and_every_label():
    names = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    fig = viz.plot_bars(names, [89.8, 88.8, 89.0], "mean class accuracy", "flowers102: accuracy against network",
                        reference=74.7, reference_label="paper")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low <= 74.7 - 5 and high >= 89.8  # the paper's line, far below the bars, is still on the chart
    assert [text.get_text() for text in ax.get_xticklabels()] == names
    assert all(text.get_rotation() == 20 for text in ax.get_xticklabels())  # long names slanted
    assert [text.get_text() for text in ax.texts] == ["89.8", "88.8", "89.0"]  # each bar labelled with its value
    assert [label.get_text() for label in ax.get_legend().get_texts()] == ["paper"]


def test_bar_chart_of_short_labels_keeps_them_level_and_caps_the_axis_at_100():
    fig = viz.plot_bars(["1", "0.5", "2"], [98.0, 99.0, 96.0], "accuracy")
    ax = fig.axes[0]
    assert ax.get_ylim() == (86.0, 100.0)
    assert all(text.get_rotation() == 0 for text in ax.get_xticklabels())
