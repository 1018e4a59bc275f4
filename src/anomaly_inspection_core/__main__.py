"""``python -m anomaly_inspection_core`` runs the CLI (same as ``anomaly-inspection``)."""

import sys

from anomaly_inspection_core.cli import main

sys.exit(main())
