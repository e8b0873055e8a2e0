"""``python -m commerce_lm.cli``: what the training pods and torchrun's relaunch run."""

import sys

from commerce_lm.cli import main

sys.exit(main())
