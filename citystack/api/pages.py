"""The map page: one template, configured from settings."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..state import state

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    conf = state().settings
    config = {
        "tileUrl": conf.tile_url,
        "tileAttribution": conf.tile_attribution,
        "binsThreshold": conf.bins_threshold,
        "maxLimit": conf.max_limit,
        "defaultLayer": conf.classic_layer,
    }
    return render_template("index.html", config=config)
