"""The web dashboard over the candidate store (Dash, Plotly, crystal-toolkit): ``battery-discovery dashboard``.

Layers: :mod:`dashboard.data` reads the store into plain values, :mod:`dashboard.figures` draws them,
:mod:`dashboard.export` writes CSV / JSON / CIF bytes, :mod:`dashboard.app` lays out the pages and callbacks.
"""
