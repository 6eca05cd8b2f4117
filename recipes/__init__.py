"""Recipe scripts: run them as `python recipes/<name>.py --help`."""
