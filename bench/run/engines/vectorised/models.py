"""The built-in models over stacked parameters: forward, and the backward autograd would run.

Each repeats, run by run, the operations of the per-run path: `nn.Linear` is `addmm(b, x, W^T)`
(here `baddbmm`), its backward `G^T x` for the weight (autograd's `mm_mat2_backward` for the
column-major `W^T`), `G.sum(0)` for the bias and `G W` for the input; ReLU is `clamp_min(0)`
and its backward `threshold_backward` on the output; `theta` is θ expanded over the rows, its
backward the sum over the rows. Operands of a matrix product are copied into aligned stacks
and every product is written into one (`layout.product`), so that a run's products do not
depend on its place in the group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from bench.run.engines.vectorised.layout import copy_stacked, product


class AffineChain:
    """`linear` (one nn.Linear) and `mlp` (Linear, ReLU, Linear): layers [W0, b0, W1, b1, ...]."""

    def __init__(self, names: Sequence[str]) -> None:
        self.layers = len(names) // 2

    def forward(self, params: Sequence[Tensor], x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Output [K, B, k] and what the backward needs (each layer's input, aligned)."""
        inputs = [x]
        a = x
        for layer in range(self.layers):
            W, b = params[2 * layer], params[2 * layer + 1]
            z = product(a, W.transpose(1, 2), b)
            if layer == self.layers - 1:
                return z, inputs
            a = copy_stacked(torch.clamp_min(z, 0))
            inputs.append(a)
        raise AssertionError("a chain has at least one layer")

    def backward(self, params: Sequence[Tensor], inputs: list[Tensor], G: Tensor) -> list[Tensor]:
        """Gradients in parameter order, from G = dL/d(output) (aligned)."""
        grads: list[Tensor] = [G] * (2 * self.layers)
        for layer in reversed(range(self.layers)):
            a = inputs[layer]
            grads[2 * layer] = product(G.transpose(1, 2), a)
            grads[2 * layer + 1] = G.sum(1)
            if layer:
                W = params[2 * layer]
                grad_a = product(G, W)
                G = copy_stacked(torch.ops.aten.threshold_backward(grad_a, a, 0))
        return grads


class Theta:
    """`theta`: the point θ [K, k] itself, the same output for every row."""

    def __init__(self, names: Sequence[str]) -> None:
        pass

    def forward(self, params: Sequence[Tensor], x: Tensor) -> tuple[Tensor, list[Tensor]]:
        (theta,) = params
        return theta.unsqueeze(1).expand(theta.shape[0], x.shape[1], theta.shape[1]), []

    def backward(self, params: Sequence[Tensor], inputs: list[Tensor], G: Tensor) -> list[Tensor]:
        return [G.sum(1)]


#: Model kind (`bench.run.models.MODELS`) -> its stacked form.
STACKED: dict[str, Callable[[Sequence[str]], Any]] = {
    "linear": AffineChain,
    "mlp": AffineChain,
    "theta": Theta,
}
