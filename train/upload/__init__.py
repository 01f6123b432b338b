"""The upload archive and the proof that it runs as the organisers run it."""
