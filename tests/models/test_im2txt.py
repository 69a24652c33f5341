"""im2txt family. No real weights exist here, so checkpoints are written in the released format (a TF1
`tf.train.Saver` checkpoint with im2txt's variable names and the real InceptionV3 / 512-unit shapes, a
reduced vocabulary, random weights) and read back; TensorFlow itself is the reference for every numeric
check (its own legacy BasicLSTMCell restores the LSTM by name from the same checkpoint)."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.im2txt.checkpoint import Im2txtNet, build_from_checkpoint, read_checkpoint, read_vocab, \
    tf_to_torch_gates
from models.im2txt.inception_v3 import BLOCKS, BN_EPSILON, STEM, Conv, Fork, InceptionV3
from models.im2txt.model import Im2txtModel, beam_search, resize_bilinear_legacy
from serve.model import ModelSpec

WORDS = ["a", "<S>", "</S>", "on", "of", "the", "in", "with", "and", "is", "man", "to", "sitting", "an", "two",
         "at", "standing", "people", "are", "next", "white", "woman", "table", "street", "holding", "large",
         "person", "down", "top", "group", "cat", "dog", "plate", "field", "tennis", "red", "black", "train",
         "pizza", "room", "bed", "water", "riding", "front", "small", "near", "young", "playing", "food", "up"]
VOCAB = len(WORDS) + 1 + 2  # + <UNK>, + 2 ids past the word list (the released model has 12000 > words)
EMBED = UNITS = 512

# A sample of names from the released model's variable list (its naming quirks included)
RELEASED_NAMES = [
    "InceptionV3/Conv2d_1a_3x3/weights", "InceptionV3/Conv2d_4a_3x3/BatchNorm/moving_variance",
    "InceptionV3/Mixed_5c/Branch_1/Conv_1_0c_5x5/weights", "InceptionV3/Mixed_5c/Branch_1/Conv2d_0b_1x1/weights",
    "InceptionV3/Mixed_6a/Branch_0/Conv2d_1a_1x1/weights", "InceptionV3/Mixed_6a/Branch_1/Conv2d_1a_1x1/BatchNorm/beta",
    "InceptionV3/Mixed_6e/Branch_2/Conv2d_0e_1x7/weights", "InceptionV3/Mixed_7a/Branch_1/Conv2d_1a_3x3/weights",
    "InceptionV3/Mixed_7b/Branch_1/Conv2d_0b_3x1/weights", "InceptionV3/Mixed_7c/Branch_1/Conv2d_0c_3x1/weights",
    "InceptionV3/Mixed_7c/Branch_2/Conv2d_0d_3x1/BatchNorm/moving_mean", "image_embedding/weights",
    "seq_embedding/map", "lstm/basic_lstm_cell/kernel", "lstm/basic_lstm_cell/bias", "logits/weights",
    "logits/biases", "global_step",
]


def random_variables(seed=0) -> dict[str, np.ndarray]:
    return dict(_random_variables(seed))  # a fresh dict; the (read-only) arrays are shared


@functools.cache
def _random_variables(seed: int) -> dict[str, np.ndarray]:
    """im2txt's variables with plausible random values (He-scaled convs so 94 layers neither vanish nor blow up)."""
    rng = np.random.default_rng(seed)
    out = {}
    for layer in InceptionV3().convs():
        o, i, kh, kw = layer.conv.weight.shape
        out[f"{layer.tf_name}/weights"] = rng.normal(0, math.sqrt(2 / (i * kh * kw)), (kh, kw, i, o))
        out[f"{layer.tf_name}/BatchNorm/beta"] = rng.normal(0, 0.1, o)
        out[f"{layer.tf_name}/BatchNorm/moving_mean"] = rng.normal(0, 0.1, o)
        out[f"{layer.tf_name}/BatchNorm/moving_variance"] = rng.uniform(0.8, 1.2, o)
    out["image_embedding/weights"] = rng.normal(0, 0.05, (2048, EMBED))
    out["seq_embedding/map"] = rng.normal(0, 0.5, (VOCAB, EMBED))
    out["lstm/basic_lstm_cell/kernel"] = rng.normal(0, 0.05, (EMBED + UNITS, 4 * UNITS))
    out["lstm/basic_lstm_cell/bias"] = rng.normal(0, 0.1, 4 * UNITS)
    out["logits/weights"] = rng.normal(0, 0.2, (UNITS, VOCAB))
    out["logits/biases"] = rng.normal(0, 0.5, VOCAB)
    out = {k: v.astype(np.float32) for k, v in out.items()}
    out["global_step"] = np.int64(2000000)
    return out


def write_checkpoint(prefix, variables: dict[str, np.ndarray]) -> None:
    """A TF1 Saver checkpoint, written in graph mode as im2txt's training did."""
    import tensorflow as tf

    with tf.Graph().as_default():
        tf_vars = {name: tf.compat.v1.Variable(tf.compat.v1.placeholder_with_default(value, np.shape(value)),
                                               name=f"v{n}") for n, (name, value) in enumerate(variables.items())}
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver(tf_vars).save(sess, str(prefix), write_meta_graph=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("im2txt")
    variables = random_variables()
    write_checkpoint(folder / "model.ckpt-2000000", variables)
    counts = np.arange(len(WORDS) * 100, 0, -100)
    (folder / "word_counts.txt").write_text("".join(f"{w} {n}\n" for w, n in zip(WORDS, counts)))
    return folder / "model.ckpt-2000000", folder / "word_counts.txt", variables


@pytest.fixture(scope="module")
def model(files):
    prefix, vocab, _ = files
    m = Im2txtModel(ModelSpec("im2txt", weights={"checkpoint": Path(f"{prefix}.index"),
                                                 "vocab": vocab}))
    m.load()
    return m


# --- architecture and names ---------------------------------------------------------------------------


def test_inception_table_matches_slim():
    """94 convs and 21,802,784 conv + batch-norm values: the counts of InceptionV3 without its top (Keras'
    InceptionV3(include_top=False), also slim-style: no conv bias, batch norm without gamma)."""
    convs = InceptionV3().convs()
    assert len(convs) == 94
    assert sum(c.conv.weight.numel() + 3 * c.conv.out_channels for c in convs) == 21_802_784
    names = {c.tf_name for c in convs}
    assert len(names) == 94
    for name in RELEASED_NAMES:
        if name.startswith("InceptionV3/"):
            assert name.rsplit("/", 1)[0].removesuffix("/BatchNorm") in names, name


def test_vocab_reads_word_counts(tmp_path):
    path = tmp_path / "word_counts.txt"
    path.write_text("a 10\n<S> 5\n</S> 5\nb'cat' 3\n\n")  # the b'..' form im2txt wrote under Python 3
    assert read_vocab(path) == ["a", "<S>", "</S>", "cat", "<UNK>"]
    path.write_text("a 10\n<S> 5\n")
    with pytest.raises(ValueError, match="</S>"):
        read_vocab(path)


@pytest.mark.slow
def test_checkpoint_fully_consumed(files, model):
    prefix, _, variables = files
    on_disk = read_checkpoint(prefix)
    assert set(on_disk) == set(variables) and set(RELEASED_NAMES) <= set(on_disk)
    net, used = build_from_checkpoint(on_disk)
    assert used == set(on_disk) - {"global_step"}  # every network variable consumed
    expected = {n: torch.from_numpy(v) for n, v in variables.items() if n != "global_step"}
    # every torch tensor was written: compare each against its source variable
    for layer in net.encoder.convs():
        w = expected[f"{layer.tf_name}/weights"].permute(3, 2, 0, 1)
        assert torch.equal(layer.conv.weight, w), layer.tf_name
        for stat in ("beta", "moving_mean", "moving_variance"):
            assert torch.equal(getattr(layer, stat), expected[f"{layer.tf_name}/BatchNorm/{stat}"])
    n_tensors = sum(1 for _ in net.parameters()) + sum(1 for _ in net.buffers())
    assert n_tensors == 94 * 4 + 1 + 1 + 4 + 2  # convs + image_embedding + seq_embedding + LSTMCell + logits


def test_missing_misshaped_and_unexpected_variables_are_named():
    variables = random_variables()
    gone = "InceptionV3/Mixed_6c/Branch_2/Conv2d_0d_7x1/BatchNorm/moving_mean"
    with pytest.raises(ValueError, match=gone):
        build_from_checkpoint({k: v for k, v in variables.items() if k != gone})
    with pytest.raises(ValueError, match="logits/biases"):
        build_from_checkpoint({k: v for k, v in variables.items() if k != "logits/biases"})
    bad = dict(variables, **{"InceptionV3/Conv2d_2a_3x3/weights": np.zeros((3, 3, 32, 31), np.float32)})
    with pytest.raises(ValueError, match=r"Conv2d_2a_3x3/weights.*\[3, 3, 32, 31\]"):
        build_from_checkpoint(bad)
    with pytest.raises(ValueError, match="InceptionV3/Logits/Conv2d_1c_1x1/weights"):
        build_from_checkpoint(dict(variables, **{"InceptionV3/Logits/Conv2d_1c_1x1/weights": np.zeros(1)}))
    with pytest.raises(ValueError, match="LSTM kernel"):
        build_from_checkpoint({k: v for k, v in variables.items() if not k.startswith("lstm/")})


def test_missing_checkpoint_file(tmp_path):
    (tmp_path / "word_counts.txt").write_text("<S> 1\n</S> 1\n")
    m = Im2txtModel(ModelSpec("im2txt", weights={"checkpoint": tmp_path / "model.ckpt-1",
                                                 "vocab": tmp_path / "word_counts.txt"}))
    with pytest.raises(ValueError, match="model.ckpt-1.index"):
        m.load()


def test_old_lstm_names_give_the_same_network():
    variables = random_variables()
    new, _ = build_from_checkpoint(variables)
    for kernel, bias in [("lstm/BasicLSTMCell/Linear/Matrix", "lstm/BasicLSTMCell/Linear/Bias"),
                         ("lstm/basic_lstm_cell/weights", "lstm/basic_lstm_cell/biases")]:
        old = {k: v for k, v in variables.items() if not k.startswith("lstm/")}
        old[kernel], old[bias] = variables["lstm/basic_lstm_cell/kernel"], variables["lstm/basic_lstm_cell/bias"]
        net, used = build_from_checkpoint(old)
        assert kernel in used and bias in used
        for a, b in zip(net.lstm.parameters(), new.lstm.parameters()):
            assert torch.equal(a, b)


# --- numerical parity with TensorFlow on the same checkpoint --------------------------------------------


@pytest.mark.slow
def test_lstm_step_image_embedding_and_logits_match_tensorflow(files, model):
    """TF's own BasicLSTMCell, created under scope "lstm" and restored by name from the checkpoint."""
    import tensorflow as tf
    from tensorflow.python.keras.layers.legacy_rnn.rnn_cell_impl import BasicLSTMCell, LSTMStateTuple

    prefix, _, variables = files
    rng = np.random.default_rng(1)
    features = rng.normal(0, 1, (2, 2048)).astype(np.float32)
    words = np.array([1, 30])
    h0, c0 = (rng.normal(0, 0.5, (2, UNITS)).astype(np.float32) for _ in range(2))
    with tf.Graph().as_default():
        cell = BasicLSTMCell(UNITS)
        with tf.compat.v1.variable_scope("lstm") as scope:
            embedded = tf.matmul(features, variables["image_embedding/weights"])
            _, (c_img, h_img) = cell(embedded, cell.zero_state(2, tf.float32))
            scope.reuse_variables()
            x = tf.nn.embedding_lookup(variables["seq_embedding/map"], words)
            out, (c1, h1) = cell(x, LSTMStateTuple(c0, h0))
        logp = tf.nn.log_softmax(tf.matmul(out, variables["logits/weights"]) + variables["logits/biases"])
        lstm_vars = tf.compat.v1.global_variables()
        assert sorted(v.op.name for v in lstm_vars) == ["lstm/basic_lstm_cell/bias", "lstm/basic_lstm_cell/kernel"]
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver(lstm_vars).restore(sess, str(prefix))
            ref = sess.run([embedded, c_img, h_img, c1, h1, logp])

    net = model.net
    with torch.no_grad():
        emb = net.image_embedding(torch.from_numpy(features))
        h_img_t, c_img_t = net.lstm(emb)
        logp_t, (h1_t, c1_t) = net.step(torch.from_numpy(words), (torch.from_numpy(h0), torch.from_numpy(c0)))
    for got, want in zip([emb, c_img_t, h_img_t, c1_t, h1_t, logp_t], ref):
        np.testing.assert_allclose(got.numpy(), want, atol=1e-4, rtol=1e-4)


def tf_encoder(images_nhwc: np.ndarray, variables: dict[str, np.ndarray], first_only=False):
    """TF reference of slim's inception_v3_base + im2txt's pool, from tf.nn ops and the checkpoint's arrays."""
    import tensorflow as tf

    def conv(x, scope, spec: Conv):
        w = variables[f"{scope}/{spec.name}/weights"]
        bn = f"{scope}/{spec.name}/BatchNorm"
        x = tf.nn.conv2d(x, w, spec.stride, "SAME" if spec.same else "VALID")
        x = (x - variables[f"{bn}/moving_mean"]) / tf.sqrt(variables[f"{bn}/moving_variance"] + BN_EPSILON)
        return tf.nn.relu(x + variables[f"{bn}/beta"])

    def chain(x, scope, steps):
        for s in steps:
            if isinstance(s, Conv):
                x = conv(x, scope, s)
            elif isinstance(s, Fork):
                x = tf.concat([conv(x, scope, f) for f in s.convs], 3)
            elif s.kind == "max":
                x = tf.nn.max_pool2d(x, 3, 2, "VALID")
            else:  # TF's SAME avg pool averages over the real pixels only
                x = tf.nn.avg_pool2d(x, 3, 1, "SAME")
        return x

    x = tf.constant(images_nhwc)
    if first_only:
        return conv(x, "InceptionV3", STEM[0]).numpy()
    x = chain(x, "InceptionV3", STEM)
    for name, branches in BLOCKS:
        x = tf.concat([chain(x, f"InceptionV3/{name}/Branch_{i}", b) for i, b in enumerate(branches)], 3)
    return tf.reduce_mean(x, [1, 2]).numpy()


@pytest.mark.slow
def test_encoder_matches_tensorflow(files, model):
    _, _, variables = files
    images = np.random.default_rng(2).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    enc = model.net.encoder
    with torch.no_grad():
        first = enc.stem.layers[0](x).permute(0, 2, 3, 1).numpy()
        features = enc(x).numpy()
    np.testing.assert_allclose(first, tf_encoder(images, variables, first_only=True), atol=1e-4, rtol=1e-4)
    want = tf_encoder(images, variables)
    assert want.shape == (2, 2048) and want.std() > 1e-2  # activations survived 94 random layers
    np.testing.assert_allclose(features, want, atol=1e-4 * np.abs(want).max(), rtol=1e-4)


@pytest.mark.slow  # importing TensorFlow alone takes ~3 s
def test_preprocess_matches_tensorflow():
    """im2txt's eval preprocessing: TF1 bilinear resize to 346x346 (no half-pixel centres), central 299 crop."""
    import tensorflow as tf

    model = Im2txtModel(ModelSpec("im2txt"))  # preprocessing needs no weights

    image = np.random.default_rng(3).integers(0, 256, (123, 201, 3), dtype=np.uint8)
    x, (w, h) = model.preprocess(image)
    ref = tf.image.convert_image_dtype(image, tf.float32)
    ref = tf.compat.v1.image.resize_bilinear(ref[None], [346, 346], align_corners=False, half_pixel_centers=False)[0]
    ref = (tf.image.resize_with_crop_or_pad(ref, 299, 299).numpy() - 0.5) * 2.0
    assert (w, h) == (201, 123) and x.shape == (3, 299, 299)
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-5)
    big = torch.rand(3, 500, 700)
    ref = tf.compat.v1.image.resize_bilinear(big.permute(1, 2, 0)[None].numpy(), [346, 346])[0].numpy()
    np.testing.assert_allclose(resize_bilinear_legacy(big, 346, 346).permute(1, 2, 0).numpy(), ref, atol=1e-5)


# --- beam search ----------------------------------------------------------------------------------------


def hand_set_net(words: list[str], transitions: dict[tuple[str, str], float]) -> Im2txtNet:
    """An LSTM that copies its (one-hot) input word into h, and logits that score the next word from it:
    the caption probabilities are then a hand-written bigram table. Set in TF layout, mapped to torch."""
    n = len(words)
    net = Im2txtNet(vocab_size=n, embedding_size=n, num_units=n)
    kernel, bias = np.zeros((2 * n, 4 * n), np.float32), np.zeros(4 * n, np.float32)
    kernel[:n, n : 2 * n] = 5 * np.eye(n)  # j (new input) = tanh(5 * onehot)
    bias[:n], bias[2 * n : 3 * n], bias[3 * n :] = 20, -20 - 1.0, 20  # i, o open; f shut (forget bias 1.0)
    logits_w = np.full((n, n), 0.0, np.float32)
    for (prev, nxt), score in transitions.items():
        logits_w[words.index(prev), words.index(nxt)] = score / math.tanh(math.tanh(5))  # undo h's squash
    with torch.no_grad():
        net.seq_embedding.weight.copy_(torch.eye(n))
        net.lstm.weight_ih.copy_(tf_to_torch_gates(torch.from_numpy(kernel[:n]).T))
        net.lstm.weight_hh.copy_(tf_to_torch_gates(torch.from_numpy(kernel[n:]).T))
        net.lstm.bias_ih.copy_(tf_to_torch_gates(torch.from_numpy(bias)))
        net.lstm.bias_hh.zero_()
        net.logits.weight.copy_(torch.from_numpy(logits_w).T)
        net.logits.bias.zero_()
    return net.eval()


def test_beam_search_finds_the_known_best_caption():
    words = ["<S>", "</S>", "a", "cat", "the", "dog", "sat"]
    # greedy takes "the" (best first word) but "the" leads nowhere sure; "a cat </S>" is the best sentence
    net = hand_set_net(words, {("<S>", "the"): 6, ("<S>", "a"): 5.5, ("a", "cat"): 9, ("cat", "</S>"): 9,
                               ("the", "dog"): 3, ("the", "cat"): 3, ("the", "sat"): 3, ("dog", "</S>"): 9,
                               ("sat", "</S>"): 9})
    state = (torch.zeros(2, len(words)), torch.zeros(2, len(words)))
    with torch.no_grad():
        results = beam_search(net.step, state, 0, 1, beam_size=3, max_caption_length=20)
        # the best caption's log-probability, step by step from the same network
        lp, s, total = None, (state[0][:1], state[1][:1]), 0.0
        for prev, nxt in [("<S>", "a"), ("a", "cat"), ("cat", "</S>")]:
            lp, s = net.step(torch.tensor([words.index(prev)]), s)
            total += float(lp[0, words.index(nxt)])
    assert len(results) == 2  # one list per image of the batch
    for captions in results:
        assert [[words[i] for i in c.sentence] for c in captions][0] == ["<S>", "a", "cat", "</S>"]
        assert captions[0].logprob == pytest.approx(total, abs=1e-5)
        assert all(c.sentence[-1] == 1 for c in captions)  # only finished captions
        assert [c.logprob for c in captions] == sorted((c.logprob for c in captions), reverse=True)
    greedy = net.step(torch.tensor([0]), (state[0][:1], state[1][:1]))[0].argmax()
    assert words[int(greedy)] == "the"  # so the beam really had to look past the first word


def test_beam_search_falls_back_to_unfinished_captions():
    words = ["<S>", "</S>", "a", "cat"]
    net = hand_set_net(words, {("<S>", "a"): 9, ("a", "cat"): 9, ("cat", "a"): 9, ("a", "</S>"): -9,
                               ("cat", "</S>"): -30})
    with torch.no_grad():
        captions = beam_search(net.step, (torch.zeros(1, 4), torch.zeros(1, 4)), 0, 1, 2, max_caption_length=5)[0]
    assert captions and all(len(c.sentence) == 5 and c.sentence[-1] != 1 for c in captions)


# --- end to end -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_photo_end_to_end(model, photo):
    """A real photo through preprocess, InceptionV3, LSTM and beam search. The weights are random, so the
    captions mean nothing: only their form is checked (vocabulary words, finished with </S>, best first)."""
    image = photo("chelsea")
    out = model.infer([image, image[::2, ::2].copy()])
    assert [(o.width, o.height) for o in out] == [(451, 300), (226, 150)]
    vocabulary = set(WORDS) | {"<UNK>"}
    for captions in out:
        assert 1 <= len(captions.captions) <= 3
        probs = [c.log_prob for c in captions.captions]
        assert probs == sorted(probs, reverse=True) and all(p <= 0 for p in probs)
        for c in captions.captions:
            assert set(c.tokens) <= vocabulary and "<S>" not in c.tokens
            assert 1 <= len(c.tokens) <= 19
            assert c.tokens[-1] == "</S>" or len(c.tokens) == 19  # finished, or cut at max_caption_length
            if c.tokens[-1] == "</S>":
                assert c.text == " ".join(c.tokens[:-1]) and "</S>" not in c.tokens[:-1]
    assert Im2txtModel.output_type.model_validate(out[0].model_dump()) == out[0]
