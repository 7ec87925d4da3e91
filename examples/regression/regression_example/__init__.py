"""A user project: disease progression from 10 clinical measurements (regression)."""
