"""Post-processing parameters are card data: --set and modelzoo.load keyword arguments are checked against the
declarations (name, type, range) before any work, with one line naming the parameter and what is allowed."""
import pytest

from modelzoo.errors import ZooError
from modelzoo.model import check_params

CARD = {"name": "demo", "postprocess": {
    "gamma": {"type": "number", "default": 0.2, "minimum": 0.01, "maximum": 5, "description": "exponent"},
    "steps": {"type": "integer", "default": 3, "minimum": 1, "description": "iterations"},
    "denoise": {"type": "boolean", "default": True, "description": "switch"},
    "mode": {"type": "string", "default": "a", "choices": ["a", "b"], "description": "choice"},
}}


def test_strings_from_the_command_line_become_the_declared_types():
    assert check_params(CARD, {"gamma": "0.14", "steps": "4", "denoise": "false", "mode": "b"}) == \
        {"gamma": 0.14, "steps": 4, "denoise": False, "mode": "b"}
    assert check_params(CARD, {"gamma": 1, "steps": 2.0}) == {"gamma": 1.0, "steps": 2}


@pytest.mark.parametrize("params, message", [
    ({"gama": "0.14"}, "--set gama: demo has no post-processing parameter 'gama' (allowed: gamma, steps, denoise, mode)"),
    ({"gamma": "abc"}, "--set gamma: expected a number, got 'abc'"),
    ({"gamma": "nan"}, "--set gamma: expected a number, got 'nan'"),
    ({"gamma": "9"}, "--set gamma: 9.0 is out of range (0.01 to 5)"),
    ({"steps": "2.5"}, "--set steps: expected an integer, got '2.5'"),
    ({"steps": 0}, "--set steps: 0 is out of range (1 to inf)"),
    ({"denoise": "maybe"}, "--set denoise: expected a boolean, got 'maybe'"),
    ({"mode": "c"}, "--set mode: 'c' is not one of a, b"),
])
def test_bad_parameters_are_one_line_errors(params, message):
    with pytest.raises(ZooError) as caught:
        check_params(CARD, params)
    assert str(caught.value) == message


def test_a_model_without_parameters_accepts_none():
    with pytest.raises(ZooError, match=r"'gamma' \(allowed: none\)"):
        check_params({"name": "plain", "postprocess": {}}, {"gamma": 1})


def test_cli_set_with_a_misspelt_key_exits_1_before_any_work(cli, tmp_path):
    result = cli("run", "pairlie", "--set", "gama=0.14", "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: --set gama: pairlie has no post-processing parameter 'gama' (allowed: gamma)"]
    assert not (tmp_path / "out").exists()
