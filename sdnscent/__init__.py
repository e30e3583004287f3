"""sdnscent: scent trails, per-application routing paths for SDN fabrics."""

__version__ = "0.1.0"
