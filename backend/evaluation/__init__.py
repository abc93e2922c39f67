"""Evaluation of stored predictions: intervals, paired comparison, calibration (no torch, no Streamlit).

``stats`` (bootstrap intervals, McNemar), ``calibration`` (ECE, temperature, thresholds),
``compare`` (two stored runs, matched by item hash). The dashboard imports this package.
"""
