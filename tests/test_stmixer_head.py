"""STMixer adaptive sampling and mixing: shapes and sampling geometry."""
import torch

from trackstudio.trackers.box.stmixer_head import (AdaptiveMixing, box_to_xyzr, make_sample_points, mhaq3d,
                                                   sample_4d, translate_to_linear_weight, xyzr_to_box)

STRIDES = [8, 16, 32]
MAPPING_STRIDE = 3.0  # a box of scale 2^(3 + i) px reads level i


def coordinate_maps(height=256, width=320, frames=2):
    """Per level (1, 3, T, H/s, W/s): channel 0 = cell-centre x, 1 = cell-centre y, 2 = frame index."""
    values = []
    for stride in STRIDES:
        h, w = height // stride, width // stride
        ys, xs = torch.meshgrid((torch.arange(h) + 0.5) * stride, (torch.arange(w) + 0.5) * stride, indexing="ij")
        value = torch.zeros(1, 3, frames, h, w)
        for t in range(frames):
            value[0, 0, t], value[0, 1, t], value[0, 2, t] = xs, ys, float(t)
        values.append(value)
    return values


def test_xyzr_round_trip():
    boxes = torch.tensor([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 8.0, 8.0]])
    xyzr = box_to_xyzr(boxes)
    assert torch.allclose(xyzr[1], torch.tensor([4.0, 4.0, 3.0, 0.0]))
    assert torch.allclose(xyzr_to_box(xyzr), boxes, atol=1e-4)


def test_sample_points_shape_and_zero_offset_is_the_box_centre_at_its_level():
    xyzr = box_to_xyzr(torch.tensor([[[100.0, 60.0, 164.0, 124.0], [10.0, 10.0, 26.0, 42.0]]]))  # (1, 2, 4)
    offset = torch.zeros(1, 2, 6 * 3)
    points = make_sample_points(offset, 6, xyzr)
    assert points.shape == (1, 2, 1, 6, 3)
    assert torch.allclose(points[0, 0, 0, :, :2], torch.tensor([132.0, 92.0]).expand(6, 2))
    assert torch.allclose(points[0, 0, 0, :, 2], torch.full((6,), 6.0))  # 64 px box: log2 64
    assert torch.allclose(points[0, 1, 0, :, :2], torch.tensor([18.0, 26.0]).expand(6, 2))


def test_offsets_scale_with_the_box():
    offset = torch.tensor([[[0.5, -0.25, 1.0]]])  # one point: half a width right, a quarter height up
    small = make_sample_points(offset, 1, box_to_xyzr(torch.tensor([[[0.0, 0.0, 40.0, 20.0]]])))
    big = make_sample_points(offset, 1, box_to_xyzr(torch.tensor([[[0.0, 0.0, 80.0, 40.0]]])))
    assert torch.allclose(small[0, 0, 0, 0, :2], torch.tensor([20.0 + 20.0, 10.0 - 5.0]))
    assert torch.allclose(big[0, 0, 0, 0, :2], torch.tensor([40.0 + 40.0, 20.0 - 10.0]))
    assert torch.allclose(big[..., 2] - small[..., 2], torch.tensor(1.0))  # twice the size: one level up


def test_level_weights_peak_at_the_nearest_level_and_sum_to_one():
    ref = torch.tensor([0.0, 1.0, 1.5, 2.0, 7.0])
    weights = translate_to_linear_weight(ref, 3)
    assert weights.shape == (5, 3)
    assert torch.allclose(weights.sum(-1), torch.ones(5))
    assert weights.argmax(-1).tolist()[:2] == [0, 1] and weights.argmax(-1)[3] == 2
    assert torch.isclose(weights[2, 1], weights[2, 2])  # half way: split evenly
    assert weights[4, 2] > 0.99  # beyond the last level: the last level


def test_sample_4d_shape_with_heads_points_and_frames():
    values = [torch.randn(2, 8, 3, 256 // s, 320 // s) for s in STRIDES]
    n_heads, n_points, queries = 2, 5, 4
    boxes = torch.tensor([40.0, 30.0, 90.0, 100.0]).expand(2, queries, 4)
    points = make_sample_points(torch.randn(2, queries, n_heads * n_points * 3) * 0.3, n_heads * n_points,
                                box_to_xyzr(boxes))
    out = sample_4d(points, values, STRIDES, n_points=n_points, mapping_stride=MAPPING_STRIDE)
    assert out.shape == (2, 8 // n_heads, n_heads, 3, n_points, queries, 1)


def test_sample_4d_geometry_with_one_head():
    values = coordinate_maps()
    xyzr = box_to_xyzr(torch.tensor([[[104.0, 72.0, 136.0, 104.0]]]))  # scale 32: level index 2 (stride 32)
    offset = torch.tensor([[[0.0, 0.0, 0.0, 0.5, 0.0, 0.0]]])  # the centre, and half a width to the right
    points = make_sample_points(offset, 2, xyzr)
    out = sample_4d(points, values, STRIDES, n_points=2, mapping_stride=MAPPING_STRIDE)
    assert out.shape == (1, 3, 1, 2, 2, 1, 1)  # (B, C / heads, heads, T, points, queries, 1)
    weights = translate_to_linear_weight(torch.tensor(5.0 - MAPPING_STRIDE), 3)
    assert weights.argmax() == 2
    # coordinate maps are linear inside: every level reads the same coordinate, weights sum to 1
    for t in range(2):
        assert torch.allclose(out[0, :2, 0, t, 0, 0, 0], torch.tensor([120.0, 88.0]), atol=1e-3)
        assert torch.allclose(out[0, :2, 0, t, 1, 0, 0], torch.tensor([136.0, 88.0]), atol=1e-3)
        assert torch.isclose(out[0, 2, 0, t, 0, 0, 0], torch.tensor(float(t)))


def test_sample_4d_weights_levels_by_the_box_scale():
    values = coordinate_maps(frames=1)
    for level, value in enumerate(values):  # mark each level with its own constant
        value[:, 2] = float(level)
    for level, side in enumerate([8.0, 16.0, 32.0]):
        box = torch.tensor([[[100.0, 100.0, 100.0 + side, 100.0 + side]]])
        out = sample_4d(make_sample_points(torch.zeros(1, 1, 3), 1, box_to_xyzr(box)), values, STRIDES,
                        mapping_stride=MAPPING_STRIDE)
        expected = (translate_to_linear_weight(torch.tensor(float(level)), 3) * torch.arange(3.0)).sum()
        assert torch.isclose(out[0, 2, 0, 0, 0, 0, 0], expected, atol=1e-5)


def test_mhaq3d_splits_channels_into_heads():
    value = torch.arange(4.0).view(1, 4, 1, 1, 1).expand(1, 4, 2, 4, 4).contiguous()
    points = torch.full((1, 5, 1, 2 * 3, 2), 0.5)
    weight = torch.ones(1, 5, 1, 6)
    out = mhaq3d(points, value, weight, n_points=3)
    assert out.shape == (1, 2, 2, 2, 3, 5, 1)
    assert out[0, :, 0].unique().tolist() == [0.0, 1.0] and out[0, :, 1].unique().tolist() == [2.0, 3.0]


def test_adaptive_mixing_shapes_and_query_conditioning():
    torch.manual_seed(0)
    mixing = AdaptiveMixing(in_dim=32, in_points=6, n_groups=4, query_dim=48, out_points=5)
    assert mixing.m_parameters == 8 * 8 and mixing.s_parameters == 6 * 5
    assert mixing.parameter_generator.out_features == 4 * (64 + 30)
    x = torch.randn(2, 3, 4, 6, 8)
    query = torch.randn(2, 3, 48)
    out = mixing(x, query)
    assert out.shape == (2, 3, 48)
    torch.nn.init.normal_(mixing.parameter_generator.weight, std=0.1)
    other_query = query.clone()
    other_query[0, 0] += 1.0
    delta = mixing(x, other_query) - mixing(x, query)
    # the generated mixers depend on the query: changing one query changes more than the residual
    assert not torch.allclose(delta[0, 0], other_query[0, 0] - query[0, 0], atol=1e-4)
    assert torch.allclose(delta[1], torch.zeros_like(delta[1]))  # other queries are untouched
