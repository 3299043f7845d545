"""onnxruntime sessions: the execution provider the user chose, and batch-capable recognizers.

A GPU provider that was asked for and is missing is an error that names the package to install; onnxruntime's
own habit of quietly running on the CPU instead is caught and reported the same way.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

from ..errors import ProviderUnavailable

PROVIDER_CHOICES = ("auto", "cpu", "cuda", "rocm", "coreml")

_ORT_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}

_INSTALL_HINTS = {
    "cuda": "install onnxruntime-gpu in place of onnxruntime (pip uninstall onnxruntime; pip install onnxruntime-gpu)",
    "rocm": "install onnxruntime-rocm in place of onnxruntime",
    "coreml": "install the standard onnxruntime wheel on macOS (CoreML ships with it there)",
}


def execution_providers(choice: str) -> list[str]:
    """The onnxruntime provider list for a user's choice: the accelerator first, the CPU for unsupported ops."""
    choice = (choice or "auto").lower()
    if choice not in PROVIDER_CHOICES:
        raise ProviderUnavailable(f"unknown provider {choice!r}; choose one of: {', '.join(PROVIDER_CHOICES)}")
    available = onnxruntime.get_available_providers()
    cpu = _ORT_NAMES["cpu"]
    if choice == "auto":
        for name in ("cuda", "rocm", "coreml"):
            if _ORT_NAMES[name] in available:
                return [_ORT_NAMES[name], cpu]
        return [cpu]
    if choice == "cpu":
        return [cpu]
    if _ORT_NAMES[choice] not in available:
        raise ProviderUnavailable(
            f"provider {choice!r} was asked for but onnxruntime has no {_ORT_NAMES[choice]} "
            f"(it has: {', '.join(available)}); {_INSTALL_HINTS[choice]}, or choose provider 'cpu' or 'auto'"
        )
    return [_ORT_NAMES[choice], cpu]


def thread_budget() -> int | None:
    """The cores this process was given, from `OMP_NUM_THREADS` (Ray sets it to each worker's CPUs); None: all."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


def session_options() -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the stock files trigger pages of harmless initializer warnings
    # Engines side by side (one per Ray worker) must not each spread over every core of the machine.
    options.intra_op_num_threads = thread_budget() or 0  # 0: onnxruntime's default, one per physical core
    # Detector and recognizer sessions alternate; threads left spinning by one steal the cores the other
    # needs (measured: 2x slower scoring on 2 cores with spinning on).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def check_provider(session: onnxruntime.InferenceSession, providers: list[str]) -> None:
    if session.get_providers()[0] != providers[0]:
        raise ProviderUnavailable(
            f"onnxruntime could not start {providers[0]} and fell back to {session.get_providers()[0]}; "
            "check the GPU driver and CUDA/cuDNN libraries, or choose provider 'cpu'"
        )


def create_session(model, providers: list[str]) -> onnxruntime.InferenceSession:
    """A session on exactly the first provider asked for; `model` is a path or serialized ONNX bytes."""
    session = onnxruntime.InferenceSession(model, session_options(), providers=providers)
    check_provider(session, providers)
    return session


def batchable(model: onnx.ModelProto) -> bytes:
    """The model with a symbolic batch dimension, so that many faces run in one call.

    Recognizers are often exported with batch 1 fixed in the input/output shapes and in the `Reshape` that
    flattens features (`[1, -1]`); a leading 0 in a Reshape copies the batch size instead. Callers verify
    the result against single-face runs before trusting it.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    initializers = {init.name: init for init in model.graph.initializer}
    for value in list(model.graph.input[:1]) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    for node in model.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
            if shape.ndim == 1 and shape.size and shape[0] == 1:
                shape[0] = 0
                initializers[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    return model.SerializeToString()


def without_denormal_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its subnormal float32 weights set to zero, in place.

    Trained weights decayed towards zero are often left below float32's smallest normal number, and some x86 CPUs
    take a slow microcode path for every multiply with one (measured on one: the test pack's recognizer, 8,938 such
    weights, ran 2.9x faster without them). Their products lie below float32's resolution of the sums they join,
    so the outputs do not change (tests/test_face_engines.py compares them with insightface's run of the file).
    """
    smallest = np.finfo(np.float32).tiny
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(init)
        subnormal = (weights != 0) & (np.abs(weights) < smallest)
        if subnormal.any():
            init.CopyFrom(numpy_helper.from_array(np.where(subnormal, np.float32(0), weights), init.name))
    return model


def per_tensor_dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make single-scale `DequantizeLinear` nodes plainly per-tensor.

    The block-quantized OpenCV Zoo files give one-element scales a `block_size`/`axis`, which onnxruntime
    refuses at run time; a scalar scale without those attributes means the same thing.
    """
    initializers = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[1] not in initializers:
            continue
        if int(np.prod(initializers[node.input[1]].dims)) != 1:
            continue
        for name in node.input[1:]:
            if name in initializers:
                scalar = numpy_helper.to_array(initializers[name]).reshape(())
                initializers[name].CopyFrom(numpy_helper.from_array(scalar, name))
        kept = [a for a in node.attribute if a.name not in ("block_size", "axis")]
        del node.attribute[:]
        node.attribute.extend(kept)
    return model


def without_initializer_inputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop graph inputs that are really weights (initializers) or feed nothing, as old exporters left them."""
    initializers = {init.name for init in model.graph.initializer}
    consumed = {name for node in model.graph.node for name in node.input}
    keep = [v for v in model.graph.input if v.name not in initializers and v.name in consumed]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model
