"""The real offline CPU model (Qwen2.5-Coder-0.5B-Instruct) turns a plain request into a bar chart."""

import pytest
from helpers import fingerprint, sales_frame

from viscoder_jupyter import generate_plot


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_request_becomes_a_working_bar_chart(offline_model_dir):
    df = sales_frame()
    before = fingerprint(df)
    result = generate_plot(
        {"sales": df},
        "bar chart of the total revenue of each region",
        backend="transformers",
        model=str(offline_model_dir),
        retries=2,
    )
    assert result.ok, [a.error.one_line() for a in result.attempts]
    assert ".bar(" in result.code or "kind='bar'" in result.code or 'kind="bar"' in result.code
    assert result.images[0][:4] == b"\x89PNG"
    assert fingerprint(df) == before
