"""Electricity-meter screening for hidden cryptocurrency mining: sources, features, simulation."""
