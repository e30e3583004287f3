"""The VNI adaptation layer on hosts: an eBPF tc program (tagger.c) that stamps the
scent trail's MPLS label on outbound packets, and the loader that keeps its map in
sync with the trails in the store that start at the host (docs/vni.rst).
"""
