"""Checkers for notebook 01's exercises (see :mod:`course_utils.exercises.checking` for how a checker is written).

What a pretrained network expects and gives back: its input (a squashed, normalised square), its output (top-k
classes through a softmax) and its size (a layer's parameter count).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from .checking import Checker, ExerciseFailed, exercise

_MEAN, _STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _reference_input(image: Image.Image, size: int, mean: tuple, std: tuple) -> np.ndarray:
    """RGB, squashed to ``size`` x ``size`` (bilinear), ``/255``, ``(x - mean) / std``, channels first."""
    pixels = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=float) / 255.0
    return ((pixels - np.asarray(mean)) / np.asarray(std)).transpose(2, 0, 1)


def _network_input(check: Checker, fn: Callable, image: Image.Image, size: int) -> np.ndarray:
    """The learner's input for ``image``, checked for shape (channels first) and finiteness."""
    got = np.asarray(check.call(fn, image, size, _MEAN, _STD), dtype=float)
    check.require(got.shape != (size, size, 3),
                  f"the result has shape {got.shape}, channels last; the network wants channels first, "
                  f"(3, {size}, {size}): end with .transpose(2, 0, 1).")
    return check.array(got, shape=(3, size, size), what=f"the input of a {image.width}x{image.height} photo")


@exercise("01", "squash and normalise a photo")
def check_to_network_input(fn: Callable) -> None:
    """``to_network_input(image, size, mean, std)``: RGB, squashed to a square, ``/255``, mean/std, channels first."""
    with Checker("squash and normalise a photo") as check:
        colour = np.array([200, 100, 50], dtype=float)
        flat = Image.new("RGB", (40, 30), tuple(int(v) for v in colour))
        got = _network_input(check, fn, flat, 8)
        channel = got.reshape(3, -1).mean(axis=1)
        want = (colour / 255 - np.asarray(_MEAN)) / np.asarray(_STD)
        check.require(not np.allclose(channel, (colour - np.asarray(_MEAN)) / np.asarray(_STD), atol=1e-3),
                      "the pixels were not scaled to 0..1: divide by 255 before subtracting the mean.")
        check.require(not np.allclose(channel, colour / 255 - np.asarray(_MEAN), atol=1e-3),
                      "divide by std after subtracting the mean: (pixels - mean) / std.")
        check.require(not np.allclose(channel, colour / 255 / np.asarray(_STD), atol=1e-3),
                      "subtract the mean before dividing by std: (pixels - mean) / std.")
        check.require(not np.allclose(channel, want[::-1], atol=1e-3),
                      "the channels are in the wrong order: keep the image's R, G, B order "
                      "(image.convert('RGB')), with mean[0] and std[0] for red.")
        check.close(channel, want, f"a photo of one colour {tuple(colour.astype(int))} should give the values "
                                   f"{np.round(want, 3).tolist()} in every pixel, got {np.round(channel, 3).tolist()}.",
                    atol=1e-3)

        wide = np.zeros((100, 400, 3), dtype=np.uint8)
        wide[:, :100] = (255, 0, 0)  # the left quarter red, the rest blue
        wide[:, 100:] = (0, 0, 255)
        got = _network_input(check, fn, Image.fromarray(wide), 16)
        red = (1.0 - _MEAN[0]) / _STD[0]
        check.require(got[0, :, 0].mean() > red - 0.3,
                      "the left quarter of a wide photo (red) is missing from the left edge: squash the *whole* "
                      "image to a square, image.resize((size, size)); do not crop or pad it to keep its shape.")
        check.require(got[0, :, 8:].max() < 0,
                      "the right three quarters of a wide photo (blue) should fill the right of the square: "
                      "squash the whole image, image.resize((size, size)).")

        ramp = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint8)
        photo = Image.fromarray(ramp)
        got = _network_input(check, fn, photo, 12)
        check.close(got, _reference_input(photo, 12, _MEAN, _STD),
                    "a smooth photo gives values far from the course's input: resize the whole photo to "
                    "(size, size), divide by 255, then (pixels - mean) / std.", atol=0.1)

        grey = Image.fromarray(ramp[..., 0])
        try:
            got = _network_input(check, fn, grey, 12)
        except ExerciseFailed as error:
            raise ExerciseFailed(f"{error}\nHint: a grey-level photo has one channel; convert every image with "
                                 "image.convert('RGB') first, so that it always has three.") from None
        check.close(got, _reference_input(grey, 12, _MEAN, _STD),
                    "a grey-level photo should give three equal channels (before mean/std): convert it with "
                    "image.convert('RGB') first.", atol=0.1)


def _reference_top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    shifted = np.exp(logits - logits.max())
    probabilities = shifted / shifted.sum()
    order = np.argsort(-probabilities, kind="stable")[:k]
    return order, probabilities[order]


@exercise("01", "top-k classes from logits")
def check_top_k_softmax(fn: Callable) -> None:
    """``top_k_softmax(logits, k)``: (indices, probabilities) of the k most probable classes, most probable first."""
    cases = ((np.array([2.0, 1.0, 0.5, 3.0, -1.0]), 3), (np.array([0.1, 4.0, -2.0, 1.5]), 4),
             (np.array([1000.0, 1001.0, 999.0, 990.0]), 2))
    with Checker("top-k classes from logits") as check:
        for logits, k in cases:
            with np.errstate(over="ignore", invalid="ignore"):
                got = check.call(fn, logits, k)
            check.require(isinstance(got, (tuple, list)) and len(got) == 2,
                          "return two things, (indices, probabilities), e.g. return order, probabilities[order].")
            indices, probabilities = (np.asarray(part, dtype=float) for part in got)
            check.require(np.all(np.isfinite(probabilities)),
                          "with large logits (around 1000) the probabilities are NaN or infinite: np.exp "
                          "overflows. Subtract the largest logit first, np.exp(logits - logits.max()): the "
                          "softmax does not change.")
            want_indices, want_probabilities = _reference_top_k(logits, k)
            check.require(indices.shape == (k,) and probabilities.shape == (k,),
                          f"with k={k} both results should hold {k} numbers; got shapes {indices.shape} and "
                          f"{probabilities.shape}.")
            check.require(not np.array_equal(indices, want_indices[::-1]) or k == 1,
                          "the classes come out least probable first: np.argsort sorts ascending, so reverse "
                          "it ([::-1]) before taking the first k.")
            check.require(not np.allclose(probabilities, logits[want_indices]),
                          "those are the logits, not probabilities: apply the softmax, "
                          "exp(logits) / exp(logits).sum().")
            check.require(np.array_equal(indices, want_indices),
                          f"with logits {logits.tolist()} and k={k} the classes should be "
                          f"{want_indices.tolist()}, got {indices.astype(int).tolist()}.")
            check.close(probabilities, want_probabilities,
                        f"the probabilities should be {np.round(want_probabilities, 4).tolist()}: the softmax of "
                        "*all* the logits (divide by the sum over every class, not just the top k).", atol=1e-6)


@exercise("01", "count a layer's parameters")
def check_conv_parameters(fn: Callable) -> None:
    """``conv_parameters(in_channels, out_channels, kernel_size, groups=1, bias=True)``: a Conv2d's weight count."""
    import torch

    cases = ((3, 96, 7, 1, True), (3, 32, 3, 1, False), (32, 32, 3, 32, True), (4096, 1000, 1, 1, True),
             (16, 64, 5, 4, True))
    with Checker("count a layer's parameters") as check:
        for in_channels, out_channels, kernel, groups, bias in cases:
            layer = torch.nn.Conv2d(in_channels, out_channels, kernel, groups=groups, bias=bias)
            want = sum(parameter.numel() for parameter in layer.parameters())
            got = check.number(check.call(fn, in_channels, out_channels, kernel, groups=groups, bias=bias),
                               what="the count")
            described = (f"a {kernel}x{kernel} convolution from {in_channels} to {out_channels} channels "
                         f"(groups={groups}, bias={bias})")
            weights = out_channels * in_channels // groups * kernel * kernel
            check.require(got != weights or not bias,
                          f"{described} also has one bias per output channel: add out_channels when bias=True.")
            check.require(got != weights + out_channels or bias,
                          f"{described} has no bias: add out_channels only when bias=True.")
            check.require(got != out_channels * in_channels * kernel * kernel + (out_channels if bias else 0)
                          or groups == 1,
                          f"{described}: with groups=g each filter sees only in_channels / g input channels "
                          "(a depthwise convolution, groups=in_channels, sees one).")
            check.require(got != out_channels * in_channels // groups * kernel + (out_channels if bias else 0)
                          or kernel == 1,
                          f"{described}: a k x k kernel has k * k weights per input channel, not k.")
            check.require(got == want, f"{described} has {want:,} parameters, got {got:,.0f}: "
                                       "out_channels * (in_channels / groups) * k * k, plus out_channels biases.")
