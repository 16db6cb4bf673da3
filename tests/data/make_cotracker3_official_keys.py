"""Writes cotracker3_official_keys.json: the state-dict key names and tensor shapes of the official
CoTracker3 checkpoints scaled_online.pth (window_len 16) and scaled_offline.pth (window_len 60),
the fixture tests/test_cotracker3.py checks trackers.point.cotracker3 against.

Provenance: transcribed by hand from facebookresearch/co-tracker —
cotracker/models/core/cotracker/cotracker3_online.py (CoTrackerThreeBase: fnet, updateformer with
space_depth = time_depth = 3, hidden 384, input_dim 1110, 64 virtual tracks,
linear_layer_for_vis_conf; corr_mlp Mlp(49*49, 384, 256); the time_emb buffer of shape
(1, window_len, 1110)), cotracker/models/core/cotracker/blocks.py (BasicEncoder with instance norm,
ResidualBlock, Mlp, Attention with dim_head 48 and qkv bias, AttnBlock), cotracker/models/core/
cotracker/cotracker.py (EfficientUpdateFormer, CrossAttnBlock) and hubconf.py (window_len 16
online, 60 offline). It does not import the project's implementation.

Run: python tests/data/make_cotracker3_official_keys.py
"""
from __future__ import annotations

import json
from pathlib import Path


def linear(keys, name, n_in, n_out):
    keys[f"{name}.weight"] = [n_out, n_in]
    keys[f"{name}.bias"] = [n_out]


def conv(keys, name, n_in, n_out, k):
    keys[f"{name}.weight"] = [n_out, n_in, k, k]
    keys[f"{name}.bias"] = [n_out]


def residual_block(keys, name, n_in, n_out, stride):
    conv(keys, f"{name}.conv1", n_in, n_out, 3)
    conv(keys, f"{name}.conv2", n_out, n_out, 3)
    if stride != 1:  # InstanceNorm2d (affine=False) norms hold no tensors
        conv(keys, f"{name}.downsample.0", n_in, n_out, 1)


def attention(keys, name, dim, context_dim=None):
    linear(keys, f"{name}.to_q", dim, dim)  # 8 heads x 48
    linear(keys, f"{name}.to_kv", context_dim or dim, 2 * dim)
    linear(keys, f"{name}.to_out", dim, dim)


def mlp(keys, name, n_in, hidden, n_out):
    linear(keys, f"{name}.fc1", n_in, hidden)
    linear(keys, f"{name}.fc2", hidden, n_out)


def model_keys(window_len: int) -> dict:
    keys = {}
    # fnet = BasicEncoder(input_dim=3, output_dim=128, stride=4)
    conv(keys, "fnet.conv1", 3, 64, 7)
    in_planes = 64
    for i, (dim, stride) in enumerate([(64, 1), (96, 2), (128, 2), (128, 2)], start=1):
        residual_block(keys, f"fnet.layer{i}.0", in_planes, dim, stride)
        residual_block(keys, f"fnet.layer{i}.1", dim, dim, 1)
        in_planes = dim
    conv(keys, "fnet.conv2", 64 + 96 + 128 + 128, 256, 3)
    conv(keys, "fnet.conv3", 256, 128, 1)
    # updateformer = EfficientUpdateFormer(space_depth=3, time_depth=3, input_dim=1110, hidden_size=384,
    #                                      output_dim=4, num_virtual_tracks=64, linear_layer_for_vis_conf=True)
    u, h = "updateformer", 384
    linear(keys, f"{u}.input_transform", 1110, h)
    linear(keys, f"{u}.flow_head", h, 2)
    linear(keys, f"{u}.vis_conf_head", h, 2)
    keys[f"{u}.virual_tracks"] = [1, 64, 1, h]
    for i in range(3):
        for group in ("time_blocks", "space_virtual_blocks"):  # AttnBlock: norms without affine
            attention(keys, f"{u}.{group}.{i}.attn", h)
            mlp(keys, f"{u}.{group}.{i}.mlp", h, 4 * h, h)
        for group in ("space_point2virtual_blocks", "space_virtual2point_blocks"):  # CrossAttnBlock
            keys[f"{u}.{group}.{i}.norm_context.weight"] = [h]
            keys[f"{u}.{group}.{i}.norm_context.bias"] = [h]
            attention(keys, f"{u}.{group}.{i}.cross_attn", h, h)
            mlp(keys, f"{u}.{group}.{i}.mlp", h, 4 * h, h)
    mlp(keys, "corr_mlp", 49 * 49, 384, 256)
    keys["time_emb"] = [1, window_len, 1110]
    return keys


def main() -> None:
    out = {"about": "CoTracker3 official checkpoint keys -> shapes; see make_cotracker3_official_keys.py",
           "scaled_online.pth": model_keys(16), "scaled_offline.pth": model_keys(60)}
    path = Path(__file__).with_name("cotracker3_official_keys.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    total = sum(int(__import__("math").prod(s)) for k, s in out["scaled_online.pth"].items() if k != "time_emb")
    print(f"{len(out['scaled_online.pth'])} tensors, {total / 1e6:.2f}M parameters")


if __name__ == "__main__":
    main()
