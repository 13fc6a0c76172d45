"""``python -m worker``: the supervised arq worker (also ``payhook worker``)."""

import sys

from payhook.config import ConfigError, load_settings
from payhook.observability import configure_logging
from worker.supervisor import supervise


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as error:
        sys.stderr.write(f"payhook worker: configuration error: {error}\n")
        return 2
    if not settings.redis_url:
        sys.stderr.write("payhook worker: REDIS_URL is required (without it the web process "
                         "drains the outbox itself)\n")
        return 2
    configure_logging()
    import uvloop

    uvloop.run(supervise(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
