"""Analysis results as GeoJSON (for the CLI's --out FILE.geojson and GIS tools)."""

from __future__ import annotations


def to_geojson(result: dict) -> dict:
    kind = result.get("kind")
    features = {"grid": _grid, "clusters": _clusters, "network": _network}.get(kind, lambda r: [])(result)
    meta = {k: v for k, v in result.items() if k not in ("grid", "points", "clusters", "nodes", "edges")}
    return {"type": "FeatureCollection", "features": features, "properties": meta}


def _grid(result: dict) -> list:
    grid = result["grid"]
    minx, miny, maxx, maxy = grid["bbox"]
    nx, ny = grid["nx"], grid["ny"]
    dx, dy = (maxx - minx) / nx, (maxy - miny) / ny
    extra = [k for k in grid if k not in ("bbox", "nx", "ny", "values") and isinstance(grid[k], list)]
    out = []
    for row in range(ny):  # rows run north to south
        y1 = maxy - row * dy
        for i in range(nx):
            x0 = minx + i * dx
            ring = [[x0, y1 - dy], [x0 + dx, y1 - dy], [x0 + dx, y1], [x0, y1], [x0, y1 - dy]]
            props = {"row": row, "col": i, "value": grid["values"][row][i]}
            props.update({k: grid[k][row][i] for k in extra})
            out.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                        "properties": props})
    return out


def _clusters(result: dict) -> list:
    pts = result["points"]
    out = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"cluster": int(label)}}
           for x, y, label in zip(pts["lon"], pts["lat"], pts["label"])]
    for c in result["clusters"]:
        hull = [list(map(float, p)) for p in c["hull"]]
        if len(hull) >= 4:
            geometry = {"type": "Polygon", "coordinates": [hull]}
        else:
            geometry = {"type": "MultiPoint", "coordinates": hull}
        out.append({"type": "Feature", "geometry": geometry,
                    "properties": {"cluster": int(c["label"]), "size": int(c["size"]), "outline": True}})
    return out


def _network(result: dict) -> list:
    nodes = {n["id"]: n for n in result["nodes"]}
    out = [{"type": "Feature", "id": n["id"], "geometry": {"type": "Point", "coordinates": [n["lon"], n["lat"]]},
            "properties": {k: v for k, v in n.items() if k not in ("lon", "lat")}} for n in result["nodes"]]
    for e in result["edges"]:
        a, b = nodes[e["source"]], nodes[e["target"]]
        out.append({"type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": [[a["lon"], a["lat"]], [b["lon"], b["lat"]]]},
                    "properties": dict(e)})
    return out
