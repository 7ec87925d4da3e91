"""A user project: breast-cancer diagnosis from 30 tabular features, with its own MLP."""
