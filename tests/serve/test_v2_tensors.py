"""Open Inference Protocol tensors: tritonclient's own encoders against our decoders (and back), images from
inputs, answers as output tensors, and the 4xx for tensors that do not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from models.movenet.model import KEYPOINTS, Pose
from models.openpose.types import Poses
from models.outputs import Detections
from serve.protocols.v2_http import parse
from serve.protocols.v2_tensors import InvalidTensor, check_parameters, images, output_specs, output_tensors, \
    serialize, tensor


def test_bytes_tensor_round_trips_with_tritonclient():
    elements = np.array([b"\xff\xd8jpeg", b"", b"\x00" * 5], dtype=object)
    raw = serialize_byte_tensor(elements).item()
    ours = tensor("image", "BYTES", [3], None, raw)
    assert list(ours.array) == list(elements)
    assert list(deserialize_bytes_tensor(serialize(ours.array, "BYTES"))) == list(elements)


def test_uint8_from_binary_and_json_gives_the_same_images():
    pixels = np.arange(2 * 4 * 5 * 3, dtype=np.uint8).reshape(2, 4, 5, 3)
    binary = tensor("pixels", "UINT8", [2, 4, 5, 3], None, pixels.tobytes())
    from_json = tensor("pixels", "UINT8", [2, 4, 5, 3], pixels.ravel().tolist(), None)
    for t in (binary, from_json):
        found = images([t])
        assert len(found) == 2 and all(np.array_equal(a, b) for a, b in zip(found, pixels))
    assert len(images([tensor("pixels", "UINT8", [4, 5, 3], pixels[0].ravel().tolist(), None)])) == 1


@pytest.mark.parametrize("name, datatype, shape, data, raw, says", [
    ("image", "FP32", [1], [1.0], None, "must be BYTES"),
    ("pixels", "UINT8", [4, 5], list(range(20)), None, "[H, W, 3]"),
    ("pixels", "UINT8", [2, 2, 3], list(range(11)), None, "has 11 elements"),
    ("pixels", "UINT8", [2, 2, 3], None, b"\x00" * 11, "11 bytes"),
    ("pixels", "UINT8", [1, 1, 3], [1, 2, 300], None, "out of range"),
    ("pixels", "INT9", [1], [1], None, "unknown datatype"),
    ("image", "BYTES", [1], None, b"\x10\x00\x00\x00abc", "runs past"),
    ("picture", "BYTES", [1], ["abc"], None, "exactly one input"),
])
def test_tensors_that_do_not_fit_are_invalid(name, datatype, shape, data, raw, says):
    with pytest.raises(InvalidTensor, match=says.replace("[", r"\[").replace("]", r"\]")) as caught:
        images([tensor(name, datatype, shape, data, raw)])
    assert caught.value.status == 400


def test_binary_body_is_split_by_the_header_length():
    raw = serialize_byte_tensor(np.array([b"abc"], dtype=object)).item()
    header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                     "parameters": {"binary_data_size": len(raw)}}]}).encode()
    request, (t,) = parse(header + raw, str(len(header)), None)
    assert list(t.array) == [b"abc"] and request.outputs is None
    with pytest.raises(Exception, match="belong to no input"):
        parse(header + raw + b"x", str(len(header)), None)
    with pytest.raises(Exception, match="does not fit"):
        parse(header, str(len(header) + 5), None)


def test_parameters_render_and_unknown():
    assert check_parameters({"render": True, "binary_data_output": True}) is True
    with pytest.raises(InvalidTensor, match="thresold"):
        check_parameters({"thresold": 0.2})


def test_detections_become_padded_typed_tensors():
    one = {"detections": [{"label": "dog", "class_id": 16, "score": 0.9, "box": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}},
                          {"label": "car", "class_id": 2, "score": 0.5, "box": {"x1": 5, "y1": 6, "x2": 7, "y2": 8}}],
           "width": 10, "height": 10}
    none = {"detections": [], "width": 10, "height": 10}
    out = {t.name: t for t in output_tensors([Detections(**one), Detections(**none)], Detections, None)}
    assert [s.name for s in output_specs(Detections, False)] == list(out)
    assert out["boxes"].array.shape == (2, 2, 4) and out["boxes"].array[0, 1].tolist() == [5, 6, 7, 8]
    assert out["labels"].array[0].tolist() == [b"dog", b"car"] and out["labels"].array[1].tolist() == [b"", b""]
    assert out["class_ids"].array.tolist() == [[16, 2], [-1, -1]] and out["num_detections"].array.tolist() == [2, 0]
    assert json.loads(out["result"].array[0]) == Detections(**one).model_dump(mode="json")


def test_keypoints_follow_the_families_part_order():
    pose = Pose(keypoints={n: {"x": i, "y": 2 * i, "score": 0.5} for i, n in enumerate(KEYPOINTS)}, width=9, height=9)
    (_, points) = output_tensors([pose], Pose, None)
    assert points.array.shape == (1, 17, 3) and points.array[0, 3].tolist() == [3, 6, 0.5]
    person = {"keypoints": {"Neck": {"x": 4, "y": 5, "score": 0.75}}, "limbs": [], "score": 0.5, "part_count": 1}
    out = {t.name: t for t in output_tensors([Poses(people=[person], width=9, height=9)], Poses, None)}
    assert out["keypoints"].array.shape == (1, 1, 18, 3)
    assert out["keypoints"].array[0, 0, Poses.keypoint_names.index("Neck")].tolist() == [4, 5, 0.75]
    assert out["num_people"].array.tolist() == [1]


def test_grpc_requests_survive_the_pickling_between_serve_proxy_and_replica():
    import pickle

    from tritonclient.grpc import service_pb2

    from serve.protocols.v2_grpc import importable_messages, input_tensors

    importable_messages()
    request = service_pb2.ModelInferRequest(model_name="yolo")
    request.inputs.add(name="image", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(serialize_byte_tensor(np.array([b"jpeg"], dtype=object)).item())
    (t,) = input_tensors(pickle.loads(pickle.dumps(request)))
    assert t.name == "image" and list(t.array) == [b"jpeg"]
