"""OD API pipeline configs and the train / evaluate / export drivers."""
