"""Helpers shared by the tests and the scripts (no test functions here)."""
