"""setup(), profiles and the offline defaults."""

import os
import subprocess
import sys

import pytest
import torch

import course_lib.core.environment as environment
from course_lib.core.environment import setup
from course_lib.core.offline import OFFLINE_VARIABLES
from course_lib.core.profiles import PROFILES, get_profile


def _env_after_import(extra: dict[str, str]) -> dict[str, str]:
    """The HF variables a fresh interpreter has after `import course_lib`."""
    clean = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES and k != "COURSE_ALLOW_HUB"}
    code = "import os, json, course_lib; print(json.dumps({k: os.environ.get(k) for k in %r}))" % list(OFFLINE_VARIABLES)
    out = subprocess.run([sys.executable, "-c", code], env=clean | extra, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout)


def test_import_sets_offline_variables() -> None:
    assert _env_after_import({}) == {name: "1" for name in OFFLINE_VARIABLES}


def test_hub_opt_in_leaves_variables_unset() -> None:
    assert _env_after_import({"COURSE_ALLOW_HUB": "1"}) == {name: None for name in OFFLINE_VARIABLES}


def test_cpu_machine_gets_cpu_profile_with_overrides() -> None:
    profile = setup(verbose=False, train_steps=5, num_threads=1)
    assert (profile.name, profile.device, profile.train_steps, profile.num_threads) == ("cpu", "cpu", 5, 1)
    assert torch.get_num_threads() == 1


def test_gpu_profile_on_a_cpu_machine_falls_back_to_cpu_settings() -> None:
    profile = setup("gpu", verbose=False, num_threads=1)
    assert profile.train_steps == PROFILES["gpu"].train_steps
    assert (profile.device, profile.dtype, profile.load_in_4bit) == ("cpu", "float32", False)


def test_setup_seeds_everything() -> None:
    setup(verbose=False, num_threads=1)
    first = torch.rand(3)
    setup(verbose=False, num_threads=1)
    assert torch.equal(first, torch.rand(3))


def test_unknown_knob_is_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown profile knob 'train_stepz'.*train_steps"):
        setup(verbose=False, train_stepz=3)


def test_wrong_knob_type_is_named() -> None:
    with pytest.raises(TypeError, match=r"'train_steps' must be int, got '5'"):
        setup(verbose=False, train_steps="5")


def test_unknown_profile_is_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown profile 'tpu'. Known profiles: cpu, gpu"):
        get_profile("tpu")


def test_gpu_profile_on_a_cpu_machine_says_what_it_skips(capsys: pytest.CaptureFixture) -> None:
    setup("gpu", verbose=False, num_threads=1)
    assert "No CUDA GPU (cpu here): 4-bit loading (QLoRA) is skipped; models load in float32." in capsys.readouterr().out


def test_missing_bitsandbytes_turns_4bit_off_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real_find_spec = environment.importlib.util.find_spec
    monkeypatch.setattr(environment.importlib.util, "find_spec",
                        lambda name: None if name == "bitsandbytes" else real_find_spec(name))
    profile = setup("cpu", verbose=False, num_threads=1, load_in_4bit=True)
    assert profile.load_in_4bit is False
    assert "bitsandbytes is not installed: 4-bit loading (QLoRA) is skipped" in capsys.readouterr().out


def test_bitsandbytes_present_keeps_4bit(capsys: pytest.CaptureFixture) -> None:
    assert setup("cpu", verbose=False, num_threads=1, load_in_4bit=True).load_in_4bit is True
    assert capsys.readouterr().out == ""
