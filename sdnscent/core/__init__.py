"""The controller's core: managers over one shared state, behind sdnscent.controller.

links     switches, ports, links and each switch's audit
hosts     hosts, proxy ARP and probes
trails    the trail lifecycle: plan, install, activate, re-plan, remove, leases
policies  swapping the policy
multipath multipath trails and their split
services  services (virtual addresses over a pool)
load      counters, host samples and the allocation engine's moves
views     read-only JSON for the REST API
"""
