"""The report layer: renders a run directory (or several) for people.

It sits above analysis and zeroshot (it reads both stages' outputs) and below the pipeline. Modules:
``headline`` (the study's headline numbers on a chance-normalised scale), ``interactive`` (Plotly
figures inlined in report.html).
"""
