"""viscoder-jupyter: plots from plain words, written by a local VisCoder model.

`%load_ext viscoder_jupyter` registers `%%viscoder`; `generate_plot(...)` is the same
loop without IPython. Importing this package is cheap: torch and transformers load
only when a model is first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__

__all__ = ["__version__", "generate_plot", "async_generate_plot", "PlotResult", "VisCoder"]

if TYPE_CHECKING:
    from .core.events import PlotResult
    from .core.settings import VisCoder
    from .frontends.api import async_generate_plot, generate_plot

_LAZY = {
    "generate_plot": "frontends.api",
    "async_generate_plot": "frontends.api",
    "PlotResult": "core.events",
    "VisCoder": "core.settings",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _jupyter_labextension_paths():
    """Where `jupyter labextension develop` finds the built sidebar extension."""
    return [{"src": "labextension", "dest": "viscoder-jupyter"}]


def load_ipython_extension(ipython) -> None:
    """`%load_ext viscoder_jupyter`: the magics and the sidebar's channel, side by side over
    `runtime`, whose child kernel starts while the user types."""
    from . import runtime
    from .frontends import comm, magics

    registered = magics.register(ipython)
    comm.register_target(ipython, lambda: registered.settings)  # the sidebar's channel (no-op outside a kernel)
    runtime.warm_up(registered.settings)


def unload_ipython_extension(ipython) -> None:
    from . import runtime
    from .frontends import comm, magics

    magics.unregister(ipython)
    comm.unregister_target(ipython)
    runtime.shutdown()
