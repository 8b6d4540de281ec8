"""Network: places linked by the users they share.

Two places are linked when at least `min_shared` distinct users checked in
at both (in the view, on the chosen days and hours); the link's weight is
that number. The store finds the pairs in one set-based query
(``covisits``); :func:`covisits` here is the same computation in numpy, for
stores without it and for tests. Per place the result gives its links,
weighted degree and betweenness centrality (how often it lies on shortest
paths between other places: the "bridges" between neighbourhoods).
"""

from __future__ import annotations

import time

import networkx as nx
import numpy as np
from scipy import sparse

from ..stores.base import View
from .registry import Param, analysis

EXACT_BETWEENNESS = 2000  # nodes; above it, betweenness is estimated from SAMPLE sources
SAMPLE = 500


@analysis(
    name="network",
    title="Co-visit network",
    description="Places linked by the users who checked in at both, with the number of "
                "shared users as the link weight, and each place's centrality.",
    kinds=("checkins",),
    params=[Param("min_shared", "int", 2, 1, 100, help="distinct users two places must share to be linked")],
)
def network(data, params, progress):
    min_shared = params["min_shared"]
    progress("finding places that share users", 0.05)
    if hasattr(data.store, "covisits"):
        pairs = data.store.covisits(data.layer.name, data.view, min_shared)
        a, b, weight = pairs["a"], pairs["b"], pairs["weight"]
    else:
        cols = data.store.columns(data.layer.name, data.view, ["user", "place"])
        a, b, weight = covisits(cols["user"], cols["place"], min_shared)
    progress(f"{len(a)} links; reading their places", 0.2)
    wanted = set(np.asarray(a).tolist()) | set(np.asarray(b).tolist())
    out = build_network(a, b, weight, _places(data, wanted), progress)
    out.update(kind="network", min_shared=min_shared, input=data.info())
    return out


def covisits(users, places, min_shared=2):
    """Pairs of places (a < b) shared by at least `min_shared` distinct users:
    arrays a, b (place ids as strings) and weight, ordered by a, b."""
    users = np.asarray(users).astype(str)
    places = np.asarray(places).astype(str)
    ids, place_code = np.unique(places, return_inverse=True)  # sorted: code order = id order
    _, user_code = np.unique(users, return_inverse=True)
    visits = sparse.csr_matrix((np.ones(len(places)), (user_code.ravel(), place_code.ravel())),
                               shape=(int(user_code.max(initial=-1)) + 1, len(ids)))
    visits.data[:] = 1.0  # distinct (user, place): repeat check-ins count once
    shared = sparse.triu(visits.T @ visits, k=1).tocoo()
    keep = shared.data >= min_shared
    a, b, w = shared.row[keep], shared.col[keep], shared.data[keep]
    order = np.lexsort((b, a))
    return ids[a[order]].astype(object), ids[b[order]].astype(object), np.rint(w[order]).astype(np.int64)


def build_network(a, b, weight, places: dict, progress=None) -> dict:
    """Nodes (with their place's name, category and position where known, and
    centralities) and edges of the co-visit graph given as parallel arrays.
    `places` holds parallel arrays ``id``, ``lon``, ``lat``, ``name``, ``category``."""
    a, b, weight = np.asarray(a).tolist(), np.asarray(b).tolist(), np.asarray(weight).tolist()
    graph = nx.Graph()
    graph.add_weighted_edges_from(zip(a, b, weight))
    info = {}
    if places:
        keys = [k for k in ("lon", "lat", "name", "category") if k in places]
        columns = [np.asarray(places[k]).tolist() for k in keys]
        for pid, *row in zip(np.asarray(places["id"]).tolist(), *columns):
            info[pid] = dict(zip(keys, row))
    between, how = betweenness(graph, progress)
    links = dict(graph.degree())
    strength = dict(graph.degree(weight="weight"))
    nodes = []
    for node in sorted(graph.nodes, key=str):
        place = info.get(node, {})
        nodes.append({"id": node, **{k: _clean(place.get(k)) for k in ("name", "category", "lon", "lat")},
                      "links": links[node], "weighted_degree": strength[node],
                      "betweenness": between[node]})
    edges = [{"source": s, "target": t, "weight": w} for s, t, w in zip(a, b, weight)]
    return {"nodes": nodes, "edges": edges, "betweenness": how}


def betweenness(graph: nx.Graph, progress=None) -> tuple[dict, dict]:
    """Normalized, unweighted betweenness centrality; exact up to
    EXACT_BETWEENNESS nodes, else estimated from SAMPLE random sources
    (seed 0). Sources go in batches so progress (and cancellation) can
    happen every few hundred ms."""
    n = graph.number_of_nodes()
    nodes = sorted(graph.nodes, key=str)
    sampled = n > EXACT_BETWEENNESS
    sources = nodes
    if sampled:
        pick = np.random.default_rng(0).choice(n, SAMPLE, replace=False)
        sources = [nodes[i] for i in sorted(pick.tolist())]
    total = dict.fromkeys(nodes, 0.0)
    batch, start = 8, 0
    while start < len(sources):
        if progress is not None:
            progress(f"betweenness: {start}/{len(sources)} sources", 0.3 + 0.7 * start / len(sources))
        began = time.monotonic()
        part = nx.betweenness_centrality_subset(graph, sources[start:start + batch], nodes, normalized=False)
        for node, value in part.items():
            total[node] += value
        start += batch
        took = time.monotonic() - began
        batch = max(1, min(4 * batch, int(batch * 0.2 / took) if took > 0 else 4 * batch))
    # The subset sums count each unordered pair once; normalize as networkx does
    # for undirected graphs, and scale a sample up to all sources.
    scale = (2.0 / ((n - 1) * (n - 2)) if n > 2 else 0.0) * (n / len(sources) if sampled else 1.0)
    return ({k: v * scale for k, v in total.items()},
            {"sampled": sampled, "sources": len(sources), "nodes": n})


def _places(data, wanted: set) -> dict:
    """Name, category and position of the wanted places, from the layer's places layer."""
    if not wanted:
        return {}
    if data.layer.places:
        cols = data.store.columns(data.layer.places, View(bbox=data.view.bbox),
                                  ["id", "lon", "lat", "name", "category"])
    else:  # no places layer: take them from the check-ins themselves
        names = [n for n in ("name", "category") if n in data.layer.field_names]
        cols = data.store.columns(data.layer.name, data.view, ["place", "lon", "lat", *names])
        cols["id"] = cols.pop("place")
    cols["id"] = np.asarray(cols["id"]).astype(str).astype(object)
    keep = np.isin(cols["id"].astype(str), np.array(sorted(wanted), dtype=str))
    return {k: np.asarray(v)[keep] for k, v in cols.items()}


def _clean(value):
    """None for missing values (NaN floats), plain Python values otherwise."""
    if isinstance(value, float) and value != value:
        return None
    return value
