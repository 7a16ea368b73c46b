"""Fine-Tuning Lab engine: data, models, training runs and their store (no UI code)."""
