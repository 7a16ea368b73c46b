"""Entry point: `python -m core ...`."""
import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing chatter in the CLI's output

from core.cli import main  # noqa: E402

sys.exit(main())
