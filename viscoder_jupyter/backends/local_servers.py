"""Ollama and LM Studio: the `openai` backend with their own default address and model names.

Both run GGUF models on a laptop (CPU, CUDA, Metal) behind an OpenAI-compatible API, so
``--backend ollama`` or ``--backend lmstudio`` is the openai backend pointed at where the app
listens by default; ``base_url`` and ``model`` still override. A preset name becomes the name the
app knows the model by: VisCoder2-7B's GGUF (``viscoder2-7b-gguf``, and ``auto``) is what Ollama
pulls as ``hf.co/mradermacher/VisCoder2-7B-GGUF:Q4_K_M`` (``ollama pull`` it first); LM Studio
lists a downloaded GGUF repository under a lower-case key of its name (``viscoder2-7b``: check the
key with ``lms ls``; the app's loaded model answers too).
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..core.settings import setting
from .openai import OpenAIBackend
from .presets import AUTO, GGUF_DEFAULT, PRESETS, gguf_file_for, preset

OLLAMA_URL = "http://127.0.0.1:11434/v1"
LMSTUDIO_URL = "http://127.0.0.1:1234/v1"


def ollama_model(model: str) -> str:
    """Ollama's name for a GGUF preset (hf.co/REPO:QUANT); any other name as it is."""
    found = gguf_file_for(GGUF_DEFAULT if _unset(model) else model)
    if found is None:
        return model
    known, filename = found
    return f"hf.co/{known.repo_id}:{filename.rsplit('.', 2)[-2]}"


def lmstudio_model(model: str) -> str:
    """LM Studio's key for a GGUF preset (its repository's name, lower case, without -GGUF)."""
    found = PRESETS[GGUF_DEFAULT] if _unset(model) else preset(model)
    if found is None or not found.is_gguf:
        return model
    return found.repo_id.rsplit("/", 1)[-1].lower().removesuffix("-gguf")


def _unset(model: str) -> bool:
    return str(model or "").strip().lower() in ("", AUTO)


class _AppBackend(OpenAIBackend):
    default_url: ClassVar[str]

    @staticmethod
    def model_name(model: str) -> str:
        raise NotImplementedError

    @classmethod
    def _values(cls, settings: Any) -> tuple[str, str]:
        url = str(getattr(settings, "base_url", "") or "").strip() or cls.default_url
        return url, cls.model_name(str(getattr(settings, "model", "") or ""))

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIBackend:
        url, model = cls._values(settings)
        return cls(
            base_url=url,
            model=model,
            api_key=str(getattr(settings, "api_key", "") or ""),
            max_new_tokens=int(setting(settings, "max_new_tokens")),
            quantization=str(setting(settings, "quantization")),
        )

    @classmethod
    def cache_key(cls, settings: Any) -> tuple:
        url, model = cls._values(settings)
        return (cls.name, url, model, str(getattr(settings, "api_key", "")), int(setting(settings, "max_new_tokens")))


class OllamaBackend(_AppBackend):
    """Ollama's OpenAI-compatible API (``ollama serve``, port 11434)."""

    name: ClassVar[str] = "ollama"
    default_url: ClassVar[str] = OLLAMA_URL
    model_name = staticmethod(ollama_model)


class LMStudioBackend(_AppBackend):
    """LM Studio's local server (Developer tab, or ``lms server start``; port 1234)."""

    name: ClassVar[str] = "lmstudio"
    default_url: ClassVar[str] = LMSTUDIO_URL
    model_name = staticmethod(lmstudio_model)
