"""Odd DataFrames: the description stays within budget without raising, and the handover
to the child kernel keeps every dtype.

Property-based (hypothesis) over generated frames, plus the named extremes: 10,000
columns, 10 million rows, empty. "Bounded time" is pytest-timeout's generous limit, not
a timed assertion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from viscoder_jupyter import runtime
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.core.context import describe_frame
from viscoder_jupyter.core.errors import RequestError
from viscoder_jupyter.core.frames import check_frames

TIMEZONES = ["UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]
text = st.text(max_size=12)  # any unicode, empty and whitespace included
long_text = st.text(min_size=300, max_size=800)
scalar = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(), text, st.booleans(), st.binary(max_size=4))
column_name = st.one_of(
    text,
    long_text,
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.none(),
    st.sampled_from(["a\udc80b", "é", "🙂\u200b", "\n\t", "x" * 2000]),
)


@st.composite
def column(draw, rows: int):
    kind = draw(
        st.sampled_from(
            ["int", "float", "nan", "bool", "str", "object", "category", "tz", "timedelta", "Int64", "string", "nested"]
        )
    )
    if kind == "int":
        return pd.Series(draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=rows, max_size=rows)), dtype="int64")
    if kind == "float":
        return pd.Series(draw(st.lists(st.floats(), min_size=rows, max_size=rows)), dtype="float64")
    if kind == "nan":
        return pd.Series([np.nan] * rows, dtype=draw(st.sampled_from(["float64", "object"])))
    if kind == "bool":
        return pd.Series(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
    if kind == "str":
        return pd.Series(draw(st.lists(text, min_size=rows, max_size=rows)), dtype=object)
    if kind == "object":
        return pd.Series(draw(st.lists(scalar, min_size=rows, max_size=rows)), dtype=object)
    if kind == "category":
        labels = st.one_of(st.none(), st.sampled_from(["lo", "mid", "hi", "ünï"]))
        values = draw(st.lists(labels, min_size=rows, max_size=rows))
        return pd.Series(pd.Categorical(values, ordered=draw(st.booleans())))
    if kind == "tz":
        seconds = draw(st.lists(st.integers(-(2**33), 2**33), min_size=rows, max_size=rows))
        return pd.Series(pd.to_datetime(seconds, unit="s", utc=True).tz_convert(draw(st.sampled_from(TIMEZONES))))
    if kind == "timedelta":
        seconds = draw(st.lists(st.integers(-(10**9), 10**9), min_size=rows, max_size=rows))
        return pd.Series(pd.to_timedelta(seconds, unit="s"))
    if kind == "Int64":
        values = draw(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=rows, max_size=rows))
        return pd.Series(values, dtype="Int64")
    if kind == "string":
        return pd.Series(draw(st.lists(st.one_of(st.none(), text), min_size=rows, max_size=rows)), dtype="string")
    return pd.Series([[i, {"k": [i]}] for i in range(rows)], dtype=object)


@st.composite
def frames(draw):
    rows = draw(st.integers(0, 8))
    width = draw(st.integers(0, 8))
    names = draw(st.lists(column_name, min_size=width, max_size=width))
    if width > 1 and draw(st.booleans()):
        names[-1] = names[0]  # a duplicate name
    df = pd.DataFrame({i: draw(column(rows)) for i in range(width)}, index=pd.RangeIndex(rows))
    if draw(st.booleans()) and width:
        df.columns = pd.MultiIndex.from_tuples([(str(n)[:5], i % 2) for i, n in enumerate(names)])
    else:
        df.columns = pd.Index(names, dtype=object)
    index = draw(st.sampled_from(["range", "multi", "str", "dates"]))
    if index == "multi":
        df.index = pd.MultiIndex.from_arrays([[f"g{i % 2}" for i in range(rows)], list(range(rows))])
    elif index == "str":
        df.index = pd.Index(draw(st.lists(text, min_size=rows, max_size=rows)), dtype=object)
    elif index == "dates":
        df.index = pd.date_range("2024-03-31", periods=rows, freq="h", tz="Europe/Oslo")
    return df


def check_description(df: pd.DataFrame, budget: int) -> str:
    text = describe_frame(df, budget)
    assert isinstance(text, str) and len(text) <= budget
    text.encode("utf-8")  # the prompt must be encodable (no lone surrogates)
    if budget >= 40:
        assert text.startswith(f"DataFrame with {df.shape[1]} columns and {df.shape[0]} rows")
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=frames(), budget=st.sampled_from([60, 300, 4000]))
@example(df=pd.DataFrame({"a\udc80": ["x\udc80"]}), budget=4000)
@pytest.mark.timeout(300)
def test_description_stays_within_budget(df, budget):
    check_description(df, budget)


@pytest.mark.timeout(120)
def test_named_extremes_are_described():
    wide = pd.DataFrame(np.zeros((3, 10_000)))
    text = check_description(wide, 4000)
    assert "more columns" in text and "Head (first" in text
    long = pd.DataFrame({"x": np.arange(10_000_000, dtype="float64"), "tag": pd.Categorical(["a", "b"] * 5_000_000)})
    assert "10000000 rows" in check_description(long, 4000)
    assert "0 columns and 0 rows" in check_description(pd.DataFrame(), 4000)
    assert "2 columns and 0 rows" in check_description(pd.DataFrame(columns=["a", "b"]), 4000)


def test_an_empty_frame_is_refused_with_a_clear_message():
    with pytest.raises(RequestError, match="is empty"):
        check_frames({"df": pd.DataFrame(columns=["a"])})


# ---- the handover to the child kernel ------------------------------------------------------
SIGNATURE = """
import hashlib
def _signature(df):
    cats = [repr(s.cat.categories.tolist()) + str(s.cat.ordered) if str(s.dtype) == "category" else ""
            for _, s in df.items()]
    index_dtypes = [str(t) for t in df.index.dtypes] if df.index.nlevels > 1 else [str(df.index.dtype)]
    parts = (df.shape, [str(t) for t in df.dtypes], cats, type(df.columns).__name__, df.columns.nlevels,
             repr(list(df.columns)), type(df.index).__name__, index_dtypes)
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()
"""
_scope: dict = {}
exec(SIGNATURE, _scope)
signature = _scope["_signature"]


@pytest.fixture(scope="module")
def kernel():
    k = ChildKernel()
    runtime.submit(k.async_start()).result(120)
    yield k
    runtime.submit(k.async_shutdown()).result(60)


def handed_over(kernel, df: pd.DataFrame) -> str:
    runtime.submit(kernel.async_load_frames({"df": df})).result(300)
    out = runtime.submit(kernel.async_run(SIGNATURE + "print(_signature(df))", 300)).result(600)
    assert out.error is None, out.error.feedback_text()
    return out.stdout.strip()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(df=frames())
@pytest.mark.timeout(300)
def test_handover_keeps_dtypes(kernel, df):
    assert handed_over(kernel, df) == signature(df)


@pytest.mark.timeout(300)
def test_handover_of_the_extremes(kernel):
    for df in (
        pd.DataFrame(np.zeros((3, 10_000))),
        pd.DataFrame({"x": np.arange(10_000_000, dtype="float64"), "tag": pd.Categorical(["a", "b"] * 5_000_000)}),
    ):
        assert handed_over(kernel, df) == signature(df)
