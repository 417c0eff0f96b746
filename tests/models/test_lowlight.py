"""The low-light task layer: NIQE/BRISQUE against published MATLAB values, MATLAB's imresize, the unpaired
datasets, the GT-mean protocol, `modelzoo score` and an unpaired evaluation."""
import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import DATA, LOL, SHARED, needs_shared
from modelzoo import imaging
from modelzoo_models.lowlight import iqa, matlab
from modelzoo_models.lowlight.plugin import LowLightEvaluator, gt_mean

BABOON = SHARED / "reference" / "iqa" / "baboon.png"
needs_baboon = pytest.mark.skipif(not BABOON.is_file(), reason="../shared/reference/iqa/baboon.png not present")
NIQE_TOLERANCE, BRISQUE_TOLERANCE = 0.05, 0.5  # of the MATLAB releases


@pytest.fixture(scope="module")
def baboon():
    return imaging.read_rgb(BABOON)


# -- MATLAB's imresize -------------------------------------------------------------------------------------


def test_imresize_bicubic_matches_matlab_output():
    # MATLAB: imresize([0 0 1 1 0], [1 10]) (bicubic), printed in stackoverflow.com/questions/17380407:
    # 0 -0.0234 -0.0703 0.2031 0.7969 1.0938 1.0938 0.7969 0.2031 -0.0703. The last value depends on the border
    # rule: that (2013) release replicated the end points and gives -0.0703; current releases mirror them
    # (`aux = [1:n, n:-1:1]`), which R2021a's NIQE of baboon.png confirms (test_niqe_y_channel_...).
    out = matlab.imresize(np.array([[0, 0, 1, 1, 0.0]]), size=(1, 10))
    assert out[0, :9] == pytest.approx([0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031],
                                       abs=5.1e-5)  # printed to 4 decimals


def test_imresize_bilinear_and_no_antialiasing_match_published_outputs():
    # MATLAB: imresize([0 1 2], [1 5], 'bilinear') = [0 0.4 1 1.6 2] (stackoverflow.com/questions/42020435)
    assert matlab.imresize(np.array([[0, 1, 2.0]]), size=(1, 5), method="bilinear")[0] == \
        pytest.approx([0, 0.4, 1, 1.6, 2])
    # imresize(reshape(0:15, 4, 4)', 0.5, 'bicubic', 'AntiAliasing', false) = [2.1875 4.3125; 10.6875 12.8125]
    # (Octave's image package, whose imresize follows MATLAB's; quoted in sanghyun-son/bicubic_pytorch's tests)
    assert matlab.imresize(np.arange(16.0).reshape(4, 4), 0.5, antialiasing=False) == \
        pytest.approx(np.array([[2.1875, 4.3125], [10.6875, 12.8125]]))


def test_imresize_shrinks_with_antialiasing_and_rounds_integer_images_like_matlab():
    flat = np.full((9, 7), 0.3)
    assert matlab.imresize(flat, 0.5) == pytest.approx(np.full((5, 4), 0.3))  # ceil(0.5 n), weights sum to 1
    impulse = np.zeros((1, 32))
    impulse[0, 15] = 1.0
    # antialiasing widens the kernel by 1/scale: the impulse spreads over 4 outputs instead of 2, mean kept
    widened, plain = matlab.imresize(impulse, size=(1, 16)), matlab.imresize(impulse, size=(1, 16), antialiasing=False)
    assert np.count_nonzero(widened) == 4 and np.count_nonzero(plain) == 2
    assert widened.sum() == pytest.approx(0.5)
    image = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    out = matlab.imresize(image, 0.5)
    assert out.dtype == np.uint8 and out.shape == (10, 15)
    # MATLAB returns each dimension's pass in the input's class: rounded (half away from zero) and saturated
    rows = matlab._round_like(matlab.imresize(image.astype(np.float64), size=(10, 30)), np.uint8)
    assert np.array_equal(out, matlab._round_like(matlab.imresize(rows.astype(np.float64), size=(10, 15)), np.uint8))


def test_rgb2gray_uses_matlabs_coefficients_and_rounding():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], dtype=np.uint8)
    # rgb2gray's documented weights 0.298936021293775, 0.587043074451121, 0.114020904255103, rounded half away
    # from zero for uint8: 255 x 0.298936 = 76.23 -> 76, 255 x 0.587043 = 149.70 -> 150, ...
    assert matlab.rgb2gray(rgb).tolist() == [[76, 150, 29, 18]]
    # rgb2ycbcr's Y: 16 + (65.481 R + 128.553 G + 24.966 B) / 255: 81.48 -> 81, 144.55 -> 145, 40.97 -> 41, 31.59
    assert matlab.rgb2y(rgb).tolist() == [[81, 145, 41, 32]]


# -- NIQE and BRISQUE --------------------------------------------------------------------------------------


@needs_baboon
def test_niqe_y_channel_matches_the_matlab_release(baboon):
    # MATLAB R2021a, LIVE's niqe_release on the Y channel of baboon.png: 5.72957338 (BasicSR
    # basicsr/metrics/niqe.py docstring; MMagic tests/test_evaluation/test_metrics/test_niqe.py: 5.72957)
    assert iqa.niqe(baboon, convert="y") == pytest.approx(5.72957, abs=NIQE_TOLERANCE)
    assert iqa.niqe(baboon, convert="y") == pytest.approx(5.72957, abs=0.002)  # in fact much closer


@needs_baboon
def test_niqe_gray_within_tolerance_and_exact_with_bt601_grey(baboon):
    # 5.73154 is MMagic's value for convert_to='gray' (same test file), whose grey is OpenCV's BT.601
    # (0.299, 0.587, 0.114, rounded); with that grey the rest of our pipeline reproduces it to 1e-4.
    grey = np.floor(baboon.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) + 0.5)
    assert iqa.niqe(grey) == pytest.approx(5.73154, abs=1e-3)
    # The release calls MATLAB's rgb2gray (0.298936..., 0.587043..., 0.114020...), a little different
    assert iqa.niqe(baboon) == pytest.approx(5.73154, abs=NIQE_TOLERANCE)


# LIVE-release MATLAB values for five TID2013 images, IQA-PyTorch ResultsCalibra/calibration_summary.csv (rows
# "niqe" and "brisque": the original MATLAB code). The images (IQA-PyTorch ResultsCalibra/dist_dir) are not in
# ../shared; put them in ../shared/reference/iqa/tid2013/ to run these.
TID = SHARED / "reference" / "iqa" / "tid2013"
TID_MATLAB = {"I03.bmp": (15.7536, 94.6421), "I04.bmp": (3.6549, -0.1076), "I06.bmp": (3.2355, 0.9929),
              "I08.bmp": (3.1840, 5.3583), "I19.bmp": (8.6352, 72.2617)}


@pytest.mark.parametrize("name", sorted(TID_MATLAB))
def test_tid2013_images_match_the_matlab_releases(name):
    if not (TID / name).is_file():
        pytest.skip(f"{TID / name} not present (IQA-PyTorch ResultsCalibra/dist_dir/{name})")
    image = imaging.read_rgb(TID / name)
    niqe, brisque = TID_MATLAB[name]
    assert iqa.niqe(image) == pytest.approx(niqe, abs=NIQE_TOLERANCE)
    assert iqa.brisque(image) == pytest.approx(brisque, abs=BRISQUE_TOLERANCE)


@needs_baboon
def test_brisque_scores_distortion_worse(baboon):
    clean = iqa.brisque(baboon)
    blurred = iqa.brisque(cv2.GaussianBlur(baboon, (0, 0), 2.0))
    noisy = iqa.brisque(np.clip(baboon + np.random.default_rng(1).normal(0, 25, baboon.shape), 0, 255)
                        .astype(np.uint8))
    assert 0 < clean < 60 and blurred > clean + 10 and noisy > clean + 10


def test_svm_scale_matches_libsvm_svm_scale():
    low, high = np.array([0.0, -1.0, 2.0]), np.array([1.0, 1.0, 4.0])
    # svm-scale -l -1 -u 1: min -> -1, max -> 1, linear between; the input as MATLAB wrote it (%f)
    assert iqa.svm_scale(np.array([0.0, 1.0, 3.0]), low, high).tolist() == [-1.0, 1.0, 0.0]
    assert iqa.svm_scale(np.array([0.25, 0.0, 2.0000001]), low, high).tolist() == [-0.5, 0.0, -1.0]


def test_parameters_load_without_pickle():
    mu, cov = iqa.niqe_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    vectors, coefficients, gamma, _, low, high = iqa.brisque_model()
    assert vectors.shape == (770, 36) and coefficients.shape == (770,) and gamma == 0.05
    assert low.shape == high.shape == (36,) and np.all(high > low)
    source = (iqa.PARAMS.parent / "iqa.py").read_text()
    assert "import pickle" not in source and "allow_pickle=False" in source
    assert not list(iqa.PARAMS.glob("*.pickle"))


def test_niqe_needs_one_block():
    with pytest.raises(ValueError, match="96x96"):
        iqa.niqe(np.zeros((90, 200), np.uint8))


# -- GT-mean -----------------------------------------------------------------------------------------------


def test_gt_mean_scales_the_prediction_to_the_references_mean_grey():
    reference = np.full((4, 4, 3), 120, np.uint8)
    reference[0, 0] = (250, 10, 40)
    prediction = (reference.astype(np.float64) * 0.5).astype(np.uint8)  # right content, half the brightness
    scaled = gt_mean(prediction, reference)
    grey = lambda image: cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).mean()  # noqa: E731 - the script's grey
    assert scaled == pytest.approx(prediction * (grey(reference) / grey(prediction)))
    assert scaled.max() <= 255 and np.abs(scaled - reference).max() < 3
    uneven = np.array([[[200] * 3, [100] * 3]], np.uint8)  # mean grey 150 scaled to 255: 340 clipped, 170
    assert gt_mean(uneven, np.full((1, 2, 3), 255, np.uint8))[0, :, 0] == pytest.approx([255, 170])
    # scoring: the plain protocol sees the brightness error, GT-mean does not
    reference = np.random.default_rng(2).integers(60, 200, (24, 24, 3), dtype=np.uint8)
    prediction = reference / 255.0 * 0.5
    evaluator = LowLightEvaluator()
    plain = evaluator.score(prediction, reference, {"quantize": "round"})
    rescaled = evaluator.score(prediction, reference, {"quantize": "round", "gt_mean": True})
    assert set(plain) == {"psnr", "ssim"} and plain["psnr"] < 15 < 40 < rescaled["psnr"]
    assert rescaled["ssim"] > 0.99 > plain["ssim"]


# -- datasets, unpaired evaluation, score ------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize("name, folder, count", [("dicm", "DICM", 64), ("lime", "LIME", 9), ("mef", "MEF", 17)])
def test_unpaired_datasets_are_registered_and_found(name, folder, count, tmp_path, monkeypatch):
    from modelzoo.plugins import registry

    dataset = registry().dataset(name)
    assert not dataset.paired and dataset.task == "low-light-image-enhancement"
    items = dataset.items()  # $MODELZOO_DATA (tests/conftest.py points it at ../shared/data)
    assert len(items) == count and all(i.reference is None for i in items)
    (tmp_path / folder).mkdir()
    shutil.copy(items[0].input, tmp_path / folder)
    assert [i.name for i in dataset.items(tmp_path)] == [items[0].name]  # --data-root
    monkeypatch.setenv("MODELZOO_DATA", str(tmp_path))
    assert len(dataset.items()) == 1


@needs_shared
def test_score_cli_gives_the_published_niqe_and_one_line_errors(cli, tmp_path):
    result = cli("score", str(BABOON), "--metric", "niqe", "--json")
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["images"][0]["niqe"] == pytest.approx(5.73154, abs=NIQE_TOLERANCE)
    assert scored["mean"]["niqe"] == scored["images"][0]["niqe"]

    pair = tmp_path / "pair"
    pair.mkdir()
    shutil.copy(LOL / "high" / "22.png", pair / "22.png")
    result = cli("score", str(pair), "--reference", str(LOL / "high"), "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["images"][0]
    assert set(row) == {"name", "path", "niqe", "brisque", "psnr", "ssim"} and row["ssim"] == pytest.approx(1.0)

    (tmp_path / "broken.png").write_text("not an image")
    for args, message in [(["--metric", "nope"], "unknown metric 'nope'"),
                          (["--metric", "psnr"], "metric 'psnr' needs a reference image"),
                          ([str(tmp_path / "missing.png")], "no such file")]:
        result = cli("score", str(BABOON), *args)
        assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1
    result = cli("score", str(BABOON), str(tmp_path / "broken.png"), "--metric", "niqe")
    assert result.exit_code == 3 and "broken.png" in result.output  # the readable one is still scored


@needs_shared
def test_unpaired_evaluation_scores_no_reference_metrics_at_each_photos_size(cli, tmp_path):
    root = tmp_path / "LIME"
    root.mkdir()
    for name in ("4.bmp", "6.bmp"):  # 370x415 and 326x326: neither the card's input shape
        shutil.copy(DATA / "LIME" / name, root / name)
    result = cli("eval", "sci", "--dataset", "lime", "--data-root", str(root), "--results", str(tmp_path / "r"),
                 "--json", "--quiet")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document["metrics"]) == {"zoo", "paper"}  # GT-mean needs references
    assert document["dataset"]["images"] == 2
    for entry in document["metrics"].values():
        assert set(entry["images"]) == {"4", "6"} and set(entry["mean"]) == {"niqe", "brisque"}
    # scored on the output at the photo's own size: the same number `modelzoo score` gives the written output
    out = tmp_path / "out"
    assert cli("run", "sci", "--input", str(root / "6.bmp"), "--output", str(out), "--build", "fp32",
               "--format", "png", "--quiet").exit_code == 0
    written = imaging.read_rgb(out / "6.png")
    assert written.shape == (326, 326, 3)
    assert document["metrics"]["zoo"]["images"]["6"]["niqe"] == pytest.approx(iqa.niqe(written), abs=0.02)
