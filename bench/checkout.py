"""Imported first by every benchmark: this checkout's tools/ go first on the import
path, so a benchmark measures the tree it is run from, not the tree an installed
farmctl (an editable install of another checkout) compiles and deploys."""
import sys
from pathlib import Path

TOOLS = str(Path(__file__).resolve().parent.parent / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
