"""DenseCap checkpoints in the released format (tests/models/t7_writer.py), with the original module tree and
field names, random weights, and widths reduced by `shrink` (1: the released VGG-16 sizes, 1.2 GB).

`checkpoint_tree` returns the object `torch.save` would get from train.lua ({model = DenseCapModel, opt, iter});
`arrays` maps a readable name to every weight array it holds, for tests comparing what was loaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.models.t7_writer import Storage, TorchClass, save_t7

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
#: LocalizationLayer.lua's default anchors (width, height), anchor_scale 1
ANCHORS = [(45, 90), (90, 45), (64, 64), (90, 180), (180, 90), (128, 128), (181, 362), (362, 181), (256, 256),
           (362, 724), (724, 362), (512, 512)]
#: receptive-field centre of feature cell (1, 1) in 1-based image pixels and the stride, for VGG-16's conv5_3
#: (3 x 3 pad 1 convs move nothing, each 2 x 2 pool adds half its input stride: 1 + 0.5 + 1 + 2 + 4)
FIELD_CENTERS = (8.5, 8.5, 16.0, 16.0)
WORDS = ["a", "dog", "on", "the", "grass", "white", "black", "man", "sitting", "green", "tree", "in", "of", "with"]
EMPTY = np.zeros(0, np.float32)


def module(name: str, **fields) -> TorchClass:
    return TorchClass(name, {"output": EMPTY, "gradInput": EMPTY, "train": False, **fields})


def conv(rng, n_in: int, n_out: int, k: int, pad: int, std: float | None = None) -> TorchClass:
    std = std if std is not None else np.sqrt(2 / (n_in * k * k))
    weight = rng.normal(0, std, (n_out, n_in, k, k)).astype(np.float32)
    return module("nn.SpatialConvolution", nInputPlane=n_in, nOutputPlane=n_out, kW=k, kH=k, dW=1, dH=1,
                  padW=pad, padH=pad, weight=weight, bias=rng.normal(0, 0.01, n_out).astype(np.float32),
                  gradWeight=np.zeros_like(weight), gradBias=np.zeros(n_out, np.float32))


def linear(rng, n_in: int, n_out: int, std: float | None = None) -> TorchClass:
    std = std if std is not None else np.sqrt(2 / n_in)
    weight = rng.normal(0, std, (n_out, n_in)).astype(np.float32)
    return module("nn.Linear", weight=weight, bias=rng.normal(0, 0.01, n_out).astype(np.float32),
                  gradWeight=np.zeros_like(weight), gradBias=np.zeros(n_out, np.float32))


def sequential(*modules) -> TorchClass:
    return module("nn.Sequential", modules=list(modules))


def relu() -> TorchClass:
    return module("nn.ReLU", inplace=True, threshold=0, val=0)


def view(*size) -> TorchClass:
    return module("nn.View", size=Storage(np.array(size, np.int64)), numElements=int(abs(np.prod(size))),
                  numInputDims=len(size))


def vgg_trunk(rng, shrink: int) -> tuple[list[TorchClass], int]:
    """loadcaffe's VGG-16 layers 1..30 (conv1_1 .. relu5_3), widths divided by `shrink`."""
    layers, channels = [], 3
    for spec in VGG16:
        if spec == "M":
            layers.append(module("nn.SpatialMaxPooling", kW=2, kH=2, dW=2, dH=2, padW=0, padH=0, ceil_mode=False,
                                 indices=EMPTY))
        else:
            layers += [conv(rng, channels, spec // shrink, 3, 1), relu()]
            channels = spec // shrink
    return layers, channels


def checkpoint_tree(seed: int = 0, shrink: int = 16, words: list[str] = WORDS, seq_length: int = 15,
                    rnn_size: int = 32) -> dict:
    rng = np.random.default_rng(seed)
    trunk, channels = vgg_trunk(rng, shrink)
    conv_net1, conv_net2 = sequential(*trunk[:10]), sequential(*trunk[10:])
    k, filters, fc = len(ANCHORS), 256 // shrink, 4096 // shrink
    anchors = np.array(ANCHORS, np.float32).T.copy()
    make_anchors = module("nn.MakeAnchors", x0=FIELD_CENTERS[0], y0=FIELD_CENTERS[1], sx=FIELD_CENTERS[2],
                          sy=FIELD_CENTERS[3], anchors=anchors)
    box_branch = sequential(conv(rng, filters, 4 * k, 1, 0, std=0.01), module("nn.RegularizeLayer", w=5e-5),
                            module("nn.ConcatTable", modules=[
                                sequential(make_anchors, module("nn.ReshapeBoxFeatures", k=k)),
                                module("nn.ReshapeBoxFeatures", k=k)]),
                            module("nn.ConcatTable", modules=[module("nn.ApplyBoxTransform"), module("nn.Identity")]))
    rpn_branch = sequential(conv(rng, filters, 2 * k, 1, 0, std=0.05), module("nn.ReshapeBoxFeatures", k=k))
    rpn = sequential(conv(rng, channels, filters, 3, 1, std=0.05), relu(),
                     module("nn.ConcatTable", modules=[box_branch, rpn_branch]))
    roi_pooling = module("nn.BilinearRoiPooling", output_height=7, output_width=7, image_height=720,
                         image_width=540)
    localization = module("nn.LocalizationLayer", nets={"rpn": rpn, "roi_pooling": roi_pooling,
                                                        "box_sampler_helper": module("nn.BoxSamplerHelper")},
                          test_args={"clip_boxes": True, "nms_thresh": 0.7, "max_proposals": 300},
                          image_height=720, image_width=540)
    recog_base = sequential(view(-1), linear(rng, channels * 49, fc), relu(), module("nn.Dropout", p=0.5),
                            linear(rng, fc, fc), relu(), module("nn.Dropout", p=0.5))
    objectness = linear(rng, fc, 1, std=0.05)
    box_reg = linear(rng, fc, 4, std=0.001)
    vocab = len(words)
    lstm_weight = rng.normal(0, 0.1, (rnn_size + rnn_size, 4 * rnn_size)).astype(np.float32)
    language_model = module(
        "nn.LanguageModel", vocab_size=vocab, input_encoding_size=rnn_size, image_vector_dim=fc,
        rnn_size=rnn_size, seq_length=seq_length, num_layers=1, dropout=0, idx_to_token=dict(enumerate(words, 1)),
        image_encoder=sequential(linear(rng, fc, rnn_size), relu(), view(1, -1)),
        lookup_table=module("nn.LookupTable", weight=rng.normal(0, 1, (vocab + 2, rnn_size)).astype(np.float32)),
        rnn=sequential(module("nn.LSTM", input_dim=rnn_size, hidden_dim=rnn_size, weight=lstm_weight,
                              bias=rng.normal(0, 0.1, 4 * rnn_size).astype(np.float32)),
                       view(1, 1, -1), linear(rng, rnn_size, vocab + 1, std=0.5), view(1, -1)),
        START_TOKEN=vocab + 1, END_TOKEN=vocab + 1, NULL_TOKEN=vocab + 2)
    nets = {"conv_net1": conv_net1, "conv_net2": conv_net2, "localization_layer": localization,
            "recog_base": recog_base, "objectness_branch": objectness, "box_reg_branch": box_reg,
            "language_model": language_model}
    opt = {"backend": "vgg-16", "vocab_size": vocab, "idx_to_token": dict(enumerate(words, 1)),
           "seq_length": seq_length, "rnn_size": rnn_size, "input_encoding_size": rnn_size, "final_nms_thresh": 0.3,
           "field_centers": list(FIELD_CENTERS), "output_height": 7, "output_width": 7, "input_dim": channels}
    model = module("DenseCapModel", opt=opt, nets=nets, net=sequential(conv_net1, conv_net2, localization))
    return {"model": model, "opt": opt, "iter": 1_000_000}


def arrays(tree: dict) -> dict[str, np.ndarray]:
    """name -> weight array of the tree's consumed modules, in the loader's order."""
    nets = tree["model"].fields["nets"]
    out = {}
    convs = [m for n in ("conv_net1", "conv_net2") for m in nets[n].fields["modules"]
             if m.name == "nn.SpatialConvolution"]
    for i, m in enumerate(convs):
        out[f"trunk.{i}.weight"], out[f"trunk.{i}.bias"] = m.fields["weight"], m.fields["bias"]
    rpn = nets["localization_layer"].fields["nets"]["rpn"].fields["modules"]
    box_branch, rpn_branch = rpn[2].fields["modules"]
    for name, m in (("rpn", rpn[0]), ("box", box_branch.fields["modules"][0]), ("score", rpn_branch.fields["modules"][0])):
        out[f"{name}.weight"], out[f"{name}.bias"] = m.fields["weight"], m.fields["bias"]
    fcs = [m for m in nets["recog_base"].fields["modules"] if m.name == "nn.Linear"]
    for i, m in enumerate(fcs):
        out[f"fc{i}.weight"], out[f"fc{i}.bias"] = m.fields["weight"], m.fields["bias"]
    for name in ("objectness_branch", "box_reg_branch"):
        out[f"{name}.weight"], out[f"{name}.bias"] = nets[name].fields["weight"], nets[name].fields["bias"]
    lm = nets["language_model"].fields
    encoder = lm["image_encoder"].fields["modules"][0].fields
    out["image_encoder.weight"], out["image_encoder.bias"] = encoder["weight"], encoder["bias"]
    out["lookup_table.weight"] = lm["lookup_table"].fields["weight"]
    lstm, _, output, _ = lm["rnn"].fields["modules"]
    out["lstm.weight"], out["lstm.bias"] = lstm.fields["weight"], lstm.fields["bias"]
    out["output.weight"], out["output.bias"] = output.fields["weight"], output.fields["bias"]
    return out


def plant_caption(tree: dict, caption: list[str]) -> None:
    """Set the language model so that greedy decoding writes `caption` for any region: the lookup table is
    one-hot, the LSTM copies the current word into h (input and output gates open, forget gate shut, so the
    image step is forgotten), and the output layer scores the next word of the caption from it."""
    lm = tree["model"].fields["nets"]["language_model"].fields
    words = list(lm["idx_to_token"].values())
    vocab, size = lm["vocab_size"], lm["rnn_size"]
    assert size >= vocab + 2
    lookup = np.zeros((vocab + 2, size), np.float32)
    lookup[np.arange(vocab + 2), np.arange(vocab + 2)] = 1
    lstm, _, output, _ = lm["rnn"].fields["modules"]
    weight, bias = np.zeros((2 * size, 4 * size), np.float32), np.zeros(4 * size, np.float32)
    weight[:size, 3 * size:] = 5 * np.eye(size)  # g (the new content) = tanh(5 * one-hot); gates i, f, o, g
    bias[:size], bias[size : 2 * size], bias[2 * size : 3 * size] = 20, -20, 20
    scores = np.zeros((vocab + 1, size), np.float32)
    chain = [vocab + 1] + [words.index(w) + 1 for w in caption] + [vocab + 1]  # START, words, END
    for prev, nxt in zip(chain, chain[1:]):
        scores[nxt - 1, prev - 1] = 10
    lm["lookup_table"].fields["weight"] = lookup
    lstm.fields["weight"], lstm.fields["bias"] = weight, bias
    output.fields["weight"], output.fields["bias"] = scores, np.zeros(vocab + 1, np.float32)


def write_checkpoint(path: str | Path, caption: list[str] | None = None, **kwargs) -> dict:
    tree = checkpoint_tree(**kwargs)
    if caption:
        plant_caption(tree, caption)
    save_t7(path, tree)
    return tree
