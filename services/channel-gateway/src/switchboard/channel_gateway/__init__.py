"""Channel gateway: where messages enter Switchboard and replies leave it."""
