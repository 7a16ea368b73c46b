"""Models: convolutional bases and their weights, heads, freeze points, precision and frozen features.

Modules: `networks` (the small CNN, keras.applications bases, heads, freezing and splitting a base),
`layer_table` (a base's layers grouped into blocks, with trainable counts for a freeze point, without
TensorFlow), `precision` (which dtype policy this hardware computes fast), `features` (frozen-base
outputs, cached by content), `environment` (TensorFlow, devices and which ImageNet weights are cached),
`weights` (`check_weights`: can a run load these weights? one sentence if not; `WeightsError`),
`unfreezing` (the fine-tuning plan: each block's learning rate and the epoch it starts training, without
TensorFlow), `discriminative` (`DiscriminativeRMSprop`, the optimizer that applies a rate per block).
Importing this package imports no TensorFlow; `networks` and `features` do (`weights` only to load a file).
"""
