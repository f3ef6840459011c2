import os, sys

import pytest

# The hub is unreachable on CI; offline mode makes every hub call fail at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The notebooks, executed by nbmake in the same run, inherit this: quick mode (to run only them:
# QUICK=1 pytest notebooks).
os.environ.setdefault("QUICK", "1")


def reset_accelerate():
    """Set accelerate up anew, as a new process would find it (before each in-process train.main
    of a test that runs several)."""
    from accelerate.state import AcceleratorState, GradientState
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(autouse=True)
def fresh_accelerate():
    """After each test, accelerate is set up anew: an in-process train.main leaves its
    AcceleratorState behind, and a later run with another precision was refused
    ("AcceleratorState has already been initialized"): tests passed or failed by order."""
    yield
    if "accelerate.state" in sys.modules:
        reset_accelerate()
