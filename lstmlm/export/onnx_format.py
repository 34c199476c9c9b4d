"""ONNX: the step model through ``torch.onnx`` (dynamo), the sequence model as an ONNX ``Scan`` of it.

The step graph is exported once, with a dynamic batch. The sequence model wraps that very
graph as the body of a ``Scan`` node over the time axis, so its sequence length is
dynamic too and every cell, fused or equation, has one (no unrolling, no fixed length):

    Scan(state..., tokens (T, B))  body: (state..., tokens_t (B,)) -> (state_out..., logits_t (B, V))
                                   out:  state_out..., logits (T, B, V)

The body reads the step graph's weights from the enclosing graph (they move there), and
its own values are renamed under ``step/`` so that none shadows an outer name.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import onnx
import torch
from onnx import helper

from lstmlm.export.step_model import StepModel

BODY = "step/"  # prefix of the Scan body's own value names


def export_step(step: StepModel, inputs: Sequence[str], outputs: Sequence[str]) -> onnx.ModelProto:
    """The step model as ONNX: ``inputs`` (tokens, state...) -> ``outputs`` (logits, state...),
    the batch a dynamic dimension named ``batch``."""
    example = step.example_inputs(2)  # 2, not 1: torch.export specializes a size-1 dimension
    batch = torch.export.Dim("batch")
    dynamic = ({0: batch}, tuple({1: batch} for _ in example[1:]))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        program = torch.onnx.export(
            step,
            example,
            dynamo=True,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=dynamic,
            verbose=False,
        )
    assert program is not None  # None only from the TorchScript exporter (dynamo=False)
    return program.model_proto


def sequence_model(
    step: onnx.ModelProto, state_in: Sequence[str], state_out: Sequence[str]
) -> onnx.ModelProto:
    """The sequence model: ``tokens`` (time, batch) and the state -> ``logits`` (time, batch, V)
    and the state after the last step, one ``Scan`` over ``step``'s graph."""
    graph = step.graph
    by_name = {v.name: v for v in graph.input} | {v.name: v for v in graph.output}
    tokens, logits = graph.input[0].name, graph.output[0].name
    weights = {init.name for init in graph.initializer} | {s.name for s in graph.sparse_initializer}
    body = helper.make_graph(
        [_renamed_node(node, weights) for node in graph.node],
        "step",
        [_renamed_value(by_name[name]) for name in (*state_in, tokens)],
        [_renamed_value(by_name[name]) for name in (*state_out, logits)],
        value_info=[_renamed_value(v) for v in graph.value_info],
    )
    scan = helper.make_node(
        "Scan", [*state_in, tokens], [*state_out, logits], name="scan_over_time", body=body, num_scan_inputs=1
    )
    outer = helper.make_graph(
        [scan],
        "sequence",
        [_with_time(by_name[tokens]), *(by_name[name] for name in state_in)],
        [_with_time(by_name[logits]), *(by_name[name] for name in state_out)],
        initializer=list(graph.initializer),
        sparse_initializer=list(graph.sparse_initializer),
    )
    model = helper.make_model(outer, opset_imports=list(step.opset_import), functions=list(step.functions))
    model.ir_version = step.ir_version
    model.producer_name = step.producer_name
    return model


def _renamed(name: str, keep: set[str]) -> str:
    return name if not name or name in keep else BODY + name


def _renamed_node(node: onnx.NodeProto, weights: set[str]) -> onnx.NodeProto:
    """``node`` with its values under ``BODY``, the weights (outer initializers) kept."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.input[:] = [_renamed(name, weights) for name in node.input]
    copy.output[:] = [_renamed(name, weights) for name in node.output]
    if copy.name:
        copy.name = BODY + copy.name
    if any(attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for attr in node.attribute):
        raise ValueError(f"the step graph has a subgraph ({node.op_type}): not renamed")
    return copy


def _renamed_value(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value)
    copy.name = BODY + value.name
    return copy


def _with_time(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """``value`` with a leading dynamic ``time`` dimension: tokens (B,) -> (time, B)."""
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value)
    dims = copy.type.tensor_type.shape.dim
    time = onnx.TensorShapeProto.Dimension(dim_param="time")
    dims.insert(0, time)
    return copy
