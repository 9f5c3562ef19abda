"""Evaluation: metrics, curves, test-time augmentation, figures and the report."""
