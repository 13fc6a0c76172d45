"""Pure rules, no I/O: money and the session state machine."""
