"""DenseCap family. No released weights exist here, so checkpoints are written in the released Torch7 format
(t7_writer.py) with the original module tree at reduced widths and random weights, read back with torchfile,
and the key parts are compared with independent numpy references."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchfile

from models.densecap.model import DenseCapModel
from models.densecap.boxes import apply_box_transform, bilinear_roi_pool, make_anchors, nms, reshape_box_features
from models.densecap.checkpoint import CheckpointError, build_from_checkpoint, read_t7
from models.densecap.model import VGG_MEAN_BGR
from serve.model import ModelSpec
from tests.models.densecap_files import ANCHORS, FIELD_CENTERS, WORDS, arrays, checkpoint_tree, write_checkpoint
from tests.models.t7_writer import Storage, TorchClass, save_t7

PLANTED = ["a", "white", "dog", "on", "the", "grass"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("densecap") / "densecap-test.t7"
    write_checkpoint(path, caption=PLANTED)
    return path


@pytest.fixture(scope="module")
def model(planted) -> DenseCapModel:
    m = DenseCapModel(ModelSpec("densecap", weights={"checkpoint": planted}))
    m.load()
    return m


# --- the Torch7 format ----------------------------------------------------------------------------------


def test_t7_writer_round_trip_through_torchfile(tmp_path):
    shared = np.arange(6, dtype=np.float32).reshape(2, 3)
    tree = {"n": 3, "x": 0.25, "s": "word", "yes": True, "none": None, "list": ["a", "b"],
            "obj": TorchClass("nn.Linear", {"weight": shared, "bias": np.zeros(0, np.float32)}),
            "again": shared, "longs": np.array([5, -1], np.int64), "size": Storage(np.array([1, -1], np.int64)),
            "view": shared.T}
    save_t7(tmp_path / "x.t7", tree)
    back = torchfile.load(str(tmp_path / "x.t7"), utf8_decode_strings=True)
    assert (back["n"], back["x"], back["s"], back["yes"], back["list"]) == (3, 0.25, "word", True, ["a", "b"])
    assert "none" not in back or back["none"] is None
    assert back["obj"].torch_typename() == b"nn.Linear"
    np.testing.assert_array_equal(back["obj"]["weight"], shared)
    assert back["obj"]["bias"].size == 0
    assert back["again"] is back["obj"]["weight"]  # a shared reference stays shared
    np.testing.assert_array_equal(back["longs"], [5, -1])
    np.testing.assert_array_equal(back["size"], [1, -1])
    np.testing.assert_array_equal(back["view"], shared.T)


def test_checkpoint_loads_every_written_weight(planted):
    tree = checkpoint_tree()  # same seed as the planted file, before planting
    from tests.models.densecap_files import plant_caption

    plant_caption(tree, PLANTED)
    written = arrays(tree)
    net, words = build_from_checkpoint(read_t7(planted))
    assert words == WORDS
    convs = [m for m in net.trunk if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and sum(isinstance(m, torch.nn.MaxPool2d) for m in net.trunk) == 4
    loaded = {f"trunk.{i}.{p}": getattr(c, p) for i, c in enumerate(convs) for p in ("weight", "bias")}
    loc, rec, lm = net.localization, net.recognition, net.language_model
    for name, layer in (("rpn", loc.conv), ("box", loc.box_conv), ("score", loc.score_conv),
                        ("fc0", rec.fcs[0]), ("fc1", rec.fcs[1]), ("objectness_branch", rec.objectness),
                        ("box_reg_branch", rec.box_reg), ("image_encoder", lm.image_encoder), ("output", lm.output),
                        ("lstm", lm.lstms[0])):
        loaded[f"{name}.weight"], loaded[f"{name}.bias"] = layer.weight, layer.bias
    loaded["lookup_table.weight"] = lm.lookup_table.weight
    assert set(loaded) == set(written)
    for name, value in written.items():
        assert torch.equal(loaded[name], torch.from_numpy(value)), name
    n_params = sum(1 for _ in net.parameters())
    assert n_params == len(written)  # nothing in the network that the file did not fill
    np.testing.assert_array_equal(loc.anchors.numpy(), np.array(ANCHORS, np.float32).T)
    assert loc.field_centers == FIELD_CENTERS and loc.output_size == (7, 7)
    assert lm.seq_length == 15 and lm.vocab_size == len(WORDS)


def build(tree, folder: Path):
    """The loader on `tree` as torch.save would have written it."""
    save_t7(folder / "tree.t7", tree)
    return build_from_checkpoint(read_t7(folder / "tree.t7"))


def test_missing_misshaped_and_unused_modules_are_named(tmp_path):
    tree = checkpoint_tree()
    nets = tree["model"].fields["nets"]
    fc7 = nets["recog_base"].fields["modules"][4]
    fc7.fields["bias"] = np.zeros(7, np.float32)
    with pytest.raises(CheckpointError, match=r"recog_base.modules\[4\]<nn.Linear>.bias has shape \[7\]"):
        build(tree, tmp_path)
    tree = checkpoint_tree()
    del tree["model"].fields["nets"]["language_model"].fields["lookup_table"].fields["weight"]
    with pytest.raises(CheckpointError, match="lookup_table"):
        build(tree, tmp_path)
    tree = checkpoint_tree()
    conv = tree["model"].fields["nets"]["conv_net2"].fields["modules"][0]
    conv.fields["weight"] = conv.fields["weight"][:, :3]
    with pytest.raises(CheckpointError, match=r"conv_net2.modules\[0\].*takes 3 channels"):
        build(tree, tmp_path)
    tree = checkpoint_tree()
    extra = tree["model"].fields["nets"]["recog_base"].fields["modules"]
    extra.append(TorchClass("nn.CMul", {"weight": np.ones(3, np.float32)}))
    with pytest.raises(CheckpointError, match="nn.CMul"):
        build(tree, tmp_path)
    with pytest.raises(CheckpointError, match="DenseCapModel"):
        build({"model": TorchClass("nn.Sequential", {})}, tmp_path)


def test_zipped_release_and_missing_file(tmp_path, planted):
    archive = tmp_path / "densecap-pretrained-vgg16.t7.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(planted, "densecap/densecap-pretrained-vgg16.t7")
    net, words = build_from_checkpoint(read_t7(archive))
    assert words == WORDS and (tmp_path / ".unpacked/densecap/densecap-pretrained-vgg16.t7").is_file()
    fetched_as_named = tmp_path / "densecap-pretrained-vgg16.t7"  # the zip saved under the catalog's file name
    archive.rename(fetched_as_named)
    assert build_from_checkpoint(read_t7(fetched_as_named))[1] == WORDS
    with pytest.raises(FileNotFoundError, match="nothing.t7"):
        read_t7(tmp_path / "nothing.t7")


# --- parts against numpy references ---------------------------------------------------------------------


def np_nms(boxes: np.ndarray, scores: np.ndarray, overlap: float) -> list[int]:
    """Girshick's nms.m, written out pairwise."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    suppressed = set()
    for a in order:
        if a in suppressed:
            continue
        keep.append(int(a))
        for b in order:
            if b == a or b in suppressed or b in keep:
                continue
            iw = min(boxes[a, 2], boxes[b, 2]) - max(boxes[a, 0], boxes[b, 0]) + 1
            ih = min(boxes[a, 3], boxes[b, 3]) - max(boxes[a, 1], boxes[b, 1]) + 1
            inter = max(iw, 0) * max(ih, 0)
            area = lambda i: (boxes[i, 2] - boxes[i, 0] + 1) * (boxes[i, 3] - boxes[i, 1] + 1)  # noqa: E731
            if inter / (area(a) + area(b) - inter) > overlap:
                suppressed.add(b)
    return keep


def test_nms_matches_reference():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (200, 2))], 1)
    scores = rng.normal(size=200)
    for overlap in (0.3, 0.7):
        got = nms(torch.from_numpy(boxes).float(), torch.from_numpy(scores).float(), overlap).tolist()
        assert got == np_nms(boxes.astype(np.float32).astype(np.float64), scores, overlap)
    assert len(nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.7, max_boxes=5)) == 5


def test_box_transform_and_anchors_match_reference():
    rng = np.random.default_rng(2)
    boxes, trans = rng.uniform(10, 50, (9, 4)), rng.normal(0, 0.3, (9, 4))
    got = apply_box_transform(torch.from_numpy(boxes), torch.from_numpy(trans)).numpy()
    want = [[x + tx * w, y + ty * h, w * np.exp(tw), h * np.exp(th)] for (x, y, w, h), (tx, ty, tw, th) in zip(boxes, trans)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    anchors = torch.tensor([[10.0, 20.0], [30.0, 40.0]])  # widths, heights of k = 2
    out = make_anchors(8.5, 8.5, 16, 16, anchors, 3, 4).numpy()
    rows = [[8.5 + 16 * j, 8.5 + 16 * i, anchors[0, a], anchors[1, a]] for a in range(2) for i in range(3) for j in range(4)]
    np.testing.assert_array_equal(out, np.array(rows, np.float32))
    conv_out = torch.arange(2 * 4 * 3 * 4, dtype=torch.float32).view(8, 3, 4)  # k * D channels, H, W
    flat = reshape_box_features(conv_out, 2).numpy()
    assert flat.shape == (24, 4)
    np.testing.assert_array_equal(flat[1 * 12 + 2 * 4 + 3], conv_out[4:8, 2, 3].numpy())  # anchor 1, row 2, col 3


def np_roi_pool(feats: np.ndarray, box, H: int, W: int, oh: int, ow: int) -> np.ndarray:
    """BoxToAffine + AffineGridGeneratorBHWD + BilinearSamplerBHWD, one sample at a time."""
    xc, yc, w, h = box
    d, hf, wf = feats.shape
    out = np.zeros((d, oh, ow))
    for i in range(oh):
        for j in range(ow):
            gy, gx = -1 + 2 * i / (oh - 1), -1 + 2 * j / (ow - 1)
            ny = h / H * gy + (2 * yc - H - 1) / (H - 1)
            nx = w / W * gx + (2 * xc - W - 1) / (W - 1)
            y, x = (ny + 1) / 2 * (hf - 1), (nx + 1) / 2 * (wf - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= yy < hf and 0 <= xx < wf:
                        out[:, i, j] += wy * wx * feats[:, yy, xx]
    return out


def test_bilinear_roi_pooling_matches_reference():
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(5, 12, 17))
    H, W = 12 * 16, 17 * 16
    boxes = np.array([[100.0, 80.0, 60.0, 40.0], [10.0, 10.0, 50.0, 70.0], [W - 5.0, 20.0, 80.0, 30.0],
                      [(W + 1) / 2, (H + 1) / 2, W, H]])
    got = bilinear_roi_pool(torch.from_numpy(feats), torch.from_numpy(boxes), H, W, 7, 7).numpy()
    for n, box in enumerate(boxes):
        np.testing.assert_allclose(got[n], np_roi_pool(feats, box, H, W, 7, 7), atol=1e-10)
    np.testing.assert_allclose(got[3][:, 0, 0], feats[:, 0, 0], atol=1e-10)  # the whole image: corners on corners


def test_lstm_step_matches_reference(planted):
    net, _ = build_from_checkpoint(read_t7(planted))
    tree = checkpoint_tree(seed=5)
    weight, bias = (tree["model"].fields["nets"]["language_model"].fields["rnn"].fields["modules"][0].fields[k]
                    for k in ("weight", "bias"))
    lstm = net.language_model.lstms[0]
    with torch.no_grad():
        lstm.weight.copy_(torch.from_numpy(weight))
        lstm.bias.copy_(torch.from_numpy(bias))
    rng = np.random.default_rng(4)
    x, h, c = (rng.normal(size=(3, 32)).astype(np.float32) for _ in range(3))
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    gates = np.concatenate([x, h], 1) @ weight + bias
    i, f, o, g = sigmoid(gates[:, :32]), sigmoid(gates[:, 32:64]), sigmoid(gates[:, 64:96]), np.tanh(gates[:, 96:])
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    with torch.no_grad():
        got_h, got_c = lstm(torch.from_numpy(x), (torch.from_numpy(h), torch.from_numpy(c)))
    np.testing.assert_allclose(got_c.numpy(), c_next, atol=1e-5)
    np.testing.assert_allclose(got_h.numpy(), h_next, atol=1e-5)


# --- pre-processing, decoding, end to end ---------------------------------------------------------------


def test_preprocess_scales_the_longer_side_and_subtracts_the_bgr_mean():
    m = DenseCapModel(ModelSpec("densecap", options={"image_size": 64}))
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 0] = 200  # red
    x, meta = m.preprocess(image)
    assert x.shape == (3, 32, 64) and meta == (100, 50, 64, 32)
    np.testing.assert_allclose(x[:, 10, 10].numpy(), [0 - VGG_MEAN_BGR[0], 0 - VGG_MEAN_BGR[1], 200 - VGG_MEAN_BGR[2]],
                               atol=1e-3)
    thin, _ = m.preprocess(np.zeros((2, 300, 3), np.uint8))
    assert thin.shape == (3, 32, 64)  # a sliver still gives VGG a feature row
    with pytest.raises(ValueError, match="image_size"):
        DenseCapModel(ModelSpec("densecap", options={"image_size": 8}))
    with pytest.raises(ValueError, match="beam"):
        DenseCapModel(ModelSpec("densecap", options={"beam": 3}))


@pytest.mark.slow
def test_real_photo_end_to_end_finds_the_planted_caption(model, photo):
    """dog.jpg through the whole pipeline: regions inside the photo, best first, at most max_regions, each
    captioned with the caption planted in the language model's weights."""
    image = photo("dog.jpg")
    h, w = image.shape[:2]
    out = model.infer([image, image[::2, ::2].copy()])
    assert [(o.width, o.height) for o in out] == [(w, h), (image[::2, ::2].shape[1], image[::2, ::2].shape[0])]
    for regions in out:
        assert 1 <= len(regions.regions) <= 10
        scores = [r.score for r in regions.regions]
        assert scores == sorted(scores, reverse=True)
        for r in regions.regions:
            assert r.caption == " ".join(PLANTED)
            assert 0 <= r.box.x1 < r.box.x2 <= regions.width and 0 <= r.box.y1 < r.box.y2 <= regions.height
    sliver = model.infer([np.full((5, 400, 3), 128, np.uint8)])[0]
    assert (sliver.width, sliver.height) == (400, 5) and all(0 <= r.box.y2 <= 5 for r in sliver.regions)
    drawn = model.render(image, out[0])
    assert drawn.shape == image.shape and (drawn != image).any()
    assert DenseCapModel.output_type.model_validate(out[0].model_dump()) == out[0]


@pytest.mark.slow
def test_boxes_follow_the_network_into_image_pixels(planted, photo):
    """With the final box regression zeroed, every answered box is an RPN proposal: the network's own boxes
    (xc, yc, w, h in the scaled image's 1-based pixels) mapped back to the input's pixels."""
    m = DenseCapModel(ModelSpec("densecap", weights={"checkpoint": planted},
                                options={"final_nms_thresh": 0, "max_regions": 3, "image_size": 360}))
    m.load()
    with torch.no_grad():
        m.net.recognition.box_reg.weight.zero_()
        m.net.recognition.box_reg.bias.zero_()
    image = photo("dog.jpg")
    x, meta = m.preprocess(image)
    with torch.no_grad():
        boxes, scores, _ = m.net.detect(x, m.args)
    out = m.postprocess(m.predict([x])[0], meta)
    w, h, sw, sh = meta
    for (xc, yc, bw, bh), region in zip(boxes.tolist(), out.regions):
        assert region.box.x1 == pytest.approx(max(0, (xc - bw / 2 - 0.5) * w / sw), abs=1e-3)
        assert region.box.y2 == pytest.approx(min(h, (yc + bh / 2 - 0.5) * h / sh), abs=1e-3)


def test_other_saved_forms_load_the_same_network(tmp_path, planted):
    """Forms the release's tree may take: loadcaffe's SpatialConvolutionMM (kernels flattened to 2-D), cudnn
    classes, and idx_to_token keyed by numbers as strings (the JSON the vocabulary came from)."""
    reference, words = build_from_checkpoint(read_t7(planted))
    tree = checkpoint_tree()
    from tests.models.densecap_files import plant_caption

    plant_caption(tree, PLANTED)
    nets = tree["model"].fields["nets"]
    for module in nets["conv_net1"].fields["modules"] + nets["conv_net2"].fields["modules"]:
        if module.name == "nn.SpatialConvolution":
            module.name = "nn.SpatialConvolutionMM"
            module.fields["weight"] = module.fields["weight"].reshape(module.fields["nOutputPlane"], -1)
        elif module.name == "nn.ReLU":
            module.name = "cudnn.ReLU"
    lm = nets["language_model"].fields
    lm["idx_to_token"] = {str(i): w for i, w in enumerate(WORDS, 1)}
    net, other_words = build(tree, tmp_path)
    assert other_words == words
    for a, b in zip(net.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)
