"""The Python API: modelzoo.load gives the pixels `modelzoo run` writes; list_models and card describe the zoo."""
import numpy as np
import pytest
from PIL import Image

import modelzoo
from conftest import LOL, needs_shared
from modelzoo import imaging

pytestmark = needs_shared


@pytest.fixture(scope="module")
def dark(tmp_path_factory):
    """A small dark image on disk (odd size: the fixed-size build resizes in and out)."""
    path = tmp_path_factory.mktemp("api") / "dark.png"
    imaging.write_rgb(path, imaging.read_rgb(LOL / "low" / "1.png")[100:161, 200:297])
    return path


@pytest.fixture(scope="module")
def enhance():
    return modelzoo.load("pairlie", backend="onnxruntime")


def test_load_gives_the_pixels_the_cli_writes(cli, enhance, dark, tmp_path):
    assert cli("run", "pairlie", "--input", dark, "--output", tmp_path, "--backend", "onnxruntime",
               "--quiet").exit_code == 0
    written = imaging.read_rgb(tmp_path / "dark.png").astype(int)
    enhanced = enhance(imaging.read_rgb(dark))
    assert enhanced.dtype == np.uint8 and enhanced.shape == written.shape == (61, 97, 3)
    assert np.abs(enhanced.astype(int) - written).max() <= 1


def test_paths_pil_images_and_lists_are_accepted(enhance, dark):
    array = enhance(imaging.read_rgb(dark))
    from_path, from_pil = enhance([dark, Image.open(dark)])
    assert np.array_equal(from_path, array) and np.array_equal(from_pil, array)


def test_raw_gives_the_deploy_outputs_and_card_the_validated_card(enhance, dark):
    outputs = enhance.raw(dark)
    assert len(outputs) == len(enhance.card["outputs"]) and outputs[0].shape[0] == 1
    assert enhance.card["name"] == "pairlie" and enhance.card == modelzoo.card("pairlie")


def test_postprocess_keywords_go_where_run_set_goes(enhance, dark):
    darker = modelzoo.load("pairlie", backend="onnxruntime", gamma=0.5)
    assert darker(dark).mean() < enhance(dark).mean()  # a larger gamma darkens, as `run --set gamma=0.5`


def test_not_an_image_is_one_line(enhance):
    with pytest.raises(modelzoo.ZooError, match="expected an RGB uint8 HxWx3 array, got float32"):
        enhance(np.zeros((8, 8, 3), np.float32))


def test_list_models_and_unknown_name():
    assert {"pairlie", "sci"} <= set(modelzoo.list_models())
    with pytest.raises(modelzoo.ZooError):
        modelzoo.load("no-such-model")
