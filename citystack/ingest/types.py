"""Finding the types of a file's columns, in DuckDB SQL (no Python per row).

A CSV file is read as text (ingest/readers.py); here each text column gets
the first of these types its values fit, tried in this order:

- ``bool`` written ``1``/``0``: only when every value is 1 or 0;
- ``integer`` (BIGINT), then ``number`` (DOUBLE): ``12``, ``-3.5``, ``1e6``;
- ``percent``: ``97%`` -> 97 (a number, unit ``percent``);
- ``money``: ``$1,234.00``, ``-€5``, ``1.234,00 €`` (a number, unit ``money``); at
  least one value carries a currency sign. The decimal mark is read from the
  whole column: ``1.234,00`` (comma decimals) only when no value reads only
  the other way (``1,234.00``), and a column with both is text;
- ``bool``: ``t``/``f``, ``true``/``false``, ``yes``/``no``, in any case;
- ``time`` (TIMESTAMP): ISO 8601 with a space or ``T``, with or without seconds,
  fractional seconds and a UTC offset (``2021-01-08T17:58:48+02:00`` is stored
  as ``2021-01-08 15:58:48``: a value with an offset becomes UTC, one without
  is kept as written), and US ``M/D/YYYY H:MM[:SS][ AM|PM]``; a date among
  them is its midnight;
- ``date`` (DATE): ``2019-05-21``, US ``5/21/2019``;
- else ``text``.

The threshold: a type is taken when at least 95% (:data:`THRESHOLD`) of the
column's non-empty values are of it, first on a sample of the column
(:data:`SAMPLE` values, reproducible), then on all of it; the values that do
not parse become NULL, and the report counts them and shows the first few.
Unix seconds or milliseconds are never guessed: ``--type COL=unix_s`` or
``unix_ms`` says so. ``--type COL=KIND`` overrules the detection (any share
of bad values then stands). Columns DuckDB read typed (GeoJSON, Parquet)
keep their types: integers BIGINT, other numbers DOUBLE, timestamps with a
time zone UTC; their text columns are detected like a CSV's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..stores.base import BOOL, DATE, NUMERIC, TEXT, TIME, quote

KINDS = ("text", "number", "integer", "bool", "time", "date", "unix_s", "unix_ms")
THRESHOLD = 0.95
SAMPLE = 10_000
SHOW = 5

INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT")
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL", "DECIMAL")
TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATETIME")

# RE2 patterns, matched against the whole trimmed value.
INT = r"[+-]?\d+"
FLOAT = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
PERCENT = FLOAT + r"\s?%"
CURRENCY = r"[$€£¥]"
_SP = r"[\s\x{00A0}]?"
MONEY_US = rf"[+-]?{CURRENCY}?{_SP}[+-]?(\d{{1,3}}(,\d{{3}})+|\d+)(\.\d+)?{_SP}{CURRENCY}?"
MONEY_EU = rf"[+-]?{CURRENCY}?{_SP}[+-]?(\d{{1,3}}(\.\d{{3}})+|\d+)(,\d+)?{_SP}{CURRENCY}?"
BOOL_WORDS = {"t": True, "f": False, "true": True, "false": False, "yes": True, "no": False}
DATE_ISO = r"\d{4}-\d{1,2}-\d{1,2}"
DATE_US = r"\d{1,2}/\d{1,2}/\d{4}"
_CLOCK = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
TS_ISO = rf"\d{{4}}-\d{{1,2}}-\d{{1,2}}[Tt ]{_CLOCK}"
OFFSET = r"\s?([zZ]|[+-]\d{2}(:?\d{2})?)"
OFFSET_END = r":\d{2}(\.\d+)?\s?([zZ]|[+-]\d{2}(:?\d{2})?)$"
TS_US = rf"\d{{1,2}}/\d{{1,2}}/\d{{4}} {_CLOCK}(\s?[AaPp][Mm])?"
US_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p",
              "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y")


class TypeSpecError(ValueError):
    """A ``--type`` that cannot be used; the message names it."""


@dataclass
class Typed:
    """A column's type as loaded, and what did not fit it."""

    column: str
    public: str
    type: str  # one of stores.base.TYPES
    integer: bool = False
    unit: str | None = None  # "percent", "money"
    form: str = ""  # how the values were read, for the report
    bad: int = 0  # non-empty values that did not parse (now NULL)
    examples: list[tuple[int, str]] = field(default_factory=list)  # (row, value), the first few
    given: bool = False  # from --type

    def describe(self) -> str:
        kind = "integer" if self.integer else self.type
        extra = [x for x in (self.unit, self.form) if x]
        return kind + (f" ({', '.join(extra)})" if extra else "")


def parse_types(pairs: Iterable[str]) -> dict[str, str]:
    """``COLUMN=KIND`` pairs (the column by its name in the file) as {column: kind}."""
    out: dict[str, str] = {}
    for pair in pairs:
        col, sep, kind = pair.rpartition("=")
        if not sep or not col:
            raise TypeSpecError(f"--type {pair!r}: write COLUMN=TYPE, TYPE one of {', '.join(KINDS)}")
        kind = kind.strip().lower()
        if kind not in KINDS:
            raise TypeSpecError(f"--type {pair!r}: unknown type {kind!r} (types: {', '.join(KINDS)})")
        out[col] = kind
    return out


# -- SQL of each way of reading a value ---------------------------------------

def _match(v: str, pattern: str) -> str:
    return f"regexp_full_match({v}, '{pattern}')"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _readers(v: str) -> dict[str, str]:
    """SQL reading the trimmed text `v` as each candidate (NULL where it does not fit)."""
    words = " ".join(f"WHEN '{w}' THEN {str(b).lower()}" for w, b in BOOL_WORDS.items())
    us_formats = "[" + ", ".join(_lit(f) for f in US_FORMATS) + "]"
    # One search per value: an offset after the clock goes through TIMESTAMPTZ (to UTC); DuckDB's
    # TIMESTAMP cast reads the ISO forms (and would drop an offset); the US forms are strptime's.
    time = (f"CASE WHEN regexp_matches({v}, '{OFFSET_END}') THEN timezone('UTC', TRY_CAST({v} AS TIMESTAMPTZ)) "
            f"ELSE coalesce(TRY_CAST({v} AS TIMESTAMP), try_strptime({v}, {us_formats})) END")
    number = f"CASE WHEN {_match(v, FLOAT)} THEN TRY_CAST({v} AS DOUBLE) END"
    seconds = f"CASE WHEN {_match(v, FLOAT)} THEN TRY_CAST({v} AS DOUBLE) END"
    return {
        "bool01": f"CASE {v} WHEN '1' THEN true WHEN '0' THEN false END",
        "integer": f"CASE WHEN {_match(v, INT)} THEN TRY_CAST({v} AS BIGINT) END",
        "number": number,
        "percent": f"CASE WHEN {_match(v, PERCENT)} OR {_match(v, FLOAT)} "
                   f"THEN TRY_CAST(regexp_replace({v}, '\\s?%$', '') AS DOUBLE) END",
        "money_us": f"CASE WHEN {_match(v, MONEY_US)} "
                    f"THEN TRY_CAST(regexp_replace({v}, '[$€£¥,\\s\\x{{00A0}}]', '', 'g') AS DOUBLE) END",
        "money_eu": f"CASE WHEN {_match(v, MONEY_EU)} THEN TRY_CAST(replace(regexp_replace({v}, "
                    f"'[$€£¥.\\s\\x{{00A0}}]', '', 'g'), ',', '.') AS DOUBLE) END",
        "bool": f"CASE lower({v}) {words} END",
        "time": time,
        "date": (f"coalesce(CASE WHEN {_match(v, DATE_ISO)} THEN TRY_CAST({v} AS DATE) END, "
                 f"CAST(try_strptime({v}, '%m/%d/%Y') AS DATE))"),
        "unix_s": f"timezone('UTC', to_timestamp({seconds}))",
        "unix_ms": f"timezone('UTC', to_timestamp(({seconds}) / 1000.0))",
    }


# candidate -> (type, integer, unit, form)
CANDIDATES = {
    "bool01": (BOOL, False, None, "1/0"),
    "integer": (NUMERIC, True, None, ""),
    "number": (NUMERIC, False, None, ""),
    "percent": (NUMERIC, False, "percent", ""),
    "money_us": (NUMERIC, False, "money", "1,234.56"),
    "money_eu": (NUMERIC, False, "money", "1.234,56"),
    "bool": (BOOL, False, None, ""),
    "time": (TIME, False, None, ""),
    "date": (DATE, False, None, ""),
    "unix_s": (TIME, False, None, "Unix seconds"),
    "unix_ms": (TIME, False, None, "Unix milliseconds"),
}


def _given_readers(kind: str, r: dict[str, str]) -> tuple[str, str]:
    """(candidate name, SQL) for a type the user gave."""
    if kind == "number":
        return "number", f"coalesce({r['number']}, {r['percent']}, {r['money_us']})"
    if kind == "integer":
        return "integer", f"coalesce({r['integer']}, CASE WHEN {r['number']} = round({r['number']}) " \
                          f"AND abs({r['number']}) < 9.2e18 THEN CAST({r['number']} AS BIGINT) END)"
    if kind == "bool":
        return "bool", f"coalesce({r['bool']}, {r['bool01']})"
    if kind == "date":
        return "date", f"coalesce({r['date']}, CAST({r['time']} AS DATE))"
    return kind, r[kind]


# -- detection ----------------------------------------------------------------

def detect(con, table: str, columns: dict[str, str], public: dict[str, str],
           given: dict[str, str] | None = None, keep: Iterable[str] = ()) -> dict[str, Typed]:
    """Find each column's type and rewrite `table` with the typed columns (`keep`: other
    columns to carry over as they are). `columns`: identifier -> DuckDB type; `public`:
    identifier -> the file's name; `given`: identifier -> kind (``--type``)."""
    given = dict(given or {})
    out: dict[str, Typed] = {}
    exprs: dict[str, str] = {}
    pending: dict[str, list[str]] = {}  # detected column -> its candidates, the one in use first
    sources: dict[str, str] = {}  # column -> SQL of its trimmed text, for the columns read from text
    texts = [c for c, d in columns.items() if d.split("(")[0].upper() == "VARCHAR" and c not in given]
    samples = _samples(con, table, texts)
    for col, dtype in columns.items():
        base = dtype.split("(")[0].upper()
        typed = Typed(col, public.get(col, col), TEXT)
        out[col] = typed
        text = f"nullif(trim(CAST({quote(col)} AS VARCHAR)), '')"
        if col in given:
            kind = given[col]
            typed.given = True
            if kind == "text":
                exprs[col] = quote(col) if base == "VARCHAR" else f"CAST({quote(col)} AS VARCHAR)"
                continue
            name, sql = _given_readers(kind, _readers(text))
            sources[col] = text
            _set(typed, name)
            exprs[col] = sql
        elif base != "VARCHAR":
            exprs[col] = _native(typed, col, dtype)
        else:
            cands = _candidates(samples[col])
            if cands:
                sources[col], pending[col] = text, cands
                _set(typed, cands[0])
                exprs[col] = _readers(text)[cands[0]]
            else:
                exprs[col] = quote(col)
    carried = [quote(c) for c in keep]
    while True:  # typed once; again only where a column's values beyond its sample do not fit
        select = ", ".join(carried + [f"{exprs[c]} AS {quote(c)}" for c in columns])
        con.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS SELECT {select} FROM {quote(table)}")
        counts = _bad_counts(con, table, {c: sources[c] for c in sources})
        retry = False
        for col, cands in pending.items():
            filled, bad = counts[col]
            if bad <= (0 if cands[0] == "bool01" else (1 - THRESHOLD) * filled):
                continue
            retry = True
            cands.pop(0)
            if cands:
                _set(out[col], cands[0])
                exprs[col] = _readers(sources[col])[cands[0]]
            else:
                out[col] = Typed(col, out[col].public, TEXT)
                exprs[col] = quote(col)
                del sources[col]
        pending = {c: k for c, k in pending.items() if k and c in sources}
        if not retry:
            break
    # The values that did not parse: counted, and the first few shown.
    for col, (filled, bad) in counts.items():
        out[col].bad = bad
        if bad:
            out[col].examples = [(int(r), str(v)) for r, v in con.execute(
                f"SELECT r._row, CAST(r.{quote(col)} AS VARCHAR) FROM {quote(table)} AS r POSITIONAL JOIN _typed AS t "
                f"WHERE {_bad(col, sources[col])} ORDER BY r._row LIMIT {SHOW}").fetchall()]
    con.execute(f"DROP TABLE {quote(table)}")
    con.execute(f"ALTER TABLE _typed RENAME TO {quote(table)}")
    return out


def _bad(col: str, text: str) -> str:
    """A value of the raw table (r) that the typed one (t) could not read."""
    return f"{text.replace(quote(col), 'r.' + quote(col))} IS NOT NULL AND t.{quote(col)} IS NULL"


def _bad_counts(con, table: str, sources: dict[str, str]) -> dict[str, tuple[int, int]]:
    """column -> (non-empty values, of them the ones the typed table holds as NULL), in one
    scan of both tables side by side (``_typed`` is made from `table` row by row, in order)."""
    if not sources:
        return {}
    parts = []
    for col, text in sources.items():
        parts += [f"count({text.replace(quote(col), 'r.' + quote(col))})", f"count(*) FILTER (WHERE {_bad(col, text)})"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {quote(table)} AS r POSITIONAL JOIN _typed AS t").fetchone()
    return {c: (int(row[2 * i]), int(row[2 * i + 1])) for i, c in enumerate(sources)}


def _set(typed: Typed, candidate: str) -> None:
    typed.type, typed.integer, typed.unit, typed.form = CANDIDATES[candidate]


def _native(typed: Typed, col: str, dtype: str) -> str:
    """A column DuckDB read typed: kept, in the store's types."""
    base = dtype.split("(")[0].upper()
    q = quote(col)
    if base in INTEGER_TYPES:
        typed.type, typed.integer = NUMERIC, True
        return q if base == "BIGINT" else f"TRY_CAST({q} AS BIGINT)"
    if base in FLOAT_TYPES:
        typed.type = NUMERIC
        return f"CAST({q} AS DOUBLE)"
    if base == "BOOLEAN":
        typed.type = BOOL
        return q
    if base == "DATE":
        typed.type = DATE
        return q
    if base in TIMESTAMP_TYPES:
        typed.type = TIME
        return f"CAST({q} AS TIMESTAMP)"
    if dtype.upper().startswith("TIMESTAMP WITH TIME ZONE") or base == "TIMESTAMPTZ":
        typed.type = TIME
        return f"timezone('UTC', {q})"
    typed.type = TEXT
    return f"CAST({q} AS VARCHAR)"


def _samples(con, table: str, cols: list[str]) -> dict[str, tuple]:
    """For each column, the counts of its sampled non-empty values of each form: one
    reproducible sample of rows for all columns, and a sample of its own for a column
    too sparse in it."""
    if not cols:
        return {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE _sample AS SELECT {', '.join(quote(c) for c in cols)} "
                f"FROM {quote(table)} USING SAMPLE reservoir({SAMPLE} ROWS) REPEATABLE (2015)")
    rows = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0]
    out = {}
    for col in cols:
        stats = _form_counts(con, "_sample", col)
        if stats[0] < SAMPLE // 10 and rows > SAMPLE:  # sparse: sample its own non-empty values
            con.execute(f"CREATE OR REPLACE TEMP TABLE _sparse AS SELECT {quote(col)} FROM {quote(table)} "
                        f"WHERE nullif(trim({quote(col)}), '') IS NOT NULL "
                        f"USING SAMPLE reservoir({SAMPLE} ROWS) REPEATABLE (2015)")
            stats = _form_counts(con, "_sparse", col)
        out[col] = stats
    con.execute("DROP TABLE IF EXISTS _sample")
    con.execute("DROP TABLE IF EXISTS _sparse")
    return out


def _form_counts(con, table: str, col: str) -> tuple:
    v = "v"
    text = f"nullif(trim({quote(col)}), '')"
    return con.execute(
        f"WITH s AS (SELECT {text} AS v FROM {quote(table)} WHERE {text} IS NOT NULL) SELECT count(*), "
        f"count(*) FILTER ({_match(v, INT)}), count(*) FILTER ({_match(v, FLOAT)}), "
        f"count(*) FILTER ({_match(v, PERCENT)}), "
        f"count(*) FILTER ({_match(v, MONEY_US)}), count(*) FILTER ({_match(v, MONEY_EU)}), "
        f"count(*) FILTER ({_match(v, MONEY_US)} AND NOT {_match(v, MONEY_EU)}), "
        f"count(*) FILTER ({_match(v, MONEY_EU)} AND NOT {_match(v, MONEY_US)}), "
        f"count(*) FILTER (regexp_matches(v, '{CURRENCY}')), "
        f"count(*) FILTER (lower(v) IN ({', '.join(_lit(w) for w in BOOL_WORDS)})), "
        f"count(*) FILTER (v IN ('0', '1')), "
        f"count(*) FILTER ({_match(v, DATE_ISO)} OR {_match(v, DATE_US)}), "
        f"count(*) FILTER ({_match(v, TS_ISO + OFFSET)} OR {_match(v, TS_ISO)} OR {_match(v, TS_US)}) "
        "FROM s").fetchone()


def _candidates(stats: tuple) -> list[str]:
    """The candidates a sample's form counts fit, best first."""
    n, ints, nums, pct, us, eu, us_only, eu_only, cur, words, b01, dates, stamps = stats
    if not n:
        return []
    enough = lambda k: k >= THRESHOLD * n  # noqa: E731
    out = []
    if b01 == n:
        out.append("bool01")
    if enough(ints):
        out.append("integer")
    if enough(nums):
        out.append("number")
    if pct and enough(pct + nums):
        out.append("percent")
    if cur:
        if eu_only and not us_only and enough(eu):
            out.append("money_eu")
        elif not eu_only and enough(us):
            out.append("money_us")
    if enough(words):
        out.append("bool")
    if stamps and enough(stamps + dates):
        out.append("time")
    if enough(dates):
        out.append("date")
    return out
