"""The agent-to-init protocol is W&B's: WANDB_SWEEP_ID, WANDB_SWEEP_PARAM_PATH (a file
of ``{"key": {"value": v}}``), WANDB_RUN_ID, WANDB_PROJECT and WANDB_ENTITY."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from artisync.errors import InvalidInputError
from artisync.sweeps.trial import (
    Trial,
    read_param_file,
    trial_environment,
    trial_for_init,
    write_param_file,
)


def test_no_sweep_variable_means_no_trial() -> None:
    assert trial_for_init({}) is None
    assert trial_for_init({"WANDB_SWEEP_PARAM_PATH": "/nowhere"}) is None


def test_a_trial_is_read_from_wandbs_variables(tmp_path: Path) -> None:
    path = tmp_path / "config-ab12.json"
    write_param_file(path, {"lr": 0.1, "optimizer": {"name": "adam"}})
    trial = trial_for_init(
        {
            "WANDB_SWEEP_ID": "sw1",
            "WANDB_SWEEP_PARAM_PATH": str(path),
            "WANDB_RUN_ID": "ab12",
            "WANDB_PROJECT": "p",
            "WANDB_ENTITY": "team",
        }
    )
    assert trial == Trial("sw1", {"lr": 0.1, "optimizer": {"name": "adam"}}, "ab12", "p", "team")
    assert trial.config_over({"lr": 1.0, "epochs": 3}) == {
        "lr": 0.1,
        "epochs": 3,
        "optimizer": {"name": "adam"},
    }


# W&B's reader leaves its file open (a ResourceWarning once collected): not ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_param_file_has_wandbs_shape_and_wandbs_reader_takes_it(tmp_path: Path) -> None:
    from wandb.sdk.lib import config_util  # the oracle: W&B's own reader

    path = tmp_path / "config.yaml"
    write_param_file(path, {"lr": 0.01, "layers": [1, 2], "name": "x"})
    assert config_util.dict_from_config_file(str(path)) == {
        "lr": 0.01,
        "layers": [1, 2],
        "name": "x",
    }


def test_a_param_file_written_by_wandbs_agent_is_read(tmp_path: Path) -> None:
    from wandb.sdk.lib import config_util

    path = tmp_path / "wandb" / "config.yaml"
    config_util.save_config_file_from_dict(str(path), {"lr": {"value": 0.5}, "n": {"value": 3}})
    assert read_param_file(path) == {"lr": 0.5, "n": 3}


def test_a_missing_or_malformed_param_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="WANDB_SWEEP_PARAM_PATH"):
        trial_for_init({"WANDB_SWEEP_ID": "s", "WANDB_SWEEP_PARAM_PATH": str(tmp_path / "x")})
    bad = tmp_path / "bad.json"
    bad.write_text('{"lr": 0.1}')
    with pytest.raises(InvalidInputError, match="'lr' must be"):
        read_param_file(bad)
    newer = tmp_path / "newer.json"
    newer.write_text('{"wandb_version": 2}')
    with pytest.raises(InvalidInputError, match="wandb_version 2"):
        read_param_file(newer)


def test_trial_environment_puts_back_what_was_there() -> None:
    os.environ["ARTISYNC_TEST_KEPT"] = "before"
    os.environ.pop("ARTISYNC_TEST_NEW", None)
    try:
        with trial_environment({"ARTISYNC_TEST_KEPT": "during", "ARTISYNC_TEST_NEW": "n"}):
            assert os.environ["ARTISYNC_TEST_KEPT"] == "during"
            assert os.environ["ARTISYNC_TEST_NEW"] == "n"
        assert os.environ["ARTISYNC_TEST_KEPT"] == "before"
        assert "ARTISYNC_TEST_NEW" not in os.environ
        with pytest.raises(RuntimeError), trial_environment({"ARTISYNC_TEST_KEPT": None}):
            assert "ARTISYNC_TEST_KEPT" not in os.environ
            raise RuntimeError
        assert os.environ["ARTISYNC_TEST_KEPT"] == "before"
    finally:
        os.environ.pop("ARTISYNC_TEST_KEPT", None)
