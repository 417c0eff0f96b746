"""The engine's own backends, registered through the same hook as any plugin's."""
from modelzoo.backends.ncnn_rt import Ncnn  # imports ncnn/pnnx only inside its methods
from modelzoo.backends.ort import OnnxRuntime
from modelzoo.backends.openvino_rt import OpenVINO
from modelzoo.backends.torch_rt import Torch
from modelzoo.hookspecs import hookimpl


@hookimpl
def register_backends(register):
    register(OnnxRuntime())
    register(OpenVINO())
    register(Torch())
    register(Ncnn())
