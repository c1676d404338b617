"""``-p ah -m ah [!] --ahspi N[:M]``: the AH SPI is in [N, M] (IPv4: extensions/libipt_ah.c,
kernel net/ipv4/netfilter/ipt_ah.c). ip6tables' ah match (libip6t_ah.c with --ahlen and
--ahres) is not modelled.

Kernel: ``.proto = IPPROTO_AH``. iptables-save prints nothing for the full range.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import Family
from .base import ExtSpec, Kernel
from .esp import SpiRange, spi_builder
from .xtopt import xt_opts

IPPROTO_AH = 51


@dataclass(frozen=True, slots=True)
class Ah(SpiRange):
    """ipt_ah.c ah_mt(): struct ip_auth_hdr is 12 bytes (next header, length, reserved,
    SPI, sequence number); see :meth:`SpiRange.match`."""

    NAME = "ah"
    OPTION = "ahspi"
    SPI_OFFSET = 4
    HEADER = 12


OPTIONS, build = spi_builder(Ah, "ah", "ahspi")
SPEC = ExtSpec("ah", "match", xt_opts(OPTIONS), build, Kernel(proto=IPPROTO_AH),
               families=frozenset({Family.IPV4}))
