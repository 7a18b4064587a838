"""Private helpers shared by stages; not part of the public API."""
