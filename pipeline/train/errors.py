"""Training's error, apart from the training loop so that the command line can name it without importing torch."""


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss or weight); the message names the epoch and the likely key."""
