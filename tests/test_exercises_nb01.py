"""Notebook 01's checkers give each typical mistake its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.exercises import ExerciseFailed, check


def _pixels(image, size):
    return np.asarray(image.convert("RGB").resize((size, size)), dtype=float)


def test_to_network_input_channels_last() -> None:
    def to_network_input(image, size, mean, std):
        return (_pixels(image, size) / 255 - np.asarray(mean)) / np.asarray(std)

    with pytest.raises(ExerciseFailed, match=r"channels last; the network wants channels first, \(3, 8, 8\)"):
        check(to_network_input)


def test_to_network_input_without_scaling() -> None:
    def to_network_input(image, size, mean, std):
        return ((_pixels(image, size) - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)

    with pytest.raises(ExerciseFailed, match="not scaled to 0..1: divide by 255"):
        check(to_network_input)


def test_to_network_input_without_std() -> None:
    def to_network_input(image, size, mean, std):
        return (_pixels(image, size) / 255 - np.asarray(mean)).transpose(2, 0, 1)

    with pytest.raises(ExerciseFailed, match="divide by std after subtracting the mean"):
        check(to_network_input)


def test_to_network_input_centre_crop() -> None:
    def to_network_input(image, size, mean, std):
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        return ((_pixels(square, size) / 255 - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)

    with pytest.raises(ExerciseFailed, match=r"squash the \*whole\* image to a square"):
        check(to_network_input)


def test_to_network_input_forgetting_rgb() -> None:
    def to_network_input(image, size, mean, std):
        pixels = np.asarray(image.resize((size, size)), dtype=float) / 255
        return ((pixels - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)

    with pytest.raises(ExerciseFailed, match=r"(?s)raised ValueError.*Hint: a grey-level photo has one channel"):
        check(to_network_input)


def test_top_k_softmax_overflows() -> None:
    def top_k_softmax(logits, k):
        probabilities = np.exp(logits) / np.exp(logits).sum()
        order = np.argsort(probabilities)[::-1][:k]
        return order, probabilities[order]

    with pytest.raises(ExerciseFailed, match=r"np.exp overflows. Subtract the largest logit first"):
        check(top_k_softmax)


def test_top_k_softmax_ascending() -> None:
    def top_k_softmax(logits, k):
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        order = np.argsort(probabilities)[-k:]
        return order, probabilities[order]

    with pytest.raises(ExerciseFailed, match="least probable first: np.argsort sorts ascending"):
        check(top_k_softmax)


def test_top_k_softmax_returning_logits() -> None:
    def top_k_softmax(logits, k):
        order = np.argsort(logits)[::-1][:k]
        return order, logits[order]

    with pytest.raises(ExerciseFailed, match="those are the logits, not probabilities"):
        check(top_k_softmax)


def test_top_k_softmax_over_the_top_k_only() -> None:
    def top_k_softmax(logits, k):
        order = np.argsort(logits)[::-1][:k]
        top = np.exp(logits[order] - logits.max())
        return order, top / top.sum()

    with pytest.raises(ExerciseFailed, match=r"the softmax of \*all\* the logits"):
        check(top_k_softmax)


def test_conv_parameters_without_bias() -> None:
    def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True):
        return out_channels * in_channels // groups * kernel_size**2

    with pytest.raises(ExerciseFailed, match="also has one bias per output channel"):
        check(conv_parameters)


def test_conv_parameters_ignoring_groups() -> None:
    def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True):
        return out_channels * in_channels * kernel_size**2 + (out_channels if bias else 0)

    with pytest.raises(ExerciseFailed, match=r"groups=32, bias=True\): with groups=g each filter sees only"):
        check(conv_parameters)


def test_conv_parameters_kernel_not_squared() -> None:
    def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True):
        return out_channels * in_channels // groups * kernel_size + (out_channels if bias else 0)

    with pytest.raises(ExerciseFailed, match="a k x k kernel has k \\* k weights per input channel"):
        check(conv_parameters)


def test_conv_parameters_bias_always() -> None:
    def conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True):
        return out_channels * in_channels // groups * kernel_size**2 + out_channels

    with pytest.raises(ExerciseFailed, match=r"has no bias: add out_channels only when bias=True"):
        check(conv_parameters)
