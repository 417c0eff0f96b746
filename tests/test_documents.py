"""Cards, build yamls and vdsp params: the repo's documents validate; broken copies fail with a path."""
import shutil

import pytest
import yaml

from conftest import ROOT, SHARED
from modelzoo import documents
from modelzoo.errors import ZooError
from modelzoo.validation import validate_file

CARD = ROOT / "models" / "pairlie" / "card.yaml"
REFERENCE = SHARED / "reference" / "vastmodelzoo"


@pytest.fixture
def card_copy(tmp_path):
    """A copy of the PairLIE folder to break."""
    folder = tmp_path / "pairlie"
    shutil.copytree(CARD.parent, folder, ignore=shutil.ignore_patterns("__pycache__", "results"))
    return folder / "card.yaml"


def rewrite(path, change):
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_everything_in_the_repo_validates(cli):
    result = cli("validate")
    assert result.exit_code == 0, result.output
    assert "0 problem(s)" in result.output


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference zoo files not present")
def test_reference_zoo_files_validate_unchanged(cli):
    result = cli("validate", REFERENCE / "official_pairlie.yaml", REFERENCE / "official-pairlie-vdsp_params.json")
    assert result.exit_code == 0, result.output


def test_bad_sha256_is_reported_as_a_path(card_copy):
    rewrite(card_copy, lambda c: c["weights"]["official"].update(sha256="abc"))
    problems, _ = validate_file(card_copy)
    assert problems == [f"{card_copy}: weights.official.sha256: 'abc' does not match '^[0-9a-f]{{64}}$'"]


def test_cli_exits_1_with_every_problem(cli, card_copy):
    def damage(card):
        card["license"]["id"] = 3
        card["input"]["shape"] = [1, 3, 400]
        card["surprise"] = True

    rewrite(card_copy, damage)
    result = cli("validate", card_copy)
    assert result.exit_code == 1
    assert "license.id: 3 is not of type 'string'" in result.output
    assert "input.shape: [1, 3, 400] is too short" in result.output
    assert "(document): Additional properties are not allowed ('surprise' was unexpected)" in result.output


def test_referenced_paths_may_not_escape_the_model_folder(card_copy):
    rewrite(card_copy, lambda c: c["builds"].update(evil="../../etc/passwd"))
    problems, _ = validate_file(card_copy)
    assert any("builds.evil" in p for p in problems), problems
    with pytest.raises(ZooError, match="must be a path inside"):
        documents.inside(card_copy.parent, "/etc/passwd", str(card_copy), "vdsp_params")


def test_broken_build_yaml_named_by_the_card_is_found(card_copy):
    build = card_copy.parent / "build" / "int8.yaml"
    rewrite(build, lambda b: b["backend"]["quantize"].update(calibrate_mode="magic"))
    problems, _ = validate_file(card_copy)
    assert problems == [f"{build}: backend.quantize.calibrate_mode: 'magic' is not one of "
                        f"['kl_divergence', 'max', 'percentile']"]


def test_python_yaml_tags_are_refused(tmp_path):
    evil = tmp_path / "card.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ZooError, match="invalid YAML"):
        documents.read(evil)


def test_invalid_json_names_the_line(tmp_path):
    bad = tmp_path / "vdsp.json"
    bad.write_text('{"OpType": "FUSION_OP_RGB_RESIZE_CVTCOLOR_NORM_TENSOR",\n "OpConfig": }')
    with pytest.raises(ZooError, match=r"vdsp.json: invalid JSON at line 2"):
        documents.read(bad)


def test_vdsp_wrong_type(tmp_path):
    config = documents.read(CARD.parent / "vdsp_params.json")
    config["OpConfig"]["OimageWidth"] = "600"
    problems = documents.errors(config, "vdsp", "v.json")
    assert problems == ["v.json: OpConfig.OimageWidth: '600' is not of type 'integer'"]


def test_non_commercial_licence_must_say_so(card_copy):
    rewrite(card_copy, lambda c: c.update(license={"id": "CC-BY-NC-4.0", "use": "commercial"}))
    problems, _ = validate_file(card_copy)
    assert problems == [f"{card_copy}: license.use: 'non-commercial' was expected"]
    rewrite(card_copy, lambda c: c.update(license={"id": "CC-BY-NC-4.0", "use": "non-commercial"}))
    assert validate_file(card_copy)[0] == []
