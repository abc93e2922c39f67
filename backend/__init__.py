"""Anomaly Workbench backend: data, models, training, run store, run manager and prediction.

Nothing in this package imports Streamlit; the dashboard imports this package.
"""
