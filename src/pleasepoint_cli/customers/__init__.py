"""One customer at a time: the profile that `customers show` prints."""
