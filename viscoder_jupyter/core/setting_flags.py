"""Command-line flags made from the settings: a flag's name, type, choices, help and default
come from its `VisCoder` trait, so no CLI (nor the magic) restates them.

    add_setting_flags(parser, ["lib", "max_new_tokens"], overrides={"lib": None})

gives ``--lib {matplotlib,seaborn,plotly}`` and ``--max-new-tokens N`` (with its default). A flag's
default is the setting's own (environment variable, then the trait's default) unless
``overrides`` gives the CLI another one; None there means "unset: the settings decide".
"""

from __future__ import annotations

from typing import Any

from traitlets import Enum, Float, Int, Unicode

from .settings import VisCoder, choices_text, setting_default

#: "The setting's own default" (the environment variable, then the trait's default).
OWN = object()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def setting_argument(name: str, default: Any = OWN, *, choices: bool = True) -> tuple[tuple[str, ...], dict]:
    """``(flags, kwargs)`` for argparse's ``add_argument`` (or IPython's ``@argument``).

    ``choices=False`` leaves checking the value to the settings (the magic's one-line errors)
    and names the choices in the help instead.
    """
    trait = VisCoder.class_traits()[name]
    if isinstance(trait, (Int, Float)):
        kwargs: dict[str, Any] = {"type": int if isinstance(trait, Int) else float}
    elif isinstance(trait, (Enum, Unicode)):
        kwargs = {}
    else:
        raise TypeError(f"VisCoder.{name} ({type(trait).__name__}) has no command-line flag form")
    help_ = trait.help.replace("%", "%%")
    if isinstance(trait, Enum):
        if choices:
            kwargs["choices"] = list(trait.values)
        else:
            help_ = f"{help_.rstrip('.')}: {choices_text(trait.values)}."
    if default is OWN:
        default = getattr(VisCoder(), name)
    if default is None:
        builtin = setting_default(name)
        help_ += " (default: the configured one" + (f"; built in: {builtin})" if builtin != "" else ")")
    elif name != "api_key":  # a secret is not printed
        help_ += " (default: %(default)s)"
    kwargs.update(dest=name, default=default, help=help_)
    return (flag_name(name),), kwargs


def add_setting_flags(parser, names, overrides: dict[str, Any] | None = None) -> None:
    """One flag per setting in `names`; `overrides` maps a setting to the CLI's own default."""
    overrides = overrides or {}
    unknown = set(overrides) - set(names)
    if unknown:
        raise ValueError(f"defaults for settings without a flag: {sorted(unknown)}")
    for name in names:
        flags, kwargs = setting_argument(name, overrides.get(name, OWN))
        parser.add_argument(*flags, **kwargs)
