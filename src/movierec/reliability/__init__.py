"""Fault injection and the reliability report."""
