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


def test_the_input_shape_lives_in_the_card(card_copy):
    """Build yamls inherit the card's input.shape; one that repeats it differently, or vdsp params that
    disagree, is a problem naming the file and the field."""
    int8 = card_copy.parent / "build" / "int8.yaml"
    assert "shape" not in yaml.safe_load(int8.read_text())["frontend"]
    assert validate_file(card_copy)[0] == []
    rewrite(int8, lambda b: b["frontend"].update(shape={"input": [1, 3, 300, 600]}))
    rewrite(int8, lambda b: b["dataset"]["process_ops"][1].update(size=[400, 601]))
    vdsp = card_copy.parent / "vdsp_params.json"
    vdsp.write_text(vdsp.read_text().replace('"OimageWidth": 600', '"OimageWidth": 640'))
    problems, _ = validate_file(card_copy)
    assert any(p.startswith(f"{int8}: frontend.shape.input: [1, 3, 300, 600] differs") for p in problems), problems
    assert any(p.startswith(f"{int8}: dataset.process_ops[1].size: [400, 601] differs") for p in problems)
    assert any(p.startswith(f"{vdsp}: OpConfig.OimageWidth: 640 differs") for p in problems)


def test_protocol_parameters_must_be_declared(card_copy):
    rewrite(card_copy, lambda c: c["protocols"]["paper"]["postprocess"].update(gama=0.14))
    problems, _ = validate_file(card_copy)
    assert problems == [f"{card_copy}: protocols.paper.postprocess: gama: pairlie has no post-processing "
                        f"parameter 'gama' (allowed: gamma)"]


def test_parameter_declarations_need_type_and_default(card_copy):
    rewrite(card_copy, lambda c: c["postprocess"]["gamma"].pop("type"))
    problems, _ = validate_file(card_copy)
    assert problems == [f"{card_copy}: postprocess.gamma: 'type' is a required property"]
