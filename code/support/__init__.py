"""Plumbing that no tutorial page shows: finding a BLAS, and more to come."""
