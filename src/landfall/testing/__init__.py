"""Helpers for testing landfall itself and its backends: fault injection and conformance suites."""
