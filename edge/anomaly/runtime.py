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
    """The network from its .tflite file through the LiteRT interpreter, one row per invoke."""

    def __init__(self, model_path: Path) -> None:
        interpreter_class = litert_interpreter_class()
        if interpreter_class is None:
            raise ImportError("neither ai_edge_litert nor tflite_runtime is importable")
        self._interpreter = interpreter_class(model_path=str(model_path), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(np.asarray(features, dtype=np.float32))
        out = []
        for row in rows:
            self._interpreter.set_tensor(self._input, row[np.newaxis, :])
            self._interpreter.invoke()
            out.append(self._interpreter.get_tensor(self._output)[0].copy())
        return np.array(out, dtype=np.float32)
