"""The machine a measurement was made on: CPU, cores, instruction-set class, memory, GPU, library versions.

Bench and eval documents carry this description, and the automatic build choice keys its measurements by
the instruction-set class and the library versions, so it lives here, below all of them.
"""
import os
import platform
import re
import resource
from importlib.metadata import PackageNotFoundError, version

# Libraries whose versions decide a measurement (bench documents, the automatic choice's cache).
PACKAGES = ("modelzoo", "torch", "onnx", "onnxruntime", "openvino", "onnxconverter-common", "numpy")
CPU_FLAGS = ("sse4_2", "fma", "f16c", "avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")


def describe():
    """CPU model, cores, SIMD flags, memory, OS; GPU name when torch sees one; instruction-set class; id."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    info = {"cpu": model, "cores": cores(), "logical_cpus": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags], "memory_gb": memory_gb(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(), "gpu": gpu()}
    info["isa"] = isa_class(info)
    info["id"] = machine_id(info)
    return info


def cores():
    """The cores this process may run on (a container's or taskset's limit, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def gpu():
    try:
        import torch  # deferred: describing the CPU must not load torch for callers that never need it
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def isa_class(info):
    """The instruction-set class that decides CPU speed (int8 and OpenVINO differ several-fold between them):
    cuda when a GPU is seen, else amx, avx512-vnni, avx512, avx2 or generic."""
    flags = set(info.get("flags") or ())
    if info.get("gpu"):
        return "cuda"
    for name, needs in (("amx", {"amx_tile", "amx_int8"}), ("avx512-vnni", {"avx512f", "avx512_vnni"}),
                        ("avx512", {"avx512f"}), ("avx2", {"avx2", "fma"})):
        if needs <= flags:
            return name
    return "generic"


def machine_id(info):
    """A stable, non-identifying slug: cpu model, core count and instruction-set class (and GPU), e.g.
    amd-epyc-2c-avx2: the same CPU name can be an AVX2 or an AVX-512 machine."""
    words = re.sub(r"\(r\)|\(tm\)|cpu|processor|@.*|\d+-core", " ", info["cpu"].lower())
    slug = "-".join(re.findall(r"[a-z0-9]+", words))[:40] or "cpu"
    slug = f"{slug}-{info['cores']}c-{info.get('isa') or isa_class(info)}"
    if info.get("gpu"):
        slug += "-" + "-".join(re.findall(r"[a-z0-9]+", info["gpu"].lower().replace("nvidia", "")))[:24]
    return slug


def memory_gb():
    try:
        with open("/proc/meminfo") as meminfo:
            return round(int(meminfo.readline().split()[1]) / 1024 ** 2, 1)
    except (OSError, ValueError, IndexError):
        return None


def versions(*packages):
    """{package: installed version or None}; the PACKAGES that decide measurements by default."""
    found = {}
    for package in packages or PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


def peak_rss_mb():
    """This process's peak resident set (VmHWM), in MB; falls back to getrusage's ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
