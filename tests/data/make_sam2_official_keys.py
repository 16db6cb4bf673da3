"""Writes sam2.1_official_keys.json: the state-dict key names and tensor shapes of the official
SAM2.1 checkpoints (hiera tiny / small / base_plus / large), the fixture that
tests/test_sam2_official.py checks trackers.mask.sam2_official against.

Provenance: transcribed by hand from the official model definition in facebookresearch/sam2 —
sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml (per-size Hiera settings; b+ uses the Hiera class
defaults), sam2/modeling/backbones/hieradet.py (Hiera, MultiScaleBlock, MultiScaleAttention),
backbones/image_encoder.py (FpnNeck), backbones/utils.py (PatchEmbed), sam2_base.py (top-level
parameters, _build_sam_heads), sam/prompt_encoder.py, sam/mask_decoder.py, sam/transformer.py
(TwoWayTransformer, Attention), memory_attention.py, memory_encoder.py, position_encoding.py and
sam2_utils.py (MLP, LayerNorm2d). It deliberately does not import the project's implementation,
so the test compares two independent readings of those files. The total parameter counts it
yields match the official model-size table (38.9M, 46M, 80.8M, 224.4M).

Run: python tests/data/make_sam2_official_keys.py
"""
from __future__ import annotations

import json
from pathlib import Path

# sam2.1_hiera_*.yaml -> trunk: embed_dim, num_heads, stages, global_att_blocks,
# window_pos_embed_bkg_spatial_size, window_spec (Hiera defaults where the yaml is silent)
TRUNKS = {
    "tiny": dict(embed_dim=96, num_heads=1, stages=[1, 2, 7, 2], bkg=[7, 7], window0=8),
    "small": dict(embed_dim=96, num_heads=1, stages=[1, 2, 11, 2], bkg=[7, 7], window0=8),
    "base_plus": dict(embed_dim=112, num_heads=2, stages=[2, 3, 16, 3], bkg=[14, 14], window0=8),
    "large": dict(embed_dim=144, num_heads=2, stages=[2, 6, 36, 4], bkg=[7, 7], window0=8),
}


def linear(keys, name, n_in, n_out, bias=True):
    keys[f"{name}.weight"] = [n_out, n_in]
    if bias:
        keys[f"{name}.bias"] = [n_out]


def conv(keys, name, n_in, n_out, k, groups=1):
    keys[f"{name}.weight"] = [n_out, n_in // groups, k, k]
    keys[f"{name}.bias"] = [n_out]


def norm(keys, name, n):
    keys[f"{name}.weight"] = [n]
    keys[f"{name}.bias"] = [n]


def mlp(keys, name, n_in, hidden, n_out, num_layers):  # sam2_utils.MLP: layers.{i}
    dims = [n_in] + [hidden] * (num_layers - 1) + [n_out]
    for i in range(num_layers):
        linear(keys, f"{name}.layers.{i}", dims[i], dims[i + 1])


def attention(keys, name, dim, downsample_rate=1, kv_in_dim=None):  # sam/transformer.Attention
    inner = dim // downsample_rate
    kv = kv_in_dim or dim
    linear(keys, f"{name}.q_proj", dim, inner)
    linear(keys, f"{name}.k_proj", kv, inner)
    linear(keys, f"{name}.v_proj", kv, inner)
    linear(keys, f"{name}.out_proj", inner, dim)


def trunk_and_neck(t) -> dict:
    keys = {}
    p = "image_encoder.trunk"
    dim = t["embed_dim"]
    conv(keys, f"{p}.patch_embed.proj", 3, dim, 7)
    keys[f"{p}.pos_embed"] = [1, dim] + t["bkg"]
    keys[f"{p}.pos_embed_window"] = [1, dim, t["window0"], t["window0"]]
    stage_ends = [sum(t["stages"][: i + 1]) - 1 for i in range(4)]
    for i in range(sum(t["stages"])):
        dim_out = dim * 2 if i - 1 in stage_ends else dim  # hieradet: dim_mul=2 at a stage shift
        b = f"{p}.blocks.{i}"
        norm(keys, f"{b}.norm1", dim)
        linear(keys, f"{b}.attn.qkv", dim, dim_out * 3)
        linear(keys, f"{b}.attn.proj", dim_out, dim_out)
        norm(keys, f"{b}.norm2", dim_out)
        mlp(keys, f"{b}.mlp", dim_out, dim_out * 4, dim_out, 2)
        if dim != dim_out:
            linear(keys, f"{b}.proj", dim, dim_out)
        dim = dim_out
    channels = [t["embed_dim"] * 8, t["embed_dim"] * 4, t["embed_dim"] * 2, t["embed_dim"]]
    for j, c in enumerate(channels):  # FpnNeck.convs[j].conv, backbone_channel_list order
        conv(keys, f"image_encoder.neck.convs.{j}.conv", c, 256, 1)
    return keys


def shared() -> dict:
    keys = {}
    d, mem = 256, 64
    # sam2_base.SAM2Base
    keys["maskmem_tpos_enc"] = [7, 1, 1, mem]
    keys["no_mem_embed"] = [1, 1, d]
    keys["no_mem_pos_enc"] = [1, 1, d]
    keys["no_obj_ptr"] = [1, d]
    keys["no_obj_embed_spatial"] = [1, mem]
    conv(keys, "mask_downsample", 1, 1, 4)
    mlp(keys, "obj_ptr_proj", d, d, d, 3)  # use_mlp_for_obj_ptr_proj
    linear(keys, "obj_ptr_tpos_proj", d, mem)  # proj_tpos_enc_in_obj_ptrs
    # memory_attention.MemoryAttention(num_layers=4) of MemoryAttentionLayer
    for i in range(4):
        layer = f"memory_attention.layers.{i}"
        attention(keys, f"{layer}.self_attn", d)
        attention(keys, f"{layer}.cross_attn_image", d, kv_in_dim=mem)
        linear(keys, f"{layer}.linear1", d, 2048)
        linear(keys, f"{layer}.linear2", 2048, d)
        for n in (1, 2, 3):
            norm(keys, f"{layer}.norm{n}", d)
    norm(keys, "memory_attention.norm", d)
    # memory_encoder.MemoryEncoder: MaskDownSampler(kernel 3, stride 2, total_stride 16), Fuser of 2 CXBlock
    c_in = 1
    for step in range(4):
        conv(keys, f"memory_encoder.mask_downsampler.encoder.{3 * step}", c_in, c_in * 4, 3)
        norm(keys, f"memory_encoder.mask_downsampler.encoder.{3 * step + 1}", c_in * 4)
        c_in *= 4
    conv(keys, "memory_encoder.mask_downsampler.encoder.12", c_in, d, 1)
    conv(keys, "memory_encoder.pix_feat_proj", d, d, 1)
    for i in range(2):
        blk = f"memory_encoder.fuser.layers.{i}"
        conv(keys, f"{blk}.dwconv", d, d, 7, groups=d)
        norm(keys, f"{blk}.norm", d)
        linear(keys, f"{blk}.pwconv1", d, 4 * d)
        linear(keys, f"{blk}.pwconv2", 4 * d, d)
        keys[f"{blk}.gamma"] = [d]
    conv(keys, "memory_encoder.out_proj", d, mem, 1)
    # sam/prompt_encoder.PromptEncoder(embed_dim=256, mask_in_chans=16)
    pe = "sam_prompt_encoder"
    keys[f"{pe}.pe_layer.positional_encoding_gaussian_matrix"] = [2, d // 2]
    for i in range(4):
        keys[f"{pe}.point_embeddings.{i}.weight"] = [1, d]
    keys[f"{pe}.not_a_point_embed.weight"] = [1, d]
    conv(keys, f"{pe}.mask_downscaling.0", 1, 4, 2)
    norm(keys, f"{pe}.mask_downscaling.1", 4)
    conv(keys, f"{pe}.mask_downscaling.3", 4, 16, 2)
    norm(keys, f"{pe}.mask_downscaling.4", 16)
    conv(keys, f"{pe}.mask_downscaling.6", 16, d, 1)
    keys[f"{pe}.no_mask_embed.weight"] = [1, d]
    # sam/mask_decoder.MaskDecoder with TwoWayTransformer(depth=2, mlp_dim=2048, num_heads=8)
    md = "sam_mask_decoder"
    for i in range(2):
        layer = f"{md}.transformer.layers.{i}"
        attention(keys, f"{layer}.self_attn", d)
        attention(keys, f"{layer}.cross_attn_token_to_image", d, downsample_rate=2)
        attention(keys, f"{layer}.cross_attn_image_to_token", d, downsample_rate=2)
        mlp(keys, f"{layer}.mlp", d, 2048, d, 2)
        for n in (1, 2, 3, 4):
            norm(keys, f"{layer}.norm{n}", d)
    attention(keys, f"{md}.transformer.final_attn_token_to_image", d, downsample_rate=2)
    norm(keys, f"{md}.transformer.norm_final_attn", d)
    keys[f"{md}.iou_token.weight"] = [1, d]
    keys[f"{md}.mask_tokens.weight"] = [4, d]
    keys[f"{md}.obj_score_token.weight"] = [1, d]
    keys[f"{md}.output_upscaling.0.weight"] = [d, d // 4, 2, 2]  # ConvTranspose2d: (in, out, k, k)
    keys[f"{md}.output_upscaling.0.bias"] = [d // 4]
    norm(keys, f"{md}.output_upscaling.1", d // 4)
    keys[f"{md}.output_upscaling.3.weight"] = [d // 4, d // 8, 2, 2]
    keys[f"{md}.output_upscaling.3.bias"] = [d // 8]
    conv(keys, f"{md}.conv_s0", d, d // 8, 1)
    conv(keys, f"{md}.conv_s1", d, d // 4, 1)
    for i in range(4):
        mlp(keys, f"{md}.output_hypernetworks_mlps.{i}", d, d, d // 8, 3)
    mlp(keys, f"{md}.iou_prediction_head", d, 256, 4, 3)
    mlp(keys, f"{md}.pred_obj_score_head", d, d, 1, 3)  # pred_obj_scores_mlp
    return keys


def main() -> None:
    out = {
        "about": "SAM2.1 official checkpoint keys -> shapes; see make_sam2_official_keys.py",
        "shared": shared(),
        "trunk_and_neck": {name: trunk_and_neck(t) for name, t in TRUNKS.items()},
    }
    path = Path(__file__).with_name("sam2.1_official_keys.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    for name in TRUNKS:
        total = 0
        for shape in list(out["shared"].values()) + list(out["trunk_and_neck"][name].values()):
            n = 1
            for s in shape:
                n *= s
            total += n
        print(f"{name}: {total / 1e6:.2f}M parameters")


if __name__ == "__main__":
    main()
