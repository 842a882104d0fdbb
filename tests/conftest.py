"""Plugins shared by every test directory."""

pytest_plugins = ["spanner_fixtures", "figures_plugin"]
