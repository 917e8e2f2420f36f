"""Emulators of third-party systems that speak their real wire formats on the local stack."""
