"""The report layer: renders a run directory (or several) for people.

It sits above analysis and zeroshot (it reads both stages' outputs) and below the pipeline. One module per
job: ``load`` (read a run directory leniently), ``tables`` (main and statistics tables), ``findings``
(plain sentences), ``headline`` and ``takeaways`` (the summary numbers and "what this shows"),
``figures`` (which figures, drawn by :mod:`speechprobe.figures`), ``interactive`` (Plotly in the page),
``latex`` (the main table for papers), ``page`` and ``render`` (HTML and Markdown), ``build`` (one run),
``compare`` (several runs).
"""

from .build import build_report, run_headline, takeaways
from .latex import main_table_latex, write_main_table
from .load import RunData, chance_table, load_run
from .tables import MAIN_TABLE_COLUMNS, main_table

__all__ = [
    "MAIN_TABLE_COLUMNS",
    "RunData",
    "build_report",
    "chance_table",
    "load_run",
    "main_table",
    "main_table_latex",
    "run_headline",
    "takeaways",
    "write_main_table",
]
