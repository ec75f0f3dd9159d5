"""Every flag that sets a `VisCoder` setting (viscoder bench, viscoder serve, %%viscoder) takes its
default, type and choices from the setting's trait; a CLI default that differs is declared."""

import argparse

import pytest
from traitlets import Enum, Float, Int

from viscoder_jupyter.core.setting_flags import add_setting_flags
from viscoder_jupyter.core.settings import VisCoder, setting, setting_default
from viscoder_jupyter.tools import bench, serve

TRAITS = VisCoder.class_traits(config=True)


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    for var in ("VISCODER_BACKEND", "VISCODER_MODEL", "VISCODER_REPLAY", "VISCODER_BASE_URL", "VISCODER_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def setting_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest in TRAITS}


def check_against_traits(actions: dict, declared: dict) -> None:
    for name, action in actions.items():
        trait = TRAITS[name]
        assert action.option_strings == ["--" + name.replace("_", "-")]
        expected = declared.get(name, trait.default_value)
        assert action.default == expected, f"--{name}: default {action.default!r}, the setting's {expected!r}"
        if isinstance(trait, (Int, Float)):
            assert action.type is (int if isinstance(trait, Int) else float), name
        if isinstance(trait, Enum) and action.choices is not None:
            assert list(action.choices) == list(trait.values), name
        assert trait.help.split(".")[0] in action.help, name


def test_bench_flags_are_the_settings_but_its_declared_defaults():
    actions = setting_actions(bench.make_parser())
    assert set(actions) == set(bench.SETTING_FLAGS)
    check_against_traits(actions, bench.SETTING_DEFAULTS)
    assert actions["lib"].choices == ["matplotlib", "seaborn", "plotly"]
    # VisCoder's protocol, pinned on purpose (the paper's 3 rounds of 10 s).
    assert (bench.SETTING_DEFAULTS["retries"], bench.SETTING_DEFAULTS["timeout"]) == (3, 10.0)


def test_serve_flags_are_the_settings():
    actions = setting_actions(serve.make_parser())
    assert set(actions) == {"model", "quantization", "max_new_tokens"}
    check_against_traits(actions, {})
    args = serve.parse_args([])
    assert (args.quantization, args.max_new_tokens) == ("auto", 2048)


def test_serve_model_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("VISCODER_MODEL", "/models/mine")
    assert serve.parse_args([]).model == "/models/mine"


def test_magic_flags_are_unset_with_the_settings_help():
    from viscoder_jupyter.frontends.magics import VisCoderMagics

    parser = VisCoderMagics.viscoder.parser
    actions = setting_actions(parser)
    assert set(actions) == {"lib", "retries", "timeout", "attempt_budget", "backend", "model"}
    check_against_traits(actions, dict.fromkeys(actions))  # None: the configured value
    assert "matplotlib, seaborn or plotly" in actions["lib"].help  # checked by the settings, not argparse


def test_helper_refuses_a_default_for_a_setting_it_does_not_add():
    with pytest.raises(ValueError, match="timeout"):
        add_setting_flags(argparse.ArgumentParser(), ["lib"], overrides={"timeout": 5.0})


def test_backends_and_the_child_kernel_take_their_defaults_from_the_settings():
    import inspect

    from viscoder_jupyter.backends.discovery import start_server
    from viscoder_jupyter.backends.llamacpp import LlamaCppBackend
    from viscoder_jupyter.backends.openai import OpenAIBackend
    from viscoder_jupyter.backends.transformers import TransformersBackend
    from viscoder_jupyter.child.executor import ChildKernel
    from viscoder_jupyter.child.sandbox import MODES
    from viscoder_jupyter.core.context import DEFAULT_BUDGET

    assert DEFAULT_BUDGET == setting_default("frame_budget")
    assert MODES == TRAITS["sandbox"].values
    for callable_ in (TransformersBackend, LlamaCppBackend, OpenAIBackend, start_server, ChildKernel):
        for name, parameter in inspect.signature(callable_).parameters.items():
            if name in TRAITS and parameter.default is not inspect.Parameter.empty:
                assert parameter.default == setting_default(name), f"{callable_.__name__}({name}=...)"
    bare = object()  # a settings-like object without the setting: the trait's default
    assert (setting(bare, "max_new_tokens"), setting(bare, "quantization")) == (2048, "auto")
