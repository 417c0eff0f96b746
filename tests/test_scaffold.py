"""`modelzoo new`: the scaffold validates, refuses bad or taken names, and its test fails until net.py is written."""
import ast
import os
import subprocess
import sys

import pytest

from modelzoo.validation import validate_file


def run_generated_test(test_file):
    """pytest on the generated test in a fresh process, rooted in its own folder (not this project's conftest)."""
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
                           str(test_file.parent), str(test_file)], capture_output=True, text=True,
                          cwd=test_file.parent, env={**os.environ}, timeout=120)


def test_new_toy_validates_and_its_test_fails_until_the_network_is_written(cli, tmp_path):
    folder = tmp_path / "toy"
    result = cli("new", "toy", "--dest", folder)
    assert result.exit_code == 0, result.output
    for relative in ("card.yaml", "build/fp32.yaml", "vdsp_params.json", "__init__.py", "net.py", "plugin.py",
                     "test_toy.py"):
        assert (folder / relative).is_file(), relative
    assert 'toy = "modelzoo_models.toy.plugin"' in result.output
    assert '"modelzoo_models.toy",' in result.output
    assert "pip install -e ." in result.output

    problems, checked = validate_file(folder / "card.yaml")
    assert problems == [] and checked == 3  # the card, its build yaml and its vdsp params
    assert "TODO" in (folder / "card.yaml").read_text()
    for module in ("net.py", "plugin.py", "test_toy.py"):
        ast.parse((folder / module).read_text())

    generated = run_generated_test(folder / "test_toy.py")
    assert generated.returncode == 1, generated.stdout + generated.stderr
    assert "NotImplementedError" in generated.stdout
    assert "net.py: write the network" in generated.stdout
    assert "1 failed, 1 passed, 1 skipped" in generated.stdout


def test_the_generated_test_passes_once_a_network_is_written(cli, tmp_path):
    folder = tmp_path / "plain"
    assert cli("new", "plain", "--dest", folder).exit_code == 0
    net = folder / "net.py"
    source = net.read_text()
    start = source.index("    def forward(self, image):\n        raise NotImplementedError(")
    end = source.index("\n\n\nclass DeployOutputs")
    net.write_text(source[:start] + "    def forward(self, image):\n        return image.clamp(0, 1)" + source[end:])
    generated = run_generated_test(folder / "test_plain.py")
    assert generated.returncode == 0, generated.stdout + generated.stderr


@pytest.mark.parametrize("name", ["Toy", "9lives", "a", "x" * 42, "has space", "dot.name", ""])
def test_invalid_names_are_refused(cli, tmp_path, name):
    result = cli("new", name, "--dest", tmp_path / "out")
    assert result.exit_code == 1
    assert "not a valid model name" in result.output
    assert not (tmp_path / "out").exists()


def test_a_registered_name_is_refused(cli, tmp_path):
    result = cli("new", "sci", "--dest", tmp_path / "out")
    assert result.exit_code == 1 and "already registered" in result.output
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_is_refused_and_left_alone(cli, tmp_path):
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    result = cli("new", "toy", "--dest", folder)
    assert result.exit_code == 1 and "already exists" in result.output
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]


def test_hyphenated_names_become_importable_modules(cli, tmp_path):
    tests = tmp_path / "tests"
    result = cli("new", "my-net", "--dest", tmp_path / "my_net", "--tests", tests, "--title", "My Net")
    assert result.exit_code == 0, result.output
    assert 'my-net = "modelzoo_models.my_net.plugin"' in result.output
    card = (tmp_path / "my_net" / "card.yaml").read_text()
    assert "name: my-net" in card and "title: My Net" in card
    test_source = (tests / "test_my_net.py").read_text()
    assert '"../my_net"' in test_source and "class MyNetNet" in (tmp_path / "my_net" / "net.py").read_text()
    assert validate_file(tmp_path / "my_net" / "card.yaml")[0] == []


def test_a_weights_only_sibling_reuses_the_network(cli, tmp_path):
    folder = tmp_path / "dce-retrained"
    result = cli("new", "dce-retrained", "--network", "zero-dce", "--dest", folder)
    assert result.exit_code == 0, result.output
    assert not (folder / "net.py").exists()
    card = (folder / "card.yaml").read_text()
    assert "network: zero-dce" in card and "input:" not in card
    assert "register(Model(" in (folder / "plugin.py").read_text()
    problems, checked = validate_file(folder / "card.yaml")
    assert problems == [] and checked == 3
    for module in ("plugin.py", "test_dce_retrained.py"):
        ast.parse((folder / module).read_text())
    unknown = cli("new", "dce-other", "--network", "no-such-model", "--dest", tmp_path / "other")
    assert unknown.exit_code == 1 and "unknown model 'no-such-model'" in unknown.output
