"""Evaluation, for the evaluate stage and `bloodcells validate`: metrics, calibration, intervals, curves,
figures, their writers and the reports."""
