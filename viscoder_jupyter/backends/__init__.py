"""Model backends, found through the `viscoder_jupyter.backends` entry-point group.

Third-party packages register their own backends in that group; the built-in ones
are also known by name so a source checkout works without installation.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from importlib.metadata import entry_points
from typing import Any

from ..core.errors import BackendUnavailable, RequestError
from .base import Backend, Reply

__all__ = ["Backend", "Reply", "backend_names", "effective_backend_name", "get_backend"]

_BUILT_IN = {
    "transformers": "viscoder_jupyter.backends.transformers:TransformersBackend",
    "replay": "viscoder_jupyter.backends.replay:ReplayBackend",
    "openai": "viscoder_jupyter.backends.openai:OpenAIBackend",
    "llamacpp": "viscoder_jupyter.backends.llamacpp:LlamaCppBackend",
    # The openai backend at Ollama's and LM Studio's default address and model names.
    "ollama": "viscoder_jupyter.backends.local_servers:OllamaBackend",
    "lmstudio": "viscoder_jupyter.backends.local_servers:LMStudioBackend",
}
_INSTALL_HINT = {
    "transformers": "pip install 'viscoder-jupyter[local]'",
    "llamacpp": "pip install 'viscoder-jupyter[cpu]'",
}
_instances: dict[tuple, Backend] = {}
_lock = threading.Lock()


def require_installed(backend: str, *modules: str) -> None:
    """Say in one message what to install when a backend's engine is missing (the core install
    has none), before anything tries to import it."""
    missing = [m for m in modules if not installed(m)]
    if missing:
        raise BackendUnavailable(
            f"The {backend!r} backend needs {' and '.join(missing)}, not installed here. "
            f"Install: {_INSTALL_HINT[backend]} (or use the 'openai' backend with a model server)."
        )


def installed(module: str) -> bool:
    """The module can be imported here (found, or already imported), without importing it."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _registry() -> dict[str, str]:
    found = dict(_BUILT_IN)
    found.update({ep.name: ep.value for ep in entry_points(group="viscoder_jupyter.backends")})
    return found


def backend_names() -> list[str]:
    return sorted(_registry())


def backend_class(name: str) -> type[Backend]:
    registry = _registry()
    if name not in registry:
        raise RequestError(f"Unknown backend {name!r}; available: {', '.join(sorted(registry))}.")
    module_name, _, attr = registry[name].partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        hint = _INSTALL_HINT.get(name, f"the package that provides the {name!r} backend")
        raise BackendUnavailable(f"The {name!r} backend cannot be imported ({exc}). Install: {hint}") from None


def effective_backend_name(settings: Any) -> str:
    """The backend that serves these settings: `settings.backend`, except that a ``.gguf``
    model (a file, or ``REPO_ID:FILE.gguf`` on the hub) with the default backend runs on llama.cpp,
    and so does the `offline` preset where llama.cpp is installed (presets.py)."""
    from .presets import runs_on_llamacpp

    name = str(getattr(settings, "backend", "") or "transformers")
    model = str(getattr(settings, "model", "") or "").strip()
    if name == "transformers" and (model.lower().endswith(".gguf") or runs_on_llamacpp(model)):
        return "llamacpp"
    return name


def get_backend(settings: Any) -> Backend:
    """The process-wide backend for these settings (a model is loaded once and reused)."""
    cls = backend_class(effective_backend_name(settings))
    key = cls.cache_key(settings)
    with _lock:
        if key not in _instances:
            _instances[key] = cls.from_settings(settings)
        return _instances[key]
