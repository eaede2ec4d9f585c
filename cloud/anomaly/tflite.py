"""Write a dense ReLU network with a softmax head as a .tflite flatbuffer from numpy weights, without TensorFlow
(the schema ships with ai_edge_litert as Python; `flatbuffers` packs it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dense_softmax_tflite(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> bytes:
    """The model x → softmax(relu(...relu(x·W0 + b0)...)·Wn + bn) as .tflite bytes (float32, batch 1)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel

    def add_buffer(array: np.ndarray | None) -> int:
        buffer = schema.BufferT()
        if array is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(array, dtype=np.float32).tobytes(), dtype=np.uint8)
        buffers.append(buffer)
        return len(buffers) - 1

    tensors: list = []

    def add_tensor(name: str, shape: Sequence[int], array: np.ndarray | None = None) -> int:
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = list(shape)
        tensor.type = schema.TensorType.FLOAT32
        tensor.buffer = add_buffer(array)
        tensors.append(tensor)
        return len(tensors) - 1

    fully_connected = schema.OperatorCodeT()
    fully_connected.builtinCode = schema.BuiltinOperator.FULLY_CONNECTED
    fully_connected.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    softmax = schema.OperatorCodeT()
    softmax.builtinCode = schema.BuiltinOperator.SOFTMAX
    softmax.deprecatedBuiltinCode = schema.BuiltinOperator.SOFTMAX

    operators = []
    current = add_tensor("features", [1, weights[0].shape[0]])
    first_input = current
    for layer, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        # TFLite keeps fully connected weights as (out, in).
        weight_tensor = add_tensor(f"w{layer}", [weight.shape[1], weight.shape[0]], np.asarray(weight).T)
        bias_tensor = add_tensor(f"b{layer}", [bias.shape[0]], np.asarray(bias))
        out = add_tensor(f"dense{layer}", [1, weight.shape[1]])
        options = schema.FullyConnectedOptionsT()
        last = layer == len(weights) - 1
        options.fusedActivationFunction = (
            schema.ActivationFunctionType.NONE if last else schema.ActivationFunctionType.RELU
        )
        operator = schema.OperatorT()
        operator.opcodeIndex = 0
        operator.inputs = [current, weight_tensor, bias_tensor]
        operator.outputs = [out]
        operator.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        operator.builtinOptions = options
        operators.append(operator)
        current = out
    probabilities = add_tensor("probabilities", [1, weights[-1].shape[1]])
    options = schema.SoftmaxOptionsT()
    options.beta = 1.0
    operator = schema.OperatorT()
    operator.opcodeIndex = 1
    operator.inputs = [current]
    operator.outputs = [probabilities]
    operator.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
    operator.builtinOptions = options
    operators.append(operator)

    subgraph = schema.SubGraphT()
    subgraph.tensors = tensors
    subgraph.inputs = [first_input]
    subgraph.outputs = [probabilities]
    subgraph.operators = operators
    subgraph.name = "main"
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [fully_connected, softmax]
    model.subgraphs = [subgraph]
    model.buffers = buffers
    model.description = "flurfunk edge anomaly model"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
