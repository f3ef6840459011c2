import os, sys

# The hub is unreachable on CI; offline mode makes every hub call fail at once instead of retrying.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The notebooks, executed by nbmake in the same run, inherit this: quick mode (to run only them:
# QUICK=1 pytest notebooks).
os.environ.setdefault("QUICK", "1")
