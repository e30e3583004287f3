"""os-ken applications: thin glue between OpenFlow events and sdnscent logic.

Installed as `sdnscent.apps` (setup.cfg package_dir).
"""
