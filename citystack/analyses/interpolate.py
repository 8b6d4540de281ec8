"""Interpolate: a surface of a numeric field fitted to the point positions.

A regression model maps position (metres around the view's centre, scaled
by a StandardScaler inside the pipeline, so training, validation and the
grid are scaled alike) to the field, optionally on a log scale (prices are
skewed: log1p keeps 0 and tames the tail). Hyper-parameters are chosen by
k-fold cross-validation over a small declared grid per model, and the
result reports how the chosen model does on held-out points, in the
field's own units, next to the baseline of predicting the mean, so a user
can tell a real surface from noise.
"""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from .grid import grid_for_cells, grid_result
from .registry import BadParam, Param, analysis

GP_MAX_TRAIN = 500  # a Gaussian process costs n^3 per optimizer step: keep a fit to seconds


def _gp_kernels():
    bounds = dict(length_scale_bounds=(1e-2, 1e2))
    noise = WhiteKernel(0.1, noise_level_bounds=(1e-6, 1e1))
    return [ConstantKernel(1.0, (1e-3, 1e3)) * RBF(0.3, **bounds) + noise,
            ConstantKernel(1.0, (1e-3, 1e3)) * Matern(0.3, nu=1.5, **bounds) + noise]


# name -> (label, estimator, parameter grid); positions are standardized,
# so length scales (gamma, GP length_scale) are in units of the spread of the points.
MODELS = {
    # C=100 fits take most of the time (half of it with gamma=10) and did not win on listings.
    "svr": ("SVR", lambda: SVR(cache_size=500), {"C": [1, 10], "gamma": [0.1, 1, 10]}),
    "knn": ("kNN", lambda: KNeighborsRegressor(),
            {"n_neighbors": [5, 10, 20, 40], "weights": ["uniform", "distance"]}),
    "gbr": ("GBR", lambda: GradientBoostingRegressor(random_state=0, subsample=0.8),
            {"n_estimators": [100, 300], "max_depth": [2, 4], "learning_rate": [0.05]}),
    "gp": ("GP", lambda: GaussianProcessRegressor(normalize_y=True, random_state=0),
           {"kernel": _gp_kernels()}),
}


@analysis(
    name="interpolate",
    title="Interpolated surface",
    description="A surface of a numeric field over the view, fitted by a regression model "
                "of position chosen by cross-validation; reports held-out error against "
                "predicting the mean.",
    kinds=("points",),
    params=[
        Param("field", "field", "price", help="numeric field to interpolate"),
        Param("model", "choice", "svr", choices=tuple(MODELS), help="regression model"),
        Param("log", "bool", True, help="fit log1p(field) (for skewed fields such as prices)"),
        Param("cells", "int", 60, 4, 200, help="cells along the longer side of the view"),
        Param("folds", "int", 5, 2, 10, help="cross-validation folds"),
        Param("max_train", "int", 3000, 100, 20000, help="at most this many points train the model"),
    ],
)
def interpolate(data, params, progress):
    field = params["field"]
    grid = grid_for_cells(data.bbox, params["cells"])
    cols = data.columns("lon", "lat", field)
    x, y = grid.project(cols["lon"], cols["lat"])
    gx, gy = grid.mesh_m()
    try:
        surface, report = fit_surface(x, y, cols[field], gx, gy, params["model"], params["log"],
                                      params["folds"], progress, params["max_train"])
    except ValueError as exc:
        raise BadParam("field", str(exc)) from None
    return {"kind": "grid", "grid": grid_result(grid, surface, "range", predicted=surface),
            "field": field, **report, "input": data.info()}


def fit_surface(x_m, y_m, values, gx_m, gy_m, model="svr", log=True, folds=5, progress=None,
                max_train=3000):
    """Fit `model` to values at (x_m, y_m) and predict at the cells (gx_m, gy_m).

    `gx_m`, `gy_m` are either two 1-D axes (the surface is (len(gy), len(gx)))
    or same-shaped arrays of cell centres (the surface has that shape).
    Returns (surface, report); ValueError when there is too little to fit.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r} (models: {', '.join(MODELS)})")
    label, make, grid = MODELS[model]
    x, y = np.asarray(x_m, dtype=float).ravel(), np.asarray(y_m, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    notes = []
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(v)
    if (~ok).sum():
        notes.append(f"{int((~ok).sum())} points without a position or value were left out")
    if log and (v[ok] < 0).any():
        notes.append(f"{int((v[ok] < 0).sum())} negative values were left out (log scale)")
        ok &= ~(v < 0)
    cap = min(int(max_train), GP_MAX_TRAIN) if model == "gp" else int(max_train)
    idx = np.flatnonzero(ok)
    if idx.size > cap:  # reproducible subsample
        idx = np.sort(np.random.default_rng(0).choice(idx, cap, replace=False))
        notes.append(f"trained on a random {cap} of {int(ok.sum())} points")
    if idx.size < max(2 * folds, 10):
        raise ValueError(f"{idx.size} points with a value: at least {max(2 * folds, 10)} needed to fit")
    X = np.column_stack([x[idx], y[idx]])
    target = v[idx]
    fitted = np.log1p(target) if log else target

    kfold = KFold(n_splits=int(folds), shuffle=True, random_state=0)
    splits = list(kfold.split(X))
    candidates = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    tried, best = [], None
    for i, params in enumerate(candidates, 1):
        text = " ".join(f"{k}={_show(p)}" for k, p in params.items())
        if progress is not None:
            progress(f"training model {i}/{len(candidates)}: {label} {text}", i / len(candidates))
        pipe = _pipeline(make, params)
        oof = np.empty_like(fitted)
        for train, test in splits:  # = cross_val_predict, with a cancellation point per fold
            _check(progress)
            oof[test] = clone(pipe).fit(X[train], fitted[train]).predict(X[test])
        rmse = float(np.sqrt(np.mean((oof - fitted) ** 2)))
        tried.append({"params": {k: _show(p) for k, p in params.items()}, "cv_rmse": rmse})
        if best is None or rmse < best[0]:
            best = (rmse, params, oof)
    _, params, oof = best

    pred = np.expm1(oof) if log else oof
    mean_pred = np.empty_like(target)
    for train, test in splits:
        mean_pred[test] = target[train].mean()
    if progress is not None:
        progress("fitting the chosen model on all points", 1.0)
    final = _pipeline(make, params).fit(X, fitted)
    gx, gy = np.asarray(gx_m, dtype=float), np.asarray(gy_m, dtype=float)
    if gx.ndim == 1 and gy.ndim == 1:
        gx, gy = np.meshgrid(gx, gy)
    gx, gy = np.broadcast_arrays(gx, gy)
    surface = final.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    if log:
        surface = np.expm1(surface)
    report = {"model": {"name": model, "params": {k: _show(p) for k, p in params.items()}},
              "metrics": _metrics(target, pred), "baseline": _metrics(target, mean_pred),
              "log": bool(log), "trained_on": int(idx.size), "folds": int(folds),
              "candidates": tried, "notes": notes}
    return surface, report


def _pipeline(make, params) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", make().set_params(**params))])


def _metrics(y, pred) -> dict:
    return {"rmse": float(np.sqrt(mean_squared_error(y, pred))),
            "mae": float(mean_absolute_error(y, pred)), "r2": float(r2_score(y, pred))}


def _show(value):
    """A parameter value as JSON (kernels as their text)."""
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _check(progress) -> None:
    """A cancellation point that posts no event, where the progress object allows it."""
    check = getattr(progress, "check", None)
    if check is not None:
        check()
