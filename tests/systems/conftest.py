"""The system tests live beside their papers (tests/systems/<paper>/) and share
`system_checks.py` of this folder: put the folder on sys.path so that every
test file imports it as `from system_checks import ...`."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
  sys.path.insert(0, _HERE)
