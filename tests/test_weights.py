"""Weights: resolved, verified by sha256, downloaded atomically, loaded without running pickled code."""
import functools
import http.server
import pickle
import shutil
import threading

import pytest
import torch

from conftest import PAIRLIE_WEIGHTS, needs_shared
from modelzoo import weights
from modelzoo.errors import ZooError

pytestmark = needs_shared


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving a folder."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_resolved_from_environment(pairlie):
    assert weights.resolve(pairlie, download=False).read_bytes() == PAIRLIE_WEIGHTS.read_bytes()


def test_download_verifies_and_lands_atomically(server, tmp_path):
    root, url = server
    shutil.copy(PAIRLIE_WEIGHTS, root / "PairLIE.pth")
    target = tmp_path / "cache" / "PairLIE.pth"
    expected = weights.sha256(PAIRLIE_WEIGHTS)
    assert weights.fetch(f"{url}/PairLIE.pth", target, expected, progress=False) == target
    assert weights.sha256(target) == expected
    assert sorted(p.name for p in target.parent.iterdir()) == ["PairLIE.pth"]


def test_download_with_wrong_hash_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "PairLIE.pth").write_bytes(b"not the weights")
    target = tmp_path / "cache" / "PairLIE.pth"
    with pytest.raises(ZooError, match="downloaded file has sha256 .* the card expects"):
        weights.fetch(f"{url}/PairLIE.pth", target, "0" * 64, progress=False)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_download_through_the_resolver_when_nothing_is_local(server, pairlie, monkeypatch, tmp_path):
    root, url = server
    shutil.copy(PAIRLIE_WEIGHTS, root / "PairLIE.pth")
    monkeypatch.setenv("MODELZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("MODELZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("modelzoo.paths.workspace_shared", lambda: None)
    entry = dict(pairlie.weights_entry(), url=f"{url}/PairLIE.pth")
    monkeypatch.setitem(pairlie.card["weights"], "official", entry)
    path = weights.resolve(pairlie, progress=False)
    assert path == tmp_path / "cache" / "weights" / "pairlie" / "PairLIE.pth"


def test_wrong_sha256_is_one_line_naming_both_hashes(cli, tmp_path):
    fake = tmp_path / "PairLIE.pth"
    fake.write_bytes(PAIRLIE_WEIGHTS.read_bytes()[:-10] + b"0123456789")
    out = tmp_path / "out"
    image = tmp_path / "dark.png"
    image.write_bytes((PAIRLIE_WEIGHTS.parent.parent.parent / "data" / "LOL" / "eval15" / "low" / "1.png").read_bytes())
    result = cli("run", "pairlie", "--input", image, "--weights", fake, "--output", out, "--backend", "torch")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert weights.sha256(fake) in lines[0] and "e223ec9e66504550e69f65b631ce520be9b5c4e8e0aba882768d06af355b0631" in lines[0]
    assert not out.exists()


def test_pickle_that_runs_code_is_refused(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pth"
    with open(bad, "wb") as handle:
        pickle.dump({"w": Exploit()}, handle)
    with pytest.raises(ZooError, match="refused to load|not a readable weights file"):
        weights.load_state_dict(bad)


def test_truncated_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "cut.pth"
    bad.write_bytes(PAIRLIE_WEIGHTS.read_bytes()[:5000])
    with pytest.raises(ZooError, match="not a readable weights file"):
        weights.load_state_dict(bad)


def test_state_dict_for_another_architecture(pairlie, tmp_path):
    from modelzoo import compile as compiler

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3, 3, 3)}, other)
    job = compiler.prepare(pairlie, "fp32", "torch")
    job.weights = other
    with pytest.raises(ZooError, match="not weights for pairlie"):
        job.torch_module()


def test_subnormal_values_read_as_zero_and_the_rest_exactly(tmp_path):
    """Subnormal floats (slow CPU arithmetic, no effect on outputs) are read as zero; normal values, zeros and
    integer tensors are untouched."""
    values = torch.tensor([1e-40, -3e-39, 0.0, 1.5, -2e-38, 1e-30])
    torch.save({"w": values, "steps": torch.tensor([7])}, tmp_path / "w.pth")
    state = weights.read(tmp_path / "w.pth", {})
    assert torch.equal(state["w"], torch.tensor([0.0, 0.0, 0.0, 1.5, -2e-38, 1e-30]))
    assert torch.equal(state["steps"], torch.tensor([7]))
