"""EgoHands -> train/eval/test split, CSVs, OD API TFRecords: the CLI of ``prep.egohands``.

python prep/egohands_clean.py --source ../shared/data/egohands-4videos --out data/egohands
python -m prep.egohands_clean --source egohands_data.zip --out data/egohands
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prep.egohands import main

if __name__ == "__main__":
    sys.exit(main())
