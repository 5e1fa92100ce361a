"""``switchboard``: a small command-line client of the Switchboard HTTP API."""
