"""Shared pieces of the Streamlit dashboard: page setup, cached loaders, chart builders, widgets.

Pages in ``pages/`` import from here and from ``backend``; nothing here computes what the backend
already knows how to compute.
"""
