"""Figures, one module per figure: a spec (run data → tidy frames and labels) and its two renderers side by
side, ``draw`` (matplotlib: PNG and SVG for papers, in ``RUN/figures/``) and ``plotly`` (the report's
interactive figure). matplotlib is imported only when a static figure is drawn. ``base``: colours, model
styles, the figure files, Plotly defaults."""
