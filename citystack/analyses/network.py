"""Network: places linked by the users they share.

Two places are linked when at least `min_shared` distinct users checked in
at both (in the view, on the chosen days and hours); the link's weight is
that number. The store finds the pairs in one set-based query
(``Store.covisits``). Per place the result gives its links,
weighted degree and betweenness centrality (how often it lies on shortest
paths between other places: the "bridges" between neighbourhoods).
The number of links can grow with the square of the places: a view whose
links would take more memory than an analysis may use is refused (400,
naming min_shared) before the graph is built.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy import sparse

from ..stores.base import View
from .registry import BadParam, Param, analysis

# Memory per link of the graph and of the answer (networkx's adjacency, the
# edge list, its JSON): measured 535 bytes at the peak on the 749,392 links of
# the Foursquare check-ins with min_shared=1; with margin:
BYTES_PER_LINK = 700


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
    pairs = data.store.covisits(data.layer.name, data.view, min_shared)
    a, b, weight = pairs["a"], pairs["b"], pairs["weight"]
    need, max_bytes = len(a) * BYTES_PER_LINK, getattr(data, "max_bytes", None)
    if max_bytes is not None and need > max_bytes:
        raise BadParam("min_shared", f"{len(a)} links between the places in view (min_shared={min_shared}) "
                                     f"would take about {need / 1e6:,.0f} MB to build and answer, over the "
                                     f"{max_bytes / 1e6:,.0f} MB an analysis may use "
                                     "(CITYSTACK_ANALYSIS_MAX_BYTES): raise min_shared or narrow the view")
    progress(f"{len(a)} links; reading their places", 0.2)
    wanted = set(np.asarray(a).tolist()) | set(np.asarray(b).tolist())
    out = build_network(a, b, weight, _places(data, wanted), progress)
    out.update(kind="network", min_shared=min_shared, input=data.info())
    return out


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
    """Normalized, unweighted betweenness centrality, exact, as
    ``nx.betweenness_centrality`` gives it, but vectorized: Brandes'
    algorithm run from a batch of sources at once, each breadth-first level
    one sparse-by-dense product (networkx's pure-Python search from every
    source takes seconds on a thousand places). Progress per batch."""
    nodes = sorted(graph.nodes, key=str)
    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    ends = np.array([(index[u], index[v]) for u, v in graph.edges() if u != v], dtype=np.int64).reshape(-1, 2)
    adjacency = sparse.csr_matrix((np.ones(2 * len(ends)), (np.r_[ends[:, 0], ends[:, 1]],
                                                            np.r_[ends[:, 1], ends[:, 0]])), shape=(n, n))
    total = np.zeros(n)
    batch = int(max(1, min(512, 4_000_000 // max(n, 1))))  # dense (n, batch) arrays stay small
    for start in range(0, n, batch):
        if progress is not None:
            progress(f"betweenness: {start}/{n} sources", 0.3 + 0.7 * start / max(n, 1))
        total += _dependencies(adjacency, np.arange(start, min(n, start + batch)))
    # Each unordered pair is counted from both ends; normalize as networkx does for undirected graphs.
    scale = 1.0 / ((n - 1) * (n - 2)) if n > 2 else 0.0
    return ({node: float(total[i] * scale) for i, node in enumerate(nodes)},
            {"sampled": False, "sources": n, "nodes": n})


def _dependencies(adjacency, sources: np.ndarray) -> np.ndarray:
    """Sum over `sources` of Brandes' dependencies of every node."""
    n, k = adjacency.shape[0], sources.size
    cols = np.arange(k)
    paths = np.zeros((n, k))  # shortest paths from each source
    depth = np.full((n, k), -1, np.int32)
    paths[sources, cols], depth[sources, cols] = 1.0, 0
    frontier, level = paths.copy(), 0
    while True:  # breadth first, one level for all sources at once
        reached = adjacency @ frontier
        reached[depth != -1] = 0.0
        new = reached > 0
        if not new.any():
            break
        level += 1
        paths[new], depth[new] = reached[new], level
        frontier = np.where(new, reached, 0.0)
    delta = np.zeros((n, k))
    with np.errstate(divide="ignore", invalid="ignore"):
        for d in range(level, 0, -1):  # back from the farthest level
            share = adjacency @ np.where(depth == d, (1.0 + delta) / paths, 0.0)
            delta += np.where(depth == d - 1, paths * share, 0.0)
    delta[sources, cols] = 0.0
    return delta.sum(axis=1)


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
