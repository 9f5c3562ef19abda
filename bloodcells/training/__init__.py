"""Training: inputs, recipe, devices, the resumable loop, and one run from params."""
