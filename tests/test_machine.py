"""The machine description bench and eval documents carry, and the automatic choice keys by."""
from modelzoo import machine


def test_machine_id_is_a_slug():
    assert machine.machine_id({"cpu": "Intel(R) Xeon(R) Platinum 8480+ @ 2.0GHz", "cores": 16, "gpu": None,
                             "flags": ["avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"]}) \
        == "intel-xeon-platinum-8480-16c-amx"
    # the same CPU name on an AVX2-only and an AVX-512 VNNI machine: two ids, two bench files
    assert machine.machine_id({"cpu": "AMD EPYC", "cores": 2, "flags": ["avx2", "fma"]}) == "amd-epyc-2c-avx2"
    assert machine.machine_id({"cpu": "AMD EPYC", "cores": 2, "flags": ["avx2", "fma", "avx512f", "avx512_vnni"]}) \
        == "amd-epyc-2c-avx512-vnni"
    assert machine.machine_id({"cpu": "AMD EPYC", "cores": 2, "gpu": "NVIDIA H200"}) == "amd-epyc-2c-cuda-h200"


def test_this_machine_is_described():
    info = machine.describe()
    assert info["cores"] >= 1 and info["isa"] in ("amx", "avx512-vnni", "avx512", "avx2", "generic", "cuda")
    assert info["id"].endswith(info["isa"]) or info["gpu"]
    assert machine.versions("numpy")["numpy"] and machine.versions("no-such-package") == {"no-such-package": None}
