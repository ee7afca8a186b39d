"""``scout bench``: Scout's figures next to the raw limits of this machine, measured in the same run."""
