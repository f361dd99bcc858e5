"""Flow-behaviour detection of mining: features from flow records, a small tree model scored
with numpy, its training, detection and evaluation (works on encrypted traffic and flow exports,
where payload recognisers are blind)."""
