import pytest

from viscoder_jupyter.core.errors import RequestError
from viscoder_jupyter.core.settings import VisCoder


def test_defaults_follow_vis_coders_protocol():
    s = VisCoder()
    assert (s.lib, s.retries, s.timeout, s.insert) == ("matplotlib", 3, 10.0, True)


def test_environment_sets_defaults(monkeypatch):
    monkeypatch.setenv("VISCODER_BACKEND", "replay")
    monkeypatch.setenv("VISCODER_MODEL", "/models/mine")
    monkeypatch.setenv("VISCODER_REPLAY", "r.jsonl")
    s = VisCoder()
    assert (s.backend, s.model, s.replay) == ("replay", "/models/mine", "r.jsonl")


def test_overrides_win_and_none_keeps_the_setting():
    s = VisCoder(lib="seaborn").with_overrides(lib=None, retries=1)
    assert (s.lib, s.retries) == ("seaborn", 1)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lib": "ggplot"}, "Unknown --lib 'ggplot'"),
        ({"retries": -1}, "--retries must be 0 or more"),
        ({"timeout": 0}, "--timeout must be a positive"),
        ({"colour": "red"}, "Unknown option 'colour'"),
    ],
)
def test_bad_options_are_one_clear_request_error(options, message):
    with pytest.raises(RequestError, match=message):
        VisCoder().with_overrides(**options)
