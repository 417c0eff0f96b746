"""Plugins: found through entry points, isolated when broken, restricted by MODELZOO_LOAD_PLUGINS."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import CARD_TEMPLATE_MODEL, ROOT


def make_plugin(site, dist, module, source):
    """A minimal installed distribution: a module plus a dist-info with a `modelzoo` entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[modelzoo]\n{dist} = {module}\n")


TOY = f"""
    from pathlib import Path
    import numpy as np
    from torch import nn
    from modelzoo import Model, hookimpl

    class Toy(Model):
        def network(self, variant):
            return nn.Identity()

        def postprocess(self, outputs, **params):
            return outputs[0][0].transpose(1, 2, 0)

    @hookimpl
    def register_models(register):
        register(Toy(Path({str(CARD_TEMPLATE_MODEL)!r})))
"""


def modelzoo(site, *args, **env):
    environment = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-m", "modelzoo", *args], capture_output=True, text=True,
                          env=environment, cwd=ROOT)


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    return folder


def test_third_party_plugin_appears_in_list(site):
    make_plugin(site, "toyzoo", "toyzoo_plugin", TOY)
    result = modelzoo(site, "list")
    assert result.returncode == 0, result.stderr
    assert "toy" in result.stdout and "toyzoo" in result.stdout
    assert "pairlie" in result.stdout


def test_non_commercial_licence_surfaces_in_list(site, tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "ncmodel"
    shutil.copytree(CARD_TEMPLATE_MODEL.parent, folder)
    card = yaml.safe_load((folder / "card.yaml").read_text())
    card.update(name="ncmodel", license={"id": "CC-BY-NC-4.0", "use": "non-commercial"})
    (folder / "card.yaml").write_text(yaml.safe_dump(card))
    make_plugin(site, "ncmodel", "ncmodel_plugin", TOY.replace(repr(str(CARD_TEMPLATE_MODEL)),
                                                                repr(str(folder / "card.yaml"))))
    result = modelzoo(site, "list")
    line = next(l for l in result.stdout.splitlines() if l.startswith("ncmodel"))
    assert "CC-BY-NC-4.0 (non-commercial)" in line


def test_broken_plugin_is_reported_and_others_work(site):
    make_plugin(site, "broken", "broken_plugin", "import does_not_exist\n")
    result = modelzoo(site, "plugins")
    assert result.returncode == 0
    assert "ModuleNotFoundError: No module named 'does_not_exist'" in result.stdout
    listed = modelzoo(site, "list")
    assert "pairlie" in listed.stdout and "broken" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_misspelled_hook_fails_loudly(site):
    make_plugin(site, "typo", "typo_plugin", """
        from modelzoo import hookimpl

        @hookimpl
        def register_model(register):
            pass
    """)
    result = modelzoo(site, "plugins")
    assert "typo" in result.stdout and "register_model" in result.stdout
    assert "unknown hook" in result.stdout.lower()


def test_exception_inside_a_hook_is_isolated(site):
    make_plugin(site, "raiser", "raiser_plugin", """
        from modelzoo import hookimpl

        @hookimpl
        def register_models(register):
            raise RuntimeError("card server down")
    """)
    result = modelzoo(site, "list")
    assert result.returncode == 0
    assert "pairlie" in result.stdout
    assert "register_models failed: RuntimeError: card server down" in result.stderr


def test_duplicate_model_name_keeps_the_first(site):
    make_plugin(site, "copycat", "copycat_plugin", """
        from pathlib import Path
        from modelzoo import hookimpl
        from modelzoo_models.pairlie.plugin import PairLIE
        import modelzoo_models.pairlie.plugin as original

        @hookimpl
        def register_models(register):
            register(PairLIE(Path(original.__file__).parent / "card.yaml"))
    """)
    result = modelzoo(site, "plugins")
    assert "'pairlie' is already registered by plugin" in result.stdout


def test_environment_variable_restricts_plugins(site):
    make_plugin(site, "toyzoo", "toyzoo_plugin", TOY)
    result = modelzoo(site, "list", MODELZOO_LOAD_PLUGINS="lowlight,pairlie")
    assert "pairlie" in result.stdout and "toyzoo" not in result.stdout
    nothing = modelzoo(site, "list", MODELZOO_LOAD_PLUGINS="")
    assert "pairlie" not in nothing.stdout


def test_engine_does_not_import_models():
    """modelzoo/ knows no model by name: no import of modelzoo_models, no model name as a string literal."""
    names = [p.name for p in (ROOT / "models").iterdir() if (p / "card.yaml").is_file()]
    for path in (ROOT / "modelzoo").rglob("*.py"):
        text = path.read_text()
        assert "import modelzoo_models" not in text and "from modelzoo_models" not in text, path
        for name in names:
            assert f'"{name}"' not in text and f"'{name}'" not in text, (path, name)
