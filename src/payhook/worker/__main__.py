"""``python -m payhook.worker``: the same as ``payhook worker`` (settings read by the CLI)."""

import sys

from payhook.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker"]))
