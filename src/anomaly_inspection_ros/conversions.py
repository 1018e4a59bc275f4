"""The one place where ROS 2 messages become numpy arrays and back.

Images: rgb8, bgr8, mono8, mono16, 16UC1 and 32FC1 (plus rgba8/bgra8 on input), with row
padding (``step`` > width * pixel size) and big-endian data handled. cv_bridge is used when
it is installed and works (a full ROS 2 install); the numpy path below is used otherwise and
is the reference: both give the same arrays.

Every ``*_to_numpy`` function validates the message and raises :class:`ConversionError`
with a message that says what is wrong, so a subscriber can drop the message with a
warning and keep running.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Optional

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose as PoseMsg, PoseStamped, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from anomaly_inspection_core.control.cylinder_fit import CylinderEstimate
from anomaly_inspection_core.geometry.camera import CameraIntrinsics, Pose


class ConversionError(ValueError):
    """A message that cannot be converted (bad encoding, sizes, values)."""


# encoding -> (numpy dtype, channels)
_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1", "mono16", "16UC1")
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")


def _try_cv_bridge():
    try:
        from cv_bridge import CvBridge  # type: ignore

        bridge = CvBridge()
        # The PyPI `cv-bridge` is the ROS 1 build and breaks on numpy 2: check it really works.
        probe = Image(height=1, width=2, encoding="mono8", step=2, data=bytes([1, 2]))
        if bridge.imgmsg_to_cv2(probe).tolist() != [[1, 2]]:
            return None
        bridge.cv2_to_imgmsg(np.zeros((1, 2), np.uint8), encoding="mono8")
        return bridge
    except Exception:  # noqa: BLE001 - any failure means "do not use it"
        return None


_BRIDGE = None
_BRIDGE_CHECKED = False


def cv_bridge_available() -> bool:
    global _BRIDGE, _BRIDGE_CHECKED
    if not _BRIDGE_CHECKED:
        _BRIDGE, _BRIDGE_CHECKED = _try_cv_bridge(), True
    return _BRIDGE is not None


# ---------------------------------------------------------------------------- time
def stamp_to_sec(stamp: Time) -> float:
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def sec_to_stamp(t: float) -> Time:
    if not math.isfinite(t) or t < 0:
        raise ConversionError(f"time must be finite and non-negative, got {t}")
    sec = int(math.floor(t))
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=sec, nanosec=nanosec)


def validate_stamp(stamp: Time) -> float:
    if stamp.nanosec >= 1_000_000_000:
        raise ConversionError(f"header stamp nanosec out of range: {stamp.nanosec}")
    t = stamp_to_sec(stamp)
    if t <= 0.0:
        raise ConversionError("header stamp is zero (unset)")
    return t


# ---------------------------------------------------------------------------- images
def image_to_numpy(msg: Image, *, allowed: tuple[str, ...] | None = None) -> np.ndarray:
    """Array view of an Image: (H, W) for one channel, (H, W, C) otherwise, a copy in native byte order."""
    enc = msg.encoding
    if allowed is not None and enc not in allowed:
        raise ConversionError(f"unsupported encoding '{enc}' (expected one of {', '.join(allowed)})")
    if enc not in _ENCODINGS:
        raise ConversionError(f"unsupported encoding '{enc}' (supported: {', '.join(_ENCODINGS)})")
    dtype, channels = _ENCODINGS[enc]
    h, w = int(msg.height), int(msg.width)
    if h <= 0 or w <= 0:
        raise ConversionError(f"empty image {w}x{h}")
    row_bytes = w * channels * dtype.itemsize
    if msg.step < row_bytes:
        raise ConversionError(f"step {msg.step} is smaller than width*pixel size {row_bytes} ({enc}, width {w})")
    data = msg.data
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview, np.ndarray)) else data,
                        dtype=np.uint8)
    if buf.size < msg.step * h:
        raise ConversionError(f"data has {buf.size} bytes, expected step*height = {msg.step * h}")
    rows = buf[: msg.step * h].reshape(h, msg.step)[:, :row_bytes]
    big_endian_data = bool(msg.is_bigendian)
    arr_dtype = dtype.newbyteorder(">" if big_endian_data else "<") if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(arr_dtype).reshape((h, w) if channels == 1 else (h, w, channels))
    return arr.astype(dtype, copy=True)  # native byte order, owns its memory


def numpy_to_image(array: np.ndarray, encoding: str, header: Optional[Header] = None) -> Image:
    """Image message from an array; ``encoding`` must match the array's dtype and channels."""
    if encoding not in _ENCODINGS:
        raise ConversionError(f"unsupported encoding '{encoding}'")
    dtype, channels = _ENCODINGS[encoding]
    arr = np.asarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ConversionError(f"array of shape {arr.shape} does not fit encoding {encoding}")
    if arr.dtype != dtype:
        raise ConversionError(f"array dtype {arr.dtype} does not fit encoding {encoding} ({dtype})")
    arr = np.ascontiguousarray(arr)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == "big")
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    msg.data = arr.tobytes()
    return msg


def image_to_rgb(msg: Image) -> np.ndarray:
    """uint8 RGB (H, W, 3) from any colour/mono image encoding."""
    arr = image_to_numpy(msg, allowed=COLOR_ENCODINGS)
    enc = msg.encoding
    if enc == "rgb8":
        return arr
    if enc == "bgr8":
        return arr[:, :, ::-1].copy()
    if enc == "rgba8":
        return arr[:, :, :3].copy()
    if enc == "bgra8":
        return arr[:, :, 2::-1].copy()
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    return np.repeat(arr[:, :, None], 3, axis=2)


def depth_to_metres(msg: Image) -> np.ndarray:
    """float32 depth in metres, NaN where invalid. 32FC1 is metres; 16UC1/mono16 is millimetres (0 = no return)."""
    arr = image_to_numpy(msg, allowed=DEPTH_ENCODINGS)
    if arr.dtype == np.uint16:
        out = arr.astype(np.float32) * 1e-3
        out[arr == 0] = np.nan
        return out
    out = arr.astype(np.float32, copy=True)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def metres_to_depth_image(depth: np.ndarray, header: Optional[Header] = None) -> Image:
    return numpy_to_image(np.asarray(depth, dtype=np.float32), "32FC1", header)


# ---------------------------------------------------------------------------- camera info
def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    k = np.asarray(msg.k, dtype=float)
    if k.size != 9 or not np.all(np.isfinite(k)):
        raise ConversionError("CameraInfo.k must hold 9 finite numbers")
    if k[0] <= 0 or k[4] <= 0:
        raise ConversionError(f"CameraInfo has non-positive focal length fx={k[0]}, fy={k[4]}")
    if msg.width == 0 or msg.height == 0:
        raise ConversionError("CameraInfo has zero width or height")
    d = np.asarray(msg.d, dtype=float)
    if d.size and np.any(np.abs(d) > 1e-9):
        raise ConversionError("distorted images are not supported: rectify first (CameraInfo.d is non-zero)")
    return CameraIntrinsics.from_matrix(k.reshape(3, 3), int(msg.width), int(msg.height))


def intrinsics_to_camera_info(intr: CameraIntrinsics, header: Optional[Header] = None) -> CameraInfo:
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = intr.K.flatten().tolist()
    msg.r = np.eye(3).flatten().tolist()
    p = np.zeros((3, 4))
    p[:3, :3] = intr.K
    msg.p = p.flatten().tolist()
    return msg


# ---------------------------------------------------------------------------- poses
def pose_msg_to_pose(msg: PoseMsg) -> Pose:
    p = [msg.position.x, msg.position.y, msg.position.z]
    q = [msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w]
    if not all(math.isfinite(v) for v in p + q):
        raise ConversionError("pose has non-finite values")
    n = math.sqrt(sum(v * v for v in q))
    if abs(n - 1.0) > 1e-2:
        raise ConversionError(f"pose orientation is not a unit quaternion (norm {n:.3f})")
    return Pose(np.array(p), np.array(q) / n)


def tracker_status_cylinder(msg) -> Optional[CylinderEstimate]:
    """The pipe a PipelineTrackerStatus estimates, in the camera optical frame of its depth image;
    None when it holds none (radius 0: not tracking). ConversionError for non-finite values, a
    direction that is not a unit vector or a negative radius."""
    p = [msg.axis_point.x, msg.axis_point.y, msg.axis_point.z]
    d = [msg.axis_direction.x, msg.axis_direction.y, msg.axis_direction.z]
    r = float(msg.radius)
    if not all(math.isfinite(v) for v in p + d + [r]):
        raise ConversionError("tracker status has a non-finite pipe axis or radius")
    if r < 0:
        raise ConversionError(f"tracker status has a negative pipe radius {r:.3f}")
    if r == 0:
        return None
    n = math.sqrt(sum(v * v for v in d))
    if abs(n - 1.0) > 1e-2:
        raise ConversionError(f"tracker status axis direction is not a unit vector (norm {n:.3f})")
    return CylinderEstimate(point=np.array(p), direction=np.array(d) / n, radius=r, inlier_ratio=float("nan"),
                            num_inliers=0, extent=(0.0, 0.0), rms_m=float("nan"))


MAX_STATUS_TEXT = 500


def json_status_facts(text: str, max_keys: int = 40) -> dict:
    """A status message's JSON object of scalars (``mission/status``), validated.

    Raises ConversionError unless it is a JSON object of at most ``max_keys`` entries whose
    values are strings (cut to MAX_STATUS_TEXT characters), booleans, null or finite numbers.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConversionError(f"status is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConversionError(f"status is a JSON {type(data).__name__}, not an object")
    if len(data) > max_keys:
        raise ConversionError(f"status has {len(data)} entries, more than {max_keys}")
    facts = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = value[:MAX_STATUS_TEXT]
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConversionError(f"status entry '{key}' is not finite")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise ConversionError(f"status entry '{key}' is a {type(value).__name__}, not a scalar")
        facts[str(key)[:64]] = value
    return facts


def pose_stamped_to_pose(msg: PoseStamped, frame_id: str) -> tuple[float, Pose]:
    """(stamp seconds, pose) of a PoseStamped that must be in ``frame_id``; ConversionError otherwise."""
    t = validate_stamp(msg.header.stamp)
    if msg.header.frame_id != frame_id:
        raise ConversionError(f"pose frame '{msg.header.frame_id}' is not '{frame_id}'")
    return t, pose_msg_to_pose(msg.pose)


def stamped_depth(msg: Image) -> tuple[float, np.ndarray]:
    """(stamp seconds, depth in metres with NaN invalid) of a depth image; ConversionError otherwise."""
    return validate_stamp(msg.header.stamp), depth_to_metres(msg)


def pose_to_pose_msg(pose: Pose) -> PoseMsg:
    msg = PoseMsg()
    msg.position = Point(x=float(pose.position[0]), y=float(pose.position[1]), z=float(pose.position[2]))
    q = pose.orientation
    msg.orientation = Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
    return msg


def pose_to_pose_stamped(pose: Pose, header: Header) -> PoseStamped:
    return PoseStamped(header=header, pose=pose_to_pose_msg(pose))


def vector3(v) -> Vector3:
    return Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))


def point(v) -> Point:
    return Point(x=float(v[0]), y=float(v[1]), z=float(v[2]))


# ---------------------------------------------------------------------------- point clouds
def points_to_pointcloud2(points: np.ndarray, header: Header, intensity: Optional[np.ndarray] = None):
    """sensor_msgs/PointCloud2 with float32 x, y, z (and an optional float32 intensity field)."""
    from sensor_msgs.msg import PointCloud2, PointField

    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    names = ["x", "y", "z"]
    cols = [pts[:, 0], pts[:, 1], pts[:, 2]]
    if intensity is not None:
        names.append("intensity")
        cols.append(np.asarray(intensity, dtype=np.float32).reshape(-1))
    data = np.stack(cols, axis=1).astype(np.float32)
    msg = PointCloud2(header=header)
    msg.height, msg.width = 1, int(data.shape[0])
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate(names)]
    msg.is_bigendian = sys.byteorder == "big"
    msg.point_step = 4 * len(names)
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = bool(np.all(np.isfinite(data)))
    msg.data = data.tobytes()
    return msg


def pointcloud2_to_points(msg) -> np.ndarray:
    """(N, 3) float32 x, y, z of a PointCloud2 with FLOAT32 x, y, z fields."""
    from sensor_msgs.msg import PointField

    offsets = {f.name: f.offset for f in msg.fields if f.datatype == PointField.FLOAT32}
    if not all(k in offsets for k in ("x", "y", "z")):
        raise ConversionError("PointCloud2 lacks float32 x, y, z fields")
    n = int(msg.width) * int(msg.height)
    if len(msg.data) < n * msg.point_step:
        raise ConversionError("PointCloud2 data is shorter than width*height*point_step")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype({"names": ["x", "y", "z"], "formats": [order + "f4"] * 3,
                      "offsets": [offsets["x"], offsets["y"], offsets["z"]], "itemsize": msg.point_step})
    rec = np.frombuffer(bytes(msg.data[: n * msg.point_step]), dtype=dtype, count=n)
    return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
