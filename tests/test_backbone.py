"""EfficientNet-Lite0: strict loading, feature geometry, normalisation and ImageNet behaviour."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
import torch

from trackstudio.trackers.backbones import FEATURE_CHANNELS, EfficientNetLite0, normalize_rgb
from trackstudio.trackers.backbones.efficientnet_lite import weights_path

BLACK_SWAN = 100  # ImageNet class index


@pytest.fixture(scope="module")
def net() -> EfficientNetLite0:
    return EfficientNetLite0()


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    return EfficientNetLite0(classifier=True)


def _textured_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour blobs: natural-image-like statistics without any data files."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def test_classifier_uses_every_checkpoint_tensor(classifier):
    checkpoint = torch.load(weights_path(), map_location="cpu", weights_only=True)
    assert set(classifier.state_dict()) == set(checkpoint)
    for key, value in classifier.state_dict().items():
        assert torch.equal(value, checkpoint[key]), key


@pytest.mark.parametrize("hw", [(256, 256), (96, 160), (101, 75)])
def test_feature_shapes_follow_same_padding(net, hw):
    h, w = hw
    with torch.inference_mode():
        feats = net(normalize_rgb(_textured_image(h, w)))
    assert sorted(feats) == [4, 8, 16]
    for stride, fmap in feats.items():
        assert fmap.shape == (1, FEATURE_CHANNELS[stride], -(-h // stride), -(-w // stride))
        assert torch.isfinite(fmap).all()


def test_early_stop_gives_the_same_maps(net):
    x = normalize_rgb(_textured_image(128, 192, seed=1))
    shallow = EfficientNetLite0(out_strides=(8,))
    assert len(shallow._blocks) < len(net._blocks)
    with torch.inference_mode():
        full, part = net(x), shallow(x)
    assert list(part) == [8]
    torch.testing.assert_close(part[8], full[8])


def test_features_shift_with_the_image(net):
    """Convolutions are translation-equivariant: moving the image by 16 px moves stride-16 cells by one
    (the 'same' padding and stride bookkeeping would break this if wrong)."""
    image = _textured_image(192, 320, seed=2)
    shifted = np.roll(image, shift=16, axis=1)
    with torch.inference_mode():
        a = net(normalize_rgb(image))[16][..., 4:-4, :]
        b = net(normalize_rgb(shifted))[16][..., 4:-4, :]
    # Compare away from the borders and the wrapped-around strip, whose effects spread inwards.
    aligned = (a[..., 4:-5] - b[..., 5:-4]).norm() / a[..., 4:-5].norm()
    misaligned = (a[..., 4:-5] - b[..., 4:-5]).norm() / a[..., 4:-5].norm()
    assert aligned < 0.15
    assert aligned < 0.25 * misaligned


def test_batch_matches_single_images(net):
    images = np.stack([_textured_image(64, 96, seed=s) for s in range(2)])
    with torch.inference_mode():
        batch = net(normalize_rgb(images))
        first = net(normalize_rgb(images[0]))
    torch.testing.assert_close(batch[16][:1], first[16], atol=1e-4, rtol=1e-4)


def test_normalize_rgb_accepts_numpy_and_tensors():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 255
    out = normalize_rgb(image)
    assert out.shape == (1, 3, 4, 6) and out.dtype == torch.float32
    assert torch.allclose(out[0, 0], torch.full((4, 6), (255 - 127) / 128))
    assert torch.allclose(out[0, 1], torch.full((4, 6), -127 / 128))
    chw = torch.from_numpy(image).permute(2, 0, 1)
    torch.testing.assert_close(normalize_rgb(chw), out)
    torch.testing.assert_close(normalize_rgb(chw[None].float()), out)
    assert normalize_rgb(np.stack([image] * 2)).shape == (2, 3, 4, 6)
    with pytest.raises(ValueError, match="RGB"):
        normalize_rgb(np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match="RGB"):
        normalize_rgb(torch.zeros(1, 4, 8, 8))


def test_a_read_only_frame_is_normalised_without_a_warning():
    # the frame cache hands out read-only frames; torch.from_numpy warns on those, which reached users of
    # `trackstudio track` on video at or under the trackers' working size
    import warnings

    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 2] = 200
    expected = normalize_rgb(image)
    image.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(normalize_rgb(image), expected)


def test_bad_out_strides_are_refused():
    with pytest.raises(ValueError, match="out_strides"):
        EfficientNetLite0(pretrained=False, out_strides=(64,))


def test_strict_load_names_missing_and_unexpected_keys(tmp_path):
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    state.pop("_blocks.3._depthwise_conv.weight")
    state["_blocks.2.extra"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    net = EfficientNetLite0(pretrained=False, out_strides=(8,))
    with pytest.raises(RuntimeError) as err:
        net.load_pretrained(path)
    assert "_blocks.3._depthwise_conv.weight" in str(err.value)
    assert "_blocks.2.extra" in str(err.value)
    assert str(path) in str(err.value)


def test_corrupt_weights_file_is_reported(tmp_path):
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(RuntimeError, match="corrupt.pth"):
        EfficientNetLite0(pretrained=False).load_pretrained(path)


def _center_crop_224(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = 224 / min(h, w)
    image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0, x0 = (image.shape[0] - 224) // 2, (image.shape[1] - 224) // 2
    return image[y0:y0 + 224, x0:x0 + 224]


def test_recognises_the_black_swan(classifier, shared_data):
    """End-to-end check of weights, padding and normalisation on real frames."""
    frames_dir = shared_data / "davis_blackswan" / "frames"
    if not frames_dir.is_dir():
        pytest.skip("davis_blackswan is not in ../shared/data")
    paths = sorted(frames_dir.glob("*.jpg"))[::10][:4]
    crops = np.stack([_center_crop_224(cv2.imread(str(p))[:, :, ::-1]) for p in paths])
    with torch.inference_mode():
        probs = classifier.logits(normalize_rgb(crops)).softmax(dim=-1)
    assert (probs.argmax(dim=-1) == BLACK_SWAN).all()
    assert probs[:, BLACK_SWAN].min() > 0.5
    # Wrong preprocessing (BGR order) costs confidence: normalisation is doing real work.
    with torch.inference_mode():
        bgr_probs = classifier.logits(normalize_rgb(crops[..., ::-1].copy())).softmax(dim=-1)
    assert bgr_probs[:, BLACK_SWAN].mean() < probs[:, BLACK_SWAN].mean()


def test_logits_are_a_proper_classifier(classifier):
    with torch.inference_mode():
        logits = classifier.logits(normalize_rgb(_textured_image(224, 224)))
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    with pytest.raises(RuntimeError, match="classifier=True"):
        EfficientNetLite0(pretrained=False).logits(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("hw", [(64, 64), (33, 50)])
def test_stride_2_blocks_padded_before_expansion_equal_tensorflow_same_padding(net, hw):
    """Inference pads a stride-2 block's input, not its expanded map; the maps must be the same, bit for bit."""
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    blocks = [block for block in net._blocks if block._depthwise_conv.stride[0] == 2]
    assert len(blocks) == 3  # the stride 4, 8 and 16 stages of a (4, 8, 16) network
    for block in blocks:
        x = torch.randn(2, block._expand_conv.in_channels, *hw)
        with torch.no_grad():
            expanded = F.relu6(block._bn0(block._expand_conv(x)))
            depthwise = block._depthwise_conv
            # the reference: TensorFlow 'same' padding of the expanded map (extra row / column at bottom / right)
            pad_h, pad_w = (max((-(-side // 2) - 1) * 2 + depthwise.kernel_size[0] - side, 0) for side in hw)
            padded = F.pad(expanded, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
            reference = block._bn2(block._project_conv(F.relu6(block._bn1(nn.Conv2d.forward(depthwise, padded)))))
            assert torch.equal(block(x), reference)


def test_fused_batchnorm_gives_the_same_maps_and_refuses_reloading():
    from trackstudio.trackers.backbones import EfficientNetLite0

    plain = EfficientNetLite0(out_strides=(8, 16))
    fused = EfficientNetLite0(out_strides=(8, 16)).fuse_batchnorm()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 96, 128)
    with torch.inference_mode():
        expected, got = plain(x), fused(x)
    for stride in (8, 16):
        torch.testing.assert_close(got[stride], expected[stride], atol=2e-4, rtol=1e-3)
        assert got[stride].is_contiguous()  # computed in NHWC on a CPU, handed back in the usual layout
    with pytest.raises(RuntimeError, match="before fuse_batchnorm"):
        fused.load_pretrained()


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_fused_network_runs_each_conv_and_its_relu6_in_one_onednn_call_with_the_same_maps(monkeypatch, precision):
    """On a CPU a fused network gives each conv its ReLU6 as a oneDNN post-op, in float32 and in bfloat16: the same
    maps as the conv followed by the clamp, up to rounding (odd sizes: stride-2 blocks pad asymmetrically)."""
    from trackstudio.trackers.backbones import efficientnet_lite
    from trackstudio.trackers.device import cpu_autocast, cpu_inference_dtype

    if efficientnet_lite._ONEDNN_CONV is None:
        pytest.skip("this torch build has no oneDNN")
    dtype = cpu_inference_dtype(precision)
    if dtype != getattr(torch, precision):
        pytest.skip("this CPU computes bfloat16 slower than float32, so the network stays in float32")
    fused = EfficientNetLite0(out_strides=(8, 16)).fuse_batchnorm(precision)
    x = normalize_rgb(_textured_image(99, 130))
    calls, onednn_conv = [], efficientnet_lite._ONEDNN_CONV

    def counted(*args):
        calls.append(args[7])  # the post-op
        return onednn_conv(*args)

    monkeypatch.setattr(efficientnet_lite, "_ONEDNN_CONV", counted)
    with torch.no_grad(), cpu_autocast(dtype):  # the reference: autocast's conv, then the clamp
        got = fused(x)
        reference = fused._stem(x.contiguous(memory_format=torch.channels_last), False)
        expected = {}
        for block_idx, block in enumerate(fused._blocks):
            reference = block(reference, False)
            if block_idx == 4:
                expected[8] = reference.float().contiguous()
        expected[16] = reference.float().contiguous()
    # ReLU6 after the stem and each block's expansion and depthwise conv (block 0 does not expand); none after the
    # linear projections
    assert calls.count("hardtanh") == 1 + 2 * len(fused._blocks) - 1 and calls.count("none") == len(fused._blocks)
    tolerance = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    for stride in (8, 16):
        assert got[stride].dtype == torch.float32
        torch.testing.assert_close(got[stride], expected[stride], **tolerance)
    with torch.enable_grad():  # a network that computes gradients keeps the plain path
        calls.clear()
        fused(x)
    assert not calls


def test_bfloat16_backbone_stays_close_to_float32_and_bad_precisions_are_refused():
    from trackstudio.trackers.device import cpu_inference_dtype

    plain = EfficientNetLite0(out_strides=(8, 16)).fuse_batchnorm()
    half = EfficientNetLite0(out_strides=(8, 16)).fuse_batchnorm("bfloat16")
    # bfloat16 only where the CPU runs it natively: elsewhere float32, the same maps
    assert half.cpu_dtype == cpu_inference_dtype("bfloat16") and plain.cpu_dtype == torch.float32
    x = normalize_rgb(_textured_image(96, 128, seed=3))
    with torch.inference_mode():
        expected, got = plain(x), half(x)
    for stride in (8, 16):
        assert got[stride].dtype == torch.float32 and got[stride].is_contiguous()
        error = (got[stride] - expected[stride]).norm() / expected[stride].norm()
        assert error < 0.05
        # the cells still match where they did: the unit-normalised descriptors agree closely
        cosine = torch.nn.functional.cosine_similarity(got[stride], expected[stride], dim=1)
        assert cosine.min() > 0.99
    with pytest.raises(ValueError, match="backbone_precision"):
        EfficientNetLite0(out_strides=(8,)).fuse_batchnorm("float16")


def test_stride_32_map_is_the_last_block_before_the_head(classifier):
    x = normalize_rgb(_textured_image(96, 160, seed=2))
    deep = EfficientNetLite0(out_strides=(8, 32))
    with torch.inference_mode():
        feats = deep(x)
        y = classifier._stem(x)
        for block in classifier._blocks:
            y = block(y)
    assert feats[32].shape == (1, FEATURE_CHANNELS[32], 3, 5)
    torch.testing.assert_close(feats[32], y)
