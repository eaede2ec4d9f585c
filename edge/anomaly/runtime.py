"""Run a bundle's dense network: with LiteRT (ai_edge_litert, or tflite_runtime) or with numpy, same scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class ModelRunner(Protocol):
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities for standardised features, shape (n, classes) from (n, features)."""
        ...


class NumpyRunner:
    """The network in numpy, float32 like the .tflite file: dense layers with ReLU, softmax at the end."""

    def __init__(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> None:
        if len(weights) != len(biases) or not weights:
            raise ValueError(f"need as many weight matrices as biases (at least one), got {len(weights)}/{len(biases)}")
        self.weights = [np.asarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.asarray(b, dtype=np.float32) for b in biases]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        activation = np.asarray(features, dtype=np.float32)
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            activation = activation @ weight + bias
            if layer < len(self.weights) - 1:
                activation = np.maximum(activation, 0.0)
        activation = activation - activation.max(axis=-1, keepdims=True)
        exp = np.exp(activation)
        return exp / exp.sum(axis=-1, keepdims=True)


def litert_interpreter_class() -> Any | None:
    """The LiteRT Interpreter class, or None when neither ai_edge_litert nor tflite_runtime can be imported."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:  # tflite_runtime 2.14 also fails to import under numpy 2
        return None


class LiteRtRunner:
    """The network from its .tflite file through the LiteRT interpreter, all rows in one invoke.

    The input is resized to a batch: rows are padded to the next power of two, and one interpreter is kept per
    batch size, so a gateway alternating between one and two rows never reallocates tensors.
    """

    MAX_BATCH = 4096

    def __init__(self, model_path: Path) -> None:
        self._interpreter_class = litert_interpreter_class()
        if self._interpreter_class is None:
            raise ImportError("neither ai_edge_litert nor tflite_runtime is importable")
        self._model_path = str(model_path)
        self._by_batch: dict[int, tuple[Any, int, int]] = {}
        self._interpreter(1)

    def _interpreter(self, batch: int) -> tuple[Any, int, int]:
        cached = self._by_batch.get(batch)
        if cached is not None:
            return cached
        interpreter = self._interpreter_class(model_path=self._model_path, num_threads=1)
        details = interpreter.get_input_details()[0]
        if batch != details["shape"][0]:
            interpreter.resize_tensor_input(details["index"], [batch, int(details["shape"][1])])
        interpreter.allocate_tensors()
        cached = (interpreter, details["index"], interpreter.get_output_details()[0]["index"])
        self._by_batch[batch] = cached
        return cached

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(features, dtype=np.float32))
        n = rows.shape[0]
        if 0 < n <= self.MAX_BATCH:  # the gateway's case: one invoke, no list of chunks
            batch = 1 << (n - 1).bit_length()
            if batch != n:
                rows = np.concatenate([rows, np.zeros((batch - n, rows.shape[1]), np.float32)])
            interpreter, input_index, output_index = self._interpreter(batch)
            interpreter.set_tensor(input_index, np.ascontiguousarray(rows))
            interpreter.invoke()
            return interpreter.get_tensor(output_index)[:n].copy()
        out = []
        for start in range(0, n, self.MAX_BATCH):
            chunk = rows[start : start + self.MAX_BATCH]
            batch = 1 << (chunk.shape[0] - 1).bit_length()
            if batch != chunk.shape[0]:
                chunk = np.concatenate([chunk, np.zeros((batch - chunk.shape[0], chunk.shape[1]), np.float32)])
            interpreter, input_index, output_index = self._interpreter(batch)
            interpreter.set_tensor(input_index, np.ascontiguousarray(chunk))
            interpreter.invoke()
            out.append(interpreter.get_tensor(output_index)[: min(self.MAX_BATCH, n - start)].copy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
