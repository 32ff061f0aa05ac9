"""Pooling of convolutional maps, checked on hand-computed values."""

from __future__ import annotations

import pytest
import torch

from course_utils.pooling import pool, rmac_regions


def test_avg_max_gem_on_a_hand_example():
    x = torch.tensor([1.0, 2.0, 3.0, 6.0]).reshape(1, 1, 2, 2)
    assert pool(x, "avg").item() == pytest.approx(3.0)
    assert pool(x, "max").item() == pytest.approx(6.0)
    # GeM p=3: ((1 + 8 + 27 + 216) / 4) ** (1/3) = 63 ** (1/3)
    assert pool(x, "gem").item() == pytest.approx(63 ** (1 / 3), rel=1e-5)


def test_gem_lies_between_avg_and_max():
    x = torch.rand(3, 8, 5, 7)
    avg, gem, mx = pool(x, "avg"), pool(x, "gem"), pool(x, "max")
    assert torch.all(avg <= gem + 1e-6) and torch.all(gem <= mx + 1e-6)


def test_rmac_regions_on_a_square_map():
    regions = rmac_regions(6, 6, levels=3)
    # level 1: one 6x6 square; level 2: 2x2 squares of side 4; level 3: 3x3 squares of side 3
    assert len(regions) == 1 + 4 + 9
    assert regions[0] == (0, 0, 6, 6)
    assert sorted({r[2] for r in regions}) == [3, 4, 6]
    assert (2, 2, 4, 4) in regions and (3, 3, 3, 3) in regions


def test_rmac_regions_stay_inside_a_wide_map():
    for y0, x0, h, w in rmac_regions(7, 10, levels=3):
        assert 0 <= y0 and y0 + h <= 7 and 0 <= x0 and x0 + w <= 10


def test_rmac_of_a_constant_map_counts_its_regions():
    x = torch.ones(1, 4, 6, 6)
    # every region's max is the all-ones vector of norm 2, normalised to 0.5 per channel; 14 regions
    assert torch.allclose(pool(x, "rmac"), torch.full((1, 4), 14 * 0.5))


def test_bad_pool_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        pool(torch.zeros(2, 3), "avg")
    with pytest.raises(ValueError, match="Unknown pooling 'sum'"):
        pool(torch.zeros(1, 1, 2, 2), "sum")
