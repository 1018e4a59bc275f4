"""Message <-> numpy conversions: round trips, padding, byte order, validation."""

import json
import math

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose
from anomaly_inspection_ros import conversions as conv

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "encoding,array",
    [
        ("rgb8", RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)),
        ("bgr8", RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)),
        ("mono8", RNG.integers(0, 256, (5, 7), dtype=np.uint8)),
        ("mono16", RNG.integers(0, 65536, (5, 7), dtype=np.uint16)),
        ("16UC1", RNG.integers(0, 65536, (5, 7), dtype=np.uint16)),
        ("32FC1", RNG.random((5, 7), dtype=np.float32)),
    ],
)
def test_image_round_trip(encoding, array):
    msg = conv.numpy_to_image(array, encoding, Header(frame_id="cam"))
    assert msg.step == array.shape[1] * array.itemsize * (array.shape[2] if array.ndim == 3 else 1)
    back = conv.image_to_numpy(msg)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def _padded(array: np.ndarray, encoding: str, pad: int, big_endian: bool = False) -> Image:
    arr = array.astype(array.dtype.newbyteorder(">" if big_endian else "<"))
    rows = arr.reshape(arr.shape[0], -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=int(big_endian),
                 step=padded.shape[1], data=padded.tobytes())


def test_row_padding_and_big_endian_are_handled():
    depth = RNG.random((4, 6)).astype(np.float32) * 5
    np.testing.assert_array_equal(conv.image_to_numpy(_padded(depth, "32FC1", 8)), depth)
    np.testing.assert_array_equal(conv.image_to_numpy(_padded(depth, "32FC1", 4, big_endian=True)), depth)
    mono16 = RNG.integers(0, 65536, (3, 5), dtype=np.uint16)
    np.testing.assert_array_equal(conv.image_to_numpy(_padded(mono16, "16UC1", 2, big_endian=True)), mono16)
    rgb = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(conv.image_to_numpy(_padded(rgb, "rgb8", 1)), rgb)


def test_colour_conversions_to_rgb():
    rgb = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(conv.image_to_rgb(conv.numpy_to_image(rgb[:, :, ::-1].copy(), "bgr8")), rgb)
    mono = rgb[:, :, 0].copy()
    out = conv.image_to_rgb(conv.numpy_to_image(mono, "mono8"))
    assert out.shape == (4, 4, 3) and np.all(out[:, :, 1] == mono)


def test_depth_in_millimetres_and_invalid_values():
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    d = conv.depth_to_metres(conv.numpy_to_image(mm, "16UC1"))
    assert math.isnan(d[0, 0]) and d[0, 1] == pytest.approx(1.0) and d[1, 0] == pytest.approx(2.5)
    f = np.array([[np.inf, -1.0], [0.0, 1.25]], np.float32)
    d = conv.depth_to_metres(conv.numpy_to_image(f, "32FC1"))
    assert np.isnan(d[0, 0]) and np.isnan(d[0, 1]) and np.isnan(d[1, 0]) and d[1, 1] == pytest.approx(1.25)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda m: setattr(m, "encoding", "yuv422"), "unsupported encoding"),
        (lambda m: setattr(m, "step", 3), "step"),
        (lambda m: setattr(m, "data", bytes(10)), "bytes"),
        (lambda m: setattr(m, "height", 0), "empty"),
    ],
)
def test_malformed_images_raise_clear_errors(mutate, needle):
    msg = conv.numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(conv.ConversionError, match=needle):
        conv.image_to_numpy(msg)


def test_depth_rejects_colour_encoding():
    with pytest.raises(conv.ConversionError, match="unsupported encoding 'rgb8'"):
        conv.depth_to_metres(conv.numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8"))


def test_camera_info_round_trip_and_validation():
    intr = CameraIntrinsics.from_fov(640, 480, 60.0)
    msg = conv.intrinsics_to_camera_info(intr)
    assert conv.camera_info_to_intrinsics(msg) == intr
    msg.k = [0.0] * 9
    with pytest.raises(conv.ConversionError, match="focal"):
        conv.camera_info_to_intrinsics(msg)
    msg = conv.intrinsics_to_camera_info(intr)
    msg.d = [0.1, 0, 0, 0, 0]
    with pytest.raises(conv.ConversionError, match="distort"):
        conv.camera_info_to_intrinsics(msg)


def test_pose_round_trip_and_bad_quaternion():
    pose = Pose.looking_at([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    back = conv.pose_msg_to_pose(conv.pose_to_pose_msg(pose))
    np.testing.assert_allclose(back.matrix(), pose.matrix(), atol=1e-6)
    msg = conv.pose_to_pose_msg(pose)
    msg.orientation.w = 5.0
    with pytest.raises(conv.ConversionError, match="unit quaternion"):
        conv.pose_msg_to_pose(msg)
    msg = conv.pose_to_pose_msg(pose)
    msg.position.x = float("nan")
    with pytest.raises(conv.ConversionError, match="non-finite"):
        conv.pose_msg_to_pose(msg)


def test_tracker_status_cylinder_and_its_validation():
    from anomaly_inspection.msg import PipelineTrackerStatus

    msg = PipelineTrackerStatus(radius=0.15)
    msg.axis_point, msg.axis_direction = conv.point([0.0, 0.1, 1.0]), conv.vector3([0.0, 0.0, 2.0 ** -0.5 * 2.0])
    with pytest.raises(conv.ConversionError, match="unit vector"):
        conv.tracker_status_cylinder(msg)
    msg.axis_direction = conv.vector3([0.6, 0.8, 0.0])
    est = conv.tracker_status_cylinder(msg)
    np.testing.assert_allclose(est.point, [0.0, 0.1, 1.0])
    assert est.radius == pytest.approx(0.15)
    msg.radius = 0.0
    assert conv.tracker_status_cylinder(msg) is None  # not tracking: no pipe
    msg.radius = -0.1
    with pytest.raises(conv.ConversionError, match="negative"):
        conv.tracker_status_cylinder(msg)
    msg.radius, msg.axis_point.y = 0.15, float("inf")
    with pytest.raises(conv.ConversionError, match="non-finite"):
        conv.tracker_status_cylinder(msg)


def test_stamps():
    t = 12.345678901
    assert conv.stamp_to_sec(conv.sec_to_stamp(t)) == pytest.approx(t, abs=1e-9)
    with pytest.raises(conv.ConversionError):
        conv.validate_stamp(conv.sec_to_stamp(0.0))


def test_pointcloud_round_trip():
    pts = RNG.random((10, 3)).astype(np.float32)
    msg = conv.points_to_pointcloud2(pts, Header(frame_id="map"), intensity=np.arange(10))
    np.testing.assert_array_equal(conv.pointcloud2_to_points(msg), pts)


def test_pose_stamped_must_be_in_the_expected_frame():
    from geometry_msgs.msg import PoseStamped

    pose = Pose.looking_at([1.0, 0.0, 1.0], [0.0, 0.0, 1.0])
    msg = conv.pose_to_pose_stamped(pose, Header(stamp=conv.sec_to_stamp(5.5), frame_id="map"))
    t, back = conv.pose_stamped_to_pose(msg, "map")
    assert t == pytest.approx(5.5) and np.allclose(back.matrix(), pose.matrix(), atol=1e-6)
    with pytest.raises(conv.ConversionError, match="frame 'map' is not 'odom'"):
        conv.pose_stamped_to_pose(msg, "odom")
    with pytest.raises(conv.ConversionError, match="zero"):
        conv.pose_stamped_to_pose(PoseStamped(header=Header(frame_id="map")), "map")


def test_json_status_facts_keeps_scalars_and_rejects_the_rest():
    facts = conv.json_status_facts('{"outcome": "failed", "coverage": 0.97, "views": 14, "ok": true, "d": null}')
    assert facts == {"outcome": "failed", "coverage": 0.97, "views": 14, "ok": True, "d": None}
    assert len(conv.json_status_facts(json.dumps({"message": "x" * 2000}))["message"]) == conv.MAX_STATUS_TEXT
    for bad, needle in (("{", "not JSON"), ("[1]", "not an object"), ('{"a": Infinity}', "not finite"),
                        ('{"a": [1]}', "not a scalar"), (json.dumps({str(k): k for k in range(50)}), "entries")):
        with pytest.raises(conv.ConversionError, match=needle):
            conv.json_status_facts(bad)
