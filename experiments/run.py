"""The one entry point.

    python experiments/run.py                                   # W-Net on the embedded procedural data
    python experiments/run.py --config experiments/configs/bsds500.yaml data.root=/path/to/BSDS500
    python experiments/run.py task=supervised data.name=paired ... supervised.loss=dice+ce
    python experiments/run.py --config experiments/configs/compare_camvid.yaml data.root=/path/to/CamVid

Config precedence: dataclass defaults (wnet/tasks/config.py) < --config YAML < key=value overrides.
Needs the package installed (``pip install -r requirements.txt`` installs it in editable mode).
"""

from wnet.tasks.cli import main

if __name__ == "__main__":
    main()
