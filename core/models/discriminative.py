"""Discriminative learning rates in Keras 3: RMSprop with a learning rate per layer of the base.

Keras 3 optimizers have one learning rate (keras#414, #5920, #8850). Scaling a layer's gradients instead
would be undone by RMSprop and Adam, which divide each step by the gradient's running magnitude; so this
optimizer scales the *learning rate* inside `update_step`, per variable: the variable's layer (the first
component of its path that `layer_factors` names) gives the factor, every other variable (the head) keeps
the optimizer's rate. The factors are part of the optimizer's config, so a checkpoint loads with them
(`keras.models.load_model(..., safe_mode=True)`). The plan that sets them is `core.models.unfreezing`.
"""
from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tunelab")
class DiscriminativeRMSprop(keras.optimizers.RMSprop):
    """RMSprop whose rate for a variable of layer L is learning_rate x layer_factors[L] (1 for layers not listed)."""

    def __init__(self, layer_factors: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.layer_factors = {str(k): float(v) for k, v in (layer_factors or {}).items()}
        self._factors: list[float] = []

    def factor(self, variable) -> float:
        """The learning-rate factor of a model variable, from its path ("block_16_expand/kernel")."""
        for part in str(getattr(variable, "path", variable.name)).split("/"):
            if part in self.layer_factors:
                return self.layer_factors[part]
        return 1.0

    def build(self, var_list):
        self._factors = [self.factor(v) for v in var_list]  # in the order of the optimizer's variable indices
        super().build(var_list)

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "layer_factors": dict(self.layer_factors)}


def optimizer(lr: float, layer_factors: dict | None) -> keras.optimizers.Optimizer:
    """The fine-tuning optimizer: plain RMSprop when every factor is 1 (the lecture), else DiscriminativeRMSprop."""
    if not layer_factors or all(f == 1.0 for f in layer_factors.values()):
        return keras.optimizers.RMSprop(learning_rate=lr)
    return DiscriminativeRMSprop(layer_factors=layer_factors, learning_rate=lr)
