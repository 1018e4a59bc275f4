"""The simulated inspection world: a MuJoCo scene built from a :class:`Scenario`, rendered offscreen.

One call to :meth:`SimWorld.render` gives RGB, metric z-depth and a per-pixel defect-id mask for
a camera pose, all for the same instant. Set ``MUJOCO_GL=osmesa`` (done here when unset) to
render on the CPU without a display.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..geometry.camera import CameraIntrinsics, Pose
from ..scenario.loader import hole_tile_half, pipe_joints, pipe_side_vectors, pipe_supports, weld_half_width
from ..scenario.schema import BoxSpec, CylinderSpec, DefectSpec, PlateSpec, Scenario
from ..scenario.surfaces import BoxSurface, TubeSurface, any_perpendicular, pipe_centreline, rot_z
from . import textures
from .defect_shapes import defect_patches
from .meshes import Mesh, box_mesh, plate_mesh, tube_mesh

log = logging.getLogger(__name__)

# Optical frame (x right, y down, z forward) -> MuJoCo camera frame (x right, y up, looks along -z).
_OPTICAL_TO_MJ = np.diag([1.0, -1.0, -1.0])
# Geom groups: the arm's links, and its wrist (last link + camera housing) that the wrist camera
# would otherwise see from inside; the wrist group is hidden in wrist-camera renders.
ARM_GROUP, WRIST_GROUP = 2, 3


@dataclass
class RenderedFrame:
    """One synthetic camera frame with ground truth, all at ``stamp`` (seconds of sim time)."""

    rgb: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W) metres along the optical axis; NaN = no return
    defect_ids: np.ndarray  # int32 (H, W); 0 = no defect, else DefectSpec.id
    defects_in_view: list[int]
    intrinsics: CameraIntrinsics
    pose: Pose  # T_map_camera (optical frame)
    stamp: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    robot_fraction: float = 0.0  # share of pixels showing the robot's own links

    def camera_info(self, frame_id: str = "camera_optical_frame") -> dict:
        """CameraInfo fields (sensor_msgs/CameraInfo layout) as a plain dict."""
        k = self.intrinsics.K
        p = np.hstack([k, np.zeros((3, 1))])
        return {
            "header": {"stamp": self.stamp, "frame_id": frame_id},
            "width": self.intrinsics.width, "height": self.intrinsics.height,
            "distortion_model": "plumb_bob", "d": [0.0] * 5,
            "k": k.ravel().tolist(), "r": np.eye(3).ravel().tolist(), "p": p.ravel().tolist(),
        }


def _fmt(v) -> str:
    return " ".join(f"{float(x):.6g}" for x in np.asarray(v).ravel())


class _MjcfBuilder:
    """Accumulates MJCF text and in-memory assets (textures as PNG, meshes as .msh)."""

    def __init__(self, seed: int) -> None:
        self.assets: dict[str, bytes] = {}
        self.asset_xml: list[str] = []
        self.body_xml: list[str] = []
        self.geom_defect: dict[str, int] = {}
        self.no_shadow: list[str] = []  # geoms that receive shadows but cast none
        self.rng = np.random.default_rng(seed)
        self._n = 0

    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def texture(self, png: bytes, prefix: str = "tex") -> str:
        name = self._name(prefix)
        self.assets[f"{name}.png"] = png
        self.asset_xml.append(f'<texture name="{name}" type="2d" file="{name}.png"/>')
        return name

    def material(self, rgba=(1, 1, 1, 1), texture: str | None = None, specular: float = 0.2,
                 shininess: float = 0.2, texrepeat=(1, 1), texuniform: bool = False) -> str:
        name = self._name("mat")
        tex = f' texture="{texture}" texrepeat="{_fmt(texrepeat)}" texuniform="{str(texuniform).lower()}"' if texture else ""
        self.asset_xml.append(f'<material name="{name}" rgba="{_fmt(rgba)}" specular="{specular}" '
                              f'shininess="{shininess}" reflectance="0"{tex}/>')
        return name

    def mesh_geom(self, mesh: Mesh, material: str, prefix: str = "mesh", defect_id: int = 0,
                  casts_shadow: bool = True) -> str:
        name = self._name(prefix)
        self.assets[f"{name}.msh"] = mesh.to_msh()
        self.asset_xml.append(f'<mesh name="{name}" file="{name}.msh" inertia="shell"/>')
        self.body_xml.append(f'<geom name="{name}" type="mesh" mesh="{name}" material="{material}" '
                             f'contype="0" conaffinity="0" mass="0"/>')
        if defect_id:
            self.geom_defect[name] = defect_id
        if not casts_shadow:
            self.no_shadow.append(name)
        return name

    def geom(self, gtype: str, material: str, casts_shadow: bool = True, **attrs) -> None:
        extra = " ".join(f'{k}="{_fmt(v) if not isinstance(v, str) else v}"' for k, v in attrs.items())
        name = self._name(gtype)
        self.body_xml.append(f'<geom name="{name}" type="{gtype}" material="{material}" '
                             f'contype="0" conaffinity="0" mass="0" {extra}/>')
        if not casts_shadow:
            self.no_shadow.append(name)

    def box(self, spec: BoxSpec, material: str) -> None:
        q = np.array([math.cos(math.radians(spec.yaw_deg) / 2), 0, 0, math.sin(math.radians(spec.yaw_deg) / 2)])
        self.geom("box", material, pos=spec.position, size=spec.size / 2.0, quat=q)


class SimWorld:
    """MuJoCo world of a scenario with an offscreen RGB / depth / defect-mask camera."""

    shadow_size = 2048  # px side of the shadow map
    # Half the side (m) of the sun's shadow map, per scenario kind. MuJoCo's directional shadow
    # map spans the whole scene (0.8 x its extent each way): over a pipeline that is 7-12 mm per
    # shadow texel, and thin casters (weld beads) and the tube's own terminator then drew jagged
    # dark teeth that crawl as the sun drifts (read as anomalies at welds and on elbows). A
    # pipeline's shadow map is this size, centred ahead of the camera at every frame (5.9 mm
    # texels); the UAV inspects within 1.6 m. At 3 m (2.9 mm) the ground under the pipe showed
    # rows of acne dots, read as anomalies at the supports. Workcells are small (3.2 m); the AGV
    # inspects to 4-6 m and keeps the scene-wide map (not yet measured with a following one).
    shadow_half_m = {"pipeline": 6.0}

    def __init__(self, scenario: Scenario, width: int | None = None, height: int | None = None) -> None:
        os.environ.setdefault("MUJOCO_GL", "osmesa")
        import mujoco  # heavy: imported on use

        self._mj = mujoco
        self.scenario = scenario
        self.width = int(width or scenario.camera.width)
        self.height = int(height or scenario.camera.height)
        self.intrinsics = CameraIntrinsics.from_fov(self.width, self.height, scenario.camera.fov_y_deg)
        self.defect_by_id: dict[int, DefectSpec] = {d.id: d for d in scenario.defects}
        b = _MjcfBuilder(scenario.seed)
        self._scene_centre = self._centre_of(scenario)
        self._host_rgb: dict[str, tuple[float, float, float]] = {}
        self.arm = None  # control.arm.ArmModel of a manipulator workcell
        self._arm_q: np.ndarray | None = None
        self._arm_geoms: list[tuple[str, int, float]] = []  # (geom name, kind, length)
        if scenario.kind == "pipeline":
            self._build_pipeline(b)
        elif scenario.kind == "workcell":
            self._build_workcell(b)
        else:
            self._build_factory(b)
        self._build_defects(b)
        xml = self._xml(b)
        self.model = mujoco.MjModel.from_xml_string(xml, assets=b.assets)
        self.data = mujoco.MjData(self.model)
        extent = float(self.model.stat.extent)
        self.model.vis.map.znear = min(0.5 * scenario.camera.min_range, 0.02) / extent
        self.model.vis.map.zfar = (scenario.camera.max_range * 2.0 + 5.0) / extent
        self._defect_of_geom = np.zeros(self.model.ngeom, dtype=np.int32)
        for name, did in b.geom_defect.items():
            self._defect_of_geom[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)] = did
        self._arm_ids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, g[0]) for g in self._arm_geoms]
        self._arm_id_set = set(self._arm_ids)
        # Some geoms receive the sun's shadows but cast none (MuJoCo skips decor-category geoms in
        # its shadow-casting pass only; see render()). Weld beads stand 6 mm proud: their true
        # shadow, a strip a few mm wide along the toe, was drawn by the 5.9 mm shadow texels as
        # jagged dark teeth that crawled as the sun drifted (read as anomalies at welds). The
        # ground and the flanges (with their bolts) shadowed themselves with acne: rings of dots
        # on the ground and streaks on a flange's face seen edge-on to the sun, which changed
        # with the sun (read as anomalies at a pipe's end flange). Nothing lies under the ground.
        self._no_shadow_ids = {mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_GEOM, name)
                               for name in b.no_shadow}
        self._cam_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, "inspection")
        self._sun_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_LIGHT, "sun")
        self._sun_diffuse = self.model.light_diffuse[self._sun_id].copy()
        self._sun_dir = self.model.light_dir[self._sun_id].copy()
        half = self.shadow_half_m.get(scenario.kind)
        self._shadow_follows_camera = half is not None and extent * float(self.model.vis.map.shadowclip) > half
        if self._shadow_follows_camera:
            self.model.vis.map.shadowclip = half / extent
        self._light_phase = float(np.random.default_rng(scenario.seed + 1).uniform(0, 2 * math.pi))
        self._gl = mujoco.GLContext(self.width, self.height)
        self._gl.make_current()
        self._con = mujoco.MjrContext(self.model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
        # Reversed-Z depth keeps precision at range; _linear_depth inverts exactly this mapping.
        self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(self.model, maxgeom=max(1000, 2 * self.model.ngeom))
        self._opt = mujoco.MjvOption()
        self._opt.geomgroup[ARM_GROUP] = 1
        self._cam = mujoco.MjvCamera()
        self._cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = self._cam_id
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._closed = False
        log.info("SimWorld %s: %d geoms, %d meshes, %d defects", scenario.name, self.model.ngeom,
                 self.model.nmesh, len(scenario.defects))

    # ------------------------------------------------------------------------------ building
    @staticmethod
    def _centre_of(scenario: Scenario) -> np.ndarray:
        if scenario.kind == "pipeline":
            pts = scenario.pipeline.points
            return 0.5 * (pts.min(axis=0) + pts.max(axis=0))
        if scenario.kind == "workcell":
            return np.array([*scenario.workcell.table.position[:2], 0.8])
        return np.array([0.0, 0.0, 1.0])

    def _xml(self, b: _MjcfBuilder) -> str:
        lt = self.scenario.lighting
        az, el = math.radians(lt.sun_azimuth_deg), math.radians(lt.sun_elevation_deg)
        sun_dir = -np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        fill_dir = np.array([-sun_dir[0], -sun_dir[1], sun_dir[2]])
        sky = b.texture(textures.sky(), "sky")
        b.asset_xml.append(f'<texture name="skybox" type="skybox" file="{sky}.png" gridsize="1 1" gridlayout="."/>')
        amb = lt.ambient
        centre = self._scene_centre
        sun_pos = centre - sun_dir * 15.0
        i = lt.intensity
        return f"""<mujoco model="{self.scenario.name}">
  <compiler angle="radian"/>
  <visual>
    <global offwidth="{self.width}" offheight="{self.height}" fovy="{self.scenario.camera.fov_y_deg}"/>
    <quality shadowsize="{self.shadow_size if lt.shadows else 0}" offsamples="0"/>
    <headlight ambient="{amb} {amb} {amb}" diffuse="0.12 0.12 0.12" specular="0.05 0.05 0.05"/>
    <map znear="0.01" zfar="50" shadowclip="0.8"/>
  </visual>
  <asset>
    {chr(10).join(b.asset_xml)}
  </asset>
  <worldbody>
    <light name="sun" directional="true" castshadow="{str(lt.shadows).lower()}" pos="{_fmt(sun_pos)}" dir="{_fmt(sun_dir)}" diffuse="{i} {i * 0.97} {i * 0.92}" specular="0.25 0.25 0.25"/>
    <light name="fill" directional="true" castshadow="false" pos="0 0 30" dir="{_fmt(fill_dir)}" diffuse="{0.25 * i} {0.26 * i} {0.28 * i}" specular="0 0 0"/>
    <camera name="inspection" pos="0 0 2" fovy="{self.scenario.camera.fov_y_deg}"/>
    {chr(10).join(b.body_xml)}
  </worldbody>
</mujoco>"""

    def _ground(self, b: _MjcfBuilder, half: tuple[float, float], centre=(0.0, 0.0)) -> None:
        tex = b.texture(textures.concrete(b.rng), "concrete")
        mat = b.material(texture=tex, texrepeat=(0.25, 0.25), texuniform=True, specular=0.05, shininess=0.05)
        b.geom("plane", mat, casts_shadow=False, pos=(centre[0], centre[1], 0.0), size=(half[0], half[1], 0.1))

    def _dents_on(self, name: str) -> list[DefectSpec]:
        return [d for d in self.scenario.defects if d.type == "dent" and d.surface == name]

    def _build_pipeline(self, b: _MjcfBuilder) -> None:
        spec = self.scenario.pipeline
        # Bends in 1 deg rings: MuJoCo lights per vertex, and at 3 deg (the centreline's default)
        # the bend showed the rings as faint bands, which change with the view and the sun.
        cl = pipe_centreline(spec.points, spec.bend_radius, step_deg=1.0)
        lo, hi = spec.points.min(axis=0), spec.points.max(axis=0)
        self._ground(b, (max(30.0, (hi[0] - lo[0]) / 2 + 15), max(30.0, (hi[1] - lo[1]) / 2 + 15)),
                     ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2))
        r = spec.radius
        paint = b.texture(textures.paint(b.rng, spec.color), "paint")
        pipe_mat = b.material(texture=paint, specular=0.3, shininess=0.3)
        self._host_rgb["pipe"] = spec.color
        b.mesh_geom(tube_mesh(cl, r, self._dents_on("pipe")), pipe_mat, "pipe")
        weld_mat = b.material(texture=b.texture(textures.weld(b.rng), "weld"), specular=0.4, shininess=0.3)
        welds, flanges = pipe_joints(spec, cl)
        half_w = weld_half_width(r)
        for s in welds:
            s0, s1 = max(0.0, s - half_w), min(cl.length, s + half_w)
            # The bead is an open tube: its ends sink 1 mm into the pipe. Ends standing proud of the
            # pipe (r + 3.5 mm, as before) left an annular gap through which the bead's inside showed
            # as dark view-dependent specks along its edges, read as anomalies at welds. Its toes
            # are steep (sin ** 0.25): a shallow toe, nearly level with the pipe, drew shadow acne.
            prof = (lambda ss, s0=s0, s1=s1: r - 0.001 + 0.007 * np.sin(np.pi * np.clip((ss - s0) / (s1 - s0), 0, 1)) ** 0.25)
            b.mesh_geom(tube_mesh(cl, r, (), (s0, s1), ring_spacing=0.003, radius_profile=prof), weld_mat, "weld",
                        casts_shadow=False)
        flange_mat = b.material(rgba=tuple(np.array(spec.color) * 0.85) + (1.0,), specular=0.3, shininess=0.3)
        bolt_mat = b.material(rgba=(0.25, 0.25, 0.27, 1), specular=0.5, shininess=0.5)
        ends = [0.0, cl.length]
        for s in list(flanges) + ends:
            c, t = cl.at(np.array([s]))
            c, t = c[0], t[0]
            gap = 0.003
            thick = 0.025
            for sign in ((-1.0, 1.0) if s not in ends else (0.0,)):
                mid = c + t * sign * (gap / 2 + thick / 2)
                b.geom("cylinder", flange_mat, casts_shadow=False, fromto=np.concatenate([mid - t * thick / 2, mid + t * thick / 2]),
                       size=(1.45 * r, 0))
            n = np.cross(t, [0, 0, 1.0]) if abs(t[2]) < 0.9 else np.cross(t, [1.0, 0, 0])
            n /= np.linalg.norm(n)
            m = np.cross(t, n)
            for k in range(8):
                a = 2 * math.pi * (k + 0.5) / 8
                p = c + 1.22 * r * (math.cos(a) * n + math.sin(a) * m)
                b.geom("cylinder", bolt_mat, casts_shadow=False, fromto=np.concatenate([p - t * 0.04, p + t * 0.04]), size=(0.011, 0))
        sup_mat = b.material(rgba=(0.32, 0.32, 0.34, 1), specular=0.1, shininess=0.1)
        for sup in pipe_supports(spec, cl):
            b.box(sup, sup_mat)

    def _build_part(self, b: _MjcfBuilder, part: BoxSpec | CylinderSpec, mottling: float = 0.1) -> None:
        tex = b.texture(textures.paint(b.rng, part.color, mottling=mottling, grain=0.08), "paint")
        mat = b.material(texture=tex, specular=0.25, shininess=0.3)
        self._host_rgb[part.name] = part.color
        dents = self._dents_on(part.name)
        if isinstance(part, PlateSpec):
            rot = rot_z(math.radians(part.yaw_deg))
            holes = [(h.u, h.v, h.radius) for h in part.holes]
            b.mesh_geom(plate_mesh(part.position, part.size, rot, holes, hole_tile_half), mat, part.name)
        elif isinstance(part, BoxSpec):
            rot = rot_z(math.radians(part.yaw_deg))
            b.mesh_geom(box_mesh(part.position, part.size / 2.0, rot, dents, tex_scale=1.0), mat, part.name)
        else:
            cl = pipe_centreline(np.array([part.base, part.base + [0.0, 0.0, part.height]]), part.radius * 2)
            b.mesh_geom(tube_mesh(cl, part.radius, dents, ring_spacing=0.2), mat, part.name)
            top = part.base + [0.0, 0.0, part.height]
            b.geom("cylinder", mat, pos=top - [0, 0, 0.005], size=(part.radius, 0.005))

    def _build_workcell(self, b: _MjcfBuilder) -> None:
        wc = self.scenario.workcell
        self._ground(b, (10.0, 10.0))
        t = wc.table
        top_mat = b.material(rgba=t.color + (1.0,), specular=0.1, shininess=0.1)
        top = BoxSpec("table_top", t.position + [0, 0, t.size[2] / 2 - 0.02], np.array([t.size[0], t.size[1], 0.04]), t.yaw_deg)
        b.box(top, top_mat)
        leg_mat = b.material(rgba=(0.2, 0.2, 0.22, 1), specular=0.3, shininess=0.3)
        rot = rot_z(math.radians(t.yaw_deg))
        for sx in (-1, 1):
            for sy in (-1, 1):
                off = rot @ np.array([sx * (t.size[0] / 2 - 0.05), sy * (t.size[1] / 2 - 0.05), 0.0])
                leg = BoxSpec("leg", np.array([t.position[0] + off[0], t.position[1] + off[1], (t.size[2] - 0.04) / 2]),
                              np.array([0.05, 0.05, t.size[2] - 0.04]), t.yaw_deg)
                b.box(leg, leg_mat)
        self._build_part(b, wc.part, mottling=0.15)
        if self.scenario.robot == "manipulator":
            self._build_arm(b)

    def _build_arm(self, b: _MjcfBuilder) -> None:
        """The overhead frame and the UR5-class arm of ``control.arm.workcell_arm`` (links as
        capsules between DH frame origins, joint housings as cylinders; posed per render)."""
        from ..control.arm import ArmKinematics

        self._arm_kin = ArmKinematics.for_workcell(self.scenario.workcell)
        arm = self.arm = self._arm_kin.arm
        self._arm_q = arm.home_array.copy()
        t = self.scenario.workcell.table
        base = arm.base.position
        frame_mat = b.material(rgba=(0.22, 0.24, 0.27, 1), specular=0.3, shininess=0.3)
        # Posts outside the arm's reach and the table, beams over the top, a plate the base hangs from.
        reach = arm.reach
        px = max(t.size[0] / 2 + 0.25, reach * 0.85)
        py = max(t.size[1] / 2 + 0.25, reach * 0.85)
        top = base[2] + 0.08
        for sx in (-1, 1):
            for sy in (-1, 1):
                b.geom("box", frame_mat, pos=(base[0] + sx * px, base[1] + sy * py, top / 2), size=(0.04, 0.04, top / 2))
            b.geom("box", frame_mat, pos=(base[0] + sx * px, base[1], top + 0.04), size=(0.04, py + 0.04, 0.04))
        b.geom("box", frame_mat, pos=(base[0], base[1], top + 0.04), size=(px + 0.04, 0.05, 0.04))
        b.geom("box", frame_mat, pos=(base[0], base[1], base[2] + 0.02), size=(0.1, 0.1, 0.02))
        link_mat = b.material(rgba=(0.78, 0.8, 0.82, 1), specular=0.4, shininess=0.4)
        joint_mat = b.material(rgba=(0.25, 0.42, 0.62, 1), specular=0.4, shininess=0.5)
        cam_mat = b.material(rgba=(0.1, 0.1, 0.1, 1), specular=0.5, shininess=0.5)
        starts, ends, radii = arm.capsules(self._arm_q)
        n_links = len(radii)
        for i in range(n_links):
            length = float(np.linalg.norm(ends[i] - starts[i]))
            group = WRIST_GROUP if i >= n_links - 2 else ARM_GROUP
            mat = cam_mat if i == n_links - 1 else link_mat
            name = f"arm_link{i}"
            b.body_xml.append(f'<geom name="{name}" type="capsule" size="{radii[i]:.4f} {max(length / 2, 1e-3):.4f}" '
                              f'material="{mat}" group="{group}" contype="0" conaffinity="0" mass="0"/>')
            self._arm_geoms.append((name, 0, length))
        for k in range(6):
            r = arm.link_radii[k] * 1.15
            group = WRIST_GROUP if k == 5 else ARM_GROUP
            name = f"arm_joint{k}"
            b.body_xml.append(f'<geom name="{name}" type="cylinder" size="{r:.4f} {r:.4f}" material="{joint_mat}" '
                              f'group="{group}" contype="0" conaffinity="0" mass="0"/>')
            self._arm_geoms.append((name, 1, float(k)))

    def set_robot_joints(self, q) -> None:
        """Pose the manipulator's links at joint angles ``q`` (6,) for the following renders."""
        if self.arm is None:
            raise RuntimeError(f"scenario {self.scenario.name!r} has no manipulator arm to pose")
        self._arm_q = self.arm.check_q(q).copy()

    @property
    def robot_joints(self) -> np.ndarray | None:
        """The joint angles the arm is drawn at (None without an arm)."""
        return None if self._arm_q is None else self._arm_q.copy()

    def _pose_arm(self) -> None:
        mj = self._mj
        arm, q = self.arm, self._arm_q
        frames = arm.joint_frames(q)
        starts, ends, _ = arm.capsules(q)
        for gid, (name, kind, extra) in zip(self._arm_ids, self._arm_geoms):
            if kind == 0:
                i = int(name.removeprefix("arm_link"))
                d = ends[i] - starts[i]
                z = d / extra if extra > 1e-9 else frames[min(i, 5)][:3, 2]
                x = any_perpendicular(z)
                rot = np.column_stack([x, np.cross(z, x), z])
                pos = 0.5 * (starts[i] + ends[i])
            else:
                rot = frames[int(extra)][:3, :3]
                pos = frames[int(extra)][:3, 3]
            # World-body geoms are not moved by mj_kinematics: write their global pose directly.
            self.data.geom_xpos[gid] = pos
            self.data.geom_xmat[gid] = rot.ravel()

    def _arm_follow_camera(self, camera_pose: Pose) -> bool:
        """Joint angles that put the wrist camera at ``camera_pose`` (IK seeded with the last ones)."""
        from ..control.ik import solve_ik

        res = solve_ik(self.arm, camera_pose, self._arm_q, self._arm_kin.scene, free_roll=False, restarts=4)
        if res.success:
            self._arm_q = res.q
        else:
            log.debug("no arm configuration for camera pose %s: arm hidden", np.round(camera_pose.position, 3))
        return bool(res.success)

    def _build_factory(self, b: _MjcfBuilder) -> None:
        fac = self.scenario.factory
        self._ground(b, (fac.floor_size[0] / 2, fac.floor_size[1] / 2))
        self._host_rgb["floor"] = (0.55, 0.55, 0.53)
        lane = b.material(rgba=(0.85, 0.7, 0.1, 1), specular=0.1, shininess=0.1)
        for y in (-1.2, 1.2):  # painted lane markings along the patrol (normal variation)
            b.geom("box", lane, pos=(0.0, y, 0.001), size=(fac.floor_size[0] / 2 - 0.5, 0.04, 0.001))
        for tank in fac.tanks:
            self._build_part(b, tank, mottling=0.12)
        for m in fac.machines:
            self._build_part(b, m, mottling=0.08)
            panel = b.material(rgba=(0.15, 0.15, 0.17, 1), specular=0.4, shininess=0.5)
            rot = rot_z(math.radians(m.yaw_deg))
            off = rot @ np.array([m.size[0] / 2 + 0.01, 0.0, 0.0])
            b.geom("box", panel, pos=m.position + off + [0, 0, 0.2], size=(0.01, 0.2, 0.15),
                   quat=(math.cos(math.radians(m.yaw_deg) / 2), 0, 0, math.sin(math.radians(m.yaw_deg) / 2)))
        rack_mat = b.material(rgba=(0.8, 0.45, 0.08, 1), specular=0.2, shininess=0.2)
        box_mat = b.material(rgba=(0.6, 0.48, 0.3, 1), specular=0.05, shininess=0.05)
        for rk in fac.racks:
            rot = rot_z(math.radians(rk.yaw_deg))
            hx, hy, hz = rk.size / 2
            base = rk.position - [0, 0, hz]
            for sx in (-1, 1):
                for sy in (-1, 1):
                    p = base + rot @ np.array([sx * (hx - 0.04), sy * (hy - 0.04), hz])
                    b.geom("box", rack_mat, pos=p, size=(0.04, 0.04, hz), quat=(math.cos(math.radians(rk.yaw_deg) / 2), 0, 0, math.sin(math.radians(rk.yaw_deg) / 2)))
            for k, z in enumerate(np.linspace(0.15, rk.size[2] - 0.1, 3)):
                b.geom("box", rack_mat, pos=base + [0, 0, z], size=(hx, hy, 0.02), quat=(math.cos(math.radians(rk.yaw_deg) / 2), 0, 0, math.sin(math.radians(rk.yaw_deg) / 2)))
                for j in range(3):
                    if b.rng.random() < 0.75:
                        bx = base + rot @ np.array([(j - 1) * hx * 0.6, 0.0, 0.0]) + [0, 0, z + 0.02 + 0.15]
                        b.geom("box", box_mat, pos=bx, size=(hx * 0.25, hy * 0.7, 0.15))

    def _build_defects(self, b: _MjcfBuilder) -> None:
        dents_all = [d for d in self.scenario.defects if d.type == "dent"]
        for d in self.scenario.defects:
            host = self.scenario.surface(d.surface)
            dents = [x for x in dents_all if x.surface == d.surface]
            for mesh, pm in defect_patches(d, host, dents, self._host_rgb.get(d.surface, (0.5, 0.5, 0.5))):
                tex = b.texture(pm.texture_png, "dtex") if pm.texture_png else None
                mat = b.material(rgba=pm.rgba, texture=tex, specular=pm.specular, shininess=pm.shininess)
                b.mesh_geom(mesh, mat, f"defect{d.id}", defect_id=d.id)

    # ------------------------------------------------------------------------------ rendering
    def _set_camera(self, pose: Pose) -> None:
        r_mj = pose.rotation @ _OPTICAL_TO_MJ
        q = Pose.from_rotation(pose.position, r_mj).orientation  # xyzw
        self.model.cam_pos[self._cam_id] = pose.position
        self.model.cam_quat[self._cam_id] = [q[3], q[0], q[1], q[2]]

    def _set_lighting(self, time_s: float, camera_pose: Pose | None = None) -> None:
        lt = self.scenario.lighting
        phase = 2 * math.pi * time_s / lt.period_s + self._light_phase
        self.model.light_diffuse[self._sun_id] = self._sun_diffuse * (1.0 + lt.variation * math.sin(phase))
        # The sun also drifts a few degrees, so shadows move slowly.
        drift = math.radians(4.0) * math.sin(0.5 * phase + 1.0)
        c, s = math.cos(drift), math.sin(drift)
        d = self._sun_dir
        self.model.light_dir[self._sun_id] = [c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]]
        if self._shadow_follows_camera and camera_pose is not None:
            # centre the shadow map 1.5 m ahead of the camera, on a 0.25 m grid so that it moves
            # in steps, not by a fraction of a texel every frame
            ahead = camera_pose.position + 1.5 * camera_pose.rotation[:, 2]
            centre = np.round(ahead / 0.25) * 0.25
            self.model.light_pos[self._sun_id] = centre - 15.0 * self.model.light_dir[self._sun_id]

    def render(self, camera_pose: Pose, time_s: float = 0.0, joints: np.ndarray | None = None,
               wrist_camera: bool = True, arm_in_wrist_view: bool = False) -> RenderedFrame:
        """Render RGB, z-depth (m, NaN = no return) and the defect-id mask from ``camera_pose``.

        Manipulator worlds draw the arm at ``joints`` when given (kept for later renders, like
        :meth:`set_robot_joints`), else at its last joint angles. ``wrist_camera`` says the pose
        is the wrist camera's: then the arm is left out of the image, because depending on the
        IK branch the elbow and forearm can hang in front of the lens and hide the part (the
        real cell would choose another branch; the simulated camera shows the part).
        ``arm_in_wrist_view=True`` draws the arm anyway, all but its last link and the camera
        housing that sit around the lens (with ``joints=None`` the angles then come from IK
        of ``camera_pose``, seeded with the last ones; the arm is left out when IK fails);
        ``RenderedFrame.robot_fraction`` then tells how much of the image the arm covers.
        For an external view pass ``wrist_camera=False``: the whole arm is drawn.
        """
        import time as _time

        if self._closed:
            raise RuntimeError("SimWorld.render called after close()")
        mj = self._mj
        t0 = _time.perf_counter()
        self._gl.make_current()
        if self.arm is not None:
            if joints is not None:
                self.set_robot_joints(joints)
            show = not wrist_camera or arm_in_wrist_view
            if show and wrist_camera and joints is None:
                show = self._arm_follow_camera(camera_pose)
            self._opt.geomgroup[ARM_GROUP] = int(show)
            self._opt.geomgroup[WRIST_GROUP] = int(show and not wrist_camera)
        self._set_camera(camera_pose)
        self._set_lighting(time_s, camera_pose)
        mj.mj_kinematics(self.model, self.data)
        if self.arm is not None:
            self._pose_arm()
        mj.mj_camlight(self.model, self.data)
        mj.mjv_updateScene(self.model, self.data, self._opt, None, self._cam, mj.mjtCatBit.mjCAT_ALL, self._scene)
        if self._no_shadow_ids:
            for g in self._scene.geoms[:self._scene.ngeom]:
                if g.objtype == mj.mjtObj.mjOBJ_GEOM and g.objid in self._no_shadow_ids:
                    g.category = mj.mjtCatBit.mjCAT_DECOR
        h, w = self.height, self.width
        rgb = np.empty((h, w, 3), np.uint8)
        self._scene.flags[mj.mjtRndFlag.mjRND_SEGMENT] = 0
        self._scene.flags[mj.mjtRndFlag.mjRND_IDCOLOR] = 0
        mj.mjr_render(self._rect, self._scene, self._con)
        mj.mjr_readPixels(rgb, None, self._rect, self._con)
        t1 = _time.perf_counter()
        seg_rgb = np.empty((h, w, 3), np.uint8)
        zbuf = np.empty((h, w), np.float32)
        self._scene.flags[mj.mjtRndFlag.mjRND_SEGMENT] = 1
        self._scene.flags[mj.mjtRndFlag.mjRND_IDCOLOR] = 1
        mj.mjr_render(self._rect, self._scene, self._con)
        mj.mjr_readPixels(seg_rgb, zbuf, self._rect, self._con)
        self._scene.flags[mj.mjtRndFlag.mjRND_SEGMENT] = 0
        self._scene.flags[mj.mjtRndFlag.mjRND_IDCOLOR] = 0
        t2 = _time.perf_counter()
        rgb = np.ascontiguousarray(rgb[::-1])
        seg_rgb = seg_rgb[::-1]
        zbuf = zbuf[::-1]
        segimage = seg_rgb[..., 0].astype(np.int32) | (seg_rgb[..., 1].astype(np.int32) << 8) | (seg_rgb[..., 2].astype(np.int32) << 16)
        n = self._scene.ngeom
        lut = np.zeros(n + 1, np.int32)  # segimage 0 = background
        hit = np.zeros(n + 1, bool)
        for g in self._scene.geoms[:n]:
            if g.segid >= 0:
                hit[g.segid + 1] = True
                if g.objtype == mj.mjtObj.mjOBJ_GEOM and 0 <= g.objid < len(self._defect_of_geom):
                    lut[g.segid + 1] = self._defect_of_geom[g.objid]
        segimage = np.clip(segimage, 0, n)
        defect_ids = lut[segimage]
        depth = self._linear_depth(zbuf)
        cam = self.scenario.camera
        no_return = ~hit[segimage] | (depth > cam.max_range) | (depth < cam.min_range)
        depth[no_return] = np.nan
        defect_ids[no_return] = 0
        in_view = sorted(int(i) for i in np.unique(defect_ids) if i)
        robot_fraction = 0.0
        if self._arm_ids:
            robot_lut = np.zeros(n + 1, bool)
            for g in self._scene.geoms[:n]:
                if g.segid >= 0 and g.objtype == mj.mjtObj.mjOBJ_GEOM and g.objid in self._arm_id_set:
                    robot_lut[g.segid + 1] = True
            robot_fraction = float(robot_lut[segimage].mean())
        t3 = _time.perf_counter()
        return RenderedFrame(rgb, depth, defect_ids.astype(np.int32), in_view, self.intrinsics, camera_pose, float(time_s),
                             {"rgb": 1e3 * (t1 - t0), "depth_seg": 1e3 * (t2 - t1), "post": 1e3 * (t3 - t2)},
                             robot_fraction)

    def _linear_depth(self, zbuf: np.ndarray) -> np.ndarray:
        # MuJoCo renders with reversed Z; undo its projection exactly as mujoco.Renderer does.
        extent = float(self.model.stat.extent)
        znear = np.float32(self.model.vis.map.znear * extent)
        zfar = np.float32(self.model.vis.map.zfar * extent)
        c_coef = -(zfar + znear) / (zfar - znear)
        d_coef = -(np.float32(2) * zfar * znear) / (zfar - znear)
        c_coef = np.float32(-0.5) * c_coef - np.float32(0.5)
        d_coef = np.float32(-0.5) * d_coef
        return (d_coef / (zbuf.astype(np.float64) + c_coef)).astype(np.float32)

    # ------------------------------------------------------------------------------ trajectories
    def default_trajectory(self, n_frames: int) -> list[Pose]:
        """Camera poses for ``n_frames`` frames covering the scene the way its robot inspects it."""
        from .trajectory import default_trajectory

        return default_trajectory(self.scenario, n_frames)

    def close(self) -> None:
        """Release the GL context (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            # the render context's GL objects are freed in the *current* GL context: make it ours,
            # or a world dropped after another was made frees that one's textures and buffers
            # (its renders then come out black with no depth)
            self._gl.make_current()
            self._con.free()
        except Exception:  # noqa: BLE001 - freeing twice at interpreter exit must not raise
            pass
        try:
            self._gl.free()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> "SimWorld":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
