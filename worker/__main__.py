"""``python -m worker`` from a checkout: the same as ``payhook worker``."""

import sys

from payhook.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker"]))
