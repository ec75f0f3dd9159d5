"""Settings a front end sends over the comm can only tighten the kernel's own configuration.

Whatever can send a comm message in a notebook (the sidebar, or script in a notebook's output)
must not be able to turn the sandbox off, switch the dialogue log on, or point the kernel at a
model or server its configuration does not list. So, against the kernel's settings:

- `sandbox` only as strict or stricter: off < auto < required (VISCODER_REQUIRE_SANDBOX=1 makes
  the kernel's 'required');
- `model` only the kernel's own or one of `VisCoder.allowed_models`;
- `backend` only the kernel's own or one of `VisCoder.allowed_backends`;
- `collect` only off.

The other settings (library, retries, samples, timeout) change what is asked, not what is
trusted, and pass as sent (within protocol.SETTING_RANGES). A refused value is dropped, the
kernel's own used instead, and one line says so to the panel.
"""

from __future__ import annotations

from typing import Any

from ..core.settings import sandbox_mode

#: How strict each sandbox mode is; the comm may only keep or raise it.
SANDBOX_STRICTNESS = {"off": 0, "auto": 1, "required": 2}


def tighten_only(asked: dict[str, Any], kernel: Any) -> tuple[dict[str, Any], list[str]]:
    """(the settings to apply, one sentence per refused one) for the sidebar's `asked` settings
    (already checked against protocol.setting_problems) and the kernel's `kernel` (a VisCoder)."""
    accepted, refused = {}, []
    for key, value in asked.items():
        why = _refusal(key, value, kernel)
        if why is None:
            accepted[key] = value
        else:
            refused.append(why)
    return accepted, refused


def _refusal(key: str, value: Any, kernel: Any) -> str | None:
    if key == "sandbox":
        own = sandbox_mode(kernel.sandbox)
        if SANDBOX_STRICTNESS[str(value).lower()] < SANDBOX_STRICTNESS[own]:
            return (
                f"The sidebar's sandbox {value!r} was not used: the kernel's configuration says {own!r}, "
                "and the sidebar may only make it stricter."
            )
    elif key == "model":
        if value != kernel.model and value not in kernel.allowed_models:
            return (
                f"The sidebar's model {value!r} was not used: the kernel runs {kernel.model!r}. To choose "
                "another from the sidebar, list it in the kernel: %config VisCoder.allowed_models = [...]."
            )
    elif key == "backend":
        allowed = {b.lower() for b in (kernel.backend, *kernel.allowed_backends)}
        if str(value).lower() not in allowed:
            return (
                f"The sidebar's backend {value!r} was not used: the kernel runs {kernel.backend!r}. To choose "
                "another from the sidebar, list it in the kernel: %config VisCoder.allowed_backends = [...]."
            )
    elif key == "collect":
        if value and not kernel.collect:
            return (
                "The sidebar's 'collect dialogues' was not used: logging is off in the kernel's "
                "configuration, and only the kernel may turn it on (%config VisCoder.collect = True)."
            )
    return None
