"""The pytest plugin for testing applets on simulated and real cards."""
