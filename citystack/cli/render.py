"""A PNG picture of an analysis result over the points it used (Pillow).

Positions are drawn in a local equirectangular projection of the bbox, which
is what a web map shows at city scale.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
TABLEAU = [(78, 121, 167), (242, 142, 43), (225, 87, 89), (118, 183, 178), (89, 161, 79),
           (237, 201, 72), (176, 122, 161), (255, 157, 167), (156, 117, 95), (186, 176, 172)]
WIDTH = 1000


def colour(t: float) -> tuple[int, int, int]:
    t = min(max(t, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(t), len(VIRIDIS) - 2)
    c = VIRIDIS[i] + (VIRIDIS[i + 1] - VIRIDIS[i]) * (t - i)
    return tuple(int(v) for v in c)


class Canvas:
    def __init__(self, bbox):
        self.minx, self.miny, self.maxx, self.maxy = bbox
        aspect = (self.maxy - self.miny) / max((self.maxx - self.minx) * math.cos(math.radians(
            (self.miny + self.maxy) / 2)), 1e-12)
        self.w, self.h = WIDTH, max(50, min(4000, int(WIDTH * aspect)))
        self.image = Image.new("RGBA", (self.w, self.h), (250, 250, 248, 255))
        self.draw = ImageDraw.Draw(self.image, "RGBA")

    def xy(self, lon, lat):
        x = (np.asarray(lon, float) - self.minx) / (self.maxx - self.minx or 1) * self.w
        y = (self.maxy - np.asarray(lat, float)) / (self.maxy - self.miny or 1) * self.h
        return x, y

    def dots(self, lon, lat, fill, r=1.5):
        xs, ys = self.xy(lon, lat)
        colours = fill if isinstance(fill, list) else [fill] * len(xs)
        for x, y, c in zip(xs.tolist(), ys.tolist(), colours):
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=c)


def render(result: dict, lon: np.ndarray, lat: np.ndarray, path: str) -> None:
    canvas = Canvas(result["input"]["bbox"])
    kind = result.get("kind")
    if kind == "grid":
        _grid(canvas, result["grid"])
        canvas.dots(lon, lat, (20, 20, 20, 90), 1)
    elif kind == "clusters":
        pts = result["points"]
        fills = [(170, 170, 170, 120) if l < 0 else TABLEAU[l % 10] + (220,) for l in pts["label"]]
        canvas.dots(pts["lon"], pts["lat"], fills, 2)
        for c in result["clusters"]:
            if len(c["hull"]) >= 3:
                xs, ys = canvas.xy([p[0] for p in c["hull"]], [p[1] for p in c["hull"]])
                canvas.draw.line(list(zip(xs.tolist(), ys.tolist())), fill=TABLEAU[c["label"] % 10] + (255,), width=2)
    elif kind == "network":
        canvas.dots(lon, lat, (120, 120, 120, 60), 1)
        _network(canvas, result)
    else:
        canvas.dots(lon, lat, (40, 40, 40, 160), 1.5)
    canvas.draw.text((10, 10), f"{result.get('analysis', '')}  {result['input']['used']} points",
                     fill=(0, 0, 0, 255))
    canvas.image.convert("RGB").save(path, "PNG")


def _grid(canvas: Canvas, grid: dict) -> None:
    minx, miny, maxx, maxy = grid["bbox"]
    nx, ny = grid["nx"], grid["ny"]
    for row in range(ny):
        for col in range(nx):
            v = grid["values"][row][col]
            if v is None:
                continue
            x0, y0 = canvas.xy(minx + col * (maxx - minx) / nx, maxy - row * (maxy - miny) / ny)
            x1, y1 = canvas.xy(minx + (col + 1) * (maxx - minx) / nx, maxy - (row + 1) * (maxy - miny) / ny)
            canvas.draw.rectangle([float(x0), float(y0), float(x1), float(y1)], fill=colour(v) + (170,))


def _network(canvas: Canvas, result: dict) -> None:
    nodes = {n["id"]: n for n in result["nodes"]}
    top = max((e["weight"] for e in result["edges"]), default=1)
    for e in result["edges"]:
        a, b = nodes[e["source"]], nodes[e["target"]]
        (xa, xb), (ya, yb) = canvas.xy([a["lon"], b["lon"]], [a["lat"], b["lat"]])
        canvas.draw.line([(float(xa), float(ya)), (float(xb), float(yb))],
                         fill=(30, 90, 160, int(40 + 200 * e["weight"] / top)), width=1)
    most = max((n["links"] for n in result["nodes"]), default=1)
    for n in result["nodes"]:
        x, y = canvas.xy(n["lon"], n["lat"])
        r = 2 + 6 * math.sqrt(n["links"] / most)
        canvas.draw.ellipse([float(x) - r, float(y) - r, float(x) + r, float(y) + r], fill=(230, 90, 40, 220))
