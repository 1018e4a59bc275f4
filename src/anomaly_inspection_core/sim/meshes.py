"""Triangle meshes for the simulated world: swept tubes, gridded boxes and conforming defect patches.

Meshes carry their own normals and texture coordinates and are handed to MuJoCo in its binary
``.msh`` format. Dents are made by pushing vertices of a (locally refined) host mesh inward, so
they change the rendered depth, not only the colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..scenario.schema import DefectSpec
from ..scenario.surfaces import Centreline, Surface, TubeSurface, any_perpendicular

SURFACE_OFFSET = 0.0015  # m: defect patches float this far above the surface (no z-fighting)


@dataclass
class Mesh:
    """Vertices (N,3), normals (N,3), texcoords (N,2), triangles (M,3) with outward CCW winding."""

    vertices: np.ndarray
    normals: np.ndarray
    texcoords: np.ndarray
    faces: np.ndarray

    def to_msh(self) -> bytes:
        """MuJoCo's binary mesh format (counts, then float32 data, then int32 faces)."""
        header = np.array([len(self.vertices), len(self.normals), len(self.texcoords), len(self.faces)], np.int32)
        return b"".join([
            header.tobytes(),
            np.ascontiguousarray(self.vertices, np.float32).tobytes(),
            np.ascontiguousarray(self.normals, np.float32).tobytes(),
            np.ascontiguousarray(self.texcoords, np.float32).tobytes(),
            np.ascontiguousarray(self.faces, np.int32).tobytes(),
        ])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of a triangle mesh."""
    v = vertices[faces]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], fn)
    n = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(n, 1e-12)


def _orient(faces: np.ndarray, verts: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Faces wound counter-clockwise seen from outside (front faces for OpenGL lighting)."""
    f = faces[0]
    fn = np.cross(verts[f[1]] - verts[f[0]], verts[f[2]] - verts[f[0]])
    return faces if float(fn @ outward) > 0 else np.ascontiguousarray(faces[:, ::-1])


def grid_faces(rows: int, cols: int, flip: bool = False) -> np.ndarray:
    """Two triangles per cell of a ``rows`` x ``cols`` vertex grid (row-major indices)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d, e = a + 1, a + cols, a + cols + 1
    if flip:
        return np.concatenate([np.stack([a, d, b], 1), np.stack([b, d, e], 1)])
    return np.concatenate([np.stack([a, b, d], 1), np.stack([b, e, d], 1)])


def dent_displacement(points: np.ndarray, dents: list[DefectSpec]) -> np.ndarray:
    """Inward displacement (m, >= 0) of surface points due to dents (smooth cosine bowls)."""
    out = np.zeros(len(points))
    for d in dents:
        rad = d.size / 2.0
        rel = points - d.position
        along = rel @ d.normal
        lateral = np.linalg.norm(rel - along[:, None] * d.normal, axis=1)
        inside = (lateral < rad) & (np.abs(along) < rad)
        out[inside] = np.maximum(out[inside], d.depth * 0.5 * (1.0 + np.cos(math.pi * lateral[inside] / rad)))
    return out


def _parallel_frames(tangents: np.ndarray) -> np.ndarray:
    """Rotation-minimising normals along a curve with unit ``tangents``."""
    normals = np.zeros_like(tangents)
    t0 = tangents[0]
    n = np.array([0.0, 0.0, 1.0]) - t0 * t0[2] if abs(t0[2]) < 0.9 else any_perpendicular(t0)
    n /= np.linalg.norm(n)
    for i, t in enumerate(tangents):
        n = n - t * float(n @ t)
        nn = np.linalg.norm(n)
        n = n / nn if nn > 1e-9 else any_perpendicular(t)
        normals[i] = n
    return normals


def tube_mesh(
    centreline: Centreline,
    radius: float,
    dents: list[DefectSpec] = (),
    s_range: tuple[float, float] | None = None,
    ring_spacing: float = 0.1,
    radius_profile=None,
    segment_len: float = 0.006,
    coarse_segment_len: float = 0.02,
) -> Mesh:
    """A tube swept along ``centreline`` (optionally only ``s_range``), refined and pushed in at dents.

    ``radius_profile(s)`` may modulate the radius (weld beads). Texture u runs around the tube,
    v along it, both in units of the circumference so texels stay square.
    """
    s0, s1 = s_range if s_range is not None else (0.0, centreline.length)
    samples = [np.linspace(s0, s1, max(2, int(math.ceil((s1 - s0) / ring_spacing)) + 1))]
    inside = (centreline.arclength > s0) & (centreline.arclength < s1)
    samples.append(centreline.arclength[inside])
    surf_dents, dent_s = [], []
    # Each dent's arclength from its projection onto the centreline (the nearest centreline
    # *vertex* put a straight run's dents at one of its ends: their fine rings and angular steps
    # were built there, and the dent itself drawn with the 0.1 m rings, as a faceted groove).
    sds = (TubeSurface("dents", centreline, radius).arclength_of(np.array([d.position for d in dents]))
           if len(dents) else [])
    for d, sd in zip(dents, sds):
        rad = d.size / 2.0
        lo, hi = max(s0, sd - 1.5 * rad - 0.005), min(s1, sd + 1.5 * rad + 0.005)
        if hi > lo:
            step = max(0.002, min(rad / 8.0, 0.006))
            samples.append(np.arange(lo, hi, step))
            surf_dents.append(d)
            dent_s.append(float(sd))
    s = np.unique(np.round(np.concatenate(samples), 7))
    centres, _ = centreline.at(s)
    eps = 1e-4
    ahead, _ = centreline.at(s + eps)
    behind, _ = centreline.at(s - eps)
    tangents = ahead - behind
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    normals_axis = _parallel_frames(tangents)
    binormals = np.cross(tangents, normals_axis)
    # Around the tube: coarse steps (sag under 0.5 mm), ``segment_len`` steps only across the
    # dents; a uniformly fine tube cost the L-riser pipe 69k triangles and most of a frame.
    n_coarse = int(np.clip(math.ceil(2 * math.pi * radius / coarse_segment_len), 24, 128))
    phis = [np.linspace(0.0, 2 * math.pi, n_coarse + 1)]
    for d, sd in zip(surf_dents, dent_s):
        k = int(np.argmin(np.abs(s - sd)))
        rel = d.position - centres[k]
        a0 = math.atan2(float(rel @ binormals[k]), float(rel @ normals_axis[k]))
        half = min(math.pi, (1.5 * d.size / 2.0 + 0.01) / radius)
        n_fine = max(2, int(math.ceil(2 * half * radius / segment_len)) + 1)
        phis.append(np.mod(np.linspace(a0 - half, a0 + half, n_fine), 2 * math.pi))
    phi = np.unique(np.round(np.concatenate(phis), 9))
    if phi[-1] < 2 * math.pi - 1e-9:
        phi = np.append(phi, 2 * math.pi)
    n_ang = len(phi) - 1
    radial = (np.cos(phi)[None, :, None] * normals_axis[:, None, :]
              + np.sin(phi)[None, :, None] * binormals[:, None, :])  # (R, A, 3)
    r = np.full(len(s), radius) if radius_profile is None else np.asarray(radius_profile(s), dtype=np.float64)
    verts = centres[:, None, :] + r[:, None, None] * radial
    verts = verts.reshape(-1, 3)
    radial_flat = radial.reshape(-1, 3)
    disp = dent_displacement(verts, surf_dents) if surf_dents else None
    if disp is not None:
        verts -= radial_flat * disp[:, None]
    faces = _orient(grid_faces(len(s), n_ang + 1), verts, radial_flat[0])
    circumference = 2 * math.pi * radius
    u = np.tile(phi / (2 * math.pi), len(s))
    v = np.repeat((s - s0) / circumference, n_ang + 1)
    normals = radial_flat.copy()
    if disp is not None:
        # Face-averaged normals only in the dents: elsewhere the exact radial ones. Averaged over
        # the whole tube, the dents' fine angular steps (which run the tube's length) next to
        # 0.1 m rings made sliver triangles whose normals drew streaks along the pipe, up to
        # 0.2 m either side of a dent, that the clean twin does not have.
        averaged = vertex_normals(verts, faces).reshape(len(s), n_ang + 1, 3)
        seam = averaged[:, 0] + averaged[:, -1]
        seam /= np.linalg.norm(seam, axis=1, keepdims=True)
        averaged[:, 0] = averaged[:, -1] = seam
        dented = disp > 0
        normals[dented] = averaged.reshape(-1, 3)[dented]
    mesh = Mesh(verts, normals, np.stack([u, v], 1), faces)
    return mesh


def _axis_lines(half: float, dents: list[tuple[float, float]], max_cell: float | None) -> np.ndarray:
    """Grid coordinates in [-half, half]: coarse (``max_cell``), refined to size/16 around each dent."""
    n = 2 if max_cell is None else max(2, int(math.ceil(2 * half / max_cell)) + 1)
    lines = set(np.linspace(-half, half, n).tolist())
    for c, size in dents:
        cell = max(0.004, size / 16.0)
        lo, hi = max(-half, c - 0.6 * size), min(half, c + 0.6 * size)
        if hi > lo:
            lines.update(np.linspace(lo, hi, max(2, int(math.ceil((hi - lo) / cell)) + 1)).tolist())
    return np.unique(np.round(np.array(sorted(lines)), 9))


def box_mesh(center: np.ndarray, half: np.ndarray, rotation: np.ndarray, dents: list[DefectSpec] = (),
             tex_scale: float = 1.0, max_cell: float | None = None) -> Mesh:
    """A box whose faces are grids (fine only where dents need it), with planar texcoords."""
    parts: list[Mesh] = []
    base = 0
    all_v, all_n, all_t, all_f = [], [], [], []
    half = np.asarray(half, dtype=np.float64)
    for axis in range(3):
        for sign in (1.0, -1.0):
            n_local = np.zeros(3)
            n_local[axis] = sign
            n_map = rotation @ n_local
            face_dents = [d for d in dents if float(d.normal @ n_map) > 0.9
                          and abs(float((d.position - center) @ n_map) - half[axis]) < 0.01]
            a1, a2 = [i for i in range(3) if i != axis]
            if sign < 0:
                a1, a2 = a2, a1
            # Fine grid lines only across the dents (a whole face at dent resolution cost the
            # factory's press 131k triangles and most of the frame time).
            local_dents = [rotation.T @ (d.position - center) for d in face_dents]
            c1 = _axis_lines(half[a1], [(ld[a1], d.size) for ld, d in zip(local_dents, face_dents)], max_cell)
            c2 = _axis_lines(half[a2], [(ld[a2], d.size) for ld, d in zip(local_dents, face_dents)], max_cell)
            n1, n2 = len(c1), len(c2)
            g1, g2 = np.meshgrid(c1, c2, indexing="ij")
            local = np.zeros((g1.size, 3))
            local[:, axis] = sign * half[axis]
            local[:, a1] = g1.ravel()
            local[:, a2] = g2.ravel()
            verts = local @ rotation.T + center
            if face_dents:
                verts -= n_map * dent_displacement(verts, face_dents)[:, None]
            faces = grid_faces(n1, n2)
            # Orient faces outward.
            f = faces[0]
            fn = np.cross(verts[f[1]] - verts[f[0]], verts[f[2]] - verts[f[0]])
            if fn @ n_map < 0:
                faces = faces[:, ::-1]
            normals = vertex_normals(verts, faces) if face_dents else np.tile(n_map, (len(verts), 1))
            tex = np.stack([g1.ravel(), g2.ravel()], 1) / tex_scale
            all_v.append(verts)
            all_n.append(normals)
            all_t.append(tex)
            all_f.append(faces + base)
            base += len(verts)
    del parts
    return Mesh(np.concatenate(all_v), np.concatenate(all_n), np.concatenate(all_t), np.concatenate(all_f))


def _tangent_frame(defect: DefectSpec, host: Surface, angle: float) -> tuple[np.ndarray, np.ndarray]:
    t = host.tangent_hint(defect.position, defect.normal)
    b = np.cross(defect.normal, t)
    c, s = math.cos(angle), math.sin(angle)
    return c * t + s * b, -s * t + c * b


def _conform(points_2d: np.ndarray, defect: DefectSpec, host: Surface, angle: float,
             dents: list[DefectSpec], offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Map tangent-plane coordinates (N,2) around a defect onto the (dented) host surface."""
    t1, t2 = _tangent_frame(defect, host, angle)
    guess = defect.position + points_2d[:, :1] * t1 + points_2d[:, 1:2] * t2
    sp, normals, _ = host.closest_many(guess)
    if dents:
        sp = sp - normals * dent_displacement(sp, dents)[:, None]
    return sp + normals * offset, normals


def blob_outline(rng: np.random.Generator, n: int, roughness: float, elongation: float = 1.0) -> np.ndarray:
    """Radius factors (n,) in (0, 1] of an irregular star-shaped blob."""
    theta = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    f = np.ones(n)
    for k in range(2, 9):
        f += roughness * rng.normal(0, 1.0 / k) * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
    f += 0.5 * roughness * rng.normal(0, 0.08, n)  # ragged edge
    f = np.maximum(f, 0.3)
    if elongation != 1.0:
        x, y = f * np.cos(theta) * elongation, f * np.sin(theta)
        f = np.hypot(x, y)
    return f / f.max()


def blob_patch(defect: DefectSpec, host: Surface, radius: float, outline: np.ndarray, angle: float,
               dents: list[DefectSpec], centre_2d: np.ndarray = np.zeros(2), rings: int = 6,
               offset: float = SURFACE_OFFSET) -> Mesh:
    """A disc-like patch (polar grid) with an irregular outline, conforming to the surface."""
    n = len(outline)
    theta = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    k = np.arange(1, rings + 1)[:, None] / rings
    xy = np.stack([np.cos(theta)[None] * outline[None] * k, np.sin(theta)[None] * outline[None] * k], -1).reshape(-1, 2)
    pts2 = np.vstack([[0.0, 0.0], xy]) * radius + centre_2d
    verts, normals = _conform(pts2, defect, host, angle, dents, offset)
    faces = [np.stack([np.zeros(n, int), 1 + np.arange(n), 1 + (np.arange(n) + 1) % n], 1)]
    for ring in range(rings - 1):
        a = 1 + ring * n + np.arange(n)
        b = 1 + ring * n + (np.arange(n) + 1) % n
        faces.append(np.stack([a, a + n, b], 1))
        faces.append(np.stack([b, a + n, b + n], 1))
    f = np.concatenate(faces)
    fn = np.cross(verts[f[0, 1]] - verts[f[0, 0]], verts[f[0, 2]] - verts[f[0, 0]])
    if fn @ normals[0] < 0:
        f = f[:, ::-1]
    tex = (pts2 - centre_2d) / (2 * radius) + 0.5
    return Mesh(verts, normals if not dents else vertex_normals(verts, f), tex, f)


def ribbon_patch(defect: DefectSpec, host: Surface, path_2d: np.ndarray, widths: np.ndarray, angle: float,
                 dents: list[DefectSpec], offset: float = SURFACE_OFFSET) -> Mesh:
    """A thin strip along a 2D polyline in the tangent plane (cracks, scratches)."""
    d = np.gradient(path_2d, axis=0)
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    perp = np.stack([-d[:, 1], d[:, 0]], 1)
    left = path_2d + perp * widths[:, None] / 2.0
    right = path_2d - perp * widths[:, None] / 2.0
    pts2 = np.stack([left, right], 1).reshape(-1, 2)
    verts, normals = _conform(pts2, defect, host, angle, dents, offset)
    faces = grid_faces(len(path_2d), 2)
    fn = np.cross(verts[faces[0, 1]] - verts[faces[0, 0]], verts[faces[0, 2]] - verts[faces[0, 0]])
    if fn @ normals[0] < 0:
        faces = faces[:, ::-1]
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path_2d, axis=0), axis=1))])
    tex = np.stack([np.repeat(along / max(along[-1], 1e-9), 2), np.tile([0.0, 1.0], len(path_2d))], 1)
    return Mesh(verts, normals, tex, faces)


def merge(meshes: list[Mesh]) -> Mesh:
    base = 0
    faces = []
    for m in meshes:
        faces.append(m.faces + base)
        base += len(m.vertices)
    return Mesh(np.concatenate([m.vertices for m in meshes]), np.concatenate([m.normals for m in meshes]),
                np.concatenate([m.texcoords for m in meshes]), np.concatenate(faces))


def _zip_rings(inner: np.ndarray, outer: np.ndarray, inner_ang: np.ndarray, outer_ang: np.ndarray) -> np.ndarray:
    """Triangles (indices into inner then outer) joining two closed rings sorted by angle."""
    ni, no = len(inner_ang), len(outer_ang)
    faces: list[tuple[int, int, int]] = []
    i = j = 0
    while i < ni or j < no:
        a_i = inner_ang[(i + 1) % ni] + (2 * math.pi if i + 1 >= ni else 0.0)
        a_o = outer_ang[(j + 1) % no] + (2 * math.pi if j + 1 >= no else 0.0)
        if j >= no or (i < ni and a_i <= a_o):
            faces.append((i % ni, (i + 1) % ni, ni + j % no))
            i += 1
        else:
            faces.append((i % ni, ni + (j + 1) % no, ni + j % no))
            j += 1
    return np.asarray(faces, dtype=np.int64)


def plate_mesh(center: np.ndarray, size: np.ndarray, rotation: np.ndarray, holes: list[tuple[float, float, float]],
               tile_half, segments: int = 48, tex_scale: float = 1.0) -> Mesh:
    """A plate (box of ``size``, thickness ``size[2]``) with vertical through holes ``(u, v, radius)``.

    The top and bottom faces are a rectangular grid whose lines pass along every hole's square
    tile (``tile_half(radius)``); a tile is triangulated as a ring between the hole's circle and
    the tile's border, every other cell as two triangles, so the holes are exact circles and the
    faces have no gaps. Hole walls face into the hole.
    """
    hx, hy, hz = (float(v) / 2.0 for v in size)
    tiles = [(u, v, r, float(tile_half(r))) for u, v, r in holes]
    xs = sorted({-hx, hx, *[u - t for u, _, _, t in tiles], *[u + t for u, _, _, t in tiles]})
    ys = sorted({-hy, hy, *[v - t for _, v, _, t in tiles], *[v + t for _, v, _, t in tiles]})
    tris_2d: list[np.ndarray] = []  # each (3, 2) counter-clockwise seen from +z
    rings: list[tuple[np.ndarray, float, float, float]] = []
    ang = 2 * math.pi * np.arange(segments) / segments
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            x0, x1, y0, y1 = xs[i], xs[i + 1], ys[j], ys[j + 1]
            cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
            tile = next((tl for tl in tiles if x0 >= tl[0] - tl[3] - 1e-9 and x1 <= tl[0] + tl[3] + 1e-9
                         and y0 >= tl[1] - tl[3] - 1e-9 and y1 <= tl[1] + tl[3] + 1e-9), None)
            if tile is None:
                tris_2d.append(np.array([[x0, y0], [x1, y0], [x1, y1]]))
                tris_2d.append(np.array([[x0, y0], [x1, y1], [x0, y1]]))
    for u, v, r, t in tiles:
        # Border of the tile: the grid vertices on it (so neighbours share them) plus the points
        # where the circle's spokes cross it.
        border = [np.array([u + t * c / max(abs(c), abs(s)), v + t * s / max(abs(c), abs(s))])
                  for c, s in zip(np.cos(ang), np.sin(ang))]
        for x in xs:
            if u - t - 1e-9 <= x <= u + t + 1e-9:
                border += [np.array([x, v - t]), np.array([x, v + t])]
        for y in ys:
            if v - t - 1e-9 <= y <= v + t + 1e-9:
                border += [np.array([u - t, y]), np.array([u + t, y])]
        border_arr = np.unique(np.round(np.array(border), 9), axis=0)
        b_ang = np.mod(np.arctan2(border_arr[:, 1] - v, border_arr[:, 0] - u), 2 * math.pi)
        order = np.argsort(b_ang)
        border_arr, b_ang = border_arr[order], b_ang[order]
        circle = np.column_stack([u + r * np.cos(ang), v + r * np.sin(ang)])
        faces = _zip_rings(circle, border_arr, ang, b_ang)
        pts = np.vstack([circle, border_arr])
        tris_2d.extend(pts[f] for f in faces)
        rings.append((circle, u, v, r))
    tri = np.array(tris_2d)  # (T, 3, 2)
    area = ((tri[:, 1, 0] - tri[:, 0, 0]) * (tri[:, 2, 1] - tri[:, 0, 1])
            - (tri[:, 1, 1] - tri[:, 0, 1]) * (tri[:, 2, 0] - tri[:, 0, 0]))
    keep = np.abs(area) > 1e-14
    tri, area = tri[keep], area[keep]
    tri[area < 0] = tri[area < 0][:, ::-1]
    verts, normals, tex, faces_all = [], [], [], []
    base = 0

    def add(v3: np.ndarray, n3: np.ndarray, uv: np.ndarray, f: np.ndarray) -> None:
        nonlocal base
        verts.append(v3 @ rotation.T + center)
        normals.append(n3 @ rotation.T)
        tex.append(uv / tex_scale)
        faces_all.append(f + base)
        base += len(v3)

    flat = tri.reshape(-1, 2)
    f_top = np.arange(len(flat)).reshape(-1, 3)
    for z, sign in ((hz, 1.0), (-hz, -1.0)):
        v3 = np.column_stack([flat, np.full(len(flat), z)])
        n3 = np.tile([0.0, 0.0, sign], (len(flat), 1))
        add(v3, n3, flat, f_top if sign > 0 else f_top[:, ::-1])
    # Outer side walls.
    for axis in range(2):
        for sign in (1.0, -1.0):
            n_local = np.zeros(3)
            n_local[axis] = sign
            other = 1 - axis
            e = (hx, hy)
            c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
            v3 = np.zeros((4, 3))
            v3[:, axis] = sign * e[axis]
            v3[:, other] = c[:, 0] * e[other]
            v3[:, 2] = c[:, 1] * hz
            f = np.array([[0, 1, 2], [0, 2, 3]])
            fn = np.cross(v3[1] - v3[0], v3[2] - v3[0])
            if fn @ n_local < 0:
                f = f[:, ::-1]
            add(v3, np.tile(n_local, (4, 1)), v3[:, [other, 2]], f)
    # Hole walls (normals toward the hole axis).
    for circle, u, v, r in rings:
        n = len(circle)
        top = np.column_stack([circle, np.full(n, hz)])
        bot = np.column_stack([circle, np.full(n, -hz)])
        v3 = np.vstack([top, bot])
        inward = np.column_stack([u - circle[:, 0], v - circle[:, 1], np.zeros(n)]) / r
        k = np.arange(n)
        k1 = (k + 1) % n
        f = np.concatenate([np.column_stack([k, n + k, k1]), np.column_stack([k1, n + k, n + k1])])
        f0 = f[0]
        fn = np.cross(v3[f0[1]] - v3[f0[0]], v3[f0[2]] - v3[f0[0]])
        if fn @ inward[0] < 0:
            f = f[:, ::-1]
        uvw = np.column_stack([np.concatenate([ang, ang]) * r, v3[:, 2]])
        add(v3, np.vstack([inward, inward]), uvw, f)
    return Mesh(np.concatenate(verts), np.concatenate(normals), np.concatenate(tex), np.concatenate(faces_all))
