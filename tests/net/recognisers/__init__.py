"""End-to-end tests of the protocol recognisers (a package so its conftest has its own name)."""
