"""TF Object Detection API family: label maps, the real quantized SSD TFLite model on real photos, and the
SavedModel / frozen-graph / float-TFLite paths on small models the tests build themselves."""

from __future__ import annotations

import numpy as np
import pytest

from models.outputs import Detections
from models.tf_detection.labels import LabelMap, parse_pbtxt, parse_txt
from models.tf_detection.model import TFDetectionModel
from serve.model import ModelSpec

SSD = "weights/ssd/coco_ssd_mobilenet_v1_1.0_quant_2018_06_29_detect.tflite"
PBTXT = """
# a StringIntLabelMap as the Object Detection API ships them
item {
  name: "/m/01g317"
  id: 1
  display_name: "person"
  keypoints { id: 0 label: "nose" }
}
item { id: 3  name: '/m/0k4j'  display_name: "car" }  # single quotes, one line
item {
  id: 7
  name: "train \\"quoted\\""
}
"""

# --- label maps ---------------------------------------------------------------------------------------------------


def test_pbtxt_items_with_nested_blocks_comments_and_quotes():
    assert parse_pbtxt(PBTXT) == {1: "person", 3: "car", 7: 'train "quoted"'}
    assert parse_pbtxt(PBTXT, field="name")[1] == "/m/01g317"


@pytest.mark.parametrize("bad", ["item { id: 1 display_name: 'x' ", "item { display_name: 'x' }", "item { id: }"])
def test_malformed_pbtxt_is_an_error(bad):
    with pytest.raises(ValueError, match="label map"):
        parse_pbtxt(bad)


def test_txt_with_background_line_and_offset(shared):
    labels = LabelMap.read(shared / "weights/ssd/labelmap.txt", offset=1)
    assert labels.labels[0] == "???"
    assert [labels.name(c) for c in (0.0, 2.0, 17.0, 89.0)] == ["person", "car", "dog", "toothbrush"]
    assert labels.key(0.0) == 1
    assert labels.name(200) == "class_201"  # out of the map: reported, not an error


def test_txt_line_numbers_survive_blank_lines():
    assert parse_txt("???\nperson\n\ncar\n") == {0: "???", 1: "person", 3: "car"}


# --- the real quantized SSD MobileNet v1 (TFLite_Detection_PostProcess) -------------------------------------------


def ssd(shared, **options) -> TFDetectionModel:
    spec = ModelSpec("ssd", {"tflite": shared / SSD, "labels": shared / "weights/ssd/labelmap.txt"}, options)
    model = TFDetectionModel(spec)
    model.load()
    return model


@pytest.fixture(scope="module")
def detector(shared):
    return ssd(shared)


def labels_of(answer: Detections) -> set[str]:
    return {d.label for d in answer.detections}


def motorcycle_photo():
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]  # (left, right, disparity): the left view


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, expected",
    [("astronaut", {"person"}), ("chelsea", {"cat"}), ("coffee", {"cup"}), ("dog.jpg", {"dog", "bicycle", "car"})],
)
def test_real_photos(detector, photo, name, expected):
    (answer,) = detector.infer([photo(name)])
    assert expected <= labels_of(answer)
    assert all(d.score >= 0.4 for d in answer.detections)
    assert [d.score for d in answer.detections] == sorted((d.score for d in answer.detections), reverse=True)


@pytest.mark.slow
def test_motorcycle(detector):
    (answer,) = detector.infer([motorcycle_photo()])
    assert answer.detections[0].label == "motorcycle" and answer.detections[0].class_id == 4


@pytest.mark.slow
def test_boxes_are_in_pixels(detector, photo):
    image = photo("dog.jpg")  # 768x576: the dog sits bottom left, the car top right
    (answer,) = detector.infer([image])
    assert (answer.width, answer.height) == (768, 576)
    best = {}
    for d in answer.detections:
        best.setdefault(d.label, d.box)
    for box in best.values():
        assert 0 <= box.x1 < box.x2 <= 768 and 0 <= box.y1 < box.y2 <= 576
    dog, car = best["dog"], best["car"]
    assert (dog.x1 + dog.x2) / 2 < 384 < (car.x1 + car.x2) / 2
    assert (car.y1 + car.y2) / 2 < 288 < (dog.y1 + dog.y2) / 2
    assert dog.x2 - dog.x1 > 100 and dog.y2 - dog.y1 > 200  # pixels, not normalised


@pytest.mark.slow
def test_interpreter_pool_gives_the_serial_answers(shared, photo):
    images = [photo("dog.jpg"), photo("chelsea"), photo("coffee"), photo("astronaut")]
    one, two = ssd(shared, interpreters=1), ssd(shared, interpreters=2)
    serial, pooled = one.infer(images), two.infer(images)
    assert [a.model_dump() for a in pooled] == [a.model_dump() for a in serial]
    assert (one.concurrent_batches, two.concurrent_batches) == (1, 2)  # the runner computes no more at once


def test_unset_the_interpreter_pool_follows_the_replicas_thread_layout(shared):
    """Options unset: one interpreter per batch computing at once (ModelSpec.batches), intra_op threads each;
    set, they win."""
    weights = {"tflite": shared / SSD}
    for (batches, intra_op), options, size in [((2, 1), {}, 2), ((1, 2), {}, 1), ((2, 1), {"interpreters": 1}, 1)]:
        model = TFDetectionModel(ModelSpec("ssd", weights, options, batches=batches, intra_op=intra_op))
        model.load()
        assert model.concurrent_batches == size


@pytest.mark.slow
def test_threshold_and_cap(shared, photo):
    (answer,) = ssd(shared, score_threshold=0.0, max_detections=3).infer([photo("dog.jpg")])
    assert len(answer.detections) == 3


@pytest.mark.slow
def test_uint8_model_gets_raw_pixels(detector):
    x = detector.backend.prepare(np.full((50, 80, 3), 200, np.uint8))
    assert x.dtype == np.uint8 and x.shape == (300, 300, 3) and (x == 200).all()


# --- a float TFLite model built here (no post-processing op: outputs in TF1 order) --------------------------------


def test_float_tflite_input_normalisation(tmp_path):
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def detect(x):
        mean = tf.reduce_mean(x)  # the network sees (pixel - 127.5) / 127.5: mean in [-1, 1]
        boxes = tf.reshape(tf.constant([0.1, 0.2, 0.5, 0.6, 0.0, 0.0, 1.0, 1.0]) + 0 * mean, [1, 2, 4])
        classes = tf.reshape(tf.constant([0.0, 2.0]) + 0 * mean, [1, 2])
        scores = tf.reshape(tf.stack([(mean + 1) / 2, 0.3 + 0 * mean]), [1, 2])
        return boxes, classes, scores, tf.reshape(2.0 + 0 * mean, [1])

    converter = tf.lite.TFLiteConverter.from_concrete_functions([detect.get_concrete_function()], detect)
    path = tmp_path / "float.tflite"
    path.write_bytes(converter.convert())
    labels = tmp_path / "labels.txt"
    labels.write_text("???\nperson\nbicycle\ncar\n")
    model = TFDetectionModel(ModelSpec("f", {"tflite": path, "labels": labels}, {"interpreters": 1}))
    model.load()
    bright, dark = np.full((40, 20, 3), 255, np.uint8), np.full((40, 20, 3), 51, np.uint8)
    bright_answer, dark_answer = model.infer([bright, dark])
    (top,) = bright_answer.detections
    assert top.label == "person" and top.score == pytest.approx(1.0, abs=1e-3)
    assert top.box.model_dump() == pytest.approx({"x1": 4, "y1": 4, "x2": 12, "y2": 20})
    assert dark_answer.detections == []  # (51 - 127.5) / 127.5 -> score 0.2 < 0.4


# --- SavedModel and frozen graph built here -----------------------------------------------------------------------


def fake_outputs(tf, images):
    """API-shaped outputs that depend on the input: box 0 scores the image's mean brightness; box 2 scores 0.95
    but lies beyond num_detections (2), so it must never be reported."""
    n = tf.shape(images)[0]
    brightness = tf.reduce_mean(tf.cast(images, tf.float32), axis=[1, 2, 3]) / 255.0
    boxes = tf.tile(tf.constant([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.2, 0.2, 0.3, 0.3]]]), [n, 1, 1])
    scores = tf.stack([brightness, tf.fill([n], 0.7), tf.fill([n], 0.95)], axis=1)
    classes = tf.tile(tf.constant([[1.0, 3.0, 7.0]]), [n, 1])
    return {
        "detection_boxes": tf.identity(boxes, name="detection_boxes"),
        "detection_scores": tf.identity(scores, name="detection_scores"),
        "detection_classes": tf.identity(classes, name="detection_classes"),
        "num_detections": tf.identity(tf.fill([n], 2.0), name="num_detections"),
    }


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    tf = pytest.importorskip("tensorflow")

    class Detector(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, input_tensor):
            return fake_outputs(tf, input_tensor)

    root = tmp_path_factory.mktemp("sm")
    detector = Detector()
    tf.saved_model.save(detector, str(root / "saved_model"), signatures={"serving_default": detector.serve})
    (root / "label_map.pbtxt").write_text(PBTXT)
    return root


def check_fake_answers(answers, sizes):
    """A white image: box 0 (person, score 1.0) and box 1 (car 0.7). A dark one: only the car."""
    white, dark = answers
    assert [(d.label, d.class_id) for d in white.detections] == [("person", 1), ("car", 3)]
    assert white.detections[0].score == pytest.approx(1.0)
    (w, h) = sizes[0]
    expected = {"x1": 0.2 * w, "y1": 0.1 * h, "x2": 0.6 * w, "y2": 0.5 * h}
    assert white.detections[0].box.model_dump() == pytest.approx(expected)
    assert white.detections[1].box.model_dump() == pytest.approx({"x1": 0, "y1": 0, "x2": w, "y2": h})
    assert [d.label for d in dark.detections] == ["car"]
    assert (dark.width, dark.height) == sizes[1]


def count_calls(model, monkeypatch) -> list[int]:
    calls: list[int] = []
    inner = model.backend._call
    monkeypatch.setattr(model.backend, "_call", lambda batch: calls.append(len(batch)) or inner(batch))
    return calls


def test_saved_model_batch_boxes_and_labels(saved_model_dir, monkeypatch):
    weights = {"saved_model": saved_model_dir / "saved_model", "labels": saved_model_dir / "label_map.pbtxt"}
    spec = ModelSpec("sm", weights)
    model = TFDetectionModel(spec)
    model.load()
    calls = count_calls(model, monkeypatch)
    white, dark = np.full((100, 200, 3), 255, np.uint8), np.full((100, 200, 3), 30, np.uint8)
    check_fake_answers(model.infer([white, dark]), [(200, 100), (200, 100)])
    assert calls == [2]  # same size, free batch dimension: one call
    check_fake_answers(model.infer([white, np.full((60, 90, 3), 30, np.uint8)]), [(200, 100), (90, 60)])
    assert calls == [2, 1, 1]  # two sizes: one call each


def test_saved_model_input_size_makes_one_call(saved_model_dir, monkeypatch):
    spec = ModelSpec("sm", {"saved_model": saved_model_dir / "saved_model"}, {"input_size": [64, 64]})
    model = TFDetectionModel(spec)
    model.load()
    calls = count_calls(model, monkeypatch)
    answers = model.infer([np.full((100, 200, 3), 255, np.uint8), np.full((60, 90, 3), 30, np.uint8)])
    assert calls == [2]
    assert answers[1].width == 90 and answers[0].detections[1].box.x2 == pytest.approx(200)
    assert answers[0].detections[0].label == "class_1"  # no label map given


def test_frozen_graph(tmp_path):
    tf = pytest.importorskip("tensorflow")
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.uint8, [None, None, None, 3], name="image_tensor")
        fake_outputs(tf, images)
    (tmp_path / "frozen_inference_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    (tmp_path / "label_map.pbtxt").write_text(PBTXT)
    weights = {"frozen_graph": tmp_path / "frozen_inference_graph.pb", "labels": tmp_path / "label_map.pbtxt"}
    spec = ModelSpec("fg", weights)
    model = TFDetectionModel(spec)
    model.load()
    answers = model.infer([np.full((50, 80, 3), 255, np.uint8), np.zeros((50, 80, 3), np.uint8)])
    check_fake_answers(answers, [(80, 50)] * 2)


def test_weights_roles_are_checked(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        TFDetectionModel(ModelSpec("x", {"labels": tmp_path / "l.txt"})).load()
    with pytest.raises(ValueError, match="exactly one"):
        TFDetectionModel(ModelSpec("x", {"tflite": tmp_path / "a", "saved_model": tmp_path / "b"})).load()
