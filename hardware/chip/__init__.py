"""The chip: Loihi 2's limits, resources and energy estimate."""
