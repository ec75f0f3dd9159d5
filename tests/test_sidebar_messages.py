"""What the sidebar says about a setting the user chose there: it names the sidebar's setting,
not the kernel's flags and variables the user never touched."""

from __future__ import annotations

import pytest
from helpers import GOOD_BAR
from test_comm import kernel  # noqa: F401 - the fixture: a real kernel with the extension loaded

from viscoder_jupyter.backends import gguf_files, hf_hub
from viscoder_jupyter.core.errors import MODEL_SETTING


def test_the_backends_hints_name_the_model_setting_as_the_sidebar_replaces_it():
    assert MODEL_SETTING in gguf_files._GGUF_HINT and MODEL_SETTING in hf_hub._LOCAL_HINT


@pytest.mark.timeout(180)
def test_a_bad_model_chosen_in_the_sidebar_is_reported_as_the_sidebars_model_setting(kernel, tmp_path):  # noqa: F811
    setup, kc = kernel
    client = setup(GOOD_BAR)
    missing = str(tmp_path / "typo.gguf")
    config = f"%config VisCoder.backend = 'llamacpp'\n%config VisCoder.allowed_models = [{missing!r}]"
    kc.execute_interactive(config, timeout=30, output_hook=lambda m: None)
    client.open()
    client.fix("r", settings={"model": missing, "retries": 0})
    final = client.until_final()[-1]
    assert final["type"] == "error" and final["reason"] == "backend"
    assert f"GGUF model file {missing!r} does not exist" in final["message"]
    assert (
        "Point the sidebar's Model setting (Settings > Settings Editor > VisCoder) at a local .gguf file"
        in (final["message"])
    )
    assert "VISCODER_MODEL environment variable" not in final["message"]
