"""Shell completion of model, build, backend and dataset names."""
from click.shell_completion import ShellComplete

from modelzoo.cli import cli


def candidates(args, incomplete):
    completion = ShellComplete(cli, {}, "modelzoo", "_MODELZOO_COMPLETE")
    return [c.value for c in completion.get_completions(args, incomplete)]


def test_model_names():
    assert candidates(["run"], "pa") == ["pairlie"]
    assert {"pairlie", "sci"} <= set(candidates(["eval"], ""))


def test_builds_of_the_typed_model_and_backends_and_datasets(pairlie):
    assert candidates(["run", "pairlie", "--build"], "") == sorted(pairlie.builds)
    assert candidates(["eval", "pairlie", "--build"], "a") == ["all"]
    assert candidates(["bench", "pairlie", "--build"], "int8") == [b for b in pairlie.builds if b.startswith("int8")]
    assert {"torch", "onnxruntime", "openvino"} <= set(candidates(["run", "pairlie", "--backend"], ""))
    assert candidates(["eval", "pairlie", "--dataset"], "lol-e") == ["lol-eval15"]


def test_a_failing_registry_completes_nothing(monkeypatch):
    monkeypatch.setattr("modelzoo.cli.complete.registry", lambda: 1 / 0)
    assert candidates(["run"], "") == []
