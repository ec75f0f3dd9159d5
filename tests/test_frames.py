import pandas as pd
import pytest

from viscoder_jupyter.core.errors import RequestError
from viscoder_jupyter.core.frames import select_frames

A = pd.DataFrame({"x": [1]})
B = pd.DataFrame({"y": [2]})


def test_the_only_frame_is_chosen_and_ipython_caches_ignored():
    assert list(select_frames({"a": A, "_": B, "_3": B, "n": 1}, [], "plot it")) == ["a"]


def test_the_frame_the_request_names_is_chosen():
    assert list(select_frames({"sales": A, "costs": B}, [], "bar chart of sales by x")) == ["sales"]


def test_several_frames_without_a_hint_list_the_candidates():
    with pytest.raises(RequestError, match="costs, sales"):
        select_frames({"sales": A, "costs": B}, [], "a bar chart")


@pytest.mark.parametrize(
    "namespace, names, message",
    [
        ({}, [], "No DataFrame found"),
        ({"a": A}, ["b"], "No variable named 'b'"),
        ({"a": [1, 2]}, ["a"], "is a list, not a pandas DataFrame"),
        ({"e": pd.DataFrame()}, [], "is empty"),
    ],
)
def test_bad_input_gets_one_clear_message(namespace, names, message):
    with pytest.raises(RequestError, match=message):
        select_frames(namespace, names, "plot")


def test_several_names_keep_their_order():
    assert list(select_frames({"a": A, "b": B}, ["b", "a"], "")) == ["b", "a"]


def test_the_frame_whose_columns_the_request_names_is_chosen():
    """Several frames, none named: the one with the columns the request speaks of."""
    sales = pd.DataFrame({"region": ["N"], "revenue": [1.0]})
    namespace = {"aaa": pd.DataFrame(), "costs": B, "sales": sales}
    assert list(select_frames(namespace, [], "bar chart of revenue by region")) == ["sales"]


def test_without_a_clear_winner_the_suggestion_is_a_frame_that_fits():
    sales = pd.DataFrame({"region": ["N"], "revenue": [1.0]})
    also = pd.DataFrame({"region": ["S"], "revenue": [2.0]})
    with pytest.raises(RequestError, match=r"e\.g\. %%viscoder also"):  # not the empty 'aaa'
        select_frames({"aaa": pd.DataFrame(), "also": also, "sales": sales}, [], "revenue by region")
    with pytest.raises(RequestError, match=r"e\.g\. %%viscoder costs"):
        select_frames({"aaa": pd.DataFrame(), "costs": B, "sales": A}, [], "a bar chart")
