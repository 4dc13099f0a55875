"""The fault cases live in faults.py beside the tests (also used by scripts/fault_matrix.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
