"""Run in datashader's own virtual env by bench/scale.py: Canvas.points count aggregation of
the same points (lon.npy, lat.npy) on the same bbox and grid sizes. Prints JSON: per size the
p50 ms (after a warm-up call, which compiles numba) and where the counts are saved, north row first."""

import json
import sys
import time

import datashader as ds
import numpy as np
import pandas as pd

folder, extent, sizes, repeat = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
df = pd.DataFrame({"lon": np.load(f"{folder}/scale_lon.npy"), "lat": np.load(f"{folder}/scale_lat.npy")})
x0, y0, x1, y1 = extent
out = {"version": ds.__version__, "sizes": []}
for w, h in sizes:
    canvas = ds.Canvas(plot_width=w, plot_height=h, x_range=(x0, x1), y_range=(y0, y1))
    agg = canvas.points(df, "lon", "lat", agg=ds.count())
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        agg = canvas.points(df, "lon", "lat", agg=ds.count())
        times.append(time.perf_counter() - start)
    path = f"{folder}/datashader_{w}x{h}.npy"
    np.save(path, np.asarray(agg.values)[::-1].astype(np.uint32))  # datashader's row 0 is the south row
    ms = np.asarray(times) * 1000
    out["sizes"].append({"ms": {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90))},
                         "path": path})
print(json.dumps(out))
