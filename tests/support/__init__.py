"""Fixtures and helpers shared by the test folders (the only test code one test module may import)."""
