"""Where chains run: the local engine (this process) and the shared start path every engine uses."""
