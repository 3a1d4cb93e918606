"""The launchers: `python -m launch.<name>` (train, evaluate, infer, compile,
demo, experiment).

TensorFlow's C++ INFO lines (oneDNN, CPU features) are hidden before any
launcher imports TensorFlow; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
