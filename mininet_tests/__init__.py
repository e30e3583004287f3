"""Integration tests and the demo: sdnscent on Mininet and Open vSwitch (root)."""
