"""`python -m pleasepoint_cli`: the same as the `pleasepoint` command."""

from pleasepoint_cli.cli import main

main()
