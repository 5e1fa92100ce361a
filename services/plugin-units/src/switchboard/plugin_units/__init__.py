"""Example plugin: unit conversions (see convert.py), answered through the plugin protocol."""
