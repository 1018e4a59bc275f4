"""Self-contained report.html: summary, top and side maps, one card per defect.

All images are embedded as base64 PNG, so the file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import math
from typing import Any

import numpy as np

from anomaly_inspection_core.report.asset import AssetPrimitive

_TYPE_COLOURS = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
background:#fafafa}
h1{margin:0 0 4px 0}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;margin-bottom:16px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:left}
th{background:#f0f0f0}.ok{color:#2a7d2a;font-weight:600}.bad{color:#b22;font-weight:600}
.maps{display:flex;flex-wrap:wrap;gap:16px}.maps img{max-width:100%;border:1px solid #ddd;background:#fff}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:16px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px;box-shadow:0 1px 2px #0001}
.card h3{margin:0 0 6px 0}.card .where{font-weight:600;margin:4px 0 8px 0}
.card img{height:150px;image-rendering:pixelated;border:1px solid #ccc;margin-right:6px}
.card table{font-size:13px}.tag{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px;margin-left:6px;vertical-align:middle}
"""


def _b64_png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _type_colour(types: list[str]) -> dict[str, str]:
    return {t: _TYPE_COLOURS[i % len(_TYPE_COLOURS)] for i, t in enumerate(sorted(set(types)))}


def _draw_views(doc: dict, robot_path: np.ndarray | None, ground_truth: list[dict] | None,
                primitives: list[AssetPrimitive]) -> list[tuple[str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    path = None
    if robot_path is not None:
        path = np.asarray(robot_path, float)
        path = path[np.all(np.isfinite(path), axis=1)]
    defects = doc["defects"]
    colours = _type_colour([d["type"] for d in defects])
    # Side view looks across the asset's long horizontal direction.
    pts = [np.asarray(d["position_m"]) for d in defects]
    for prim in primitives:
        pts.extend(prim.data["points"] if prim.kind == "polyline" else
                   [prim.data["start"], prim.data["end"]] if prim.kind == "cylinder" else
                   [prim.data["center"] - prim.data["size"] / 2, prim.data["center"] + prim.data["size"] / 2])
    if path is not None and len(path):
        pts.extend(path)
    allp = np.array(pts) if pts else np.zeros((1, 3))
    span = np.ptp(allp, axis=0)
    h_axis = 0 if span[0] >= span[1] else 1
    views = [("Top view (x, y)", 0, 1), (f"Side view ({'xy'[h_axis]}, z)", h_axis, 2)]
    out = []
    for title, ia, ib in views:
        fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
        for prim in primitives:
            d = prim.data
            if prim.kind == "cylinder":
                a, b, r = d["start"], d["end"], d["radius"]
                a2, b2 = np.array([a[ia], a[ib]]), np.array([b[ia], b[ib]])
                v = b2 - a2
                if np.linalg.norm(v) < 1e-9:  # seen end-on: a circle
                    ax.add_patch(plt.Circle(a2, r, fc="#c9d3dc", ec="#555", zorder=2))
                else:
                    n = np.array([-v[1], v[0]]) / np.linalg.norm(v) * r
                    ax.add_patch(Polygon([a2 + n, b2 + n, b2 - n, a2 - n], closed=True,
                                         fc="#c9d3dc", ec="#555", lw=1, zorder=2))
                ax.annotate(prim.name, (a2 + (b2 - a2) * 0.02), fontsize=7, color="#444")
            elif prim.kind == "box":
                c, s, yaw = d["center"], d["size"], d.get("yaw", 0.0)
                corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1)
                                    for sz in (-1, 1)]) * s / 2
                cy_, sy_ = math.cos(yaw), math.sin(yaw)
                rot = np.array([[cy_, -sy_, 0], [sy_, cy_, 0], [0, 0, 1]])
                w = corners @ rot.T + c
                p2 = w[:, [ia, ib]]
                lo, hi = p2.min(axis=0), p2.max(axis=0)
                if (ia, ib) == (0, 1):
                    hull = w[[0, 2, 6, 4], :][:, [0, 1]]
                    ax.add_patch(Polygon(hull, closed=True, fc="#d8d2c4", ec="#555", lw=1, alpha=0.6,
                                         zorder=1))
                else:
                    ax.add_patch(plt.Rectangle(lo, *(hi - lo), fc="#d8d2c4", ec="#555", lw=1,
                                               alpha=0.6, zorder=1))
                ax.annotate(prim.name, lo, fontsize=7, color="#444")
            else:
                p = d["points"]
                ax.plot(p[:, ia], p[:, ib], "-", color="#555", lw=1.5)
        if path is not None and len(path) > 1:
            ax.plot(path[:, ia], path[:, ib], "-", color="#1f77b4", lw=1.2, label="robot path",
                    zorder=3)
            ax.plot(path[0, ia], path[0, ib], "o", color="#1f77b4", ms=4)
        if ground_truth:
            g = np.array([np.asarray(x.get("position", x.get("position_m")), float) for x in ground_truth])
            ax.scatter(g[:, ia], g[:, ib], s=90, facecolors="none", edgecolors="#2a7d2a", lw=1.5,
                       label="ground truth", zorder=4)
        for t, col in colours.items():
            sel = [d for d in defects if d["type"] == t]
            p = np.array([d["position_m"] for d in sel])
            ax.scatter(p[:, ia], p[:, ib], s=40, c=col, marker="X", label=f"defect: {t}", zorder=5)
            for d in sel:
                ax.annotate(f"#{d['id']}", (d["position_m"][ia], d["position_m"][ib]),
                            textcoords="offset points", xytext=(4, 4), fontsize=8, color=col,
                            weight="bold", zorder=6)
        ax.set_aspect("equal", adjustable="datalim")
        ax.autoscale_view()
        ax.set_xlabel(f"{'xyz'[ia]} [m]")
        ax.set_ylabel(f"{'xyz'[ib]} [m]")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        out.append((title, buf.getvalue()))
    return out


def _evaluation_html(ev: dict) -> str:
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.0f} %"

    rows = [
        ("Matching gate", f"{ev['gate_m']:.2f} m"),
        ("Ground-truth defects", ev["n_ground_truth"]),
        ("Reported defects", ev["n_predicted"]),
        ("Recall", pct(ev["recall"])),
        ("Precision", pct(ev["precision"])),
        ("Median 3D error", "n/a" if ev["median_error_m"] is None else f"{100 * ev['median_error_m']:.1f} cm"),
        ("95th percentile 3D error", "n/a" if ev["p95_error_m"] is None else f"{100 * ev['p95_error_m']:.1f} cm"),
        ("Median size error", "n/a" if ev.get("median_size_error_m") is None else
         f"{100 * ev['median_size_error_m']:.1f} cm (reported / true: {ev['median_size_ratio']:.2f})"),
    ]
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    per = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{r['n_detected']} / {r['n_ground_truth']}</td>"
        f"<td>{pct(r['recall'])}</td></tr>" for t, r in ev["per_type"].items()
    )
    missed = ", ".join(html.escape(str(i)) for i in ev["missed_ground_truth_ids"]) or "none"
    extra = ", ".join(f"#{html.escape(str(i))}" for i in ev["unmatched_predicted_ids"]) or "none"
    why = ""
    if ev.get("missed"):
        def size(m: dict) -> str:
            return "" if m["size_m"] is None else f"{100 * m['size_m']:.1f} cm"

        cells = "".join(
            f"<tr><td>{html.escape(str(m['id']))}</td><td>{html.escape(str(m['type']))}</td>"
            f"<td>{size(m)}</td><td>{m['frames_in_view']}</td><td>{m['frames_flagged']}</td>"
            f"<td>{html.escape(m['explanation'])}</td></tr>" for m in ev["missed"])
        why = ("<table><tr><th>Missed</th><th>Type</th><th>Size</th><th>Frames in view</th>"
               f"<th>Frames flagged</th><th>Why</th></tr>{cells}</table>")
    return (f"<h2>Evaluation against ground truth</h2><table>{body}</table>"
            f"<table><tr><th>Type</th><th>Found</th><th>Recall</th></tr>{per}</table>"
            f"<p>Missed ground-truth defects: {missed}. Reported defects with no ground truth: {extra}.</p>{why}")


def render_html(doc: dict, evidence: dict[int, Any], robot_path: np.ndarray | None,
                ground_truth: list[dict] | None, primitives: list[AssetPrimitive]) -> str:
    """The complete HTML document of a report built by ``writer.build_report``."""
    from anomaly_inspection_core.report.writer import png_bytes

    defects = doc["defects"]
    colours = _type_colour([d["type"] for d in defects])
    mission = doc["mission"]
    title = f"Inspection report: {mission.get('name', doc['scenario'])}"
    mission_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>"
        for k, v in mission.items() if not isinstance(v, (dict, list))
    )
    by_type = ", ".join(f"{n} {html.escape(t)}" for t, n in doc["summary"]["by_type"].items()) or "none"
    path_txt = ""
    if doc.get("robot_path"):
        path_txt = (f"<p>Robot path: {doc['robot_path']['length_m']:.1f} m over "
                    f"{doc['robot_path']['n_poses']} poses.</p>")
    n = doc["summary"]["n_defects"]
    headline = (f"<p class='{'bad' if n else 'ok'}'>{n} defect{'s' if n != 1 else ''} to inspect "
                f"({by_type}).</p>")
    todo_rows = "".join(
        f"<tr><td>#{d['id']}</td><td>{html.escape(d['type'])}</td>"
        f"<td>{html.escape(d['location'] or '')}</td>"
        f"<td>({', '.join(f'{v:.2f}' for v in d['position_m'])})</td>"
        f"<td>{' x '.join(f'{100 * v:.1f}' for v in d['size_m'][:2])} cm</td>"
        f"<td>{d['score']:.2f}</td><td>{d['views']}</td></tr>" for d in defects
    )
    todo = (f"<table><tr><th>Id</th><th>Type</th><th>Where</th><th>Position {html.escape(doc['frame_id'])}"
            f" [m]</th><th>Size</th><th>Score</th><th>Views</th></tr>{todo_rows}</table>") if defects else ""
    maps = "".join(f"<img alt='{html.escape(t)}' src='{_b64_png(png)}'>"
                   for t, png in _draw_views(doc, robot_path, ground_truth, primitives))
    cards = []
    for d in defects:
        ev = evidence.get(d["id"])
        imgs = "<p><i>No image evidence.</i></p>"
        if ev is not None:
            imgs = (f"<div><img alt='crop' title='best view' src='{_b64_png(png_bytes(ev.crop))}'>"
                    f"<img alt='heatmap' title='anomaly heatmap' src='{_b64_png(png_bytes(ev.overlay))}'></div>")
        e = d.get("evidence") or {}
        rows = [
            ("Position [m]", ", ".join(f"{v:.3f}" for v in d["position_m"])),
            ("Size [cm]", " x ".join(f"{100 * v:.1f}" for v in d["size_m"])),
            ("Anomalous area [cm]", " x ".join(f"{100 * v:.1f}" for v in d["extent_m"][:2])
             if d.get("extent_m") else "-"),
            ("Surface normal", ", ".join(f"{v:.2f}" for v in d.get("normal", []))),
            ("Score / confidence", f"{d['score']:.2f} / {d.get('confidence', float('nan')):.2f}"),
            ("Views", f"{d['views']} (of {d['visible_views']} frames that had it in view)"
             if d.get("visible_views") else d["views"]),
            ("First / last seen [s]", f"{d['first_seen']:.1f} / {d['last_seen']:.1f}"),
        ]
        if e.get("view_distance_m") is not None:
            rows.append(("Best view", f"{e['view_distance_m']:.2f} m away, "
                                      f"{e['incidence_deg']:.0f}° incidence, t={e['view_stamp']:.1f} s"))
        table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
        where = html.escape(d["location"]) if d.get("location") else "position below"
        cards.append(
            f"<div class='card' id='defect-{d['id']}'><h3>Defect #{d['id']}"
            f"<span class='tag' style='background:{colours[d['type']]}'>{html.escape(d['type'])}</span></h3>"
            f"<div class='where'>{where}</div>{imgs}<table>{table}</table></div>"
        )
    evaluation = _evaluation_html(doc["evaluation"]) if doc.get("evaluation") else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<div class='meta'>Scenario {html.escape(doc['scenario'])} · generated "
        f"{html.escape(doc['generated_at'])} · frame {html.escape(doc['frame_id'])}</div>"
        f"<h2>Summary</h2>{headline}{path_txt}{todo}"
        f"<table>{mission_rows}</table>"
        f"{evaluation}<h2>Maps</h2><div class='maps'>{maps}</div>"
        f"<h2>Defects</h2><div class='cards'>{''.join(cards) or '<p>No defects found.</p>'}</div>"
        "</body></html>\n"
    )
