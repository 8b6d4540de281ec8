"""The server against its own OpenAPI document, by schemathesis.

Every operation (but the never-ending 2015 event stream) is called with
requests generated from the document, valid and invalid ones, on an
in-process app over the sample DuckDB database. Each answer must have a
documented status, content type and headers, a body that fits its schema,
never be a 5xx, and invalid requests must be refused.

Valid requests must be accepted too, with the exceptions a schema cannot
express, and only those: a 400 to a valid request must name a parameter
whose validity depends on the data or on another parameter (DATA_DEPENDENT).

The layer-bound operations run on each sample layer (a generated layer name
is almost always unknown: one run per operation keeps it, for the 404s).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from citystack.analyses import registry  # noqa: E402
from citystack.api.openapi import paths  # noqa: E402
from citystack.settings import Settings  # noqa: E402

EXAMPLES = 6  # per operation, layer and generation mode (hypothesis); coverage cases besides
NEVER_ENDS = {"/eventSource/"}

# Parameters that values valid by the document can still get wrong, and why.
DATA_DEPENDENT = {
    "bbox",  # min above max, or a latitude outside -90..90 (one item schema serves the four numbers)
    "days", "hours",  # on a layer without a time field (and not a check-in layer)
    "from", "to",  # on a layer without a time field (none of the sample's has one); to after from
    "properties", "field", "weight", "fields",  # field names: those of the layer only
    "layer",  # an analysis asked of a layer of another kind
    "w", "h", "cell_size",  # /getData/: needed with analysis=true; cells must fit the window
    "width",  # density: width x height must fit the pixel cap
    "areas",  # areas, flows: the name of a layer of kind areas (the sample has none)
    "end_lon", "end_lat", "start", "end", "category",  # flows' and areas' fields: those of a trips layer
    "min_users",  # check-in layers only (the users are theirs)
}

# Gaussian-process and gradient-boosting fits take tens of seconds whatever the points
# (test_analyses_api runs them); here they would take the whole time budget.
SLOW_MODELS = {"gp", "gbr"}
LAYERS = {"listings": "points", "checkins": "checkins", "checkins_places": "points"}
registry.load()
OPERATIONS = sorted(p for p in paths(Settings()) if p not in NEVER_ENDS)


def runs():
    """(path, fixed path parameters, fixed query) for each run."""
    for path in OPERATIONS:
        if "{layer}" in path:
            yield pytest.param(path, {}, {}, id=f"{path}-any")
            for layer in LAYERS:
                yield pytest.param(path, {"layer": layer}, {}, id=f"{path}-{layer}")
        elif path.startswith("/api/analyses/"):
            kinds = registry.REGISTRY[path.rsplit("/", 1)[1]].kinds
            for layer in [name for name, kind in LAYERS.items() if kind in kinds][:2]:
                yield pytest.param(path, {}, {"layer": layer}, id=f"{path}-{layer}")
        else:
            yield pytest.param(path, {}, {}, id=path)


@pytest.fixture(scope="module")
def app(duckdb_db):
    from citystack.app import create_app
    from citystack.stores import open_store

    conf = Settings.from_env({}, db=str(duckdb_db), analysis_max_points=150)
    store = open_store(conf.db, conf)
    yield create_app(conf, store)
    store.close()


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


def test_document_is_valid_openapi_3(api_schema):
    api_schema.validate()  # against the OpenAPI 3.0 meta-schema; raises on any fault
    assert api_schema.raw_schema["openapi"].startswith("3.0.")


def test_every_operation_is_tested(api_schema):
    documented = {path for path in api_schema.raw_schema["paths"]} - NEVER_ENDS
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("path,path_parameters,query", list(runs()))
def test_operation_conforms(api_schema, path, path_parameters, query, mode):
    """Generated requests (hypothesis): random values, within the document or not."""
    operation = api_schema[path]["GET"]
    if mode.is_negative and not [p for p in operation.query if p.name not in query]:
        pytest.skip("no query parameter to get wrong (a path segment is any text)")
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None,
                                     query=query or None)

    @given(strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        prepare(case, path_parameters, query)
        verify(case, case.call())

    check()


@pytest.mark.parametrize("path,path_parameters,query", list(runs()))
def test_operation_boundaries(api_schema, path, path_parameters, query):
    """Schemathesis' coverage cases: each parameter at its bounds and just past them,
    each enum value, wrong types, missing required parameters, repeated parameters,
    other HTTP methods (a 405 with the right Allow)."""
    operation = api_schema[path]["GET"]
    api_schema.config.phases.coverage.generate_duplicate_query_parameters = True
    failures = []
    for case in api_schema.iter_coverage_cases(
            operation, generation_modes=list(GenerationMode),
            generation_config=api_schema.config.generation_for(operation=operation, phase="coverage")):
        prepare(case, path_parameters, query)
        response = case.call()
        try:
            verify(case, response)
        except Exception as exc:  # noqa: BLE001 - every failure is collected, then shown
            failures.append(f"{case.method} {case.formatted_path} {case.query} "
                            f"[{case.meta.generation.mode} {getattr(case.meta.phase.data, 'scenario', '')}]: "
                            f"{response.status_code} {str(exc)[:400]}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:15])


def prepare(case, path_parameters: dict, query: dict) -> None:
    """Put the run's layer into a generated case (unless the layer is what the case tests),
    leave out what only masks the rest, and keep analyses to models that fit in a moment."""
    data = getattr(case.meta, "phase", None) and case.meta.phase.data
    subject = getattr(data, "parameter", None)
    if path_parameters and subject != "layer":
        case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
    if query and subject != "layer" and isinstance((case.query or {}).get("layer"), str):
        case.query = {**case.query, **query}
    layer = (path_parameters or query).get("layer")
    if layer in LAYERS and case.query:
        # days and hours are a 400 on a points layer without a time field, from and to on every sample
        # layer (none has a time field): they would hide every other parameter
        timed = ("days", "hours", "from", "to") if LAYERS[layer] == "points" else ("from", "to")
        case.query = {k: v for k, v in case.query.items() if k not in timed or k == subject}
    model = (case.query or {}).get("model")
    if isinstance(model, str) and model in SLOW_MODELS:
        case.query = {**case.query, "model": "knn"}


def verify(case, response) -> None:
    """Status, content type, headers and body as documented; no 5xx; invalid data refused;
    valid data accepted but for what the document cannot express."""
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    if case.method == "GET" and case.meta.generation.mode.is_positive and response.status_code == 400:
        body = response.json()
        assert body.get("parameter") in DATA_DEPENDENT | undocumented(case), (
            f"a valid request was refused: GET {case.formatted_path} {case.query} -> {body}")


def undocumented(case) -> set[str]:
    """Query names of a case that are no parameter of its operation: field filters."""
    names = {p.name for p in case.operation.query}
    return set(case.query or {}) - names
